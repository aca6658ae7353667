"""A small sample fleet for the demo until the scenario simulator lands: trucks, warehouse sensors
and machines publishing the native contract at 1 Hz, each with seq and an online/offline will."""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time

from tower.config import load_settings
from tower.contract import DeviceKind, status_topic, telemetry_topic
from tower.mqtt import connect, make_client

TRUCKS = [(f"truck-{n:03d}", 51.9 + n * 0.05, 4.4 + n * 0.07) for n in range(1, 6)]
WAREHOUSE_SENSORS = [f"dc-rotterdam-zone-{n}" for n in range(1, 4)]
MACHINES = [f"conveyor-{n:02d}" for n in range(1, 4)]


def readings(t: float, seq: int, rng: random.Random) -> list[tuple[DeviceKind, str, dict]]:
    out: list[tuple[DeviceKind, str, dict]] = []
    for device, lat0, lon0 in TRUCKS:
        out.append(
            (
                DeviceKind.SHIPMENT,
                device,
                {
                    "lat": round(lat0 + 0.0004 * seq, 6),
                    "lon": round(lon0 + 0.0006 * seq, 6),
                    "speed_kmh": round(max(0.0, 80 + rng.gauss(0, 5)), 1),
                    "heading_deg": 56.0,
                    "temp_c": round(4 + rng.gauss(0, 0.3), 2),
                    "door_open": False,
                    "battery_pct": 90.0,
                },
            )
        )
    for device in WAREHOUSE_SENSORS:
        out.append(
            (
                DeviceKind.WAREHOUSE,
                device,
                {
                    "temp_c": round(18 + 3 * math.sin(t / 3600) + rng.gauss(0, 0.2), 2),
                    "humidity_pct": round(55 + rng.gauss(0, 2), 1),
                    "dock_door_open": rng.random() < 0.1,
                },
            )
        )
    for device in MACHINES:
        out.append(
            (
                DeviceKind.EQUIPMENT,
                device,
                {
                    "vibration_rms_mm_s": round(abs(2.0 + rng.gauss(0, 0.2)), 3),
                    "bearing_temp_c": round(45 + rng.gauss(0, 0.5), 2),
                    "motor_current_a": round(12 + rng.gauss(0, 0.4), 2),
                    "rpm": 1450.0,
                    "state": "running",
                },
            )
        )
    return out


def main() -> None:
    settings = load_settings()
    client, address, properties = make_client(settings, "tower-sample-fleet")
    client.will_set(status_topic(DeviceKind.SHIPMENT, TRUCKS[0][0]), "offline", qos=1, retain=True)
    connect(client, address, properties, persistent=False)
    client.loop_start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    rng = random.Random(7)
    for kind, device, _ in readings(time.time(), 0, rng):
        client.publish(status_topic(kind, device), "online", qos=1, retain=True)
    seq = 0
    while not stop.wait(max(0.0, 1.0 - time.time() % 1.0)):
        now = time.time()
        for kind, device, fields in readings(now, seq, rng):
            client.publish(
                telemetry_topic(kind, device), json.dumps({"ts": round(now, 3), "seq": seq, **fields}), qos=1
            )
        seq += 1
    for kind, device, _ in readings(time.time(), 0, rng):
        client.publish(status_topic(kind, device), "offline", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
