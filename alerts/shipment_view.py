"""Where each shipment stands, as an operator reads it, computed once for every view: the dashboard,
the HTTP API and `tower shipments` all call `shipment_views`. Pure.

From its plan (master data), the engine's tracking of it (newest position, ETA band, minutes out
of range, arrival: evaluate.Tracking, kept in the alert book) and the active alerts. The status is
tower.domain.progress: cancelled, delivered, planned, then on the road excursion (a cold-chain alert
is active) before late (the promised time plus the delay rule's tolerance has passed) before at
risk (a delay alert is active) before on time. It follows the alert engine, so a page and a
notification never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from alerts.evaluate import Tracking
from alerts.rules import ColdChainRule, PredictedDelayRule, RuleSet
from tower.domain import ACTIVE_STATUSES, Progress, Severity, ShipmentStatus, progress
from tower.masterdata.view import ShipmentPlan


@dataclass(frozen=True)
class RuleRoles:
    """Which rules say that a shipment will be late or is out of range, and the tolerance past the
    promised time that counts as late (the delay rule's)."""

    delay: frozenset[str]
    cold_chain: frozenset[str]
    late_tolerance_ms: int = 0

    @classmethod
    def of(cls, rules: RuleSet) -> RuleRoles:
        def ids(kind: type) -> frozenset[str]:
            return frozenset(rule.id for rule in rules.rules if isinstance(rule, kind))

        delay = [rule for rule in rules.rules if isinstance(rule, PredictedDelayRule)]
        return cls(ids(PredictedDelayRule), ids(ColdChainRule), min((r.tolerance for r in delay), default=0))


@dataclass(frozen=True)
class ShipmentView:
    """One shipment as every view shows it; times in epoch ms, None where unknown."""

    shipment: str
    tracker: str
    status: str  # a tower.domain.Progress value
    lane: str
    origin: str
    destination: str
    customer: str
    order: str
    cargo: str
    cold_chain: bool
    departure_ms: int
    promised_ms: int
    arrival_ms: int | None
    eta_ms: int | None
    eta_early_ms: int | None
    eta_late_ms: int | None
    last_ms: int | None
    lat: float
    lon: float
    temp_c: float | None
    speed_kmh: float | None
    progress_pct: float
    remaining_km: float
    late_by_min: float | None
    excursion_min: float
    open_alerts: int
    worst: str | None


def shipment_views(plans: dict[str, ShipmentPlan], tracking: dict[str, Tracking], alerts: list[dict],
                   roles: RuleRoles, now_ms: int) -> list[ShipmentView]:  # fmt: skip
    """`tracking`: the engine's by shipment id (AlertBook.tracking); `alerts`: alert book rows (rule,
    entity, severity, status), of which the active ones count."""
    rules: dict[str, set[str]] = defaultdict(set)
    worst: dict[str, Severity] = {}
    count: dict[str, int] = defaultdict(int)
    for alert in alerts:
        if alert["status"] in ACTIVE_STATUSES:
            entity, severity = alert["entity"], Severity.of(alert["severity"])
            rules[entity].add(alert["rule"])
            count[entity] += 1
            worst[entity] = max(worst.get(entity, severity), severity)
    return [_view(plan, tracking.get(shipment_id), rules[shipment_id], count[shipment_id], worst.get(shipment_id),
                  roles, now_ms) for shipment_id, plan in plans.items()]  # fmt: skip


def _view(plan: ShipmentPlan, track: Tracking | None, rules: set[str], open_alerts: int, worst: Severity | None,
          roles: RuleRoles, now_ms: int) -> ShipmentView:  # fmt: skip
    shipment = plan.shipment
    seen = track is not None and track.last_ms >= plan.departure_ms and track.lat is not None
    arrived = track.arrived_ms if track is not None and track.arrived_ms is not None else shipment.delivered
    status = progress(shipment.status, plan.departure_ms, plan.promised_ms, now_ms, seen_on_the_road=seen,
                      delivered=arrived is not None or shipment.status is ShipmentStatus.DELIVERED,
                      late_tolerance_ms=roles.late_tolerance_ms, cold_chain_alert=bool(rules & roles.cold_chain),
                      delay_alert=bool(rules & roles.delay))  # fmt: skip
    done = status is Progress.DELIVERED
    lat, lon = (track.lat, track.lon) if seen else plan.origin.position
    remaining = track.remaining_m if seen and track.remaining_m is not None else plan.route.length_m
    eta = (track.eta_early_ms, track.eta_ms, track.eta_late_ms) if seen else (None, None, None)
    return ShipmentView(
        shipment=shipment.id, tracker=plan.tracker, status=status.value, lane=plan.lane, origin=plan.origin.id,
        destination=plan.destination.id, customer=shipment.customer or plan.destination.name, order=shipment.order,
        cargo=plan.cargo, cold_chain=plan.cargo_type.controlled, departure_ms=plan.departure_ms,
        promised_ms=plan.promised_ms, arrival_ms=arrived, eta_ms=eta[1], eta_early_ms=eta[0], eta_late_ms=eta[2],
        last_ms=track.last_ms if seen else None, lat=lat, lon=lon, temp_c=track.temp_c if seen else None,
        speed_kmh=track.speed_kmh if seen else None,
        progress_pct=100.0 if done else round(100 * (1 - remaining / plan.route.length_m), 1),
        remaining_km=0.0 if done else round(remaining / 1000, 1),
        late_by_min=round((eta[1] - plan.promised_ms) / 60_000, 1) if eta[1] is not None and not done else None,
        excursion_min=round(track.excursion_ms / 60_000, 1) if seen else 0.0, open_alerts=open_alerts,
        worst=worst.label if worst else None,
    )  # fmt: skip
