"""The simulator: reproducible, physically plausible, and every injected fault leaves its promised
signature in the data and a record in the ground truth."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

import pytest

from ingest.decode import Decoder
from simulators.engine import Simulation
from tower.scenario import load_scenario

START = 1_789_948_800_000  # 2026-09-21T00:00:00Z
MINUTE = 60_000


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("default")


@pytest.fixture(scope="module")
def run(scenario):
    simulation = Simulation(scenario, seed=1, start_ms=START)
    messages = list(simulation.messages())
    by_device: dict[str, list[dict]] = defaultdict(list)
    raw: dict[str, list] = defaultdict(list)
    for message in messages:
        device = message.topic.split("/")[3]
        raw[device].append(message)
        if message.topic.endswith("/telemetry"):
            try:
                body = json.loads(message.payload)
            except ValueError:
                continue
            by_device[device] += body if isinstance(body, list) else [body]
    truth = {(r["fault"], r.get("shipment_id") or r["device_id"]): r for r in simulation.truth()}
    return simulation, messages, by_device, raw, truth


def _window(simulation, shipment_id: str, fault_type: str) -> tuple[int, int]:
    trip = simulation.trips[shipment_id]
    fault = next(f for f in simulation.faults if f.target == shipment_id and f.type == fault_type)
    return trip.departure_ms + fault.after, trip.departure_ms + fault.after + fault.duration


def _in(readings: list[dict], window: tuple[int, int]) -> list[dict]:
    return [r for r in readings if window[0] <= r["ts"] < window[1]]


def test_a_seeded_run_is_reproducible_to_the_byte(scenario, run):
    _, messages, _, _, _ = run
    again = Simulation(scenario, seed=1, start_ms=START)
    assert [(m.publish_ms, m.topic, m.payload) for m in again.messages()] == [
        (m.publish_ms, m.topic, m.payload) for m in messages
    ]
    assert again.truth() == run[0].truth()
    other = Simulation(scenario, seed=2, start_ms=START)
    assert next(iter(other.messages())).payload != messages[0].payload or any(
        a.payload != b.payload for a, b in zip(other.messages(), messages, strict=False)
    )


def test_messages_come_in_publish_order_within_the_run(run):
    simulation, messages, _, _, _ = run
    assert all(a.publish_ms <= b.publish_ms for a, b in zip(messages, messages[1:], strict=False))
    assert messages[0].publish_ms >= START


def test_fault_free_trucks_stay_on_route_and_arrive_near_the_planned_time(scenario, run):
    simulation, _, by_device, _, _ = run
    faulted = {f.target for f in simulation.faults}
    checked = 0
    for shipment in scenario.all_shipments():
        trip = simulation.trips[shipment.id]
        if shipment.id in faulted or trip.departure_ms - START > 20 * 3_600_000:
            continue
        route = scenario.lane_route(shipment.lane)
        for reading in by_device[shipment.tracker]:
            off_route, _ = route.distance_from((reading["lat"], reading["lon"]))
            assert off_route < 60, f"{shipment.id} {off_route:.0f} m off its route"
        planned = scenario.planned_drive_ms(scenario.lane_route(shipment.lane))
        driven = trip.arrival_ms - trip.departure_ms
        assert 0.6 * planned < driven <= planned + 10 * MINUTE, shipment.id
        assert trip.arrival_ms <= START + shipment.promised, f"{shipment.id} late without a fault"
        last = by_device[shipment.tracker][-1]
        destination = scenario.site(scenario.lane(shipment.lane).destination)
        assert destination.contains((last["lat"], last["lon"])), f"{shipment.id} ends outside {destination.id}"
        checked += 1
    assert checked >= 30


def test_traffic_jam_and_breakdown_make_the_shipment_late(run):
    simulation, _, by_device, _, truth = run
    for fault, shipment, tracker, ceiling in [
        ("traffic_jam", "SHP-RTM-AMS-01", "trk-rtm-ams-01", 12),
        ("breakdown", "SHP-RTM-NIJ-01", "trk-rtm-nij-01", 0),
    ]:
        window = _window(simulation, shipment, fault)
        inside = _in(by_device[tracker], (window[0] + MINUTE, window[1]))
        assert inside and max(r["speed_kmh"] for r in inside) <= ceiling + 3
        record = truth[(fault, shipment)]
        assert record["consequence"] == "late delivery"
        assert record["arrival"] > record["promised"] == record["consequence_at"]


def test_route_deviation_leaves_the_route_and_comes_back(scenario, run):
    simulation, _, by_device, _, truth = run
    window = _window(simulation, "SHP-RTM-BRD-02", "route_deviation")
    route = scenario.lane_route("rtm-brd")
    gaps = [route.distance_from((r["lat"], r["lon"]))[0] for r in by_device["trk-rtm-brd-02"]]
    during = [g for g, r in zip(gaps, by_device["trk-rtm-brd-02"], strict=True) if window[0] <= r["ts"] < window[1]]
    after = [g for g, r in zip(gaps, by_device["trk-rtm-brd-02"], strict=True) if r["ts"] >= window[1]]
    assert max(during) > 2_000 and max(after) < 60
    assert ("route_deviation", "SHP-RTM-BRD-02") in truth


def test_reefer_failure_drives_the_cargo_out_of_its_range(scenario, run):
    simulation, _, by_device, _, truth = run
    record = truth[("reefer_failure", "SHP-RTM-TIL-01")]
    first_excursion = next(
        r for r in by_device["trk-rtm-til-01"] if r["temp_c"] > scenario.cargo_types["chilled"].max_c
    )
    assert record["consequence"] == "temperature out of range"
    assert abs(first_excursion["ts"] - _ms(record["consequence_at"])) <= 2 * MINUTE
    before = [
        r["temp_c"]
        for r in by_device["trk-rtm-til-01"]
        if r["ts"] < _window(simulation, "SHP-RTM-TIL-01", "reefer_failure")[0]
    ]
    assert all(2.0 <= t <= 8.0 for t in before[-5:])  # in range while the unit worked


def test_door_opened_in_transit(run):
    simulation, _, by_device, _, truth = run
    window = _window(simulation, "SHP-ANT-BRU-01", "door_open_in_transit")
    inside = _in(by_device["trk-ant-bru-01"], window)
    assert all(r["door_open"] for r in inside) and any(r["speed_kmh"] > 20 for r in inside)
    outside_transit = [
        r for r in by_device["trk-ant-bru-01"]
        if r["ts"] >= window[1] and r["ts"] < simulation.trips["SHP-ANT-BRU-01"].arrival_ms
    ]  # fmt: skip
    assert outside_transit and not any(r["door_open"] for r in outside_transit)
    assert truth[("door_open_in_transit", "SHP-ANT-BRU-01")]["consequence_at"] is not None


def test_tracker_offline_is_silence_then_a_backfilled_batch(run):
    simulation, _, _, raw, truth = run
    window = _window(simulation, "SHP-RTM-UTR-02", "tracker_offline")
    messages = [m for m in raw["trk-rtm-utr-02"] if m.topic.endswith("telemetry")]
    assert not [m for m in messages if window[0] <= m.publish_ms < window[1]]  # silence
    (batch,) = [json.loads(m.payload) for m in messages if m.payload.startswith(b"[")]
    assert len(batch) >= 50 and all(window[0] <= r["ts"] < window[1] for r in batch)  # original timestamps
    upload = next(m for m in messages if m.payload.startswith(b"["))
    assert upload.publish_ms >= window[1]
    assert truth[("tracker_offline", "SHP-RTM-UTR-02")]["consequence"] == "silence"


def test_data_quality_faults_outliers_duplicates_disorder_and_garbage(scenario, run):
    simulation, _, by_device, raw, truth = run
    route = scenario.lane_route("rtm-arn")
    window = _window(simulation, "SHP-RTM-ARN-01", "gps_outliers")
    jumps = [
        r for r in _in(by_device["trk-rtm-arn-01"], window) if route.distance_from((r["lat"], r["lon"]))[0] > 5_000
    ]
    assert len(jumps) >= 5

    payloads = [m.payload for m in raw["trk-rtm-dbs-01"] if m.topic.endswith("telemetry")]
    assert len(payloads) - len(set(payloads)) >= 50  # published twice during the window

    seqs = [json.loads(m.payload)["seq"] for m in raw["trk-vnl-nij-02"] if m.topic.endswith("telemetry")]
    assert seqs != sorted(seqs) and sorted(seqs) == list(range(len(seqs)))  # late, but none lost

    decoder = Decoder(262_144, 300_000, 1024)
    rejected = [
        decoder.decode(m.topic, m.payload, m.publish_ms).dead_letters
        for m in raw["trk-ant-brd-01"] if m.topic.endswith("telemetry")
    ]  # fmt: skip
    reasons = [letters[0].reason for letters in rejected if letters]
    assert len(reasons) >= 5 and any("invalid JSON" in r for r in reasons) and any("field lat" in r for r in reasons)
    for fault, shipment in [("gps_outliers", "SHP-RTM-ARN-01"), ("duplicates", "SHP-RTM-DBS-01"),
                            ("out_of_order", "SHP-VNL-NIJ-02"), ("malformed", "SHP-ANT-BRD-01")]:  # fmt: skip
        assert truth[(fault, shipment)]["consequence_at"] is None


def test_bearing_wear_is_a_rising_trend_that_ends_in_failure(run):
    _, _, by_device, _, truth = run
    record = truth[("bearing_wear", "conv-rtm-03")]
    failure = _ms(record["consequence_at"])
    running = [r for r in by_device["conv-rtm-03"] if r["state"] == "running"]
    early = statistics.mean(r["vibration_rms_mm_s"] for r in running[:60])
    before_failure = [r for r in running if r["ts"] < failure][-120:]  # its last two running hours
    late = statistics.mean(r["vibration_rms_mm_s"] for r in before_failure)
    healthy_peer = statistics.mean(r["vibration_rms_mm_s"] for r in by_device["conv-rtm-02"] if r["state"] == "running")
    assert late > 2.5 * early and early < 1.35 * healthy_peer  # barely worn when first seen running
    hot = [r["bearing_temp_c"] for r in before_failure[-60:]]
    assert statistics.mean(hot) > statistics.mean(r["bearing_temp_c"] for r in running[:60]) + 10
    after = [r for r in by_device["conv-rtm-03"] if r["ts"] >= failure]
    assert after and all(r["state"] == "fault" and r["rpm"] == 0 for r in after)


def test_motor_overheating_and_sudden_failure(run):
    _, _, by_device, _, truth = run
    heat = truth[("motor_overheating", "sorter-rtm-01")]
    start, trip = _ms(heat["start"]), _ms(heat["consequence_at"])
    sorter = by_device["sorter-rtm-01"]
    before = [r["motor_current_a"] for r in sorter if start - 3_600_000 <= r["ts"] < start and r["state"] == "running"]
    during = [r["motor_current_a"] for r in sorter if trip - 3_600_000 <= r["ts"] < trip and r["state"] == "running"]
    assert statistics.mean(during) > 1.25 * statistics.mean(before)
    assert all(r["state"] == "fault" for r in sorter if r["ts"] >= trip)
    sudden = truth[("sudden_failure", "fork-ant-02")]
    fork = by_device["fork-ant-02"]
    assert sudden["start"] == sudden["consequence_at"]
    assert all(r["state"] == "fault" for r in fork if r["ts"] >= _ms(sudden["start"]))
    assert any(r["state"] == "running" for r in fork if r["ts"] < _ms(sudden["start"]))


def test_random_faults_are_drawn_from_the_seed(scenario):
    from tower.scenario import RandomFaults

    noisy = scenario.model_copy(update={"random_faults": RandomFaults(shipment={"traffic_jam": 0.5},
                                                                      equipment={"bearing_wear": 0.2})})  # fmt: skip
    first = Simulation(noisy, seed=7, start_ms=START).truth()
    assert first == Simulation(noisy, seed=7, start_ms=START).truth()
    assert first != Simulation(noisy, seed=8, start_ms=START).truth()
    assert sum(r["fault"] == "traffic_jam" for r in first) > 3 + 10  # the scenario's 3, and drawn ones


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
