"""/alerts: the alert queue, one alert with its runbook and audit trail, acknowledge and resolve.

Actions go through the alert book's `act`, as the CLI's, the dashboard's, MQTT's and the one-click
link's do, recorded with the token's name as `by` and the wall clock, like every person's action.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from tower.api.auth import Acknowledger, Reader, Resolver
from tower.api.backend import Backend
from tower.api.schemas import Alert, AlertDetail, AlertPage, Limit, Note, Offset, Problem
from tower.domain import SeverityName
from tower.roles import Actor
from tower.timeutil import now_ms

AlertId = Annotated[str, Path(max_length=64, description="the alert's id")]
Matching = Annotated[str | None, Query(max_length=200, description="only alerts with exactly this value")]
ERRORS = {code: {"model": Problem} for code in (401, 403, 422)}
UNKNOWN = {404: {"model": Problem}}
CONFLICT = {409: {"model": Problem, "description": "not in a status this action applies to"}}
SCANNED = 100_000  # filters apply to the newest this many alerts of the book


def routes(backend: Backend) -> APIRouter:
    router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ERRORS)

    @router.get("", summary="Open alerts, most severe and oldest first; or all alerts, newest first")
    def list_alerts(
        caller: Reader,
        status: Literal["open", "all"] = "open",
        severity: SeverityName | None = None,
        rule: Matching = None,
        entity: Matching = None,
        site: Matching = None,
        kind: Matching = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> AlertPage:
        wanted = {key: value for key, value in
                  (("severity", severity), ("rule", rule), ("entity", entity), ("site", site), ("kind", kind))
                  if value is not None}  # fmt: skip
        with backend.alert_book() as book:
            rows = book.alerts(status, limit=SCANNED)
        matching = [row for row in rows if all(row[key] == value for key, value in wanted.items())]
        more = len(matching) > offset + limit
        return AlertPage(items=[Alert.of(row) for row in matching[offset : offset + limit]], limit=limit,
                         offset=offset, next_offset=offset + limit if more else None)  # fmt: skip

    @router.get("/{alert_id}", summary="An alert with its runbook, audit trail and notifications", responses=UNKNOWN)
    def get_alert(alert_id: AlertId, caller: Reader) -> AlertDetail:
        with backend.alert_book() as book:
            alert = _existing(book.get(alert_id), alert_id)
            return AlertDetail.of_book(alert, book.history(alert_id), book.deliveries(alert_id))

    @router.post("/{alert_id}/ack", summary="Acknowledge an alert: its escalation stops",
                 responses=UNKNOWN | CONFLICT)  # fmt: skip
    def acknowledge_alert(alert_id: AlertId, caller: Acknowledger, note: Note | None = None) -> Alert:
        return _act(backend, alert_id, "acknowledge", caller, note)

    @router.post("/{alert_id}/resolve", summary="Resolve an alert by hand", responses=UNKNOWN | CONFLICT)
    def resolve_alert(alert_id: AlertId, caller: Resolver, note: Note | None = None) -> Alert:
        return _act(backend, alert_id, "resolve", caller, note)

    return router


def _act(backend: Backend, alert_id: str, action: str, caller: Actor, note: Note | None) -> Alert:
    with backend.alert_book() as book:
        _existing(book.get(alert_id), alert_id)
        try:
            alert = book.act(alert_id, action, caller.name, note.note if note else "", now_ms(), via="api")
        except ValueError as problem:  # not in a status this action applies to
            raise HTTPException(409, str(problem)) from None
    return Alert.of(alert)


def _existing(alert: dict | None, alert_id: str) -> dict:
    if alert is None:
        raise HTTPException(404, f"no alert '{alert_id}' (see GET /alerts?status=all)")
    return alert
