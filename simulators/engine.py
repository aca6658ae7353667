"""A simulation run: every device of a scenario, its faults, and its messages in publish order.

`Simulation.messages()` yields what the devices would publish, ordered by the simulated moment of
publishing (usually the reading's own ts; later for a back-filled offline buffer or a message held
back out of order). Nothing here touches the network or the clock: run.py paces and publishes, and
`tower evaluate` can consume the same stream in fast-forward.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

from simulators.devices import Machine, Tracker, WarehouseProbe, ambient_model, device_rng
from simulators.faults import MessageFaults, draw_faults, ground_truth, message_faults
from simulators.tms import plan_messages
from simulators.trips import Trip, plan_trip
from tower.contract import DeviceKind, status_topic, telemetry_topic
from tower.scenario import EQUIPMENT_FAULTS, FaultType, Scenario


@dataclass(frozen=True, slots=True)
class Message:
    publish_ms: int
    topic: str
    payload: bytes
    retain: bool = False


class Simulation:
    def __init__(self, scenario: Scenario, seed: int, start_ms: int, duration_ms: int | None = None) -> None:
        self.scenario, self.seed, self.start_ms = scenario, seed, start_ms
        self.end_ms = start_ms + (duration_ms if duration_ms is not None else scenario.duration)
        self.faults = draw_faults(scenario, seed)
        ambient = ambient_model(*scenario.ambient_c)
        by_target: dict[str, list] = {}
        for fault in self.faults:
            by_target.setdefault(fault.target, []).append(fault)
        self.trips: dict[str, Trip] = {}
        self.trackers: list[tuple[Tracker, MessageFaults]] = []
        self.shipments = scenario.plans(start_ms)
        for shipment in self.shipments:
            faults = by_target.get(shipment.id, [])
            trip = plan_trip(
                shipment, scenario.lane_route(shipment.lane), scenario.cargo_types[shipment.cargo], faults, ambient,
                device_rng(seed, shipment.id),
            )  # fmt: skip
            self.trips[shipment.id] = trip
            tracker = Tracker(shipment.tracker, trip, scenario.reporting.shipment, device_rng(seed, shipment.tracker))
            self.trackers.append((tracker, message_faults(trip, faults)))
        self.probes = [
            WarehouseProbe(sensor, scenario.reporting.warehouse, device_rng(seed, sensor.id), ambient)
            for sensor in scenario.warehouse_sensors
        ]
        self.machines = {
            machine_id: Machine(
                machine_id,
                group,
                scenario.reporting.equipment,
                device_rng(seed, machine_id),
                start_ms,
                [f for f in by_target.get(machine_id, []) if f.type in EQUIPMENT_FAULTS],
            )  # fmt: skip
            for machine_id, group in scenario.machines()
        }

    def truth(self) -> list[dict]:
        return ground_truth(self.scenario, self.faults, self.trips, self.machines)

    def messages(self) -> Iterator[Message]:
        plans = (Message(at, topic, payload, retain=True)
                 for at, topic, payload in plan_messages(self.trips, self.start_ms) if at < self.end_ms)  # fmt: skip
        streams = [plans] + [self._tracker_messages(tracker, faults) for tracker, faults in self.trackers]
        streams += [self._fixed_messages(device) for device in (*self.probes, *self.machines.values())]
        yield from heapq.merge(*streams, key=lambda message: message.publish_ms)

    # -- one device's stream ----------------------------------------------------------------------

    def _times(self, device_id: str, first_ms: int, last_ms: int, interval_ms: int) -> range:
        phase = device_rng(self.seed, f"{device_id}:phase").randrange(interval_ms)
        first = max(first_ms, self.start_ms)
        first += (phase - (first - self.start_ms)) % interval_ms
        return range(first, min(last_ms, self.end_ms), interval_ms)

    def _fixed_messages(self, device: WarehouseProbe | Machine) -> Iterator[Message]:
        times = self._times(device.device_id, self.start_ms, self.end_ms, device.interval_ms)
        if not times:
            return
        yield Message(times[0], status_topic(device.kind, device.device_id), b"online", retain=True)
        topic = telemetry_topic(device.kind, device.device_id)
        for seq, t in enumerate(times):
            yield Message(t, topic, _payload({"ts": t, "seq": seq, **device.reading(t)}))

    def _tracker_messages(self, tracker: Tracker, faults: MessageFaults) -> Iterator[Message]:
        times = self._times(tracker.device_id, tracker.active_from_ms, tracker.active_until_ms + 1, tracker.interval_ms)
        if not times:
            return
        kind, device = DeviceKind.SHIPMENT, tracker.device_id
        topic = telemetry_topic(kind, device)
        rng = device_rng(self.seed, f"{device}:messages")
        held: list[tuple[int, int, Message]] = []  # messages published later than their ts
        order = itertools.count()
        buffered: list[dict] = []
        yield Message(times[0], status_topic(kind, device), b"online", retain=True)
        for seq, t in enumerate(times):
            reading = {"ts": t, "seq": seq, **tracker.reading(t, faults.active(FaultType.DOOR_OPEN_IN_TRANSIT, t))}
            offline_until = faults.offline_until(t)
            if offline_until is not None:  # no coverage: keep it for the upload when it is back
                buffered.append(reading)
                continue
            if buffered:
                yield Message(t, topic, json.dumps(buffered, separators=(",", ":")).encode())
                buffered = []
            if faults.active(FaultType.GPS_OUTLIERS, t) and seq % 4 == 0:
                reading["lat"] = round(reading["lat"] + rng.choice((-1, 1)) * rng.uniform(0.05, 0.4), 6)
                reading["lon"] = round(reading["lon"] + rng.choice((-1, 1)) * rng.uniform(0.05, 0.4), 6)
            payload = _payload(reading)
            if faults.active(FaultType.MALFORMED, t) and seq % 3 == 0:
                payload = rng.choice((payload[: len(payload) // 2], payload.replace(b'"lat":', b'"lat":9', 1)))
            publish = t
            if faults.active(FaultType.OUT_OF_ORDER, t) and seq % 3 == 0:
                publish = t + rng.randint(1, 3) * tracker.interval_ms + 1
            copies = 2 if faults.active(FaultType.DUPLICATES, t) else 1
            for _ in range(copies):
                heapq.heappush(held, (publish, next(order), Message(publish, topic, payload)))
            while held and held[0][0] <= t:
                yield heapq.heappop(held)[2]
        if buffered:  # coverage came back only after the trip's last reading
            yield Message(times[-1] + 1, topic, json.dumps(buffered, separators=(",", ":")).encode())
        while held:
            yield heapq.heappop(held)[2]
        yield Message(times[-1] + 2, status_topic(kind, device), b"offline", retain=True)


def _payload(reading: dict) -> bytes:
    return json.dumps(reading, separators=(",", ":")).encode()
