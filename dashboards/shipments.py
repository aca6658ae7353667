"""Where each shipment stands, as an operator reads it: from its plan, its tracker's newest reading
and the alert book. Pure: frames in, frames out (dashboards/data.py does the reading).

Status of a shipment: planned (not departed), then while on the road excursion (a cold-chain
alert is open) before late (the promised time has passed) before at risk (a delay alert is open)
before on time, and delivered once it has arrived. The statuses follow the alert engine, so the
dashboard and the notifications never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from alerts.book import OPEN
from alerts.conditions import ColdChain, PredictedDelay
from alerts.network import Network, ShipmentPlan
from alerts.rules import ColdChainRule, PredictedDelayRule, RuleSet, Severity

# RGB, readable on the light and the dark basemap.
STATUS_COLOURS: dict[str, tuple[int, int, int]] = {
    "on time": (46, 160, 67),
    "at risk": (255, 160, 0),
    "late": (220, 40, 40),
    "excursion": (160, 80, 230),
    "delivered": (100, 140, 170),
    "planned": (150, 160, 170),
}
ON_THE_ROAD = ("on time", "at risk", "late", "excursion")


@dataclass(frozen=True)
class RuleRoles:
    """Which rules of the rule set say that a shipment will be late, or is out of range."""

    delay: frozenset[str]
    cold_chain: frozenset[str]

    @classmethod
    def of(cls, rules: RuleSet) -> RuleRoles:
        def ids(kind: type) -> frozenset[str]:
            return frozenset(rule.id for rule in rules.rules if isinstance(rule, kind))

        return cls(ids(PredictedDelayRule), ids(ColdChainRule))


SHIPMENT_COLUMNS = [
    "shipment", "tracker", "status", "lane", "origin", "destination", "customer", "cargo", "cold_chain",
    "departure_ms", "promised_ms", "arrival_ms", "last_ms", "lat", "lon", "temp_c", "speed_kmh",
    "progress_pct", "remaining_km", "late_by_min", "open_alerts", "worst",
]  # fmt: skip


def shipment_table(
    plans: dict[str, ShipmentPlan],
    latest: pd.DataFrame,
    alerts: pd.DataFrame,
    roles: RuleRoles,
    site_names: dict[str, str],
    now_ms: int,
    arrival_of: Callable[[str, int], int | None],
) -> pd.DataFrame:
    """One row per shipment (SHIPMENT_COLUMNS); times in epoch ms, NaN where unknown.

    `latest`: the trackers' newest readings (device_id, ts_ms, lat, lon, ...); `alerts`: the alert
    book's rows (open ones and recent ones); `arrival_of(tracker, newest reading's ts_ms)`: when a
    shipment whose newest position is inside its destination's geofence got there.
    """
    newest = {row["device_id"]: row for row in latest.to_dict("records")}
    open_alerts = alerts[alerts["status"].isin(OPEN)]
    open_rules = open_alerts.groupby("entity")["rule"].agg(set).to_dict()
    open_count = open_alerts.groupby("entity").size().to_dict()
    worst = open_alerts.groupby("entity")["severity"].agg(lambda names: max(names, key=_level)).to_dict()
    delay = open_alerts[open_alerts["rule"].isin(roles.delay)].groupby("entity")["value"].max().to_dict()
    rows = []
    for tracker, plan in plans.items():
        reading = newest.get(tracker)
        seen = reading is not None and reading["ts_ms"] >= plan.departure_ms
        point = (reading["lat"], reading["lon"]) if seen else plan.origin.position
        along = plan.route.distance_from(point)[1] if seen else 0.0
        arrived = seen and plan.destination.contains(point)
        arrival = arrival_of(tracker, reading["ts_ms"]) if arrived else None
        rules = open_rules.get(plan.shipment_id, set())
        rows.append(
            {
                "shipment": plan.shipment_id,
                "tracker": tracker,
                "status": _status(plan, now_ms, seen, arrived, rules, roles),
                "lane": plan.lane,
                "origin": plan.origin.id,
                "destination": plan.destination.id,
                "customer": site_names.get(plan.destination.id, plan.destination.id),
                "cargo": plan.cargo,
                "cold_chain": plan.cargo_range.cold_chain,
                "departure_ms": plan.departure_ms,
                "promised_ms": plan.promised_ms,
                "arrival_ms": arrival,
                "last_ms": reading["ts_ms"] if seen else None,
                "lat": point[0],
                "lon": point[1],
                "temp_c": reading.get("temp_c") if seen else None,
                "speed_kmh": reading.get("speed_kmh") if seen else None,
                "progress_pct": round(100 * along / plan.route.length_m, 1) if not arrived else 100.0,
                "remaining_km": round(max(0.0, plan.route.length_m - along) / 1000, 1) if not arrived else 0.0,
                "late_by_min": delay.get(plan.shipment_id),
                "open_alerts": open_count.get(plan.shipment_id, 0),
                "worst": worst.get(plan.shipment_id),
            }
        )
    return pd.DataFrame(rows, columns=SHIPMENT_COLUMNS)


def _level(severity: str) -> Severity:
    return Severity[severity.upper()]


def _status(plan: ShipmentPlan, now_ms: int, seen: bool, arrived: bool, rules: set[str], roles: RuleRoles) -> str:
    if arrived:
        return "delivered"
    if not seen and now_ms < plan.departure_ms:
        return "planned"
    if rules & roles.cold_chain:
        return "excursion"
    if now_ms > plan.promised_ms:
        return "late"
    if rules & roles.delay:
        return "at risk"
    return "on time"


def arrived_at(plan: ShipmentPlan, track: pd.DataFrame) -> int | None:
    """When a shipment that is now at its destination got there: the first position of the last
    unbroken run inside the destination's geofence (track: ts_ms, lat, lon, oldest first). Read
    from the newest back, so a long trip costs only its time at the destination."""
    first = None
    for ts, lat, lon in track[["ts_ms", "lat", "lon"]].iloc[::-1].itertuples(index=False):
        if pd.isna(lat) or pd.isna(lon):
            continue
        if not plan.destination.contains((lat, lon)):
            break
        first = int(ts)
    return first


def eta_band(plan: ShipmentPlan, rule: PredictedDelayRule, network: Network, track: pd.DataFrame) -> pd.DataFrame:
    """The delay rule's ETA (optimistic, central, pessimistic) after each position of the track, by
    replaying the rule's own model, so the chart shows what the alert engine saw."""
    condition = PredictedDelay()
    rows = []
    for ts, lat, lon in track[["ts_ms", "lat", "lon"]].itertuples(index=False):
        if pd.isna(lat) or pd.isna(lon):
            continue
        condition.step(rule, int(ts), {}, network.locate(plan, (lat, lon)), plan)
        if condition.eta_ms is not None:
            rows.append((ts, *condition.eta_ms))
    return pd.DataFrame(rows, columns=["ts_ms", "eta_early_ms", "eta_ms", "eta_late_ms"])


def excursion_minutes(plan: ShipmentPlan, rule: ColdChainRule, track: pd.DataFrame) -> float:
    """Minutes out of range so far, counted by the cold-chain rule's own model (what spends its budget)."""
    condition = ColdChain()
    for ts, value in track[["ts_ms", rule.field]].dropna().itertuples(index=False):
        condition.step(rule, int(ts), {rule.field: float(value)}, None, plan)
    return condition.out_ms / 60_000


def timeline(plan: ShipmentPlan, track: pd.DataFrame, alerts: pd.DataFrame) -> pd.DataFrame:
    """What happened to a shipment, in event time: departure, sites entered and left, alerts, arrival."""
    events = [(plan.departure_ms, "planned departure", plan.origin.id)]
    previous = None
    for ts, lat, lon in track[["ts_ms", "lat", "lon"]].itertuples(index=False):
        if pd.isna(lat) or pd.isna(lon):
            continue
        here = next((s.id for s in (plan.origin, plan.destination) if s.contains((lat, lon))), None)
        if here != previous:
            if previous is not None:
                events.append((ts, "departed" if previous == plan.origin.id else "left geofence", previous))
            if here is not None:
                events.append((ts, "delivered" if here == plan.destination.id else "entered geofence", here))
        previous = here
    for alert in alerts.to_dict("records"):
        events.append((alert["opened_ms"], f"alert {alert['rule']} ({alert['severity']})", alert["detail"]))
        if alert["resolved_ms"] is not None and not pd.isna(alert["resolved_ms"]):
            events.append((alert["resolved_ms"], f"alert {alert['rule']} resolved", ""))
    events.append((plan.promised_ms, "promised delivery", plan.destination.id))
    frame = pd.DataFrame(events, columns=["ts_ms", "event", "detail"])
    return frame.sort_values("ts_ms", kind="stable", ignore_index=True)
