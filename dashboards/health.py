"""Equipment health: a score per machine from its newest reading against its limits, the open
alerts that cap it, and the projected time until a signal reaches its limit. Pure.

Limits come from the rule set (the lowest `above` of an equipment threshold rule, or `limit` of an
upward trend rule, per field), healthy ranges from the scenario's equipment groups. A field's
score is 100 up to the top of its healthy range and falls linearly to 0 at its limit; the
machine's health is its worst field's, capped by its worst open alert (critical 10, major 40,
minor 70) and 0 in state fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from alerts.book import OPEN
from alerts.conditions import Trend
from alerts.rules import RuleSet, ThresholdRule, TrendRule
from tower.contract import DeviceKind
from tower.scenario import EquipmentGroup

SIGNALS = {"vibration_rms_mm_s": "vibration (mm/s)", "bearing_temp_c": "bearing (°C)", "motor_current_a": "current (A)"}
ALERT_CAP = {"critical": 10.0, "major": 40.0, "minor": 70.0}
HEALTH_COLUMNS = ["equipment", "site", "type", "state", "health", "hours_to_limit", "open_alerts", "worst",
                  *SIGNALS, "last_ms"]  # fmt: skip


@dataclass(frozen=True)
class Limits:
    limits: dict[str, float]  # per field
    trend: TrendRule | None  # the rule set's upward trend rule: its window and horizon project every field

    @classmethod
    def of(cls, rules: RuleSet) -> Limits:
        limits: dict[str, float] = {}
        trend = None
        for rule in rules.rules:
            if rule.scope.kind != DeviceKind.EQUIPMENT:
                continue
            if isinstance(rule, ThresholdRule) and rule.above is not None:
                limits[rule.field] = min(rule.above, limits.get(rule.field, math.inf))
            elif isinstance(rule, TrendRule) and rule.direction == "up":
                limits[rule.field] = min(rule.limit, limits.get(rule.field, math.inf))
                trend = trend or rule
        return cls(limits, trend)


def field_score(value: float, healthy_high: float, limit: float) -> float:
    if value <= healthy_high:
        return 100.0
    return max(0.0, 100.0 * (limit - value) / (limit - healthy_high)) if limit > healthy_high else 0.0


def health_table(machines: dict[str, EquipmentGroup], latest: pd.DataFrame, alerts: pd.DataFrame, limits: Limits,
                 trend_rules: frozenset[str]) -> pd.DataFrame:  # fmt: skip
    """One row per machine, riskiest first (lowest health, then nearest projected limit)."""
    newest = {row["device_id"]: row for row in latest.to_dict("records")}
    open_alerts = alerts[alerts["status"].isin(OPEN)]
    by_machine = {entity: group for entity, group in open_alerts.groupby("entity")}
    rows = []
    for machine, group in machines.items():
        reading = newest.get(machine, {})
        mine = by_machine.get(machine, open_alerts.iloc[0:0])
        scores = [
            field_score(reading[name], getattr(group.healthy, name)[1], limits.limits[name])
            for name in SIGNALS
            if name in limits.limits and not pd.isna(reading.get(name, math.nan))
        ]
        health = min(scores, default=100.0)
        for severity in mine["severity"]:
            health = min(health, ALERT_CAP.get(severity, 100.0))
        if reading.get("state") == "fault":
            health = 0.0
        hours = mine[mine["rule"].isin(trend_rules)]["value"].dropna()
        rows.append(
            {
                "equipment": machine,
                "site": group.site,
                "type": group.type,
                "state": reading.get("state"),
                "health": round(health),
                "hours_to_limit": float(hours.min()) if not hours.empty else None,
                "open_alerts": len(mine),
                "worst": ", ".join(sorted(set(mine["severity"]))),
                **{name: reading.get(name) for name in SIGNALS},
                "last_ms": reading.get("ts_ms"),
            }
        )
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    return frame.sort_values(["health", "hours_to_limit"], na_position="last", ignore_index=True)


def projection(series: pd.DataFrame, field: str, limits: Limits) -> tuple[float | None, str]:
    """Hours until `field` reaches its limit on its current trend (None: not within the trend
    rule's horizon, or no trend yet), by replaying the trend rule's own model over the series."""
    if limits.trend is None or field not in limits.limits:
        return None, "no limit for this signal in the rule set"
    rule = limits.trend.model_copy(update={"field": field, "limit": limits.limits[field]})
    condition = Trend()
    for ts, value in series[["ts_ms", field]].dropna().itertuples(index=False):
        condition.step(rule, int(ts), {field: float(value)}, None, None)
    return condition.value, condition.detail or "not enough history for a trend"
