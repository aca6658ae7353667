"""What every drill needs: a result row, a QoS 1 publisher that counts PUBACKs, the deployed broker
configuration on a loopback port, `tower ingest` as a process that can be killed, and the store's count."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from tower.broker import LocalBroker, free_port
from tower.config import load_settings
from tower.mqtt import PUBLISH_WINDOW, connect, make_client

REPO = Path(__file__).resolve().parents[2]
DEVICES = 100


@dataclass(frozen=True)
class Scale:
    """How big a drill is: `make drills` runs FULL, the test suite SHORT."""

    readings: int
    outage_s: float
    influx_retry_s: float  # the collector's TOWER_INFLUX_MAX_RETRY_TIME_S
    scenario_hours: int  # of the default scenario, streamed into the alert engines

    @property
    def wait_s(self) -> float:
        """The longest a drill waits for the store to hold what was acknowledged."""
        return 120 + self.readings / 200 + 2 * self.outage_s


FULL = Scale(readings=50_000, outage_s=60, influx_retry_s=30, scenario_hours=24)
SHORT = Scale(readings=2_000, outage_s=3, influx_retry_s=2, scenario_hours=6)


@dataclass(frozen=True)
class DrillResult:
    drill: str
    published: int
    acknowledged: int  # PUBACKs the publisher received
    stored: int  # distinct readings of the stream in the store
    lost: int  # acknowledged but not stored
    duplicated: int  # stored more than once
    detail: str = ""

    @classmethod
    def count(cls, drill: str, published: int, acked: set[int], stored: list[int], detail: str = "") -> DrillResult:
        distinct = set(stored)
        return cls(drill, published, len(acked), len(distinct), len(acked - distinct), len(stored) - len(distinct),
                   detail)  # fmt: skip


def reading(seq: int, base_ms: int) -> tuple[str, bytes]:
    """Reading `seq` of the drill stream: 100 devices, 10 ms apart in event time."""
    topic = f"tower/v1/shipment/drill-{seq % DEVICES:03d}/telemetry"
    return topic, b'{"ts": %d, "seq": %d, "lat": 51.9, "lon": 4.4, "temp_c": 4.0}' % (base_ms + seq * 10, seq)


class CountingPublisher:
    """QoS 1 with paho's in-flight window, through broker restarts: paho re-sends what was in flight
    when it reconnects. Which readings the broker acknowledged is known per reading."""

    def __init__(self, broker_url: str, client_id: str) -> None:
        settings = load_settings(broker=broker_url, mqtt_protocol="5")
        self.client, address, properties = make_client(settings, client_id)
        self.client.reconnect_delay_set(0.2, 2)
        connect(self.client, address, properties, persistent=False)
        self.client.loop_start()
        self.sent: list[mqtt.MQTTMessageInfo] = []
        self._window: deque[mqtt.MQTTMessageInfo] = deque()
        self.holding = threading.Event()  # set while the stream waits at hold_at for the fault to begin
        self.resume = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, count: int, base_ms: int, hold_at: int | None = None) -> CountingPublisher:
        """Publish the stream in the background; at reading `hold_at`, wait for resume (the fault is on)."""

        def run() -> None:
            try:
                self._publish(count, base_ms, hold_at)
            except BaseException as error:
                self._error = error

        self._thread = threading.Thread(target=run, name="drill-publisher", daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        """Wait until every reading is published and acknowledged (the broker must be up)."""
        self.resume.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _publish(self, count: int, base_ms: int, hold_at: int | None) -> None:
        for seq in range(count):
            if seq == hold_at:
                self.holding.set()
                self.resume.wait()
            topic, payload = reading(seq, base_ms)
            info = self.client.publish(topic, payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                info.rc = mqtt.MQTT_ERR_SUCCESS  # kept by paho and sent once it has reconnected
            self.sent.append(info)
            self._window.append(info)
            if len(self._window) > PUBLISH_WINDOW:
                self._window.popleft().wait_for_publish(300)
        while self._window:
            self._window.popleft().wait_for_publish(300)

    def acknowledged(self) -> set[int]:
        return {seq for seq, info in enumerate(self.sent) if info.is_published()}

    def close(self) -> None:
        self.resume.set()
        if self._thread is not None:
            self._thread.join(30)
        self.client.disconnect()
        self.client.loop_stop()


class DeployedBroker:
    """mosquitto with the durability settings of deploy/mosquitto.conf, on a loopback port and a
    temporary persistence directory; killed and started again on the same port and state."""

    KEYS = ("persistence", "persistence_file", "autosave_interval", "autosave_on_changes", "max_queued_messages",
            "max_queued_bytes", "persistent_client_expiration", "max_inflight_messages")  # fmt: skip

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.binary = LocalBroker(data_dir).mosquitto
        if not self.binary:
            raise RuntimeError("the broker drill needs mosquitto")
        deployed = (REPO / "deploy" / "mosquitto.conf").read_text().splitlines()
        self.durability = [line for line in deployed if line.split(" ", 1)[0] in self.KEYS]
        data_dir.mkdir(parents=True, exist_ok=True)
        self.conf = data_dir / "mosquitto.conf"
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    *self.durability,
                    f"persistence_location {data_dir.resolve()}/",
                    f"user {getpass.getuser()}",
                    f"log_dest file {data_dir.resolve()}/mosquitto.log",
                    "",
                ]
            )  # fmt: skip
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> DeployedBroker:
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port), 15, "mosquitto listening")
        return self

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


class CollectorProcess:
    """`tower ingest` as a child process, started again after every kill with the same session."""

    def __init__(self, workdir: Path, broker_url: str, store: str, **env: str) -> None:
        self.log = workdir / "collector.log"
        self.env = {**os.environ, "TOWER_BROKER": broker_url, "TOWER_MQTT_PROTOCOL": "5", "TOWER_STORE": store,
                    "TOWER_DATA_DIR": str(workdir / "var"), "TOWER_INGEST_CLIENT_ID": "drill-collector",
                    "TOWER_STATS_INTERVAL_S": "1", **env}  # fmt: skip
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> CollectorProcess:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "tower.cli", "ingest"], cwd=REPO, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.starts += 1
        wait_for(lambda: self.log.read_bytes().count(b"subscribed to") >= self.starts, 30, "the collector subscribed")
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> int | None:
        if not self.alive():
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def sqlite_seqs(path: Path) -> list[int]:
    """seq of every stored reading of the drill stream."""
    return [seq for (seq,) in _sqlite(path, "SELECT seq FROM readings WHERE device_id LIKE 'drill-%'")]


def sqlite_count(path: Path) -> int:
    rows = _sqlite(path, "SELECT count(*) FROM readings")
    return rows[0][0] if rows else 0


def _sqlite(path: Path, sql: str) -> list[tuple]:
    """The rows, or none while the collector has not created the file and its tables."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    if not settle(predicate, timeout_s, interval_s):
        raise TimeoutError(f"no {what} within {timeout_s:.0f} s")


def settle(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.5) -> bool:
    """Whether the predicate came true within the time (the caller reports what it found either way)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
