"""Where each shipment stands, as an operator reads it: from its plan (master data), the engine's
tracking of it (newest position, ETA band, minutes out of range, arrival: alerts.evaluate.Tracking)
and the alert book. Pure: frames in, frames out (dashboards/data.py does the reading).

The status is tower.domain.progress, the one definition the API and the CLI use too: cancelled,
delivered, planned, then on the road excursion (a cold-chain alert is active) before late (the
promised time plus the delay rule's tolerance has passed) before at risk (a delay alert is active)
before on time. The statuses follow the alert engine, so the dashboard and the notifications never
disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from alerts.conditions import PredictedDelay
from alerts.rules import ColdChainRule, PredictedDelayRule, RuleSet
from tower.domain import ACTIVE_STATUSES, Progress, Severity, ShipmentStatus, progress
from tower.masterdata.view import MasterData, ShipmentPlan

# RGB, readable on the light and the dark basemap.
STATUS_COLOURS: dict[str, tuple[int, int, int]] = {
    Progress.ON_TIME: (46, 160, 67),
    Progress.AT_RISK: (255, 160, 0),
    Progress.LATE: (220, 40, 40),
    Progress.EXCURSION: (160, 80, 230),
    Progress.DELIVERED: (100, 140, 170),
    Progress.PLANNED: (150, 160, 170),
    Progress.CANCELLED: (120, 120, 120),
}
UNPLANNED_COLOUR = (90, 90, 90)  # a tracker reporting with no shipment planned for it


@dataclass(frozen=True)
class RuleRoles:
    """Which rules of the rule set say that a shipment will be late, or is out of range, and the
    tolerance past the promised time that counts as late (the delay rule's)."""

    delay: frozenset[str]
    cold_chain: frozenset[str]
    late_tolerance_ms: int = 0

    @classmethod
    def of(cls, rules: RuleSet) -> RuleRoles:
        def ids(kind: type) -> frozenset[str]:
            return frozenset(rule.id for rule in rules.rules if isinstance(rule, kind))

        delay = [rule for rule in rules.rules if isinstance(rule, PredictedDelayRule)]
        return cls(ids(PredictedDelayRule), ids(ColdChainRule), min((r.tolerance for r in delay), default=0))


SHIPMENT_COLUMNS = [
    "shipment", "tracker", "status", "lane", "origin", "destination", "customer", "order", "cargo", "cold_chain",
    "departure_ms", "promised_ms", "arrival_ms", "eta_ms", "last_ms", "lat", "lon", "temp_c", "speed_kmh",
    "progress_pct", "remaining_km", "late_by_min", "excursion_min", "open_alerts", "worst",
]  # fmt: skip


def shipment_table(plans: dict[str, ShipmentPlan], tracking: pd.DataFrame, alerts: pd.DataFrame, roles: RuleRoles,
                   now_ms: int) -> pd.DataFrame:  # fmt: skip
    """One row per shipment (SHIPMENT_COLUMNS); times in epoch ms, NaN where unknown.

    `tracking`: the engine's rows (AlertBook.tracking); `alerts`: the alert book's rows (open ones
    and recent ones)."""
    tracked = {row["shipment_id"]: row for row in tracking.to_dict("records")}
    active = alerts[alerts["status"].isin(ACTIVE_STATUSES)]
    active_rules = active.groupby("entity")["rule"].agg(set).to_dict()
    open_count = active.groupby("entity").size().to_dict()
    worst = active.groupby("entity")["severity"].agg(lambda names: max(names, key=Severity.of)).to_dict()
    rows = []
    for shipment_id, plan in plans.items():
        track = tracked.get(shipment_id)
        shipment = plan.shipment
        seen = track is not None and track["last_ms"] >= plan.departure_ms and track["lat"] is not None
        arrived = track["arrived_ms"] if track is not None and _known(track["arrived_ms"]) else shipment.delivered
        rules = active_rules.get(shipment_id, set())
        status = progress(shipment.status, plan.departure_ms, plan.promised_ms, now_ms, seen_on_the_road=seen,
                          delivered=arrived is not None or shipment.status is ShipmentStatus.DELIVERED,
                          late_tolerance_ms=roles.late_tolerance_ms, cold_chain_alert=bool(rules & roles.cold_chain),
                          delay_alert=bool(rules & roles.delay))  # fmt: skip
        lat, lon = (track["lat"], track["lon"]) if seen else plan.origin.position
        remaining = track["remaining_m"] if seen and _known(track["remaining_m"]) else plan.route.length_m
        done = status is Progress.DELIVERED
        eta = track["eta_ms"] if seen and _known(track["eta_ms"]) else None
        rows.append({
            "shipment": shipment_id, "tracker": plan.tracker, "status": status.value, "lane": plan.lane,
            "origin": plan.origin.id, "destination": plan.destination.id,
            "customer": shipment.customer or plan.destination.name, "order": shipment.order, "cargo": plan.cargo,
            "cold_chain": plan.cargo_type.controlled, "departure_ms": plan.departure_ms,
            "promised_ms": plan.promised_ms, "arrival_ms": arrived, "eta_ms": eta,
            "last_ms": track["last_ms"] if seen else None, "lat": lat, "lon": lon,
            "temp_c": track["temp_c"] if seen else None, "speed_kmh": track["speed_kmh"] if seen else None,
            "progress_pct": 100.0 if done else round(100 * (1 - remaining / plan.route.length_m), 1),
            "remaining_km": 0.0 if done else round(remaining / 1000, 1),
            "late_by_min": round((eta - plan.promised_ms) / 60_000, 1) if eta is not None and not done else None,
            "excursion_min": round(track["excursion_ms"] / 60_000, 1) if seen else 0.0,
            "open_alerts": open_count.get(shipment_id, 0), "worst": worst.get(shipment_id),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=SHIPMENT_COLUMNS)


def unplanned_trackers(latest: pd.DataFrame, master: MasterData) -> pd.DataFrame:
    """Trackers reporting a position with no shipment planned for them now (no master data, or
    between shipments): device_id, ts_ms, lat, lon."""
    if latest.empty or "lat" not in latest or "lon" not in latest:
        return pd.DataFrame(columns=["device_id", "ts_ms", "lat", "lon"])
    rows = latest.dropna(subset=["lat", "lon"])
    planned = [master.plan_for(device, int(ts)) is not None for device, ts in zip(rows["device_id"], rows["ts_ms"],
                                                                                    strict=True)]  # fmt: skip
    return rows.loc[[not p for p in planned], ["device_id", "ts_ms", "lat", "lon"]].reset_index(drop=True)


def _known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def eta_band(plan: ShipmentPlan, rule: PredictedDelayRule, master: MasterData, track: pd.DataFrame) -> pd.DataFrame:
    """The delay rule's ETA (optimistic, central, pessimistic) after each position of the track, by
    replaying the rule's own model, so the chart shows what the alert engine saw."""
    condition = PredictedDelay()
    rows = []
    for ts, lat, lon in track[["ts_ms", "lat", "lon"]].itertuples(index=False):
        if pd.isna(lat) or pd.isna(lon):
            continue
        condition.step(rule, int(ts), {}, master.locate(plan, (lat, lon)), plan)
        if condition.eta_ms is not None:
            rows.append((ts, *condition.eta_ms))
    return pd.DataFrame(rows, columns=["ts_ms", "eta_early_ms", "eta_ms", "eta_late_ms"])


def timeline(plan: ShipmentPlan, track: pd.DataFrame, alerts: pd.DataFrame, arrived_ms: float | None) -> pd.DataFrame:
    """What happened to a shipment, in event time: departure, sites entered and left, alerts, arrival
    (`arrived_ms`: the confirmed arrival, tower.domain's definition)."""
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
                events.append((ts, "entered geofence", here))
        previous = here
    if _known(arrived_ms):
        events.append((arrived_ms, "delivered", plan.destination.id))
    for alert in alerts.to_dict("records"):
        events.append((alert["opened_ms"], f"alert {alert['rule']} ({alert['severity']})", alert["detail"]))
        if alert["resolved_ms"] is not None and not pd.isna(alert["resolved_ms"]):
            events.append((alert["resolved_ms"], f"alert {alert['rule']} resolved", ""))
    events.append((plan.promised_ms, "promised delivery", plan.destination.id))
    frame = pd.DataFrame(events, columns=["ts_ms", "event", "detail"])
    return frame.sort_values("ts_ms", kind="stable", ignore_index=True)
