"""Equipment health: a score per machine from its newest reading against its limits, the open
alerts that cap it, and the projected time until a signal reaches its limit. Pure.

Limits come from the rule set (the lowest `above` of an equipment threshold rule, or `limit` of an
upward trend rule, per field, resolved against the machine's own healthy ranges from master data
as the engine resolves them). A field's
score is 100 up to the top of its healthy range and falls linearly to 0 at its limit; the
machine's health is its worst field's, capped by its worst open alert (critical 10, major 40,
minor 70) and 0 in state fault.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from alerts.conditions import Trend
from alerts.rules import Rule, RuleSet, ThresholdRule, TrendRule, for_entity
from tower.contract import DeviceKind
from tower.domain import ACTIVE_STATUSES
from tower.masterdata.model import Equipment, Range

SIGNALS = {"vibration_rms_mm_s": "vibration (mm/s)", "bearing_temp_c": "bearing (°C)", "motor_current_a": "current (A)"}
ALERT_CAP = {"critical": 10.0, "major": 40.0, "minor": 70.0}
HEALTH_COLUMNS = ["equipment", "site", "type", "state", "health", "hours_to_limit", "open_alerts", "worst",
                  *SIGNALS, "last_ms"]  # fmt: skip


@dataclass(frozen=True)
class Limits:
    rules: tuple[Rule, ...]  # equipment threshold rules with `above`, and upward trend rules
    trend: TrendRule | None  # the rule set's upward trend rule: its window and horizon project every field

    @classmethod
    def of(cls, rules: RuleSet) -> Limits:
        chosen = tuple(
            rule for rule in rules.rules
            if rule.scope.kind == DeviceKind.EQUIPMENT and (
                (isinstance(rule, ThresholdRule) and rule.above is not None)
                or (isinstance(rule, TrendRule) and rule.direction == "up"))
        )  # fmt: skip
        return cls(chosen, next((rule for rule in chosen if isinstance(rule, TrendRule)), None))

    def of_machine(self, healthy: dict[str, Range]) -> dict[str, float]:
        """Per field, the lowest limit of the rules as they judge a machine with these healthy ranges."""
        limits: dict[str, float] = {}
        for rule in self.rules:
            resolved = for_entity(rule, healthy)
            if resolved is not None:
                value = resolved.limit if isinstance(resolved, TrendRule) else resolved.above
                limits[rule.field] = min(value, limits.get(rule.field, math.inf))
        return limits


def field_score(value: float, healthy_high: float, limit: float) -> float:
    if value <= healthy_high:
        return 100.0
    return max(0.0, 100.0 * (limit - value) / (limit - healthy_high)) if limit > healthy_high else 0.0


def health_table(machines: dict[str, Equipment], latest: pd.DataFrame, alerts: pd.DataFrame, limits: Limits,
                 trend_rules: frozenset[str]) -> pd.DataFrame:  # fmt: skip
    """One row per machine, riskiest first (lowest health, then nearest projected limit). Machines
    reporting that master data does not know are listed too, with no health score (no healthy range)."""
    newest = {row["device_id"]: row for row in latest.to_dict("records")}
    active = alerts.loc[alerts["status"].isin(ACTIVE_STATUSES), ["entity", "severity", "rule", "value"]]
    by_machine: dict[str, list[tuple[str, str, float]]] = defaultdict(list)  # plain lists: 200 machines in ms
    for entity, severity, rule, value in active.itertuples(index=False):
        by_machine[entity].append((severity, rule, value))
    rows = []
    for machine in [*machines, *(device for device in newest if device not in machines)]:
        group = machines.get(machine)
        reading = newest.get(machine, {})
        mine = by_machine.get(machine, [])
        healthy = group.healthy.ranges() if group else {}
        own = limits.of_machine(healthy)
        scores = [
            field_score(reading[name], healthy[name].max, own[name])
            for name in SIGNALS
            if name in own and not pd.isna(reading.get(name, math.nan))
        ]
        health = min(scores, default=100.0) if group else math.nan
        for severity, _, _ in mine:
            health = min(health, ALERT_CAP.get(severity, 100.0))
        if reading.get("state") == "fault":
            health = 0.0
        hours = [value for _, rule, value in mine if rule in trend_rules and not pd.isna(value)]
        rows.append(
            {
                "equipment": machine,
                "site": group.site if group else "",
                "type": group.type if group else "unknown to master data",
                "state": reading.get("state"),
                "health": health if math.isnan(health) else round(health),
                "hours_to_limit": float(min(hours)) if hours else None,
                "open_alerts": len(mine),
                "worst": ", ".join(sorted({severity for severity, _, _ in mine})),
                **{name: reading.get(name) for name in SIGNALS},
                "last_ms": reading.get("ts_ms"),
            }
        )
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    return frame.sort_values(["health", "hours_to_limit"], na_position="last", ignore_index=True)


def projection(series: pd.DataFrame, field: str, limits: Limits, own: dict[str, float]) -> tuple[float | None, str]:
    """Hours until `field` reaches its limit (`own`: the machine's, Limits.of_machine) on its current
    trend (None: not within the trend rule's horizon, or no trend yet), by replaying the trend
    rule's own model over the series."""
    if limits.trend is None or field not in own:
        return None, "no limit for this signal in the rule set"
    rule = limits.trend.model_copy(update={"field": field, "limit": own[field]})
    condition = Trend()
    for ts, value in series[["ts_ms", field]].dropna().itertuples(index=False):
        condition.step(rule, int(ts), {field: float(value)}, None, None)
    return condition.value, condition.detail or "not enough history for a trend"
