"""Rule evaluation on event time. Pure: readings in, state changes out; no I/O, no wall clock.

Each (rule, device) keeps its recent points sorted by `ts` and the rule's state as it stood just
before the oldest of them. The current state is recomputed from that checkpoint over the sorted
points, so a reading that arrives late (out of order, or in a back-filled offline buffer) is put
in its place and changes the answer exactly as if it had come on time. Points older than the
retention horizon are folded into the checkpoint; readings older than the checkpoint are too late
to change anything and are counted, not used.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from enum import StrEnum

from alerts.rules import MissingDataRule, RateRule, Rule, RuleSet, ThresholdRule
from tower.contract import Reading, is_plain_number

HORIZON_MS = 2 * 3_600_000  # how late a reading may be and still be placed in time


class State(StrEnum):
    NORMAL = "normal"
    PENDING = "pending"  # the condition holds, but not yet for the rule's `for`
    FIRING = "firing"


@dataclass(frozen=True)
class Change:
    """A rule's state for one device changed, at an event time."""

    rule: Rule
    device_id: str
    state: State
    at_ms: int
    value: float | None
    detail: str


@dataclass
class _Threshold:
    """Threshold state machine: NORMAL -> PENDING (breached) -> FIRING (held `for`) -> NORMAL
    (recovered past the clear level for `clear_for`)."""

    state: State = State.NORMAL
    run_start: int | None = None  # first reading of the current breach, or of the current recovery
    changed_at: int = 0

    def step(self, rule: ThresholdRule, ts: int, value: float) -> None:
        if self.state is State.FIRING:
            if rule.recovered(value):
                self.run_start = ts if self.run_start is None else self.run_start
                if ts - self.run_start >= rule.clear_for:
                    self.state, self.run_start, self.changed_at = State.NORMAL, None, ts
            else:
                self.run_start = None
        elif rule.breached(value):
            if self.run_start is None:
                self.run_start, self.state, self.changed_at = ts, State.PENDING, ts
            if ts - self.run_start >= rule.hold:
                self.state, self.run_start, self.changed_at = State.FIRING, None, ts
        elif self.state is State.PENDING:
            self.state, self.run_start, self.changed_at = State.NORMAL, None, ts


@dataclass
class _Series:
    """One (rule, device): recent points by event time, and the checkpoint before them."""

    points: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: _Threshold = field(default_factory=_Threshold)
    folded_until: int = -1  # event time up to which points live only in the checkpoint
    reported: State = State.NORMAL
    too_late: int = 0

    def add(self, ts: int, value: float) -> bool:
        if ts <= self.folded_until:
            self.too_late += 1
            return False
        if (ts, value) not in self.points:  # a duplicate delivery changes nothing
            insort(self.points, (ts, value))
        return True

    def fold(self, rule: Rule, newest: int) -> None:
        """Fold points older than the horizon into the checkpoint."""
        while self.points and self.points[0][0] < newest - HORIZON_MS:
            ts, value = self.points.pop(0)
            self.folded_until = ts
            if isinstance(rule, ThresholdRule):
                self.checkpoint.step(rule, ts, value)


class RuleEvaluator:
    """Feed readings in arrival order; get the state changes they cause, stamped in event time."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules.rules
        self._series: dict[tuple[str, str], _Series] = {}
        self._last_seen: dict[str, tuple[int, object]] = {}  # device -> (newest ts, kind)
        self._silent: dict[tuple[str, str], bool] = {}
        self.watermark_ms = 0

    def observe(self, reading: Reading) -> list[Change]:
        changes: list[Change] = []
        newest = max(reading.ts_ms, self._last_seen.get(reading.device_id, (0, None))[0])
        self._last_seen[reading.device_id] = (newest, reading.kind)
        self.watermark_ms = max(self.watermark_ms, reading.ts_ms)
        for rule in self.rules:
            if not rule.scope.matches(reading.kind, reading.device_id):
                continue
            if isinstance(rule, MissingDataRule):
                changes += self._back(rule, reading)
                continue
            value = reading.fields.get(rule.field)
            if not is_plain_number(value):
                continue
            series = self._series.setdefault((rule.id, reading.device_id), _Series())
            if series.add(reading.ts_ms, float(value)):
                changes += self._reevaluate(rule, reading.device_id, series)
        return changes

    def advance(self, watermark_ms: int) -> list[Change]:
        """Move the fleet's event-time watermark (e.g. on a clock tick in a replay) and report silences."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        changes = []
        for rule in self.rules:
            if not isinstance(rule, MissingDataRule):
                continue
            for device_id, (last_ts, kind) in self._last_seen.items():
                key = (rule.id, device_id)
                silent_for = self.watermark_ms - last_ts
                if rule.scope.matches(kind, device_id) and not self._silent.get(key) and silent_for > rule.after:
                    self._silent[key] = True
                    detail = f"no reading for {silent_for // 60_000} min"
                    changes.append(Change(rule, device_id, State.FIRING, last_ts + rule.after, None, detail))
        return changes

    def _back(self, rule: MissingDataRule, reading: Reading) -> list[Change]:
        key = (rule.id, reading.device_id)
        if self._silent.get(key) and reading.ts_ms >= self._last_seen[reading.device_id][0]:
            self._silent[key] = False
            return [Change(rule, reading.device_id, State.NORMAL, reading.ts_ms, None, "reporting again")]
        return []

    def state_of(self, rule_id: str, device_id: str) -> tuple[State, int]:
        """The rule's state for a device now, and since when (event time), from all readings so far."""
        rule = next(r for r in self.rules if r.id == rule_id)
        state, at, _, _ = _current(rule, self._series[(rule_id, device_id)])
        return state, at

    def _reevaluate(self, rule: Rule, device_id: str, series: _Series) -> list[Change]:
        series.fold(rule, series.points[-1][0])
        current, at, value, detail = _current(rule, series)
        if current is series.reported:
            return []
        series.reported = current
        return [Change(rule, device_id, current, at, value, detail)]


def _current(rule: Rule, series: _Series) -> tuple[State, int, float, str]:
    """State, since when, latest value and a sentence, recomputed over the sorted points."""
    if isinstance(rule, RateRule):
        return _rate_state(rule, series.points)
    state = _Threshold(series.checkpoint.state, series.checkpoint.run_start, series.checkpoint.changed_at)
    for ts, value in series.points:
        state.step(rule, ts, value)
    value = series.points[-1][1]
    limit = rule.above if rule.above is not None else rule.below
    return state.state, state.changed_at, value, f"{rule.field} {value:g} vs limit {limit:g}"


def _rate_state(rule: RateRule, points: list[tuple[int, float]]) -> tuple[State, int, float, str]:
    """Change of the newest value against the lowest (rise) or highest (fall) within the window."""
    ts, value = points[-1]
    window = [v for t, v in points if ts - rule.window <= t <= ts]
    rise, fall = value - min(window), max(window) - value
    firing = (rule.rise_above is not None and rise > rule.rise_above) or (
        rule.fall_above is not None and fall > rule.fall_above
    )
    change = rise if rule.rise_above is not None and rise >= fall else -fall
    return (State.FIRING if firing else State.NORMAL), ts, change, f"{rule.field} changed {change:+g} within window"
