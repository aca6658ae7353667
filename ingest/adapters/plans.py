"""Shipment plans and status events from a TMS connector (or the simulator), the way devices send
readings: tower/v1/plans/shipments/<id> (the plan, JSON, retained) and .../status (departed,
delivered or cancelled with its time). Format: tower/CONTRACT.md#shipment-plans.

Decoding checks the message alone (fields, types, times, that the topic's id is the plan's); the
master data store then checks it against the network (lane, sites, cargo type) when the writer
applies it. Either refusal is a dead letter with the reason. An empty retained payload only clears
the plan from the broker: it cancels nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from ingest.adapters.native import parse_json
from ingest.validation import Rejected, describe
from tower.contract import DEVICE_ID_PATTERN, PLANS_NAMESPACE, TOPIC_ROOT
from tower.masterdata.model import PlanMessage, Shipment, StatusEvent
from tower.store import Batch

if TYPE_CHECKING:
    from ingest.decode import Decoder

_PREFIX = f"{TOPIC_ROOT}/{PLANS_NAMESPACE}/shipments/"


def decode(decoder: Decoder, topic: str, payload: bytes, received_ms: int) -> Batch:
    shipment_id, _, role = topic.removeprefix(_PREFIX).partition("/")
    if not topic.startswith(_PREFIX) or role not in ("", "status") or not DEVICE_ID_PATTERN.match(shipment_id):
        raise Rejected(f"unknown topic; plans go to {_PREFIX}<shipment_id> and status events to .../status")
    if not payload.strip():
        return Batch()
    try:
        if role == "status":
            event = StatusEvent.model_validate_json(payload)
            return Batch(plans=[PlanMessage(shipment_id, None, event, topic, payload, received_ms)])
        plan = parse_json(payload)
        if not isinstance(plan, dict):
            raise Rejected(f"a plan is a JSON object, not {type(plan).__name__}")
        shipment = Shipment.model_validate({"id": shipment_id, **plan})  # the topic names it; the plan may not
    except ValidationError as error:
        raise Rejected(describe(error)) from None
    if shipment.id != shipment_id:
        raise Rejected(f"plan for shipment '{shipment.id[:64]}' published on the topic of '{shipment_id}'")
    return Batch(plans=[PlanMessage(shipment_id, shipment, None, topic, payload, received_ms)])
