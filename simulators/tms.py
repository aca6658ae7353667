"""The simulator as a transport management system: it publishes each shipment's plan and its
departure the way an operator's TMS connector does (retained JSON on tower/v1/plans/shipments/<id>
and .../status, tower/CONTRACT.md), so the tower learns the demo's shipments through the same path
as a real operator's.

Plans are released PLAN_LEAD_MS before departure (those due earlier at the run's start); the
departure is reported when the truck leaves. Delivery is not reported: the tracker shows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from simulators.trips import Trip
from tower.contract import plan_status_topic, plan_topic
from tower.timeutil import rfc3339

PLAN_LEAD_MS = 2 * 3_600_000


def plan_messages(trips: dict[str, Trip], start_ms: int) -> Iterator[tuple[int, str, bytes]]:
    """(publish time, topic, payload) of every plan and departure, in publish order."""
    messages = []
    for trip in trips.values():
        shipment = trip.shipment
        plan = json.dumps(shipment.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))
        messages.append((max(start_ms, shipment.departure - PLAN_LEAD_MS), plan_topic(shipment.id), plan.encode()))
        departed = json.dumps({"status": "departed", "ts": rfc3339(trip.departure_ms)}, separators=(",", ":"))
        messages.append((trip.departure_ms, plan_status_topic(shipment.id), departed.encode()))
    yield from sorted(messages)
