"""Rule evaluation on event time: holds, hysteresis, rates, silences, and late or repeated readings."""

from __future__ import annotations

import random
import re

import pytest

from alerts.conditions import State
from alerts.evaluate import REORDER_DEPTH, RuleEvaluator
from alerts.rules import DEFAULT_RULES, RulesError, RuleSet, load_rules
from tower.contract import DeviceKind, Reading
from tower.scenario import load_scenario

T0 = 1_789_948_800_000
MIN = 60_000
RUNBOOK = {"owner": "ops", "respond_within": "15m", "steps": ["look"]}


def _rules(*rules: dict) -> RuleSet:
    return RuleSet.model_validate({"rules": [{"runbook": RUNBOOK, **rule} for rule in rules]})


def _warm(**extra) -> RuleSet:
    rule = {"id": "warm", "type": "threshold", "scope": {"kind": "shipment"}, "field": "temp_c", "above": 8.0}
    return _rules({**rule, **extra})


def _reading(ts: int, device: str = "trk-1", **fields) -> Reading:
    return Reading(DeviceKind.SHIPMENT, device, ts, fields)


def _feed(rules: RuleSet, readings: list[Reading]):
    """The evaluator, and the changes of state it reported (not the refreshes of a firing alert's detail)."""
    evaluator = RuleEvaluator(rules)
    changes = [change for reading in readings for change in evaluator.observe(reading)]
    return evaluator, [change for change in changes if not change.refresh]


def test_threshold_fires_only_after_holding_for_its_duration():
    temps = [7.0, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, 9.1, 9.2]  # one a minute; above from minute 1
    _, changes = _feed(_warm(**{"for": "5m"}), [_reading(T0 + i * MIN, temp_c=t) for i, t in enumerate(temps)])
    assert [(c.state, c.at_ms) for c in changes] == [(State.PENDING, T0 + MIN), (State.FIRING, T0 + 6 * MIN)]
    assert changes[-1].detail == "temp_c 9 vs limit 8"


def test_a_firing_alerts_detail_is_brought_up_to_date_while_it_fires():
    temps = [9.0 + i / 10 for i in range(30)]  # above the limit for half an hour, a minute apart
    evaluator = RuleEvaluator(_warm(**{"for": "5m"}))
    changes = [change for i, t in enumerate(temps) for change in evaluator.observe(_reading(T0 + i * MIN, temp_c=t))]
    refreshes = [change for change in changes if change.refresh]
    assert [c.at_ms for c in refreshes] == [T0 + m * MIN for m in (10, 15, 20, 25)]  # every 5 min of event time
    assert all(c.state is State.FIRING for c in refreshes)
    assert refreshes[-1].detail == "temp_c 11.5 vs limit 8" and refreshes[-1].value == 11.5


def test_a_short_breach_stays_pending_and_returns_to_normal():
    temps = [8.5, 8.6, 7.0, 7.1]
    _, changes = _feed(_warm(**{"for": "5m"}), [_reading(T0 + i * MIN, temp_c=t) for i, t in enumerate(temps)])
    assert [c.state for c in changes] == [State.PENDING, State.NORMAL]


def test_hysteresis_keeps_a_noisy_signal_from_flapping():
    rng = random.Random(3)
    noisy = [_reading(T0 + i * 30_000, temp_c=8.1 + rng.gauss(0, 0.25)) for i in range(240)]  # 2 h around 8
    cooled = [_reading(T0 + (240 + i) * 30_000, temp_c=6.0 + rng.gauss(0, 0.1)) for i in range(40)]
    _, with_hysteresis = _feed(_warm(**{"for": "2m", "clear_below": 7.5, "clear_for": "5m"}), noisy + cooled)
    firing = [c for c in with_hysteresis if c.state is State.FIRING]
    cleared = [c for c in with_hysteresis if c.state is State.NORMAL and c.at_ms > firing[0].at_ms]
    assert len(firing) == 1 and len(cleared) == 1
    assert cleared[0].at_ms >= cooled[0].ts_ms + 5 * MIN  # cleared only after holding below 7.5
    _, naive = _feed(_warm(), noisy)
    assert sum(c.state is State.FIRING for c in naive) > 10  # what hysteresis prevents


def test_late_and_backfilled_readings_give_the_same_answer_as_on_time_ones():
    rules = _warm(**{"for": "5m", "clear_below": 7.5, "clear_for": "3m"})
    temps = [5.0] * 10 + [9.0] * 12 + [5.0] * 10
    on_time = [_reading(T0 + i * MIN, temp_c=t) for i, t in enumerate(temps)]
    shuffled = []  # every block of 8 in random order: readings up to 7 places late
    for block in range(0, 22, 8):
        chunk = on_time[block : min(block + 8, 22)]
        random.Random(block).shuffle(chunk)
        shuffled += chunk
    backfilled = on_time[:8] + on_time[20:22] + on_time[8:20]  # a tracker's offline buffer arriving last
    for order in (on_time[:22], shuffled, backfilled):
        evaluator, _ = _feed(rules, order)
        assert evaluator.state_of("warm", "trk-1") == (State.FIRING, T0 + 15 * MIN)
        for reading in on_time[22:]:
            evaluator.observe(reading)
        assert evaluator.state_of("warm", "trk-1") == (State.NORMAL, T0 + 25 * MIN)


def test_duplicates_change_nothing_and_readings_older_than_all_kept_are_counted_as_too_late():
    rules = _warm(**{"for": "5m"})
    readings = [_reading(T0 + i * MIN, temp_c=9.0) for i in range(8)]
    _, once = _feed(rules, readings)
    _, twice = _feed(rules, [r for r in readings for _ in range(2)])
    assert [(c.state, c.at_ms) for c in once] == [(c.state, c.at_ms) for c in twice]
    evaluator, _ = _feed(rules, [_reading(T0 + i * MIN, temp_c=5.0) for i in range(REORDER_DEPTH + 4)])
    assert evaluator.observe(_reading(T0 + 2 * MIN, temp_c=20.0)) == []  # behind every kept reading
    assert evaluator.too_late == 1


def test_rate_of_change_fires_on_a_jump_not_on_a_slow_drift():
    rules = _rules({"id": "jump", "type": "rate_of_change", "scope": {"kind": "shipment"}, "field": "shock_g",
                    "window": "10m", "rise_above": 2.0})  # fmt: skip
    slow = [_reading(T0 + i * MIN, shock_g=0.1 * i) for i in range(30)]
    _, drift = _feed(rules, slow)
    assert drift == []
    _, jump = _feed(rules, slow + [_reading(T0 + 30 * MIN, shock_g=6.0), _reading(T0 + 45 * MIN, shock_g=6.1)])
    assert [(c.state, c.at_ms) for c in jump] == [(State.FIRING, T0 + 30 * MIN), (State.NORMAL, T0 + 45 * MIN)]


def test_missing_data_is_judged_by_the_fleet_watermark_not_the_wall_clock():
    """Judged when the watermark enters a new minute of event time: at the same reading of the stream
    however fast it arrives (a restarted engine working through a backlog decides the same)."""
    rules = _rules({"id": "silent", "type": "missing_data", "scope": {"kind": "shipment"}, "after": "15m"})
    evaluator = RuleEvaluator(rules)
    changes = []
    for i in range(30):  # trk-2 keeps reporting; trk-1 stops after minute 5
        changes += [(i, c) for c in evaluator.observe(_reading(T0 + i * MIN, device="trk-2", lat=1.0))]
        if i <= 5:
            evaluator.observe(_reading(T0 + i * MIN, device="trk-1", lat=1.0))
    ((minute, silence),) = changes
    assert minute == 21  # the first reading more than 15 min after trk-1's last
    assert (silence.device_id, silence.state, silence.at_ms) == ("trk-1", State.FIRING, T0 + 20 * MIN)
    assert evaluator.advance(T0 + 40 * MIN) == []  # fires once
    (back,) = evaluator.observe(_reading(T0 + 41 * MIN, device="trk-1", lat=1.0))
    assert back.state is State.NORMAL


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("  - {id: a, type: threshold, field: x, runbook: RB}\n", 2, "exactly one of above / below / equals"),
        ("  - {id: a, type: threshold, field: x, above: 5, clear_below: 6, runbook: RB}\n", 2, "would flap"),
        ("  - {id: a, type: rate_of_change, field: x, window: 1h, runbook: RB}\n", 2, "rise_above or fall_above"),
        ("  - {id: a, type: missing_data, after: soon, runbook: RB}\n", 2, "'soon' is not a duration"),
        (2 * "  - {id: a, type: missing_data, after: 5m, runbook: RB}\n", 3, "rule id 'a' is used twice"),
        ("  - {id: a, type: telepathy, runbook: RB}\n", 2, "does not match any of the expected tags"),
    ],
)  # fmt: skip
def test_rule_file_errors_name_file_line_and_problem(tmp_path, text, line, message):
    runbook = "{owner: ops, respond_within: 15m, steps: [look]}"
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + text.replace("RB", runbook))
    with pytest.raises(RulesError) as error:
        load_rules(path)
    assert str(error.value).startswith(f"{path}:{line}: ") and message in str(error.value), str(error.value)


def test_the_default_rule_set_loads_and_names_nothing_of_the_demo_network():
    rules = load_rules("default").rules
    assert {rule.type for rule in rules} == {
        "threshold", "missing_data", "geofence", "route_deviation", "predicted_delay", "cold_chain", "drift", "trend",
    }  # fmt: skip
    assert all(rule.runbook.steps and rule.runbook.owner for rule in rules)
    scenario = load_scenario("default")
    demo_names = {s.id for s in scenario.sites} | {s.name.split()[0] for s in scenario.sites}
    demo_names |= set(scenario.cargo_types)
    text = DEFAULT_RULES.read_text().lower()
    named = sorted(name for name in demo_names if re.search(rf"\b{re.escape(name.lower())}\b", text))
    assert named == [], f"the default rules name the demo network: {named}"
