"""Simulator benchmark: how many devices at 1 Hz one simulator process sustains.

A scaled copy of the default scenario: 3,000 trackers (loading at the docks), 1,500 warehouse
sensors and 5,500 machines = 10,000 devices, every one reporting each second. The simulator plays
30 simulated seconds at 1x (real time: does it keep up?) and at max speed (what is its ceiling?),
publishing QoS 1 to mosquitto. Baseline in the same run: a bare paho publisher sending the same
number of pre-built payloads, no simulation work.

Run: make bench   (or: python -m benchmarks.simulator --seconds 30)
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from simulators.engine import Simulation
from simulators.run import play
from tower.broker import LocalBroker
from tower.config import load_settings
from tower.mqtt import QosPublisher, connect, make_client
from tower.scenario import EquipmentGroup, Reporting, ShipmentWave, WarehouseSensor, load_scenario
from tower.timeutil import now_ms

TRACKERS, SENSORS, MACHINES = 3_000, 1_500, 5_500


def scaled_scenario():
    base = load_scenario("default")
    waves = [
        ShipmentWave(id_prefix=f"B-{lane.id}", tracker_prefix=f"bt-{lane.id}", lane=lane.id,
                     count=TRACKERS // len(base.lanes) + (i < TRACKERS % len(base.lanes)),
                     first_departure="15m", every="1s", slack="1h", cargo="chilled")
        for i, lane in enumerate(base.lanes)
    ]  # fmt: skip
    sites = [s.id for s in base.sites if s.type == "dc"]
    sensors = [
        WarehouseSensor(id=f"bw-{n:05d}", site=sites[n % 3], zone="chilled room", setpoint_c=4.0)
        for n in range(SENSORS)
    ]
    template = base.equipment[0].healthy
    machines = [
        EquipmentGroup(id_prefix=f"bm-{site}", site=site, type="conveyor", count=MACHINES // 3 + (i < MACHINES % 3),
                       healthy=template)
        for i, site in enumerate(sites)
    ]  # fmt: skip
    return base.model_copy(
        update={"shipments": (), "shipment_waves": tuple(waves), "warehouse_sensors": tuple(sensors),
                "equipment": tuple(machines), "faults": (), "reporting": Reporting(shipment="1s", warehouse="1s",
                                                                                     equipment="1s")}
    )  # fmt: skip


def simulate(broker: LocalBroker, scenario, seconds: int, speed: float | None) -> tuple[int, float, list[float]]:
    """(messages, real seconds of publishing, each message's lag behind its due time in seconds)."""
    settings = load_settings(broker=broker.url, mqtt_protocol=broker.protocol)
    # live: start a little ahead, so planning the trips is done before the first reading is due
    start = now_ms() + 15_000 if speed is not None else now_ms() - seconds * 1000
    simulation = Simulation(scenario, seed=1, start_ms=start // 1000 * 1000, duration_ms=seconds * 1000)
    client, address, properties = make_client(settings, f"bench-sim-{speed}")
    connect(client, address, properties, persistent=False)
    client.loop_start()
    publisher = QosPublisher(client)
    lags: list[float] = []
    first: list[float] = []

    def send(message) -> None:
        if not first:
            first.append(time.monotonic())
        lags.append((now_ms() - message.publish_ms) / 1000)
        publisher.publish(message.topic, message.payload, message.retain)

    stats = play(simulation, send, speed, threading.Event())
    publisher.flush()
    client.disconnect()
    client.loop_stop()
    return stats.messages, time.monotonic() - first[0], lags


def bare_publisher(broker: LocalBroker, count: int) -> float:
    settings = load_settings(broker=broker.url, mqtt_protocol=broker.protocol)
    client, address, properties = make_client(settings, "bench-bare-publisher")
    connect(client, address, properties, persistent=False)
    client.loop_start()
    publisher = QosPublisher(client)
    payload = b'{"ts":1790000000000,"seq":1,"vibration_rms_mm_s":1.8,"bearing_temp_c":45.0,"motor_current_a":8.0}'
    began = time.perf_counter()
    for n in range(count):
        publisher.publish(f"tower/v1/equipment/bare-{n % 10_000:05d}/telemetry", payload)
    publisher.flush()
    rate = count / (time.perf_counter() - began)
    client.disconnect()
    client.loop_stop()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="simulated seconds per run")
    args = parser.parse_args()
    began = time.perf_counter()
    scenario = scaled_scenario()
    devices = len(scenario.all_shipments()) + len(scenario.warehouse_sensors) + len(scenario.all_equipment())
    print(f"scenario: {devices:,} devices at 1 Hz (built in {time.perf_counter() - began:.1f} s); "
          f"{args.seconds} simulated seconds per run")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tower-bench-sim-") as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        live_messages, live_seconds, lags = simulate(broker, scenario, args.seconds, speed=1.0)
        max_messages, max_seconds, _ = simulate(broker, scenario, args.seconds, speed=None)
        bare = bare_publisher(broker, max_messages)
    live_rate, max_rate = live_messages / live_seconds, max_messages / max_seconds
    lags.sort()
    p99_lag, last_lag = lags[int(len(lags) * 0.99)], lags[-1]
    w = 52
    print()
    print(f"{'measure':{w}} {'value':>12}  target")
    print(f"{'devices x 1 Hz, played live (1x)':{w}} {devices:>12,}  10,000")
    print(f"{'  messages/s sustained live':{w}} {live_rate:>10,.0f}/s  ~{devices:,}/s")
    print(f"{'  lag behind due time, p99 / worst':{w}} {p99_lag:>5.2f}s/{last_lag:.2f}s  < 1 s")
    print(f"{'simulator at max speed':{w}} {max_rate:>10,.0f}/s")
    print(f"{'bare paho publisher, pre-built payloads (baseline)':{w}} {bare:>10,.0f}/s")
    print(f"{'simulator max / bare publisher':{w}} {max_rate / bare:>12.2f}")


if __name__ == "__main__":
    main()
