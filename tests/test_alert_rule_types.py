"""Every rule type on readings shaped like the real thing: a truck driving a default-scenario lane,
a reefer warming, machines wearing. Pure: the evaluator alone, no broker or store."""

from __future__ import annotations

import random

import pytest

from alerts.conditions import State
from alerts.evaluate import RuleEvaluator
from alerts.rules import RuleSet
from tower.contract import DeviceKind, Reading
from tower.domain import Severity
from tower.geo import offset
from tower.masterdata.view import MasterData
from tower.scenario import load_scenario

T0 = 1_789_948_800_000  # the scenario's time 0
MIN = 60_000
HOUR = 60 * MIN
RUNBOOK = {"owner": "ops", "respond_within": "15m", "steps": ["look"]}
TRACKER, SHIPMENT = "trk-rtm-brd-01", "SHP-RTM-BRD-01"  # Rotterdam DC -> Breda, 52 km, ambient cargo


@pytest.fixture(scope="module")
def network() -> MasterData:
    return load_scenario("default").master_data(T0)


@pytest.fixture(scope="module")
def plan(network):
    return network.plans[SHIPMENT]


def _rules(*rules: dict) -> RuleSet:
    return RuleSet.model_validate({"rules": [{"runbook": RUNBOOK, **rule} for rule in rules]})


def _drive(plan, speeds_kmh: list[float], sideways_m: list[float] | None = None, **fields) -> list[Reading]:
    """One reading a minute from departure, at these speeds along the lane's route."""
    readings, along = [], 0.0
    for minute, speed in enumerate(speeds_kmh):
        (lat, lon), heading = plan.route.position(along)
        if sideways_m and sideways_m[minute]:
            lat, lon = offset((lat, lon), 0.0, sideways_m[minute])
        values = {name: value[minute] if isinstance(value, list) else value for name, value in fields.items()}
        readings.append(Reading(DeviceKind.SHIPMENT, TRACKER, plan.departure_ms + minute * MIN,
                                {"lat": lat, "lon": lon, "speed_kmh": speed, **values}))  # fmt: skip
        along += speed / 60 * 1000
    return readings


def _changes(rules: RuleSet, readings: list[Reading], network: MasterData | None = None):
    """The evaluator, and the changes of state it reported (not the refreshes of a firing alert's detail)."""
    evaluator = RuleEvaluator(rules, network)
    changes = [change for reading in readings for change in evaluator.observe(reading)]
    return evaluator, [change for change in changes if not change.refresh]


def _firing(changes, rule_id: str):
    return [c for c in changes if c.rule.id == rule_id and c.state is State.FIRING]


def test_threshold_on_a_flag_and_shipment_rules_only_apply_in_transit(network, plan):
    rules = _rules({"id": "door", "type": "threshold", "scope": {"kind": "shipment"}, "field": "door_open",
                    "equals": True, "for": "2m"})  # fmt: skip
    minutes = int(plan.route.length_m / 1000 / 70 * 60) + 15
    doors = [m in range(20, 26) for m in range(minutes)]  # open for 6 minutes on the motorway
    at_dc = {"lat": plan.origin.lat, "lon": plan.origin.lon, "door_open": True}
    loading = [Reading(DeviceKind.SHIPMENT, TRACKER, plan.departure_ms - m * MIN, at_dc) for m in (15, 10, 5)]
    drive = _drive(plan, [70.0] * minutes, door_open=doors)
    delivered = [Reading(DeviceKind.SHIPMENT, TRACKER, drive[-1].ts_ms + m * MIN,
                         {"lat": plan.destination.lat, "lon": plan.destination.lon, "door_open": True})
                 for m in range(1, 10)]  # fmt: skip
    _, changes = _changes(rules, loading + drive + delivered, network)
    (firing,) = _firing(changes, "door")  # not while loading, not while unloading at the customer
    assert firing.entity_id == SHIPMENT and firing.at_ms == plan.departure_ms + 22 * MIN
    assert firing.detail == "door_open is True" and firing.site == "dc-rotterdam"


def test_geofence_arrive_depart_and_dwell(network, plan):
    rules = _rules(
        {"id": "left-dc", "type": "geofence", "event": "depart", "sites": "dc-*"},
        {"id": "arrived", "type": "geofence", "event": "arrive", "sites": "cust-*"},
        {"id": "waiting", "type": "geofence", "event": "dwell", "sites": "cust-*", "dwell_over": "45m"},
    )
    minutes = int(plan.route.length_m / 1000 / 60 * 60) + 2
    loading = [Reading(DeviceKind.SHIPMENT, TRACKER, plan.departure_ms - m * MIN,
                       {"lat": plan.origin.lat, "lon": plan.origin.lon}) for m in (15, 10, 5)]  # fmt: skip
    at_customer = [Reading(DeviceKind.SHIPMENT, TRACKER, plan.departure_ms + (minutes + m) * MIN,
                           {"lat": plan.destination.lat, "lon": plan.destination.lon}) for m in range(60)]  # fmt: skip
    _, changes = _changes(rules, loading + _drive(plan, [60.0] * minutes) + at_customer, network)
    (left,) = _firing(changes, "left-dc")
    (arrived,) = _firing(changes, "arrived")
    (waiting,) = _firing(changes, "waiting")
    assert left.detail == "departed from Rotterdam DC (Ridderkerk) (dc-rotterdam)"  # named as people know it
    assert left.at_ms < plan.departure_ms + 3 * MIN
    assert arrived.detail == "arrived at Breda Hazeldonk (cust-breda)"
    assert waiting.at_ms - arrived.at_ms > 45 * MIN and waiting.detail.startswith(
        "at Breda Hazeldonk (cust-breda) for 4"
    )
    assert [c.state for c in changes if c.rule.id == "arrived"] == [State.FIRING, State.NORMAL]  # an event


def test_one_gps_outlier_is_not_a_visit_or_a_deviation(network, plan):
    rules = _rules(
        {"id": "arrived", "type": "geofence", "event": "arrive", "sites": "*"},
        {"id": "off", "type": "route_deviation", "max_offset_m": 1000, "for": "3m"},
    )
    drive = _drive(plan, [70.0] * 30)
    outlier = Reading(DeviceKind.SHIPMENT, TRACKER, drive[10].ts_ms + 1,
                      {"lat": plan.destination.lat, "lon": plan.destination.lon})  # fmt: skip
    _, changes = _changes(rules, drive[:11] + [outlier] + drive[11:], network)
    assert [c for c in changes if c.state is State.FIRING] == []


def test_route_deviation_fires_after_holding_off_route_and_clears(network, plan):
    rules = _rules({"id": "off", "type": "route_deviation", "max_offset_m": 1000, "for": "3m", "clear_for": "2m"})
    sideways = [0.0] * 10 + [2500.0] * 10 + [0.0] * 10
    _, changes = _changes(rules, _drive(plan, [70.0] * 30, sideways), network)
    assert [(c.state, (c.at_ms - plan.departure_ms) // MIN) for c in changes] == [
        (State.PENDING, 10), (State.FIRING, 13), (State.NORMAL, 22),
    ]  # fmt: skip
    assert changes[1].detail == "2.5 km from the planned route (limit 1 km)"


def test_predicted_delay_warns_before_the_promised_time_and_turns_critical_when_it_passes(network, plan):
    rules = _rules({"id": "late", "type": "predicted_delay", "tolerance": "5m", "for": "5m"})
    slack = (plan.promised_ms - plan.departure_ms) // MIN
    jam = [70.0] * 10 + [6.0] * 150  # a long jam from minute 10
    _, changes = _changes(rules, _drive(plan, jam), network)
    firing = _firing(changes, "late")
    predicted, overdue = firing[0], changes[-1]
    assert predicted.severity is Severity.MAJOR and plan.promised_ms - predicted.at_ms >= 30 * MIN
    assert "ETA" in predicted.detail and "vs promised" in predicted.detail
    low, high = predicted.detail.split("(")[1].split(")")[0].split("–")
    assert low < high  # the band: optimistic and pessimistic ETA
    assert overdue.severity is Severity.CRITICAL and overdue.at_ms == plan.promised_ms + 6 * MIN
    assert "has passed, not delivered" in overdue.detail
    _, on_time = _changes(rules, _drive(plan, [70.0] * (slack + 10)), network)
    assert _firing(on_time, "late") == []  # an unhindered truck: no alert, and none after delivery


def test_cold_chain_excursion_budget_and_mean_kinetic_temperature(network):
    tracker = "trk-rtm-til-01"  # chilled: 2..8 °C
    chilled = network.plans["SHP-RTM-TIL-01"]
    rules = _rules({"id": "cold", "type": "cold_chain", "scope": {"kind": "shipment"}, "for": "10m",
                    "clear_for": "5m", "budget": "30m"})  # fmt: skip
    temps = [4.0] * 10 + [9.5] * 15 + [4.0] * 20 + [9.5] * 25  # 15 min out, back, then 25 more
    readings = [Reading(DeviceKind.SHIPMENT, tracker, chilled.departure_ms + m * MIN,
                        {"temp_c": t, "lat": chilled.origin.lat + 0.1, "lon": chilled.origin.lon})
                for m, t in enumerate(temps)]  # fmt: skip
    _, changes = _changes(rules, readings, network)
    summary = [(c.state, c.severity, (c.at_ms - chilled.departure_ms) // MIN) for c in changes]
    assert summary == [
        (State.PENDING, Severity.MAJOR, 10), (State.FIRING, Severity.MAJOR, 20), (State.NORMAL, Severity.MAJOR, 30),
        (State.PENDING, Severity.MAJOR, 45), (State.FIRING, Severity.MAJOR, 55),
        (State.FIRING, Severity.CRITICAL, 61),  # 31 minutes out of range in total: over the 30-minute budget
    ]  # fmt: skip
    assert "out of range 31 min of 30 min budget" in changes[-1].detail
    mkt = float(changes[-1].detail.split("MKT ")[1].split(" ")[0])
    assert 6.5 < mkt < 8.0  # weighted toward the warm readings, above the arithmetic mean (6.5)


def test_drift_learns_each_assets_baseline_and_ignores_noise(network):
    rules = _rules({"id": "drift", "type": "drift", "scope": {"kind": "equipment"}, "field": "vib", "learn": "1h",
                    "window": "30m", "sigmas": 1.0, "direction": "up", "for": "15m"})  # fmt: skip
    rng = random.Random(5)
    readings = []
    for minute in range(20 * 60):
        wear = max(0.0, (minute - 8 * 60) / (12 * 60)) ** 2  # starts wearing after 8 h
        for device, level in (("pump-a", 1.8), ("pump-b", 3.0)):  # two assets with different normals
            worn = 1 + 3 * wear if device == "pump-a" else 1
            readings.append(Reading(DeviceKind.EQUIPMENT, device, T0 + minute * MIN,
                                    {"vib": level * worn + rng.gauss(0, 0.15)}))  # fmt: skip
    _, changes = _changes(rules, readings)
    firing = _firing(changes, "drift")
    assert [c.device_id for c in firing] == ["pump-a"]  # pump-b's higher level is its own normal
    assert 8 * HOUR < firing[0].at_ms - T0 < 12 * HOUR and "σ from its baseline 1.8" in firing[0].detail


def test_trend_projects_when_a_field_will_cross_its_limit(network):
    rules = _rules({"id": "to-limit", "type": "trend", "scope": {"kind": "equipment"}, "field": "temp",
                    "limit": 80, "window": "2h", "horizon": "14h", "for": "10m"})  # fmt: skip
    rng = random.Random(9)
    flat = [Reading(DeviceKind.EQUIPMENT, "m", T0 + m * MIN, {"temp": 50 + rng.gauss(0, 0.3)}) for m in range(180)]
    rising = [Reading(DeviceKind.EQUIPMENT, "m", T0 + (180 + m) * MIN, {"temp": 50 + 2.0 * m / 60 + rng.gauss(0, 0.3)})
              for m in range(240)]  # fmt: skip
    _, changes = _changes(rules, flat + rising)
    (firing,) = _firing(changes, "to-limit")
    assert firing.at_ms > T0 + 180 * MIN  # not on the flat part
    projected_h = firing.value
    elapsed_h = (firing.at_ms - T0 - 180 * MIN) / HOUR
    assert 0 < projected_h <= 14 and abs(elapsed_h + projected_h - 15) < 3  # 50 -> 80 at 2/h: 15 h after the rise
    assert "crosses 80 around" in firing.detail
