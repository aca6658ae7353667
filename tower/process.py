"""What every long-running tower service does at start (stop on SIGTERM/SIGINT, tune the GC), and
how a command that starts other processes stops them again, their own children included."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import threading
import time


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
