"""The operator's master data as validated models: the network (sites with geofences, cargo types,
lanes, warehouse sensors, equipment) and shipments (tracker, lane or explicit route, cargo, planned
departure, promised time, status, references).

One model for every way in: the network file, `tower shipments import`, MQTT plan messages, the
HTTP API and the simulator all validate through these, so a plan is accepted or refused alike
everywhere. Times of shipments are absolute (epoch ms; RFC 3339 with a zone in files and messages).
The format is documented in tower/masterdata/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator

from tower.contract import DEVICE_ID_PATTERN
from tower.domain import ShipmentStatus
from tower.geo import LatLon, Route, distance_m, inside_polygon
from tower.timeutil import rfc3339
from tower.yamlfile import Located

Id = Annotated[str, Field(pattern=DEVICE_ID_PATTERN.pattern)]
SiteType = Literal["dc", "warehouse", "cross_dock", "hub", "depot", "port", "customer", "supplier"]
MachineType = Literal["conveyor", "forklift", "reefer_unit", "dock_door", "sorter", "compressor", "pump", "other"]
# A waypoint (lat, lon); bounded, so a route's length is always a number.
Waypoint = tuple[Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]]
LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last moment RFC 3339 can write


def _moment_ms(value: object) -> int:
    """RFC 3339 with a zone, or epoch milliseconds; from 1970 to 9999 (what RFC 3339 can write back)."""
    if isinstance(value, bool):
        raise ValueError("expected a time: RFC 3339 with a zone (2026-11-22T08:00:00Z) or epoch milliseconds")
    if isinstance(value, int | float):
        ms = value
    else:
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(
                f"'{str(value)[:40]}' is not a time; use RFC 3339 with a zone, e.g. 2026-11-22T08:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise ValueError(f"'{str(value)[:40]}' has no time zone; add Z or an offset like +01:00")
        ms = moment.timestamp() * 1000
    if not 0 <= ms <= LATEST_MS:  # NaN fails this too
        raise ValueError(f"'{str(value)[:40]}' is not between 1970 and 9999")
    return int(ms)


# An absolute time: read from RFC 3339 or epoch ms, kept as epoch ms, written as RFC 3339.
Moment = Annotated[
    int,
    BeforeValidator(_moment_ms),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 0}],
                    "description": "RFC 3339 with a zone, or epoch milliseconds"}, mode="validation"),
]  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """An allowed or healthy range of one measured field, and a setpoint where one is held."""

    min: float | None = None
    max: float | None = None
    setpoint: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min {self.min:g} must be below max {self.max:g}")
        return self

    @property
    def bounded(self) -> bool:
        return self.min is not None or self.max is not None


# -- the network --------------------------------------------------------------------------------


class Geofence(_Model):
    radius_m: float | None = Field(None, gt=0)
    polygon: tuple[LatLon, ...] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Geofence:
        if (self.radius_m is None) == (self.polygon is None):
            raise ValueError("give a geofence either radius_m or polygon")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("a geofence polygon needs at least 3 points")
        return self


def site_label(site_id: str, name: str | None) -> str:
    """A site as people know it, with the id the tower files it under: "North DC (dc-north)"."""
    return f"{name} ({site_id})" if name and name != site_id else site_id


class Site(_Model):
    id: Id
    name: str
    type: SiteType
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    geofence: Geofence = Geofence(radius_m=400)
    cold_storage: bool = Field(False, description="has temperature-controlled rooms a load can be moved into")

    @property
    def position(self) -> LatLon:
        return (self.lat, self.lon)

    @property
    def label(self) -> str:
        return site_label(self.id, self.name)

    def contains(self, point: LatLon) -> bool:
        """Inside the site's geofence."""
        if self.geofence.polygon is not None:
            return inside_polygon(point, self.geofence.polygon)
        return distance_m(point, self.position) <= self.geofence.radius_m


class CargoType(_Model):
    """A kind of load. With min_c and/or max_c it is temperature-controlled: the cold-chain rules
    judge it against that range; setpoint_c is what its reefer unit holds."""

    min_c: float | None = None
    max_c: float | None = None
    setpoint_c: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> CargoType:
        Range(min=self.min_c, max=self.max_c)  # raises if min >= max
        if self.setpoint_c is not None and not self.controlled:
            raise ValueError("a setpoint_c needs an allowed range: give min_c and/or max_c")
        return self

    @property
    def controlled(self) -> bool:
        return self.min_c is not None or self.max_c is not None

    @property
    def range(self) -> Range:
        return Range(min=self.min_c, max=self.max_c, setpoint=self.setpoint_c)


class Lane(_Model):
    id: Id
    origin: str
    destination: str
    road: str = Field("", description="the highways it follows, for people")
    via: tuple[Waypoint, ...] = ()


class WarehouseSensor(_Model):
    id: Id
    site: str
    zone: str
    setpoint_c: float | None = Field(None, description="controlled room; absent: follows the weather")
    min_c: float | None = Field(None, description="the room's allowed range, judged by the room rules")
    max_c: float | None = None

    @property
    def range(self) -> Range:
        return Range(min=self.min_c, max=self.max_c, setpoint=self.setpoint_c)


class HealthyRanges(_Model):
    vibration_rms_mm_s: tuple[float, float]
    bearing_temp_c: tuple[float, float]
    motor_current_a: tuple[float, float]
    rpm: float

    def ranges(self) -> dict[str, Range]:
        """Healthy range per contract field (what relative limits in rules refer to)."""
        return {
            name: Range(min=low, max=high)
            for name, (low, high) in (
                ("vibration_rms_mm_s", self.vibration_rms_mm_s),
                ("bearing_temp_c", self.bearing_temp_c),
                ("motor_current_a", self.motor_current_a),
            )
        }


class Equipment(_Model):
    """One machine (`id`), or `count` alike at one site (`id_prefix`: ids <id_prefix>-01, -02, ...)."""

    id: Id | None = None
    id_prefix: str | None = None
    count: int = Field(1, ge=1)
    site: str
    type: MachineType
    healthy: HealthyRanges

    @model_validator(mode="after")
    def _named(self) -> Equipment:
        if (self.id is None) == (self.id_prefix is None):
            raise ValueError("give a machine an id, or a group an id_prefix and a count")
        if self.id is not None and self.count != 1:
            raise ValueError("count goes with id_prefix; a machine with an id is one machine")
        return self

    def machine_ids(self) -> list[str]:
        return [self.id] if self.id is not None else [f"{self.id_prefix}-{n + 1:02d}" for n in range(self.count)]


class Network(_Model):
    """The slow-moving part of master data: what a network file holds."""

    planned_speed_kmh: float = Field(65.0, gt=0, description="average speed used to plan a trip")
    sites: tuple[Site, ...] = ()
    cargo_types: dict[str, CargoType] = {}
    lanes: tuple[Lane, ...] = ()
    warehouse_sensors: tuple[WarehouseSensor, ...] = ()
    equipment: tuple[Equipment, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Network:
        sites = [s.id for s in self.sites]
        _unique(sites, "sites", "site")
        _unique([lane.id for lane in self.lanes], "lanes", "lane")
        for i, lane in enumerate(self.lanes):
            for end in ("origin", "destination"):
                if getattr(lane, end) not in sites:
                    raise Located(("lanes", i, end), f"lane {lane.id}: unknown site '{getattr(lane, end)}'")
        for group in ("warehouse_sensors", "equipment"):
            for i, item in enumerate(getattr(self, group)):
                if item.site not in sites:
                    name = f"{group[:-1].replace('_', ' ')} {item.id or item.id_prefix}"
                    raise Located((group, i, "site"), f"{name}: unknown site '{item.site}'")
        devices = [s.id for s in self.warehouse_sensors] + [m for m, _ in self.machines()]
        duplicates = sorted({d for d in devices if devices.count(d) > 1})
        if duplicates:
            raise ValueError(f"device ids used twice: {', '.join(duplicates[:5])}")
        return self

    def site(self, site_id: str) -> Site:
        return next(s for s in self.sites if s.id == site_id)

    def lane(self, lane_id: str) -> Lane:
        return next(lane for lane in self.lanes if lane.id == lane_id)

    def machines(self) -> list[tuple[str, Equipment]]:
        return [(machine, group) for group in self.equipment for machine in group.machine_ids()]

    def route(self, origin: str, destination: str, via: tuple[LatLon, ...] = ()) -> Route:
        return Route((self.site(origin).position, *via, self.site(destination).position))

    def lane_route(self, lane_id: str) -> Route:
        lane = self.lane(lane_id)
        return self.route(lane.origin, lane.destination, lane.via)

    def planned_drive_ms(self, route: Route) -> int:
        return int(route.length_m / (self.planned_speed_kmh / 3.6) * 1000)

    def problem_with(self, shipment: Shipment) -> str | None:
        """Why a shipment cannot be tracked on this network (unknown lane, site or cargo type), or None."""
        if shipment.lane is not None and shipment.lane not in {lane.id for lane in self.lanes}:
            return f"unknown lane '{shipment.lane}' (lanes come from the network file: tower network show)"
        for end in ("origin", "destination"):
            site = getattr(shipment, end)
            if site is not None and site not in {s.id for s in self.sites}:
                return f"unknown {end} site '{site}' (sites come from the network file: tower network show)"
        if shipment.cargo not in self.cargo_types:
            known = ", ".join(sorted(self.cargo_types)) or "none yet"
            return f"unknown cargo type '{shipment.cargo}' (known: {known})"
        return None


def _unique(ids: list[str], where: str, what: str) -> None:
    for index, item in enumerate(ids):
        if item in ids[:index]:
            raise Located((where, index, "id"), f"{what} id '{item}' is used twice")


# -- shipments ----------------------------------------------------------------------------------


class Shipment(_Model):
    """A shipment as its owner plans it. Either `lane`, or `origin` and `destination` (and `via`
    waypoints) for an explicit route."""

    id: Id
    tracker: Id
    lane: str | None = None
    origin: str | None = None
    destination: str | None = None
    via: tuple[Waypoint, ...] = ()
    cargo: str
    departure: Moment = Field(description="planned departure")
    promised: Moment = Field(description="promised delivery time")
    status: ShipmentStatus = ShipmentStatus.PLANNED
    departed: Moment | None = Field(None, description="actual departure, when the owner reports it")
    delivered: Moment | None = Field(None, description="proof of delivery time, when the owner reports it")
    order: str = Field("", max_length=200)
    customer: str = Field("", max_length=200)
    references: dict[str, str] = Field({}, max_length=20, description="other references, e.g. {po: 4711}")
    note: str = Field("", max_length=500, description="e.g. why it was cancelled")

    @model_validator(mode="after")
    def _route_and_times(self) -> Shipment:
        if self.lane is not None and (self.origin is not None or self.destination is not None or self.via):
            raise ValueError("give either a lane, or origin and destination (and via), not both")
        if self.lane is None and (self.origin is None or self.destination is None):
            raise ValueError("give a lane, or an origin and a destination site")
        if self.promised <= self.departure:
            raise ValueError("promised must be after departure")
        return self


class StatusEvent(_Model):
    """The owner's word on a shipment's progress: departed, delivered (proof of delivery) or cancelled."""

    status: Literal["departed", "delivered", "cancelled"]
    ts: Moment = Field(description="when it happened")
    note: str = Field("", max_length=500)

    def applied_to(self, shipment: Shipment) -> Shipment:
        """The shipment with this event applied; ValueError if the event makes no sense for it."""
        if shipment.status in (ShipmentStatus.CANCELLED, ShipmentStatus.DELIVERED) and shipment.status != self.status:
            raise ValueError(f"shipment {shipment.id} is already {shipment.status}")
        changes: dict = {"status": ShipmentStatus(self.status), "note": self.note or shipment.note}
        if self.status == "departed":
            changes["departed"] = self.ts
        elif self.status == "delivered":
            changes["delivered"] = self.ts
        return shipment.model_copy(update=changes)


@dataclass(frozen=True, slots=True)
class PlanMessage:
    """A plan or status event that arrived as a message (MQTT), to be applied to the master data;
    topic and payload are kept to dead-letter it if the master data refuses it."""

    shipment_id: str
    shipment: Shipment | None
    event: StatusEvent | None
    topic: str
    payload: bytes
    received_ms: int
