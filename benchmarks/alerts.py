"""Alert engine benchmark: latency from a reading's publish to its notification arriving at a
webhook, at 5,000 readings/s with the default rule set, and the engine's peak memory with 10,000
devices.

10,000 devices (3,000 trackers, 1,500 warehouse sensors, 5,500 machines) each report every 2 s
(5,000 readings/s) to mosquitto, QoS 1. `tower alerts run` runs as its own process with the default
rules and an on-call file routing critical alerts to a local webhook receiver. Ten times a second
one machine reports `state: fault` (the default `machine-fault` rule: critical, no hold), stamped
with its publish time; latency = webhook arrival - that time. Baseline in the same run: a bare
paho subscriber that POSTs each fault straight to the same receiver (broker + HTTP, no rules, no
alert book, no apprise).

Run: make bench   (or: python -m benchmarks.alerts --seconds 30)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tests.receivers import WebhookReceiver
from tower.broker import LocalBroker
from tower.config import load_settings
from tower.mqtt import QosPublisher, connect, make_client

RATE = 5_000
TRACKERS, SENSORS, MACHINES = 3_000, 1_500, 5_500
FAULTS_PER_S = 10
REPO = Path(__file__).resolve().parent.parent


def device_messages(second: int) -> list[tuple[str, dict]]:
    """Half the fleet reports in each second (every device every 2 s)."""
    messages = []
    for n in range(second % 2, TRACKERS, 2):
        fields = {"lat": 51.9 + n * 1e-5, "lon": 4.4, "speed_kmh": 70.0, "temp_c": 4.2, "door_open": False}
        messages.append((f"tower/v1/shipment/bt-{n:05d}/telemetry", fields))
    for n in range(second % 2, SENSORS, 2):
        messages.append((f"tower/v1/warehouse/bw-{n:05d}/telemetry", {"temp_c": 4.1, "dock_door_open": False}))
    for n in range(second % 2, MACHINES, 2):
        messages.append((f"tower/v1/equipment/bm-{n:05d}/telemetry",
                         {"vibration_rms_mm_s": 1.8, "bearing_temp_c": 45.0, "motor_current_a": 8.0, "rpm": 1450.0,
                          "state": "running"}))  # fmt: skip
    return messages


def drive(settings, seconds: int) -> dict[str, float]:
    """Publish at RATE for `seconds`; every 1/FAULTS_PER_S s one machine faults. {device: publish time}."""
    client, address, properties = make_client(settings, f"bench-alerts-pub-{os.getpid()}")
    connect(client, address, properties, persistent=False)
    client.loop_start()
    publisher = QosPublisher(client)
    faults: dict[str, float] = {}
    began = time.monotonic()
    for second in range(seconds):
        batch = device_messages(second)
        step = len(batch) // FAULTS_PER_S
        for index, (topic, fields) in enumerate(batch):
            due = began + second + index / len(batch)
            wait = due - time.monotonic()
            if wait > 0.002:
                time.sleep(wait)
            publisher.publish(topic, json.dumps({**fields, "ts": int(time.time() * 1000)}).encode())
            if index % step == 0 and second >= 2:  # a machine that has not faulted yet, once
                device = f"bm-{len(faults) * 7 % MACHINES:05d}"
                faults[device] = time.time()
                fault = {"state": "fault", "rpm": 0.0, "motor_current_a": 0.0, "ts": int(faults[device] * 1000)}
                publisher.publish(f"tower/v1/equipment/{device}/telemetry", json.dumps(fault).encode())
    publisher.flush()
    client.disconnect()
    client.loop_stop()
    return faults


def latencies(faults: dict[str, float], webhook: WebhookReceiver, key) -> list[float]:
    arrived = {}
    for at, _, body in webhook.received:
        arrived.setdefault(key(body), at)
    return sorted(arrived[device] - sent for device, sent in faults.items() if device in arrived)


def run_engine(
    broker: LocalBroker, workdir: Path, webhook: WebhookReceiver, seconds: int
) -> tuple[list[float], int, int]:
    oncall = workdir / "oncall.yaml"
    oncall.write_text(f"""
contacts: {{bench: {{name: Bench, urls: ["{webhook.url("/engine")}"]}}}}
policies: {{page: {{levels: [{{notify: [bench]}}]}}}}
routes: [{{match: {{severity_at_least: critical}}, policy: page}}]
""")
    env = {**os.environ, "TOWER_BROKER": broker.url, "TOWER_MQTT_PROTOCOL": broker.protocol,
           "TOWER_DATA_DIR": str(workdir / "var"), "TOWER_ONCALL": str(oncall)}  # fmt: skip
    log = workdir / "engine.log"
    engine = subprocess.Popen([sys.executable, "-m", "tower.cli", "alerts", "run"], env=env, cwd=REPO,
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # fmt: skip  # noqa: SIM115
    deadline = time.monotonic() + 30
    while b"subscribed to" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.1)
    faults = drive(load_settings(broker=broker.url, mqtt_protocol=broker.protocol), seconds)
    time.sleep(3)  # the last notifications
    peak_kb = int(next(line.split()[1] for line in Path(f"/proc/{engine.pid}/status").read_text().splitlines()
                       if line.startswith("VmHWM")))  # fmt: skip
    engine.send_signal(signal.SIGTERM)
    engine.wait(60)
    delays = latencies(faults, webhook, lambda body: body["title"].rsplit(": ", 1)[-1])
    return delays, len(faults), peak_kb // 1024


def run_bare(broker: LocalBroker, webhook: WebhookReceiver, seconds: int) -> tuple[list[float], int]:
    """A subscriber that forwards each fault reading to the webhook: the floor for broker + HTTP."""
    settings = load_settings(broker=broker.url, mqtt_protocol=broker.protocol)
    client, address, properties = make_client(settings, f"bench-alerts-bare-{os.getpid()}")
    url = f"http://127.0.0.1:{webhook.server.server_address[1]}/bare"

    def forward(c, userdata, message) -> None:
        if b'"fault"' in message.payload:
            body = json.dumps({"device": message.topic.split("/")[3]}).encode()
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            threading.Thread(target=urllib.request.urlopen, args=(request,), daemon=True).start()

    client.on_message = forward
    client.on_connect = lambda c, *args: c.subscribe("tower/v1/#", qos=1)
    connect(client, address, properties, persistent=False)
    client.loop_start()
    time.sleep(1)
    faults = drive(settings, seconds)
    time.sleep(2)
    client.disconnect()
    client.loop_stop()
    return latencies(faults, webhook, lambda body: body.get("device")), len(faults)


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        with WebhookReceiver() as webhook:
            bare, bare_faults = run_bare(broker, webhook, args.seconds)
        with WebhookReceiver() as webhook:
            engine, engine_faults, peak_mb = run_engine(broker, Path(tmp), webhook, args.seconds)
    print(f"alert engine, {TRACKERS + SENSORS + MACHINES:,} devices at {RATE:,} readings/s for {args.seconds} s, "
          f"{FAULTS_PER_S} faults/s, default rules ({broker.name})")  # fmt: skip
    for name, delays, sent in (
        ("bare forwarder (baseline)", bare, bare_faults),
        ("tower alerts run", engine, engine_faults),
    ):
        print(f"  {name:<26} notified {len(delays)}/{sent}: p50 {_quantile(delays, 0.5) * 1000:6.0f} ms, "
              f"p99 {_quantile(delays, 0.99) * 1000:6.0f} ms, max {max(delays, default=0) * 1000:6.0f} ms")  # fmt: skip
    ratio = _quantile(engine, 0.99) / _quantile(bare, 0.99)
    print(f"  p99 engine / bare: {ratio:.1f}x (target: engine p99 <= 1000 ms)")
    print(f"  engine peak RSS: {peak_mb} MB (target <= 300 MB)")


if __name__ == "__main__":
    main()
