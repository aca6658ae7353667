"""/shipments: create, update, cancel and report on shipments; read where they stand.

Plans are validated by the master data's own `Shipment` model and store, as CSV imports and MQTT
plans are, so a plan is refused for the same reason on every way in (422, the reason in `detail`).
Every change is recorded in the master store with the source `api:<token name>`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response

from tower.api.auth import Reader, Writer
from tower.api.backend import Backend, Judgement
from tower.api.schemas import (
    Alert,
    Cancellation,
    Limit,
    Offset,
    Problem,
    ShipmentDetail,
    ShipmentPage,
    ShipmentPlan,
    ShipmentState,
    Standing,
)
from tower.contract import DEVICE_ID_PATTERN
from tower.domain import ShipmentStatus
from tower.masterdata.model import Shipment, StatusEvent
from tower.roles import Actor
from tower.timeutil import now_ms

ShipmentId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN.pattern, description="the shipment's id")]
ERRORS = {code: {"model": Problem} for code in (401, 403, 422)}
UNKNOWN = {404: {"model": Problem}}


def routes(backend: Backend) -> APIRouter:
    router = APIRouter(prefix="/shipments", tags=["shipments"], responses=ERRORS)

    @router.get("", summary="Shipments and where they stand, newest planned departure first")
    def list_shipments(
        caller: Reader,
        status: Annotated[ShipmentStatus | None, Query(description="only of this status (the owner's word)")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> ShipmentPage:
        found = backend.master.shipments(status, limit + 1, offset)
        page, more = found[:limit], len(found) > limit
        as_of = backend.as_of()
        judgement = backend.judge(page, as_of)
        return ShipmentPage(items=[_state(s, judgement) for s in page], limit=limit, offset=offset,
                            next_offset=offset + limit if more else None, revision=backend.master.revision(),
                            as_of=as_of)  # fmt: skip

    @router.get("/{shipment_id}", summary="A shipment's plan, where it stands (progress, ETA band), its open alerts",
                responses=UNKNOWN)  # fmt: skip
    def get_shipment(shipment_id: ShipmentId, caller: Reader) -> ShipmentDetail:
        shipment = _existing(backend, shipment_id)
        as_of = backend.as_of()
        judgement = backend.judge([shipment], as_of)
        alerts = [Alert.of(row) for row in judgement.open_alerts.get(shipment_id, [])]
        return ShipmentDetail(**dict(_state(shipment, judgement)), alerts=alerts, revision=backend.master.revision(),
                              as_of=as_of)  # fmt: skip

    @router.post("", status_code=201, summary="Create a shipment (409 if its id exists; PUT creates or updates)",
                 responses={409: {"model": Problem}})  # fmt: skip
    def create_shipment(shipment: Shipment, caller: Writer) -> Shipment:
        with backend.write_lock:
            if backend.master.shipment(shipment.id) is not None:
                raise HTTPException(409, f"shipment {shipment.id} exists; PUT /shipments/{shipment.id} updates it")
            backend.master.put_shipment(shipment, _source(caller))
        return _existing(backend, shipment.id)

    @router.put("/{shipment_id}", summary="Create or update a shipment (the same plan again changes nothing)",
                responses={201: {"model": Shipment, "description": "created"}})  # fmt: skip
    def put_shipment(shipment_id: ShipmentId, plan: ShipmentPlan, response: Response, caller: Writer) -> Shipment:
        if plan.id is not None and plan.id != shipment_id:
            raise HTTPException(422, f"plan for shipment '{plan.id}' sent to /shipments/{shipment_id}")
        shipment = Shipment.model_validate({**plan.model_dump(), "id": shipment_id})
        with backend.write_lock:
            created = backend.master.shipment(shipment_id) is None
            backend.master.put_shipment(shipment, _source(caller))
        response.status_code = 201 if created else 200
        return _existing(backend, shipment_id)

    @router.post("/{shipment_id}/cancel", summary="Cancel a shipment: its alerts end, nothing new is raised",
                 responses=UNKNOWN)  # fmt: skip
    def cancel_shipment(shipment_id: ShipmentId, cancellation: Cancellation, caller: Writer) -> Shipment:
        event = StatusEvent(status="cancelled", ts=now_ms(), note=cancellation.reason)
        return _report(backend, shipment_id, event, caller)

    @router.post("/{shipment_id}/status", summary="Report departed or delivered (proof of delivery), or cancelled",
                 responses=UNKNOWN)  # fmt: skip
    def report_status(shipment_id: ShipmentId, event: StatusEvent, caller: Writer) -> Shipment:
        return _report(backend, shipment_id, event, caller)

    return router


def _state(shipment: Shipment, judgement: Judgement) -> ShipmentState:
    view = judgement.views.get(shipment.id)
    return ShipmentState(shipment=shipment, problem=judgement.problems.get(shipment.id),
                         standing=Standing.of(view) if view is not None else None)  # fmt: skip


def _report(backend: Backend, shipment_id: str, event: StatusEvent, caller: Actor) -> Shipment:
    _existing(backend, shipment_id)
    backend.master.apply_status(shipment_id, event, _source(caller))
    return _existing(backend, shipment_id)


def _existing(backend: Backend, shipment_id: str) -> Shipment:
    shipment = backend.master.shipment(shipment_id)
    if shipment is None:
        raise HTTPException(404, f"no shipment '{shipment_id}' (see GET /shipments)")
    return shipment


def _source(caller: Actor) -> str:
    return f"api:{caller.name}"
