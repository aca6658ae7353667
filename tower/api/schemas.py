"""What the API sends and takes besides the master data's own models (a plan is a
tower.masterdata.model.Shipment, a status event a StatusEvent): where a shipment stands, alerts
with their runbook and audit trail, pages, the network with its revision, errors. Times are
RFC 3339 in UTC on the way out (`Moment`), like the plans themselves.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.shipment_view import ShipmentView
from tower.domain import ALERT_STATUSES, Progress, SeverityName
from tower.masterdata.model import Id, Moment, Network, Shipment

AlertStatus = Literal[ALERT_STATUSES]  # the statuses spelled once, in tower.domain
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="skip this many (the previous page's next_offset)")]


class ShipmentPlan(Shipment):
    """A plan for PUT /shipments/{id}: a shipment whose `id` may be left out (the path names it)."""

    id: Id | None = None


class Request(BaseModel):
    """A request body: a field the API does not know is an error (a typo, or a claimed identity)."""

    model_config = ConfigDict(extra="forbid")


class Cancellation(Request):
    reason: str = Field(min_length=1, max_length=500, description="why; recorded with the shipment")


class Note(Request):
    note: str = Field("", max_length=500, description="for the alert's audit trail")


class Standing(BaseModel):
    """Where a shipment stands, as the dashboard shows it (alerts.shipment_view)."""

    status: Progress = Field(description="planned, on time, at risk, late, excursion, delivered or cancelled")
    progress_pct: float = Field(description="share of the route behind it")
    remaining_km: float
    eta: Moment | None = Field(description="predicted arrival (the delay rule's), once on the road")
    eta_early: Moment | None = Field(description="the ETA band's early end")
    eta_late: Moment | None = Field(description="the ETA band's late end")
    late_by_min: float | None = Field(description="predicted arrival minus the promised time, in minutes")
    arrival: Moment | None = Field(description="confirmed arrival at the destination, or proof of delivery")
    last_seen: Moment | None = Field(description="its tracker's newest reading on this trip")
    lat: float = Field(description="newest position (the origin before it leaves)")
    lon: float
    temp_c: float | None
    speed_kmh: float | None
    cold_chain: bool = Field(description="its cargo type has a temperature range")
    excursion_min: float = Field(description="minutes out of the cargo's range in transit")
    open_alerts: int = Field(description="active alerts about it")
    worst: SeverityName | None = Field(description="the worst severity among them")

    @classmethod
    def of(cls, view: ShipmentView) -> Standing:
        return cls(
            status=view.status, progress_pct=view.progress_pct, remaining_km=view.remaining_km, eta=view.eta_ms,
            eta_early=view.eta_early_ms, eta_late=view.eta_late_ms, late_by_min=view.late_by_min,
            arrival=view.arrival_ms, last_seen=view.last_ms, lat=view.lat, lon=view.lon, temp_c=view.temp_c,
            speed_kmh=view.speed_kmh, cold_chain=view.cold_chain, excursion_min=view.excursion_min,
            open_alerts=view.open_alerts, worst=view.worst,
        )  # fmt: skip


class ShipmentState(BaseModel):
    shipment: Shipment = Field(description="the plan, as its owner stated it")
    problem: str | None = Field(description="why the tower cannot track it (e.g. a lane the network lacks)")
    standing: Standing | None = Field(description="where it stands; none while it has a problem")


class Alert(BaseModel):
    """An alert from the alert book; times RFC 3339 (opened, fired, resolved: event time; raised_wall,
    acked, resolved_wall, closed: the wall clock)."""

    id: str
    rule: str
    entity: str = Field(description="a shipment id for a tracker's alerts, else the device, room or machine")
    device: str
    kind: str
    site: str
    severity: SeverityName
    status: AlertStatus
    opened: Moment
    fired: Moment | None
    raised_wall: Moment | None
    acked: Moment | None
    acked_by: str | None
    resolved: Moment | None
    resolved_wall: Moment | None
    closed: Moment | None
    value: float | None
    detail: str = Field(description="what the rule saw last while it fired (kept once resolved)")
    resolution: str = Field("", description="how it ended: the condition's words, a person's note, a cancellation")
    group_id: str | None = Field(None, description="the group's lead: same rule, same place; notified through it")
    revision: int = Field(0, description="changes with every write; an action may name the revision it saw")

    @classmethod
    def of(cls, row: dict) -> Alert:
        """From an alert book row (times as `<name>_ms`)."""
        return cls.model_validate({key.removesuffix("_ms"): value for key, value in row.items()
                                   if key.removesuffix("_ms") in cls.model_fields})  # fmt: skip


class Runbook(BaseModel):
    owner: str
    respond_within_s: int
    steps: list[str]


class Transition(BaseModel):
    at: Moment
    status: str
    actor: str = Field(description="'engine', or the person or token name that acted")
    note: str
    via: str = Field("", description="a person's channel: cli, dashboard, api, link or mqtt")


class Delivery(BaseModel):
    at: Moment
    step: int
    recipient: str
    service: str
    attempt: int
    ok: bool
    error: str


class AlertDetail(Alert):
    runbook: Runbook
    context: dict[str, str] = Field(description="master data the runbook was filled from")
    history: list[Transition] = Field(description="the audit trail, oldest first")
    deliveries: list[Delivery]

    @classmethod
    def of_book(cls, row: dict, history: list[dict], deliveries: list[dict]) -> AlertDetail:
        runbook = row["runbook"]
        return cls(
            **Alert.of(row).model_dump(),
            runbook=Runbook(owner=runbook["owner"], respond_within_s=runbook["respond_within"] // 1000,
                            steps=runbook["steps"]),
            context=row["context"],
            history=[Transition(at=t["at_ms"], status=t["status"], actor=t["actor"], note=t["note"], via=t["via"])
                     for t in history],
            deliveries=[Delivery(at=d["at_ms"], step=d["step"], recipient=d["recipient"], service=d["service"],
                                 attempt=d["attempt"], ok=bool(d["ok"]), error=d["error"]) for d in deliveries],
        )  # fmt: skip


class ShipmentDetail(ShipmentState):
    alerts: list[Alert] = Field(description="its open alerts, most severe first")
    revision: int = Field(description="the master data revision it was judged by")
    as_of: Moment = Field(description="'now' for the judgement: the newest reading's time in the store")


class Page(BaseModel):
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; none on the last")


class ShipmentPage(Page):
    items: list[ShipmentState]
    revision: int
    as_of: Moment


class AlertPage(Page):
    items: list[Alert]


class NetworkView(Network):
    revision: int = Field(description="the master data revision")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    revision: int = Field(description="the master data revision (shows the master store is readable)")


class Problem(BaseModel):
    """Every error: `detail` says what is wrong, in the words the CLI and dead letters use."""

    detail: str
    errors: list[dict] | None = Field(None, description="for a 422 from validation: each problem with its place")
