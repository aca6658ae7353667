"""What every long-running tower service does at start (hold its state exclusively, stop on
SIGTERM/SIGINT, tune the GC), and how a command that starts other processes stops them again,
their own children included."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds the state this one would use; str(self) says what, which process, and how to fix it."""


_held_locks: set[int] = set()  # descriptors of the locks this process holds


def _forget_locks_in_child() -> None:
    # flock belongs to the open file, which a forked child shares: the alert engine's snapshot writer,
    # outliving a SIGKILLed engine by the second it takes to write, would keep the lock and fail the
    # restart. The child closes its copies; the lock stays with the parent.
    for descriptor in _held_locks:
        os.close(descriptor)
    _held_locks.clear()


os.register_at_fork(after_in_child=_forget_locks_in_child)


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str, fix: str) -> Iterator[None]:
    """Hold lock_file exclusively while the block runs; AlreadyRunning if another process holds it.

    Two services on the same state (a spool, an alert book) corrupt it. The lock is the kernel's
    (flock), so it goes with the process however it ends, SIGKILL included: a restart after a crash
    finds it free. The file holds the holder's PID and host for the message; it is never removed
    (removing a lock file lets a third process lock a new file while the second holds the old one).
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 200).decode(errors="replace").split()
        os.close(descriptor)
        pid = f"PID {holder[0]}" if holder else "another process"
        host = f" on {holder[1]}" if len(holder) > 1 and holder[1] != socket.gethostname() else ""
        raise AlreadyRunning(f"{what} is in use by {pid}{host} (it holds {lock_file}); {fix}") from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    _held_locks.add(descriptor)
    try:
        yield
    finally:
        _held_locks.discard(descriptor)
        os.close(descriptor)


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a service's main loop to finish cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def tune_gc_for_streaming() -> None:
    """Thousands of in-flight messages and per-device states are many live objects: with the default
    thresholds the cyclic GC runs every few messages (14% of the collector's time) and full
    collections scan all state. The hot paths create no reference cycles, so collect rarely, and
    never re-scan what was loaded at start-up."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


class Children:
    """Child processes, each leading a process group of its own, so that stopping one reaches
    whatever it started in turn (Streamlit under `tower dashboard` under `tower demo`).

    `with Children() as children:` ... on leaving, each group gets SIGTERM, then SIGKILL if any of
    it is still there after the grace period. Install the signal handlers (stop_event) before
    starting children, so that a signal arriving meanwhile cannot end this process without them.
    """

    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], **popen: object) -> subprocess.Popen:
        self.processes[name] = subprocess.Popen(command, start_new_session=True, **popen)  # type: ignore[call-overload]
        return self.processes[name]

    def stop(self) -> None:
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
            _signal_group(process.pid, signal.SIGKILL)  # what is left of the group, if anything
            process.wait()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has already gone
        os.killpg(group, signum)
