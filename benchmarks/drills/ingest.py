"""The ingest drills: a QoS 1 stream into `tower ingest` while something breaks, then the count.

Each drill publishes one stream of readings (harness.reading), breaks one thing mid-stream, lets it
recover, waits until the store holds what the broker acknowledged (or the drill's time is up) and
counts. Where the fault must begin mid-stream, the publisher holds at a reading until it has begun,
then publishes the rest into the fault.
"""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import time
from pathlib import Path

from benchmarks.drills.harness import (
    CollectorProcess,
    CountingPublisher,
    DeployedBroker,
    DrillResult,
    Scale,
    settle,
    sqlite_count,
    sqlite_seqs,
    wait_for,
)
from tests.servers import VictoriaMetrics
from tower.broker import LocalBroker
from tower.timeutil import now_ms


def _base_ms(scale: Scale) -> int:
    return now_ms() - scale.readings * 10 - 60_000  # the whole stream in the recent past


def _finish(name: str, publisher: CountingPublisher, scale: Scale, stored, detail: str = "") -> DrillResult:
    """Wait for the last PUBACK, then for the store to hold every acknowledged reading; count."""
    publisher.join()
    acked = publisher.acknowledged()
    settle(lambda: acked <= set(stored()), scale.wait_s)
    return DrillResult.count(name, len(publisher.sent), acked, stored(), detail)


def collector_kills(workdir: Path, scale: Scale, kills: int = 3) -> DrillResult:
    """SIGKILL the collector at 1/4, 2/4 and 3/4 of the stream stored; start it again each time."""
    db = workdir / "tower.db"
    with LocalBroker(workdir / "broker") as broker:
        collector = CollectorProcess(workdir, broker.url, f"sqlite:///{db}").start()
        publisher = CountingPublisher(broker.url, "drill-publisher").start(scale.readings, _base_ms(scale))
        try:
            for kill in range(1, kills + 1):
                wait_for(lambda kill=kill: sqlite_count(db) >= scale.readings * kill // (kills + 1), scale.wait_s,
                         f"{kill}/{kills + 1} of the stream stored")  # fmt: skip
                collector.kill()
                collector.start()
            when = ", ".join(f"{k}/{kills + 1}" for k in range(1, kills + 1))
            return _finish(f"collector SIGKILL x{kills}", publisher, scale, lambda: sqlite_seqs(db),
                           f"killed at {when} of the stream stored")  # fmt: skip
        finally:
            publisher.close()
            collector.stop()


def broker_kill(workdir: Path, scale: Scale) -> DrillResult:
    """SIGKILL mosquitto (deploy/mosquitto.conf's durability settings) halfway, start it again 1 s later."""
    db = workdir / "tower.db"
    broker = DeployedBroker(workdir / "broker").start()
    collector = publisher = None
    try:
        collector = CollectorProcess(workdir, broker.url, f"sqlite:///{db}").start()
        publisher = CountingPublisher(broker.url, "drill-publisher").start(
            scale.readings, _base_ms(scale), hold_at=scale.readings // 2
        )
        wait_for(publisher.holding.is_set, scale.wait_s, "half the stream published")
        broker.kill()
        publisher.resume.set()  # paho keeps what it publishes now and sends it after reconnecting
        time.sleep(1)
        broker.start()
        settings = ", ".join(line for line in broker.durability if line.startswith("autosave"))
        return _finish("broker SIGKILL (deployed config)", publisher, scale, lambda: sqlite_seqs(db), settings)
    finally:
        if publisher:
            publisher.close()
        if collector:
            collector.stop()
        broker.stop()


def sqlite_outage(workdir: Path, scale: Scale) -> DrillResult:
    """An exclusive lock on the SQLite file for the outage, a third into the stream."""
    db = workdir / "tower.db"
    with LocalBroker(workdir / "broker") as broker:
        collector = CollectorProcess(workdir, broker.url, f"sqlite:///{db}").start()
        publisher = CountingPublisher(broker.url, "drill-publisher").start(
            scale.readings, _base_ms(scale), hold_at=scale.readings // 3
        )
        try:
            wait_for(publisher.holding.is_set, scale.wait_s, "a third of the stream published")
            blocker = sqlite3.connect(db, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            publisher.resume.set()
            time.sleep(scale.outage_s)
            spooled = any((workdir / "var" / "spool").rglob("*.json"))
            blocker.execute("COMMIT")
            blocker.close()
            return _finish(f"SQLite locked {scale.outage_s:g} s", publisher, scale, lambda: sqlite_seqs(db),
                           "spooled meanwhile" if spooled else "nothing spooled")  # fmt: skip
        finally:
            publisher.close()
            collector.stop()


def victoria_outage(workdir: Path, scale: Scale) -> DrillResult:
    """VictoriaMetrics (the InfluxDB write API) stopped for the outage, a third into the stream."""
    name = f"VictoriaMetrics down {scale.outage_s:g} s"
    if VictoriaMetrics.binary is None:
        return DrillResult(name, 0, 0, 0, 0, 0, "skipped: victoria-metrics is not installed")
    victoria = VictoriaMetrics(workdir / "vm").start()
    store = f"influxdb://127.0.0.1:{victoria.port}?org=drill&bucket=tower"

    def stored() -> list[int]:
        return [int(value) for series in victoria.export('{__name__="shipment_seq"}') for value in series["values"]]

    try:
        with LocalBroker(workdir / "broker") as broker:
            collector = CollectorProcess(workdir, broker.url, store,
                                         TOWER_INFLUX_MAX_RETRY_TIME_S=str(scale.influx_retry_s)).start()  # fmt: skip
            publisher = CountingPublisher(broker.url, "drill-publisher").start(
                scale.readings, _base_ms(scale), hold_at=scale.readings // 3
            )
            try:
                wait_for(publisher.holding.is_set, scale.wait_s, "a third of the stream published")
                victoria.stop()
                publisher.resume.set()
                time.sleep(scale.outage_s)
                victoria.start()
                detail = f"writes retried {scale.influx_retry_s:g} s, then spooled"
                return _finish(name, publisher, scale, stored, detail)
            finally:
                publisher.close()
                collector.stop()
    finally:
        victoria.stop()


def disk_full(workdir: Path, scale: Scale) -> DrillResult:
    """Store and spool on a small tmpfs that is filled a third into the stream, and emptied after the outage."""
    name = f"disk full {scale.outage_s:g} s"
    disk = workdir / "small-disk"
    disk.mkdir()
    size_mb = 64 if scale.readings <= 10_000 else 160  # room for the file and its WAL before the filler
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        reason = f"skipped: cannot mount a tmpfs ({mounted.stderr.strip()}); run as root"
        return DrillResult(name, 0, 0, 0, 0, 0, reason)
    db = disk / "tower.db"
    try:
        with LocalBroker(workdir / "broker") as broker:
            collector = CollectorProcess(workdir, broker.url, f"sqlite:///{db}", TOWER_DATA_DIR=str(disk / "var"))
            collector.start()
            publisher = CountingPublisher(broker.url, "drill-publisher").start(
                scale.readings, _base_ms(scale), hold_at=scale.readings // 3
            )
            try:
                wait_for(publisher.holding.is_set, scale.wait_s, "a third of the stream published")
                filler = _fill(disk)
                publisher.resume.set()
                wait_for(lambda: b"disk full" in collector.log.read_bytes(), scale.wait_s, "the collector pausing")
                time.sleep(scale.outage_s)
                alive = collector.alive()
                filler.unlink()
                detail = "paused, kept running, resumed" if alive else "the collector exited"
                return _finish(name, publisher, scale, lambda: sqlite_seqs(db), detail)
            finally:
                publisher.close()
                collector.stop()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _fill(disk: Path) -> Path:
    """A file that takes every free byte of the file system."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:  # unbuffered: nothing left to flush on close
        for chunk in (b"\0" * (1 << 20), b"\0" * 4096, b"\0"):
            try:
                while True:
                    handle.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    return filler


DRILLS = {
    "collector-kills": collector_kills,
    "broker-kill": broker_kill,
    "sqlite-outage": sqlite_outage,
    "victoria-outage": victoria_outage,
    "disk-full": disk_full,
}
