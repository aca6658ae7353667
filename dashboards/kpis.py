"""The Overview's key figures, each for the chosen period and the period before it. Pure.

Periods are in event time and end at the newest event time in the store ("as of"), so a replay
or a back-fill shows the figures of its own time. Response times (to acknowledge, to resolve) are
people's time: the wall clock from when the engine raised the alert.

A figure "now" is counted exactly as the other views count it (the same snapshot, the same
definitions): shipments on the road by their status (alerts.shipment_view, the Map's colours),
alerts by their status in the book (tower.domain.ACTIVE_STATUSES, the Alerts page's active queue,
`tower alerts list`). The period before can only be reconstructed from event times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from alerts.shipment_view import RuleRoles
from tower.domain import ACTIVE_STATUSES, OFFLINE_AFTER_MS, ON_THE_ROAD, is_offline

MINUTE = 60_000
RATE_WINDOW_MS = 5 * MINUTE  # ingest rate: readings per second over the last five minutes


@dataclass(frozen=True)
class Kpi:
    label: str
    value: float | None
    previous: float | None = None  # None: no comparison (the figure has no history)
    unit: str = ""
    good: str = "up"  # which way is better: up, down, or off (neither)
    help: str = ""

    @property
    def delta(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


def _active_end(shipments: pd.DataFrame) -> pd.Series:
    """When each shipment left the road: arrival, else its last reading if it is delivered, else never."""
    delivered_unknown = (shipments["status"] == "delivered") & shipments["arrival_ms"].isna()
    end = shipments["arrival_ms"].astype("float64")
    return end.where(~delivered_unknown, shipments["last_ms"]).fillna(math.inf)


def in_transit_at(shipments: pd.DataFrame, at_ms: int) -> int:
    return int(((shipments["departure_ms"] <= at_ms) & (_active_end(shipments) > at_ms)).sum())


def on_time_rate(shipments: pd.DataFrame, since_ms: int, until_ms: int) -> float | None:
    """Of the shipments promised in [since, until), the share that arrived by the promised time
    (not yet arrived counts as late; delivered without a recorded arrival time is left out)."""
    due = shipments[(shipments["promised_ms"] >= since_ms) & (shipments["promised_ms"] < until_ms)]
    due = due[~((due["status"] == "delivered") & due["arrival_ms"].isna())]
    if due.empty:
        return None
    return round(100 * float((due["arrival_ms"] <= due["promised_ms"]).mean()), 1)


def firing_at(alerts: pd.DataFrame, at_ms: int) -> pd.DataFrame:
    """Alerts that had fired and not yet resolved at a moment."""
    ended = alerts["resolved_ms"].fillna(math.inf)
    return alerts[(alerts["fired_ms"] <= at_ms) & (ended > at_ms)]


def cold_chain_compliance(shipments: pd.DataFrame, alerts: pd.DataFrame, roles: RuleRoles, since_ms: int,
                          until_ms: int) -> float | None:  # fmt: skip
    """Of the cold-chain shipments on the road during [since, until), the share without a cold-chain
    alert firing at any time in it."""
    on_road = shipments["cold_chain"] & (shipments["departure_ms"] < until_ms) & (_active_end(shipments) >= since_ms)
    active = shipments[on_road]
    if active.empty:
        return None
    cold = alerts[alerts["rule"].isin(roles.cold_chain)]
    firing = cold[(cold["fired_ms"] < until_ms) & (cold["resolved_ms"].fillna(math.inf) >= since_ms)]
    return round(100 * float((~active["shipment"].isin(set(firing["entity"]))).mean()), 1)


def mean_minutes(alerts: pd.DataFrame, until_column: str, since_ms: int, until_ms: int) -> float | None:
    """Mean minutes from raised to `until_column` (wall clock), for alerts fired in [since, until)."""
    fired = alerts[(alerts["fired_ms"] >= since_ms) & (alerts["fired_ms"] < until_ms)]
    spans = (fired[until_column] - fired["raised_wall_ms"]).dropna()
    return round(float(spans.mean()) / MINUTE, 1) if not spans.empty else None


def overview(shipments: pd.DataFrame, alerts: pd.DataFrame, devices: pd.DataFrame, roles: RuleRoles,
             counts: tuple[int, int], now_ms: int, period_ms: int, wall_ms: int) -> list[Kpi]:  # fmt: skip
    """The Overview's figures. `counts`: readings in the last and the previous RATE_WINDOW_MS;
    `devices`: device_id, kind, last_ms, expected (should be reporting now)."""
    before = now_ms - period_ms
    delay = alerts[alerts["rule"].isin(roles.delay)]
    expected = devices[devices["expected"]]
    online = sum(not is_offline(None if pd.isna(last) else int(last), now_ms) for last in expected["last_ms"])
    newest = devices["last_ms"].max() if not devices.empty else None
    active = alerts[alerts["status"].isin(ACTIVE_STATUSES)]
    active_delay = active[active["rule"].isin(roles.delay)]
    kpis = [
        Kpi("In transit", int(shipments["status"].isin(ON_THE_ROAD).sum()), in_transit_at(shipments, before),
            good="off", help="shipments on the road: on time, at risk, late or excursion (the Map's colours)"),
        Kpi("On-time rate", on_time_rate(shipments, before, now_ms),
            on_time_rate(shipments, before - period_ms, before), "%",
            help="shipments promised in the period that arrived by the promised time"),
        Kpi("Predicted late", active_delay["entity"].nunique(), firing_at(delay, before)["entity"].nunique(),
            good="down", help="shipments with a delay alert firing or acknowledged"),
        Kpi("Cold-chain compliance", cold_chain_compliance(shipments, alerts, roles, before, now_ms),
            cold_chain_compliance(shipments, alerts, roles, before - period_ms, before), "%",
            help="cold-chain shipments on the road in the period without an excursion alert"),
    ]  # fmt: skip
    then_open = firing_at(alerts, before)
    for severity in ("critical", "major", "minor"):
        kpis.append(Kpi(f"Active {severity}", int((active["severity"] == severity).sum()),
                        int((then_open["severity"] == severity).sum()), good="down",
                        help=f"{severity} alerts firing or acknowledged (pending ones wait out their hold and are "
                             "not counted): the Alerts page's active queue"))  # fmt: skip
    kpis += [
        Kpi("Mean time to acknowledge", mean_minutes(alerts, "acked_ms", before, now_ms),
            mean_minutes(alerts, "acked_ms", before - period_ms, before), "min", good="down",
            help="raised to acknowledged, wall clock, alerts fired in the period"),
        Kpi("Mean time to resolve", mean_minutes(alerts, "resolved_wall_ms", before, now_ms),
            mean_minutes(alerts, "resolved_wall_ms", before - period_ms, before), "min", good="down",
            help="raised to resolved, wall clock, alerts fired in the period"),
        Kpi("Devices online", online, None,
            help=f"reported within {OFFLINE_AFTER_MS // MINUTE} min, of those expected to"),
        Kpi("Devices offline", len(expected) - online, None, good="down",
            help="expected to report (on the road, in a warehouse, installed) but silent"),
        Kpi("Ingest rate", round(counts[0] / (RATE_WINDOW_MS / 1000), 1),
            round(counts[1] / (RATE_WINDOW_MS / 1000), 1), "/s", good="off",
            help="readings per second by event time, last 5 min vs the 5 min before"),
        Kpi("Ingest lag", None if newest is None else round(max(0, wall_ms - newest) / 1000, 1), None, "s",
            good="down", help="wall clock minus the newest event time stored"),
    ]  # fmt: skip
    return kpis
