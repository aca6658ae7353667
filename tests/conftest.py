"""Shared fixtures: a real mosquitto on a free loopback port, stores, publishers, collectors."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ingest.collector import Collector
from tower.broker import LocalBroker, free_port
from tower.config import Settings, load_settings
from tower.mqtt import connect, make_client
from tower.store import Store, open_store

REPO = Path(__file__).resolve().parent.parent
_ids = itertools.count()


def wait_until(predicate: Callable[[], object], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def run_collector_until_it_warns(settings: Settings, store: Store, caplog: pytest.LogCaptureFixture, text: str,
                                 what: str) -> None:  # fmt: skip
    """Run an in-process collector until its log (WARNING and up) says `text`, then stop it."""
    collector = Collector(settings, store)
    with caplog.at_level(logging.WARNING, logger="tower.ingest"):
        collector.start()
        try:
            wait_until(lambda: text in caplog.text, what=what)
        finally:
            collector.stop()


def descendants(pid: int | None = None) -> dict[int, str]:
    """Living processes below `pid` (default: this one), with their command lines."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if state != "Z":
            parents.setdefault(int(ppid), []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(parents.get(pid or os.getpid(), []))
    while todo:
        child = todo.pop()
        try:
            found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        todo += parents.get(child, [])
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """The suite fails if any process a test started outlives it. This process becomes a child
    subreaper, so what a stopped process left orphaned re-parents here and is seen too."""
    PR_SET_CHILD_SUBREAPER = 36
    if sys.platform == "linux":  # like /proc, which descendants() reads
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    before = descendants()
    yield
    left: dict[int, str] = {}
    deadline = time.monotonic() + 10  # a process that was just signalled may still be exiting
    while time.monotonic() < deadline and (left := {p: c for p, c in descendants().items() if p not in before}):
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # leave the machine clean, then say so
    assert not left, f"processes outlived the tests that started them: {left}"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with LocalBroker(tmp_path_factory.mktemp("broker")) as local:  # anonymous, loopback only: fast to set up
        yield local


@pytest.fixture
def settings(broker: LocalBroker, tmp_path: Path) -> Settings:
    """Settings for one test: its own store, spool and MQTT session, fast stats."""
    return load_settings(
        broker=broker.url,
        mqtt_protocol=broker.protocol,
        store=f"sqlite:///{tmp_path}/tower.db",
        data_dir=tmp_path / "var",
        ingest_client_id=f"test-ingest-{os.getpid()}-{next(_ids)}",
        stats_interval_s=1.0,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings.store, settings)
    yield opened
    opened.close()


class Publisher:
    """A QoS 1 publisher that waits until the broker has every message."""

    def __init__(self, settings: Settings) -> None:
        self.client, address, properties = make_client(settings, f"test-pub-{os.getpid()}-{next(_ids)}")
        connect(self.client, address, properties, persistent=False)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str | dict | list, qos: int = 1) -> None:
        if isinstance(payload, dict | list):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(settings: Settings) -> Iterator[Publisher]:
    pub = Publisher(settings)
    yield pub
    pub.close()


@pytest.fixture
def start_collector(settings: Settings) -> Iterator[Callable[..., Collector]]:
    """Start in-process collectors (own store connection each); all are stopped at teardown."""
    started: list[tuple[Collector, Store]] = []

    def start(**overrides: object) -> Collector:
        collector_settings = settings.model_copy(update=overrides)
        collector_store = open_store(collector_settings.store, collector_settings)
        collector = Collector(collector_settings, collector_store)
        collector.start()
        wait_until(collector.subscribed.is_set, what="collector subscription")
        started.append((collector, collector_store))
        return collector

    yield start
    for collector, collector_store in started:
        if collector.writer.is_alive():
            collector.stop()
        collector_store.close()


def collector_process(settings: Settings, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`tower ingest` as a real child process, for kill and signal tests."""
    return tower_process(["ingest"], settings, log_path, env)


def tower_process(
    command: list[str], settings: Settings, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A `tower` service as a real child process, once it has subscribed to the broker."""
    start = log_path.stat().st_size if log_path.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "tower.cli", *command],
        env=service_env(settings, env),
        cwd=REPO,
        stdout=open(log_path, "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: b"subscribed to" in log_path.read_bytes()[start:], what=f"tower {command[0]} subscription")
    return process


def service_env(settings: Settings, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test's `tower` service: its broker, store, data directory and session."""
    return {
        **os.environ,
        "TOWER_BROKER": settings.broker,
        "TOWER_MQTT_PROTOCOL": settings.mqtt_protocol,
        "TOWER_STORE": settings.store,
        "TOWER_DATA_DIR": str(settings.data_dir),
        "TOWER_INGEST_CLIENT_ID": settings.ingest_client_id,
        "TOWER_STATS_INTERVAL_S": "1",
        **(env or {}),
    }


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    process.send_signal(sig)
    return process.wait(30)


def stored_seqs(store: Store, device_id: str) -> list[int]:
    frame = store.readings(device_id)
    return [] if frame.empty else sorted(int(s) for s in frame["seq"].dropna())


# -- tower api ---------------------------------------------------------------------------------------


@dataclass
class Api:
    url: str
    log: Path
    process: subprocess.Popen

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def launch_api(folder: Path, env: dict[str, str]) -> Api:
    """`tower api` on a free port with its data in `folder` (and env: more TOWER_* settings), once healthy."""
    port = free_port()
    log = folder / f"api-{port}.log"
    environment = {**os.environ, "TOWER_DATA_DIR": str(folder), "TOWER_STORE": f"sqlite:///{folder}/tower.db", **env}
    with open(log, "ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "tower.cli", "api", "--port", str(port)], env=environment,
                                   cwd=REPO, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    api = Api(f"http://127.0.0.1:{port}", log, process)
    wait_until(lambda: process.poll() is not None or _healthy(api.url), what="tower api /health")
    return api


def stop_api(api: Api) -> int:
    """SIGTERM it if it still runs; its exit status."""
    if api.process.poll() is None:
        api.process.send_signal(signal.SIGTERM)
        api.process.wait(30)
    return api.process.returncode


@pytest.fixture
def start_api() -> Iterator:
    """Start `tower api` processes; all are stopped at teardown, and each must stop cleanly."""
    started: list[Api] = []

    def start(folder: Path, **env: str) -> Api:
        api = launch_api(folder, env)
        started.append(api)
        assert api.process.poll() is None, api.log.read_text()
        return api

    yield start
    for api in started:
        assert stop_api(api) == 0, api.log.read_text()[-2000:]
