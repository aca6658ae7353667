"""Ingest benchmark: one collector against a bare paho subscriber, on the same stream, in the same run.

1. Throughput. One stream of N QoS 1 readings is queued by mosquitto for two offline persistent
   sessions: a bare paho subscriber (counts messages, nothing else) and `tower ingest`. Each then
   drains its queue; the rate is readings per second from first to last (bare: received; collector:
   durably stored in SQLite and acknowledged). Rounds alternate and medians are compared, because
   this machine's speed drifts between runs by more than the difference being measured.
2. Latency. With the collector running, readings are published at a fixed 5,000/s; the time from
   publish to queryable (seen by another SQLite connection) gives p50 and p99.
3. Memory. The collector's peak RSS (VmHWM) over the whole run.

Run: make bench   (or: python -m benchmarks.ingest --readings 100000 --rounds 3)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.servers import VictoriaMetrics
from tower.broker import LocalBroker
from tower.config import load_settings
from tower.mqtt import QosPublisher, connect, make_client

DEVICES = 100
LATENCY_RATE = 5_000
LATENCY_SECONDS = 10


def payload(seq: int, ts_ms: int) -> bytes:
    return json.dumps(
        {
            "ts": ts_ms,
            "seq": seq,
            "lat": 51.9 + seq * 1e-6,
            "lon": 4.4,
            "speed_kmh": 81.5,
            "heading_deg": 88.0,
            "temp_c": 3.9,
            "door_open": False,
            "battery_pct": 77.0,
        }
    ).encode()


ROWS_PER_READING = len(json.loads(payload(0, 0))) - 1  # every field and seq is a row in VictoriaMetrics


def topic(seq: int, prefix: str = "bench") -> str:
    return f"tower/v1/shipment/{prefix}-{seq % DEVICES:03d}/telemetry"


class Bench:
    def __init__(self, workdir: Path, broker: LocalBroker) -> None:
        self.workdir = workdir
        self.settings = load_settings(broker=broker.url, mqtt_protocol=broker.protocol)
        self.store_path = workdir / "bench.db"
        self.env = {
            **os.environ,
            "TOWER_BROKER": broker.url,
            "TOWER_MQTT_PROTOCOL": broker.protocol,
            "TOWER_STORE": f"sqlite:///{self.store_path}",
            "TOWER_DATA_DIR": str(workdir / "var"),
            "TOWER_INGEST_CLIENT_ID": "bench-collector",
        }
        self.collector: subprocess.Popen | None = None
        self._starts = 0

    # -- helpers ------------------------------------------------------------------------------

    def client(self, client_id: str, persistent: bool) -> tuple[mqtt.Client, object, object]:
        return make_client(self.settings, client_id, persistent=persistent)

    def publish(self, messages: list[tuple[str, bytes]], rate: float | None = None) -> list[float]:
        """Publish QoS 1, optionally paced; returns each message's publish time."""
        client, address, properties = self.client("bench-publisher", persistent=False)
        connect(client, address, properties, persistent=False)
        client.loop_start()
        sent_at: list[float] = []
        start = time.perf_counter()
        publisher = QosPublisher(client)
        for index, (name, body) in enumerate(messages):
            if rate:
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            sent_at.append(time.time())
            publisher.publish(name, body)
        publisher.flush()
        client.disconnect()
        client.loop_stop()
        return sent_at

    def start_collector(self, **env: str) -> None:
        log = open(self.workdir / "collector.log", "ab")  # noqa: SIM115 - the child owns it
        self.collector = subprocess.Popen(
            [sys.executable, "-m", "tower.cli", "ingest"],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while (self.workdir / "collector.log").read_bytes().count(b"subscribed to") < self._starts + 1:
            if time.monotonic() > deadline:
                raise RuntimeError("collector did not subscribe; see collector.log")
            time.sleep(0.05)
        self._starts += 1

    def stop_collector(self) -> int:
        peak_kb = 0
        for line in Path(f"/proc/{self.collector.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
        self.collector.send_signal(signal.SIGTERM)
        self.collector.wait(60)
        return peak_kb

    def stored(self, db: sqlite3.Connection) -> int:
        return db.execute("SELECT count(*) FROM readings").fetchone()[0]

    # -- measurements -------------------------------------------------------------------------

    def throughput(self, n: int, rounds: int) -> tuple[list[float], list[float]]:
        """Alternating rounds: the same N readings queued for both sessions, drained one after the other."""
        bare, address, properties = self.client("bench-bare", persistent=True)
        connect(bare, address, properties, persistent=True)
        bare.loop_start()
        subscribed = threading.Event()
        bare.on_subscribe = lambda *args: subscribed.set()
        bare.subscribe("tower/v1/#", qos=1)
        subscribed.wait(10)
        bare.disconnect()
        bare.loop_stop()
        self.start_collector()  # creates its persistent session, then goes away
        self.stop_collector()

        bare_rates, collector_rates = [], []
        db = sqlite3.connect(self.store_path)
        for round_number in range(rounds):
            base = int(time.time() * 1000) - 10 * n * (round_number + 1)  # fresh identities every round
            self.publish([(topic(seq), payload(seq, base + seq * 10)) for seq in range(n)])
            bare_rates.append(self.drain_bare(n))
            before = self.stored(db)
            self.start_collector()
            while (count_first := self.stored(db)) == before:
                time.sleep(0.01)
            first = time.perf_counter()
            while (stored := self.stored(db)) < before + n:
                time.sleep(0.02)
            collector_rates.append((stored - count_first) / (time.perf_counter() - first))
            if round_number < rounds - 1:
                self.stop_collector()
        db.close()
        return bare_rates, collector_rates

    def drain_bare(self, n: int) -> float:
        received = 0
        first = last = 0.0
        done = threading.Event()

        def count(client, userdata, message):
            nonlocal received, first, last
            received += 1
            if received == 1:
                first = time.perf_counter()
            if received == n:
                last = time.perf_counter()
                done.set()

        bare, address, properties = self.client("bench-bare", persistent=True)
        bare.on_message = count
        connect(bare, address, properties, persistent=True)
        bare.loop_start()
        if not done.wait(600):
            raise RuntimeError(f"bare subscriber got {received} of {n}")
        bare.disconnect()
        bare.loop_stop()
        return (n - 1) / (last - first)

    def influx_rate(self, n: int, victoria: VictoriaMetrics) -> float:
        """The same stream through a collector whose store is InfluxDB's v2 write API (VictoriaMetrics)."""
        env = {
            "TOWER_STORE": f"influxdb://127.0.0.1:{victoria.port}?org=bench&bucket=tower",
            "TOWER_INGEST_CLIENT_ID": "bench-collector-influx",
        }
        self.start_collector(**env)  # its session
        self.stop_collector()
        base = int(time.time() * 1000) - 50 * n
        self.publish([(topic(seq, "influx"), payload(seq, base + seq * 10)) for seq in range(n)])
        self.start_collector(**env)
        target = n * ROWS_PER_READING
        while (rows := victoria.rows_inserted()) == 0:
            time.sleep(0.01)
        first = time.perf_counter()
        while (stored := victoria.rows_inserted()) < target:
            time.sleep(0.02)
        rate = (stored - rows) / ROWS_PER_READING / (time.perf_counter() - first)
        self.stop_collector()
        return rate

    def latency(self) -> tuple[float, float, float]:
        """Publish → queryable at a fixed rate, with the collector started by throughput()."""
        total = LATENCY_RATE * LATENCY_SECONDS
        devices = [f"lat-{d:03d}" for d in range(50)]
        seen: dict[int, float] = {}
        stop = threading.Event()

        def poll() -> None:
            db = sqlite3.connect(self.store_path)
            marks = ",".join("?" * len(devices))
            last_ts = 0
            while not stop.is_set() or len(seen) < total:
                # Commits follow arrival order, so everything below the newest ts seen is already visible.
                rows = db.execute(
                    f"SELECT ts, seq FROM readings WHERE device_id IN ({marks}) AND ts >= ?", (*devices, last_ts)
                ).fetchall()
                now = time.time()
                for ts, seq in rows:
                    seen.setdefault(seq, now)
                    last_ts = max(last_ts, ts)
                if stop.is_set() and time.time() > stop_time + 30:
                    break
                time.sleep(0.005)

        stop_time = 0.0
        poller = threading.Thread(target=poll)
        poller.start()
        start_ms = int(time.time() * 1000)
        # ts spaced 10 ms per device (50 devices x 100/s): distinct identities at millisecond resolution
        messages = [
            (f"tower/v1/shipment/{devices[seq % 50]}/telemetry", payload(seq, start_ms + (seq // 50) * 10))
            for seq in range(total)
        ]
        sent_at = self.publish(messages, rate=LATENCY_RATE)
        achieved = total / (sent_at[-1] - sent_at[0])
        stop_time = time.time()
        stop.set()
        poller.join()
        latencies = sorted((seen[seq] - sent_at[seq]) * 1000 for seq in range(total) if seq in seen)
        if len(latencies) < total:
            raise RuntimeError(f"only {len(latencies)} of {total} latency readings became queryable")
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        return achieved, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000, help="stream length per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/collector rounds (median reported)")
    parser.add_argument("--skip-latency", action="store_true", help="throughput only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tower-bench-") as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        bench = Bench(Path(tmp), broker)
        print(
            f"broker: {broker.name}; stream: {args.readings} shipment readings x {args.rounds} rounds, "
            f"{DEVICES} devices, QoS 1"
        )
        bare_rates, collector_rates = bench.throughput(args.readings, args.rounds)
        achieved, p50, p99 = (0.0, 0.0, 0.0) if args.skip_latency else bench.latency()
        peak_mb = bench.stop_collector() / 1024
        influx_rate = None
        if VictoriaMetrics.binary:
            victoria = VictoriaMetrics(Path(tmp) / "vm").start()
            try:
                influx_rate = bench.influx_rate(args.readings, victoria)
            finally:
                victoria.stop()
    bare_rate, collector_rate = statistics.median(bare_rates), statistics.median(collector_rates)
    ratio = collector_rate / bare_rate
    print(
        "rounds (bare, collector):",
        ", ".join(f"({b:,.0f}, {c:,.0f})" for b, c in zip(bare_rates, collector_rates, strict=True)),
    )
    print()
    w = 52
    print(f"{'measure':{w}} {'value':>12}  target")
    print(f"{'bare paho QoS 1 subscriber (baseline), median':{w}} {bare_rate:>10,.0f}/s")
    print(f"{'collector into SQLite, acked after commit, median':{w}} {collector_rate:>10,.0f}/s  >= 10,000/s")
    print(f"{'collector / bare subscriber':{w}} {ratio:>12.2f}  >= 0.60")
    if influx_rate is not None:
        print(f"{'collector into InfluxDB v2 write API (VictoriaMetrics)':{w}} {influx_rate:>10,.0f}/s  (reported)")
    print(f"{'latency run: publish rate achieved':{w}} {achieved:>10,.0f}/s  5,000/s")
    print(f"{'publish -> queryable p50':{w}} {p50:>10.0f}ms")
    print(f"{'publish -> queryable p99':{w}} {p99:>10.0f}ms  <= 500 ms")
    print(f"{'collector peak RSS':{w}} {peak_mb:>10.0f}MB  <= 200 MB")


if __name__ == "__main__":
    main()
