"""Which faults a run injects (the scenario's, plus random ones drawn with the seed), what they do
to a device's messages (the data-quality faults), and the ground truth written for scoring."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from simulators.devices import Machine
from simulators.trips import Trip
from tower.scenario import EQUIPMENT_FAULTS, Fault, FaultType, Scenario
from tower.timeutil import rfc3339

MINUTE = 60_000
# (shortest, longest) duration of a randomly drawn fault, and the latest start after departure
_RANDOM_SHIPMENT_SHAPE = {
    FaultType.TRAFFIC_JAM: (60, 120), FaultType.BREAKDOWN: (120, 240), FaultType.ROUTE_DEVIATION: (30, 60),
    FaultType.REEFER_FAILURE: (150, 210), FaultType.DOOR_OPEN_IN_TRANSIT: (10, 20),
    FaultType.TRACKER_OFFLINE: (20, 40), FaultType.GPS_OUTLIERS: (20, 40), FaultType.DUPLICATES: (30, 60),
    FaultType.OUT_OF_ORDER: (30, 60), FaultType.MALFORMED: (20, 40),
}  # fmt: skip


def draw_faults(scenario: Scenario, seed: int) -> list[Fault]:
    """The scenario's own faults, then random ones: per target, per type, with the configured chance."""
    rng = random.Random(f"{seed}:faults")
    faults = list(scenario.faults)
    for shipment in scenario.all_shipments():
        for kind, chance in sorted(scenario.random_faults.shipment.items()):
            if rng.random() < chance:
                shortest, longest = _RANDOM_SHIPMENT_SHAPE[kind]
                drive = scenario.planned_drive_ms(scenario.lane_route(shipment.lane))
                after = rng.randint(5, max(6, drive // MINUTE // 2))
                duration = rng.randint(shortest, longest)
                faults.append(Fault(type=kind, target=shipment.id, after=f"{after}m", duration=f"{duration}m"))
    for machine_id, _ in scenario.machines():
        for kind, chance in sorted(scenario.random_faults.equipment.items()):
            if rng.random() < chance:
                at = rng.randint(0, scenario.duration // MINUTE // 3)
                duration = {FaultType.BEARING_WEAR: rng.randint(18, 30) * 60, FaultType.MOTOR_OVERHEATING: 180}
                faults.append(Fault(type=kind, target=machine_id, at=f"{at}m", duration=f"{duration.get(kind, 0)}m"))
    return faults


@dataclass(frozen=True)
class MessageFaults:
    """The data-quality faults of one tracker, as event-time windows."""

    windows: dict[FaultType, tuple[int, int]]

    def active(self, kind: FaultType, t_ms: int) -> bool:
        window = self.windows.get(kind)
        return window is not None and window[0] <= t_ms < window[1]

    def offline_until(self, t_ms: int) -> int | None:
        window = self.windows.get(FaultType.TRACKER_OFFLINE)
        return window[1] if window and window[0] <= t_ms < window[1] else None


def message_faults(trip: Trip, faults: list[Fault]) -> MessageFaults:
    return MessageFaults(
        {f.type: (trip.departure_ms + f.after, trip.departure_ms + f.after + f.duration) for f in faults}
    )


def ground_truth(
    scenario: Scenario, faults: list[Fault], trips: dict[str, Trip], machines: dict[str, Machine]
) -> list[dict]:
    """One record per injected fault, in event time: what, where, when, and when it became real."""
    records = []
    for fault in faults:
        if fault.type in EQUIPMENT_FAULTS:
            machine = machines[fault.target]
            start = machine.start_ms + fault.at
            failure = machine.failure_ms()
            records.append(
                {"fault": fault.type.value, "device_id": fault.target, "equipment_id": fault.target,
                 "site_id": machine.group.site, "start": rfc3339(start), "end": rfc3339(start + fault.duration),
                 "consequence": "equipment failure", "consequence_at": rfc3339(failure) if failure else None}
            )  # fmt: skip
            continue
        trip = trips[fault.target]
        start = trip.departure_ms + fault.after
        consequence, at = _shipment_consequence(scenario, fault, trip, start)
        records.append(
            {"fault": fault.type.value, "device_id": trip.shipment.tracker, "shipment_id": trip.shipment.id,
             "start": rfc3339(start), "end": rfc3339(start + fault.duration), "consequence": consequence,
             "consequence_at": rfc3339(at) if at is not None else None,
             "promised": rfc3339(trip.shipment.promised),
             "arrival": rfc3339(trip.arrival_ms) if trip.arrival_ms else None}
        )  # fmt: skip
    return sorted(records, key=lambda r: (r["start"], r["device_id"], r["fault"]))


def _shipment_consequence(scenario: Scenario, fault: Fault, trip: Trip, start: int) -> tuple[str, int | None]:
    promised = trip.shipment.promised
    if fault.type in (FaultType.TRAFFIC_JAM, FaultType.BREAKDOWN):
        late = trip.arrival_ms is None or trip.arrival_ms > promised
        return ("late delivery", promised) if late else ("none: delivered on time", None)
    if fault.type == FaultType.REEFER_FAILURE:
        cargo = scenario.cargo_types[trip.shipment.cargo]
        for t, temp in zip(trip.times_ms, trip.cargo_temp_c, strict=True):
            if t >= start and (temp > (cargo.max_c or 99) or temp < (cargo.min_c or -99)):
                return "temperature out of range", t
        return "none: stayed in range", None
    immediate = {FaultType.ROUTE_DEVIATION: "off route", FaultType.DOOR_OPEN_IN_TRANSIT: "door open in transit",
                 FaultType.TRACKER_OFFLINE: "silence"}  # fmt: skip
    if fault.type in immediate:
        return immediate[fault.type], start
    return "data quality (ingest's concern)", None


def write_truth(records: list[dict], path: str) -> None:
    with open(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
