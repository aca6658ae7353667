"""Shipments on the dashboard: the status colours, trackers with no plan, and for one shipment the
ETA band and timeline. Where each shipment stands is alerts.shipment_view's, shared with the API
and the CLI. Pure: frames in, frames out (dashboards/data.py does the reading).
"""

from __future__ import annotations

import pandas as pd

from alerts.book import ENGINE
from alerts.conditions import PredictedDelay
from alerts.rules import PredictedDelayRule
from tower.domain import Progress
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
URGENCY = (Progress.EXCURSION, Progress.LATE, Progress.AT_RISK, Progress.ON_TIME, Progress.PLANNED,
           Progress.DELIVERED, Progress.CANCELLED)  # fmt: skip


def most_urgent_first(table: pd.DataFrame) -> pd.DataFrame:
    """Shipments by status, the most urgent first (URGENCY), then by promised time."""
    rank = table["status"].map({status: n for n, status in enumerate(URGENCY)})
    return table.assign(_rank=rank).sort_values(["_rank", "promised_ms"], kind="stable").drop(columns="_rank")


def unplanned_trackers(latest: pd.DataFrame, master: MasterData) -> pd.DataFrame:
    """Trackers reporting a position with no shipment planned for them now (no master data, or
    between shipments): device_id, ts_ms, lat, lon."""
    if latest.empty or "lat" not in latest or "lon" not in latest:
        return pd.DataFrame(columns=["device_id", "ts_ms", "lat", "lon"])
    rows = latest.dropna(subset=["lat", "lon"])
    planned = [master.plan_for(device, int(ts)) is not None for device, ts in zip(rows["device_id"], rows["ts_ms"],
                                                                                    strict=True)]  # fmt: skip
    return rows.loc[[not p for p in planned], ["device_id", "ts_ms", "lat", "lon"]].reset_index(drop=True)


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


def replay_times(times: list[int], plan: ShipmentPlan, steps: int) -> list[int]:
    """A replay's times (epoch ms of positions, oldest first): about `steps` over the planned trip,
    the first of each equal span from the first position, and the newest. The spans stay put as
    positions come in, so a time someone chose on the slider is still there at the next refresh."""
    span_ms = max(1, -(-(plan.promised_ms - plan.departure_ms) // (steps * 60_000))) * 60_000
    firsts: dict[int, int] = {}
    for ts in times:
        firsts.setdefault((ts - times[0]) // span_ms, ts)
    return sorted({*firsts.values(), times[-1]})


def timeline(plan: ShipmentPlan, track: pd.DataFrame, steps: list[dict], arrived_ms: float | None) -> pd.DataFrame:
    """What happened to a shipment: departure, sites entered and left, arrival (`arrived_ms`: the
    confirmed arrival, tower.domain's definition), in event time, and each step of its alerts as the
    audit trail has it (`steps`: the book's history rows with their rule: what the engine said
    at that step, in event time; a person's action at the time they took it)."""
    events = [(plan.departure_ms, "planned departure", plan.origin.label)]
    previous = None
    for ts, lat, lon in track[["ts_ms", "lat", "lon"]].itertuples(index=False):
        if pd.isna(lat) or pd.isna(lon):
            continue
        here = next((s for s in (plan.origin, plan.destination) if s.contains((lat, lon))), None)
        if here != previous:
            if previous is not None:
                events.append((ts, "departed" if previous == plan.origin else "left geofence", previous.label))
            if here is not None:
                events.append((ts, "entered geofence", here.label))
        previous = here
    if arrived_ms is not None and not pd.isna(arrived_ms):
        events.append((arrived_ms, "delivered", plan.destination.label))
    for step in steps:
        by = "" if step["actor"] == ENGINE else f" by {step['actor']}"
        events.append((step["at_ms"], f"alert {step['rule']} {step['status']}{by}", step["note"]))
    events.append((plan.promised_ms, "promised delivery", plan.destination.label))
    frame = pd.DataFrame(events, columns=["ts_ms", "event", "detail"])
    return frame.sort_values("ts_ms", kind="stable", ignore_index=True)
