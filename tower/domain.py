"""The domain's notions, each defined once: severity and its order, which alert statuses are open,
a shipment's status, when a shipment counts as delivered, late, and a device as offline.

The alert engine, the dashboard, the HTTP API and the CLI all import these; none of them decides
any of it on its own. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal


class Severity(IntEnum):
    """How bad an alert is; a higher value is worse."""

    INFO = 1
    MINOR = 2
    MAJOR = 3
    CRITICAL = 4

    @classmethod
    def of(cls, name: str) -> Severity:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


SeverityName = Literal["info", "minor", "major", "critical"]
SEVERITIES_WORST_FIRST: tuple[str, ...] = tuple(s.label for s in sorted(Severity, reverse=True))

# An alert's life: pending -> firing -> acknowledged -> resolved -> closed.
ALERT_STATUSES = ("pending", "firing", "acknowledged", "resolved", "closed")
OPEN_STATUSES = ("pending", "firing", "acknowledged")  # what the queue shows and one (rule, entity) may have once
ACTIVE_STATUSES = ("firing", "acknowledged")  # open and past its hold: counted in KPIs and statuses


class ShipmentStatus(StrEnum):
    """A shipment's status as its owner (TMS, CSV, API, the simulator) states it."""

    PLANNED = "planned"
    DEPARTED = "departed"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Progress(StrEnum):
    """Where a shipment stands as an operator reads it (the dashboard's colours, the API's status)."""

    PLANNED = "planned"
    ON_TIME = "on time"
    AT_RISK = "at risk"
    LATE = "late"
    EXCURSION = "excursion"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


ON_THE_ROAD = (Progress.ON_TIME, Progress.AT_RISK, Progress.LATE, Progress.EXCURSION)

# Delivered: this many readings in a row inside the destination's geofence (one GPS outlier that
# lands there is not a delivery), or the owner says so.
DELIVERY_CONFIRMING_READINGS = 2


@dataclass(slots=True)
class ArrivalWatch:
    """Feeds on a tracker's positions in event-time order (inside the destination's geofence or
    not) and confirms an arrival: the first reading of the first run of DELIVERY_CONFIRMING_READINGS
    readings inside. `arrived_ms` stays put once confirmed."""

    arrived_ms: int | None = None
    run_start_ms: int | None = None
    run_length: int = 0

    def step(self, ts_ms: int, inside: bool) -> None:
        if self.arrived_ms is not None:
            return
        if not inside:
            self.run_start_ms, self.run_length = None, 0
            return
        if self.run_start_ms is None:
            self.run_start_ms = ts_ms
        self.run_length += 1
        if self.run_length >= DELIVERY_CONFIRMING_READINGS:
            self.arrived_ms = self.run_start_ms


def is_late(promised_ms: int, now_ms: int, tolerance_ms: int) -> bool:
    """Not delivered and past the promised time by more than the tolerance (the delay rule's)."""
    return now_ms > promised_ms + tolerance_ms


def progress(
    status: ShipmentStatus,
    departure_ms: int,
    promised_ms: int,
    now_ms: int,
    *,
    seen_on_the_road: bool,
    delivered: bool,
    late_tolerance_ms: int,
    cold_chain_alert: bool,
    delay_alert: bool,
) -> Progress:
    """The one definition of a shipment's progress: cancelled, delivered, planned (not yet left),
    then on the road: excursion (a cold-chain alert is active) before late before at risk (a
    delay alert is active) before on time."""
    if status is ShipmentStatus.CANCELLED:
        return Progress.CANCELLED
    if delivered or status is ShipmentStatus.DELIVERED:
        return Progress.DELIVERED
    if status is ShipmentStatus.PLANNED and not seen_on_the_road and now_ms < departure_ms:
        return Progress.PLANNED
    if cold_chain_alert:
        return Progress.EXCURSION
    if is_late(promised_ms, now_ms, late_tolerance_ms):
        return Progress.LATE
    if delay_alert:
        return Progress.AT_RISK
    return Progress.ON_TIME


OFFLINE_AFTER_MS = 10 * 60_000


def is_offline(last_seen_ms: int | None, now_ms: int, said_offline: bool = False) -> bool:
    """A device that said goodbye (its MQTT last will), or has been silent longer than OFFLINE_AFTER_MS."""
    return said_offline or last_seen_ms is None or now_ms - last_seen_ms > OFFLINE_AFTER_MS
