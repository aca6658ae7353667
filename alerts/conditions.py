"""One small state machine per rule type, stepped with a device's readings in event-time order.

Pure and O(1) in memory per (rule, entity): running sums and exponential averages instead of
windows of points, so a copy is cheap (the evaluator keeps a checkpoint copy to replay late
readings from). `step` sees the reading's fields, what its position means against the shipment's
plan (trackers with master data only), and the plan.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from alerts.rules import (
    ColdChainRule,
    DriftRule,
    GeofenceRule,
    PredictedDelayRule,
    RateRule,
    RouteDeviationRule,
    Rule,
    ThresholdRule,
    TrendRule,
)
from tower.contract import FieldValue, is_plain_number
from tower.domain import Severity
from tower.masterdata.model import site_label
from tower.masterdata.view import Position, ShipmentPlan
from tower.timeutil import rfc3339

MINUTE = 60_000
HOUR = 3_600_000
MKT_ACTIVATION_K = 10_000.0  # ΔH/R for mean kinetic temperature (83.144 kJ/mol, USP <1079>)
MAX_PLAUSIBLE_M_S = 50.0  # a tracker "moving" faster than 180 km/h had a GPS outlier


class State(StrEnum):
    NORMAL = "normal"
    PENDING = "pending"  # the condition holds, but not yet for the rule's `for`
    FIRING = "firing"


@dataclass(slots=True)
class Condition:
    """Hold and clear logic shared by every type: NORMAL -> PENDING (breached) -> FIRING (held
    `for`) -> NORMAL (recovered for `clear_for`). Subclasses decide breached/recovered."""

    state: State = State.NORMAL
    run_start: int | None = None  # first reading of the current breach, or of the current recovery
    since: int = 0
    value: float | None = None
    detail: str = ""
    severity: Severity | None = None  # None: the rule's own

    def step(self, rule: Rule, ts: int, fields: dict[str, FieldValue], where: Position | None,
             plan: ShipmentPlan | None) -> None:  # fmt: skip
        raise NotImplementedError

    def clone(self) -> Condition:
        return copy.copy(self)

    def _escalate(self, ts: int, worse: bool, severity: str) -> None:
        """A condition that stays true for good (promised time passed, budget spent): firing at the
        higher severity until the entity leaves the rule's scope."""
        if worse and self.state is not State.FIRING:
            self.state, self.since, self.run_start = State.FIRING, ts, None
        self.severity = Severity.of(severity) if worse else None

    def _hold(self, ts: int, breached: bool, recovered: bool, hold: int, clear_for: int) -> None:
        if self.state is State.FIRING:
            if recovered:
                self.run_start = ts if self.run_start is None else self.run_start
                if ts - self.run_start >= clear_for:
                    self.state, self.run_start, self.since = State.NORMAL, None, ts
            else:
                self.run_start = None
        elif breached:
            if self.run_start is None:
                self.run_start, self.state, self.since = ts, State.PENDING, ts
            if ts - self.run_start >= hold:
                self.state, self.run_start, self.since = State.FIRING, None, ts
        elif self.state is State.PENDING:
            self.state, self.run_start, self.since = State.NORMAL, None, ts


@dataclass(slots=True)
class Threshold(Condition):
    def step(self, rule: ThresholdRule, ts, fields, where, plan) -> None:
        value = fields.get(rule.field)
        if value is None or (rule.equals is None and not is_plain_number(value)):
            return
        self._hold(ts, rule.breached(value), rule.recovered(value), rule.hold, rule.clear_for)
        if rule.equals is not None:
            self.detail = f"{rule.field} is {value}"
        else:
            self.value = float(value)
            limit = rule.above if rule.above is not None else rule.below
            self.detail = f"{rule.field} {value:g} vs limit {limit:g}"


@dataclass(slots=True)
class Rate(Condition):
    """Change of the newest value against the lowest (rise) or highest (fall) within the window,
    from monotonic deques (a few entries for noisy data, not the whole window)."""

    lows: deque = field(default_factory=deque)
    highs: deque = field(default_factory=deque)

    def clone(self) -> Rate:
        twin = copy.copy(self)
        twin.lows, twin.highs = deque(self.lows), deque(self.highs)
        return twin

    def step(self, rule: RateRule, ts, fields, where, plan) -> None:
        value = fields.get(rule.field)
        if not is_plain_number(value):
            return
        for queue, keep in ((self.lows, lambda old: old < value), (self.highs, lambda old: old > value)):
            while queue and not keep(queue[-1][1]):
                queue.pop()
            queue.append((ts, value))
            while queue[0][0] < ts - rule.window:
                queue.popleft()
        rise, fall = value - self.lows[0][1], self.highs[0][1] - value
        firing = (rule.rise_above is not None and rise > rule.rise_above) or (
            rule.fall_above is not None and fall > rule.fall_above
        )
        self._hold(ts, firing, not firing, rule.hold, rule.clear_for)
        self.value = rise if rule.rise_above is not None and rise >= fall else -fall
        self.detail = f"{rule.field} changed {self.value:+.3g} within {rule.window // MINUTE} min"


@dataclass(slots=True)
class Geofence(Condition):
    """Site membership, confirmed by two readings in a row so one GPS outlier is not a visit."""

    inside: str | None = None
    inside_type: str | None = None
    inside_name: str | None = None
    candidate: str | None = None
    entered_at: int = 0
    seen: bool = False

    def step(self, rule: GeofenceRule, ts, fields, where, plan) -> None:
        if where is None:
            return
        if where.site != self.inside and where.site == self.candidate:
            before = (self.inside, self.inside_type, self.inside_name)
            self.inside, self.inside_type, self.inside_name = where.site, where.site_type, where.site_name
            self.entered_at = ts
            if self.seen:
                self._crossed(rule, ts, before, where, plan)
        elif self.state is State.FIRING and rule.event != "dwell":
            self.state, self.since = State.NORMAL, ts  # arrive / depart are momentary events
        self.candidate, self.seen = where.site, True
        if rule.event == "dwell":
            matching = self.inside is not None and _watched(rule, self.inside, self.inside_type, plan)
            dwelt = ts - self.entered_at
            self._hold(ts, matching and dwelt > rule.dwell_over, not matching, 0, 0)
            if matching:
                self.value = dwelt / MINUTE
                self.detail = f"at {site_label(self.inside, self.inside_name)} for {dwelt // MINUTE} min"

    def _crossed(self, rule: GeofenceRule, ts: int, left: tuple[str | None, str | None, str | None],
                 entered: Position, plan: ShipmentPlan | None) -> None:  # fmt: skip
        entered_site = (entered.site, entered.site_type, entered.site_name)
        site, site_type, name = entered_site if rule.event == "arrive" else left
        if rule.event != "dwell" and site is not None and _watched(rule, site, site_type, plan):
            self.state, self.since = State.FIRING, ts
            self.detail = f"{'arrived at' if rule.event == 'arrive' else 'departed from'} {site_label(site, name)}"


def _watched(rule: GeofenceRule, site: str, site_type: str | None, plan: ShipmentPlan | None) -> bool:
    return rule.watches(site, site_type, plan.origin.id if plan else None, plan.destination.id if plan else None)


@dataclass(slots=True)
class RouteDeviation(Condition):
    def step(self, rule: RouteDeviationRule, ts, fields, where, plan) -> None:
        if where is None:
            return
        offset = where.off_route_m
        self._hold(ts, rule.breached(offset), rule.recovered(offset), rule.hold, rule.clear_for)
        self.value = round(offset)
        self.detail = f"{offset / 1000:.1f} km from the planned route (limit {rule.max_offset_m / 1000:g} km)"


@dataclass(slots=True)
class PredictedDelay(Condition):
    """Recent pace along the route (exponential average of progress per time, GPS outliers
    skipped), projected to an ETA with a band: optimistic (plan speed from now), central (recent
    pace for `pace_lasts`, then plan speed), pessimistic (recent pace for twice as long)."""

    last_ts: int | None = None
    last_along: float = 0.0
    pace_m_s: float | None = None
    eta_ms: tuple[float, float, float] | None = None  # optimistic, central, pessimistic

    def step(self, rule: PredictedDelayRule, ts, fields, where, plan) -> None:
        if where is None or plan is None:
            return
        if self.last_ts is not None and ts > self.last_ts:
            dt = (ts - self.last_ts) / 1000
            speed = (where.along_m - self.last_along) / dt
            if abs(speed) > MAX_PLAUSIBLE_M_S:
                return  # an outlier: keep the last good position
            alpha = 1 - math.exp(-dt * 1000 / rule.speed_window)
            self.pace_m_s += alpha * (max(0.0, speed) - self.pace_m_s)
        elif self.pace_m_s is None:
            self.pace_m_s = plan.planned_speed_m_s  # before any movement: the plan
        self.last_ts, self.last_along = ts, where.along_m
        remaining = max(0.0, plan.route.length_m - where.along_m)
        at_plan, central, longer = (
            ts + _drive_ms(remaining, self.pace_m_s, plan.planned_speed_m_s, lasts)
            for lasts in (0, rule.pace_lasts, 2 * rule.pace_lasts)
        )
        low, high = sorted((at_plan, longer))  # a fast truck's plan-speed ETA is the later one
        self.eta_ms = low, central, high
        late_by = central - plan.promised_ms
        self._hold(ts, late_by > rule.tolerance, late_by <= rule.tolerance, rule.hold, 0)
        self.value = round(late_by / MINUTE, 1)
        overdue = ts > plan.promised_ms + rule.tolerance
        self._escalate(ts, overdue, rule.late_severity)
        eta = f"ETA {_clock(central)} ({_clock(low)[11:16]}–{_clock(high)[11:16]})"
        self.detail = (
            f"promised {_clock(plan.promised_ms)} has passed, not delivered; {eta}"
            if overdue
            else f"{eta} vs promised {_clock(plan.promised_ms)}: {late_by / MINUTE:+.0f} min"
        )


def _drive_ms(remaining_m: float, pace: float, plan_speed: float, lasts_ms: int) -> float:
    at_pace = pace * lasts_ms / 1000
    if remaining_m <= at_pace:
        return remaining_m / pace * 1000
    return lasts_ms + (remaining_m - at_pace) / plan_speed * 1000


def _clock(ms: float) -> str:
    """Date, time and zone: a detail is read in the queue, the API and notices alike (UTC, as stored)."""
    return rfc3339(int(ms))[:16].replace("T", " ") + " UTC"


@dataclass(slots=True)
class ColdChain(Condition):
    out_since: int | None = None
    out_ms: int = 0  # cumulative time out of range this transit
    last_ts: int | None = None
    last_out: bool = False
    mkt_weight: float = 0.0  # Σ exp(-ΔH/RT)·dt
    mkt_time: float = 0.0

    def step(self, rule: ColdChainRule, ts, fields, where, plan) -> None:
        value = fields.get(rule.field)
        low, high = rule.min_c, rule.max_c  # the entity's range (rules.for_entity)
        if not is_plain_number(value) or (low is None and high is None):
            return
        out = (high is not None and value > high) or (low is not None and value < low)
        back = (high is None or value < high - rule.margin_c) and (low is None or value > low + rule.margin_c)
        if self.last_ts is not None and ts > self.last_ts:
            dt = ts - self.last_ts
            self.out_ms += dt if self.last_out else 0
            self.mkt_weight += math.exp(-MKT_ACTIVATION_K / (value + 273.15)) * dt
            self.mkt_time += dt
        self.last_ts, self.last_out = ts, out
        self._hold(ts, out, back, rule.hold, rule.clear_for)
        mkt = MKT_ACTIVATION_K / -math.log(self.mkt_weight / self.mkt_time) - 273.15 if self.mkt_time else value
        spent = rule.budget is not None and self.out_ms > rule.budget
        mkt_out = (high is not None and mkt > high) or (low is not None and mkt < low)
        self._escalate(ts, spent or mkt_out, rule.budget_severity)
        self.value = float(value)
        budget = f" of {rule.budget // MINUTE} min budget" if rule.budget is not None else ""
        self.detail = (
            f"{rule.field} {value:g} °C, allowed {_range(low, high)}; out of range {self.out_ms // MINUTE} min"
            f"{budget}; MKT {mkt:.1f} °C"
        )


def _range(low: float | None, high: float | None) -> str:
    return f"{'' if low is None else f'{low:g}'}…{'' if high is None else f'{high:g}'} °C"


@dataclass(slots=True)
class Drift(Condition):
    """Baseline by Welford's running mean and variance over the first `learn`, then an exponential
    average compared with it in baseline standard deviations."""

    first_ts: int | None = None
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    learned: bool = False
    smooth: float = 0.0
    last_ts: int = 0

    def step(self, rule: DriftRule, ts, fields, where, plan) -> None:
        value = fields.get(rule.field)
        if not is_plain_number(value):
            return
        if not self.learned:
            self.first_ts = ts if self.first_ts is None else self.first_ts
            self.count += 1
            delta = value - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (value - self.mean)
            self.smooth, self.last_ts = self.mean, ts
            self.learned = ts - self.first_ts >= rule.learn and self.count >= rule.min_samples
            return
        alpha = 1 - math.exp(-max(0, ts - self.last_ts) / rule.window)
        self.smooth += alpha * (value - self.smooth)
        self.last_ts = ts
        sd = math.sqrt(self.m2 / (self.count - 1)) or abs(self.mean) * 1e-3 or 1e-9
        z = (self.smooth - self.mean) / sd
        breached = {"up": z > rule.sigmas, "down": z < -rule.sigmas, "both": abs(z) > rule.sigmas}[rule.direction]
        self._hold(ts, breached, abs(z) < rule.sigmas * 0.8, rule.hold, rule.clear_for)
        self.value = round(z, 2)
        self.detail = (
            f"{rule.field} averages {self.smooth:.4g}, {z:+.1f} σ from its baseline {self.mean:.4g} ± {sd:.2g}"
        )


@dataclass(slots=True)
class Trend(Condition):
    """Holt's linear smoothing on event time: a level (time constant window/4) and a slope per hour
    (time constant window), so a steady rise is tracked without the lag of an average."""

    first_ts: int | None = None
    last_ts: int = 0
    level: float = 0.0
    slope: float = 0.0

    def step(self, rule: TrendRule, ts, fields, where, plan) -> None:
        value = fields.get(rule.field)
        if not is_plain_number(value) or ts <= self.last_ts:
            return
        if self.first_ts is None:
            self.first_ts, self.last_ts, self.level = ts, ts, float(value)
            return
        dt = ts - self.last_ts
        alpha = 1 - math.exp(-4 * dt / rule.window)
        beta = 1 - math.exp(-dt / rule.window)
        previous = self.level
        predicted = self.level + self.slope * dt / HOUR
        self.level = predicted + alpha * (value - predicted)
        self.slope += beta * ((self.level - previous) / (dt / HOUR) - self.slope)
        self.last_ts = ts
        if ts - self.first_ts < rule.window:
            return  # not a window's worth of history yet
        toward = self.slope if rule.direction == "up" else -self.slope
        gap = (rule.limit - self.level) if rule.direction == "up" else (self.level - rule.limit)
        hours = gap / toward if toward > 0 else math.inf
        within = hours * HOUR <= rule.horizon
        self._hold(ts, within, not within, rule.hold, 0)
        self.value = round(hours, 1) if hours != math.inf else None
        crossing = f"crosses {rule.limit:g} around {rfc3339(int(ts + max(0.0, hours) * HOUR))}" if within else ""
        self.detail = (
            f"{rule.field} at {self.level:.4g}, trending {self.slope:+.3g}/h; {crossing or 'no crossing in horizon'}"
        )


CONDITIONS: dict[str, type[Condition]] = {
    "threshold": Threshold, "rate_of_change": Rate, "geofence": Geofence, "route_deviation": RouteDeviation,
    "predicted_delay": PredictedDelay, "cold_chain": ColdChain, "drift": Drift, "trend": Trend,
}  # fmt: skip
