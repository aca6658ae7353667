"""Scenario files: the network's master data (sites, lanes, shipments, sensors, equipment) and the
faults a simulation injects. The simulator plays a scenario; the tower loads the same file as its
master data, so both agree on promised times, routes and allowed temperatures.

Times inside a scenario are offsets from its start ("90m", "-2d"); `load_scenario` reports a bad
file as `file:line: problem`. The format is documented in simulators/SCENARIOS.md.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tower.contract import DEVICE_ID_PATTERN
from tower.geo import LatLon, Route, distance_m, inside_polygon
from tower.yamlfile import Duration, FileError, Located, Offset, load_model

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "simulators" / "scenarios" / "default.yaml"


class ScenarioError(FileError):
    """A scenario file that cannot be used; the message names file, line and problem."""


Id = Annotated[str, Field(pattern=DEVICE_ID_PATTERN.pattern)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Site(_Model):
    id: Id
    name: str
    type: Literal["dc", "customer", "port"]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    geofence: Geofence = Geofence(radius_m=400)

    @property
    def position(self) -> LatLon:
        return (self.lat, self.lon)

    def contains(self, point: LatLon) -> bool:
        """Inside the site's geofence."""
        if self.geofence.polygon is not None:
            return inside_polygon(point, self.geofence.polygon)
        return distance_m(point, self.position) <= self.geofence.radius_m


class CargoType(_Model):
    min_c: float | None = None
    max_c: float | None = None
    setpoint_c: float | None = None

    @property
    def cold_chain(self) -> bool:
        return self.setpoint_c is not None


class Lane(_Model):
    id: Id
    origin: str
    destination: str
    road: str = Field("", description="the highways it follows, for people")
    via: tuple[LatLon, ...] = ()


class Shipment(_Model):
    id: Id
    tracker: Id
    lane: str
    departure: Offset
    promised: Offset
    cargo: str


class ShipmentWave(_Model):
    """`count` shipments on a lane, `every` apart: ids <prefix>-<n>, trackers <tracker_prefix>-<n>."""

    id_prefix: str
    tracker_prefix: str
    lane: str
    count: int = Field(ge=1)
    first_departure: Offset
    every: Duration
    slack: Duration = Field(description="promised = departure + planned driving time + slack")
    cargo: str


class WarehouseSensor(_Model):
    id: Id
    site: str
    zone: str
    setpoint_c: float | None = Field(None, description="controlled room; absent: follows the weather")


class HealthyRanges(_Model):
    vibration_rms_mm_s: tuple[float, float]
    bearing_temp_c: tuple[float, float]
    motor_current_a: tuple[float, float]
    rpm: float


class EquipmentGroup(_Model):
    """`count` machines of one type at one site: ids <id_prefix>-01, -02, ..."""

    id_prefix: str
    site: str
    type: Literal["conveyor", "forklift", "reefer_unit", "dock_door", "sorter"]
    count: int = Field(1, ge=1)
    healthy: HealthyRanges


class FaultType(StrEnum):
    TRAFFIC_JAM = "traffic_jam"
    BREAKDOWN = "breakdown"
    ROUTE_DEVIATION = "route_deviation"
    REEFER_FAILURE = "reefer_failure"
    DOOR_OPEN_IN_TRANSIT = "door_open_in_transit"
    TRACKER_OFFLINE = "tracker_offline"
    GPS_OUTLIERS = "gps_outliers"
    DUPLICATES = "duplicates"
    OUT_OF_ORDER = "out_of_order"
    MALFORMED = "malformed"
    BEARING_WEAR = "bearing_wear"
    MOTOR_OVERHEATING = "motor_overheating"
    SUDDEN_FAILURE = "sudden_failure"


SHIPMENT_FAULTS = {
    FaultType.TRAFFIC_JAM, FaultType.BREAKDOWN, FaultType.ROUTE_DEVIATION, FaultType.REEFER_FAILURE,
    FaultType.DOOR_OPEN_IN_TRANSIT, FaultType.TRACKER_OFFLINE, FaultType.GPS_OUTLIERS, FaultType.DUPLICATES,
    FaultType.OUT_OF_ORDER, FaultType.MALFORMED,
}  # fmt: skip
EQUIPMENT_FAULTS = {FaultType.BEARING_WEAR, FaultType.MOTOR_OVERHEATING, FaultType.SUDDEN_FAILURE}


class Fault(_Model):
    """One injected fault. Shipment faults start `after` departure; equipment faults `at` an offset."""

    type: FaultType
    target: str = Field(description="shipment id, or equipment id")
    after: Duration | None = Field(None, description="shipment faults: time after departure")
    at: Offset | None = Field(None, description="equipment faults: offset from the scenario start")
    duration: Duration = Field(0, description="how long it lasts; bearing wear: onset to failure")
    severity: float = Field(1.0, gt=0, description="scales the effect (1 = typical)")

    @model_validator(mode="after")
    def _when(self) -> Fault:
        shipment_fault = self.type in SHIPMENT_FAULTS
        if shipment_fault and self.after is None:
            raise ValueError(f"{self.type} is a shipment fault: give 'after' (time after departure)")
        if not shipment_fault and self.at is None:
            raise ValueError(f"{self.type} is an equipment fault: give 'at' (offset from the start)")
        return self


class RandomFaults(_Model):
    """Faults drawn with the run's seed: per shipment / per machine probability of each type."""

    shipment: dict[FaultType, float] = {}
    equipment: dict[FaultType, float] = {}


class Reporting(_Model):
    shipment: Duration = 30_000
    warehouse: Duration = 60_000
    equipment: Duration = 60_000


class Scenario(_Model):
    name: str
    description: str = ""
    duration: Duration = 86_400_000
    reporting: Reporting = Reporting()
    ambient_c: tuple[float, float] = Field((9.0, 4.0), description="daily mean and half-swing, °C")
    planned_speed_kmh: float = Field(65.0, gt=0, description="average speed used to plan a trip")
    sites: tuple[Site, ...]
    cargo_types: dict[str, CargoType]
    lanes: tuple[Lane, ...]
    shipments: tuple[Shipment, ...] = ()
    shipment_waves: tuple[ShipmentWave, ...] = ()
    warehouse_sensors: tuple[WarehouseSensor, ...] = ()
    equipment: tuple[EquipmentGroup, ...] = ()
    faults: tuple[Fault, ...] = ()
    random_faults: RandomFaults = RandomFaults()

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        sites = {s.id for s in self.sites}
        for i, lane in enumerate(self.lanes):
            for end in ("origin", "destination"):
                if getattr(lane, end) not in sites:
                    raise Located(("lanes", i, end), f"lane {lane.id}: unknown site '{getattr(lane, end)}'")
        lanes = {lane.id for lane in self.lanes}
        for group in ("shipments", "shipment_waves"):
            for i, item in enumerate(getattr(self, group)):
                if item.lane not in lanes:
                    raise Located((group, i, "lane"), f"{_name(item)}: unknown lane '{item.lane}'")
                if item.cargo not in self.cargo_types:
                    raise Located((group, i, "cargo"), f"{_name(item)}: unknown cargo type '{item.cargo}'")
        for group in ("warehouse_sensors", "equipment"):
            for i, item in enumerate(getattr(self, group)):
                if item.site not in sites:
                    raise Located((group, i, "site"), f"{_name(item)}: unknown site '{item.site}'")
        shipments = {s.id for s in self.all_shipments()}
        machines = {m for m, _ in self.all_equipment()}
        for i, fault in enumerate(self.faults):
            known = shipments if fault.type in SHIPMENT_FAULTS else machines
            if fault.target not in known:
                raise Located(("faults", i, "target"), f"fault {fault.type}: unknown target '{fault.target}'")
        ids = [s.tracker for s in self.all_shipments()] + [w.id for w in self.warehouse_sensors] + list(machines)
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"device ids used twice: {', '.join(duplicates[:5])}")
        return self

    # -- derived master data ----------------------------------------------------------------------

    def site(self, site_id: str) -> Site:
        return next(s for s in self.sites if s.id == site_id)

    def lane(self, lane_id: str) -> Lane:
        return next(lane for lane in self.lanes if lane.id == lane_id)

    def route(self, lane_id: str) -> Route:
        lane = self.lane(lane_id)
        return Route((self.site(lane.origin).position, *lane.via, self.site(lane.destination).position))

    def planned_drive_ms(self, lane_id: str) -> int:
        return int(self.route(lane_id).length_m / (self.planned_speed_kmh / 3.6) * 1000)

    def all_shipments(self) -> list[Shipment]:
        """Listed shipments and those of every wave, in departure order."""
        expanded = list(self.shipments)
        for wave in self.shipment_waves:
            for n in range(wave.count):
                departure = wave.first_departure + n * wave.every
                promised = -(-(departure + self.planned_drive_ms(wave.lane) + wave.slack) // 60_000) * 60_000
                expanded.append(
                    Shipment(
                        id=f"{wave.id_prefix}-{n + 1:02d}",
                        tracker=f"{wave.tracker_prefix}-{n + 1:02d}",
                        lane=wave.lane,
                        departure=f"{departure}ms",
                        promised=f"{promised}ms",  # rounded up to the minute, as a customer is told
                        cargo=wave.cargo,
                    )
                )
        return sorted(expanded, key=lambda s: (s.departure, s.id))

    def all_equipment(self) -> list[tuple[str, EquipmentGroup]]:
        return [(f"{g.id_prefix}-{n + 1:02d}", g) for g in self.equipment for n in range(g.count)]


def _name(item: BaseModel) -> str:
    return f"{type(item).__name__} {getattr(item, 'id', None) or getattr(item, 'id_prefix', '')}".strip()


def load_scenario(name_or_path: str | Path) -> Scenario:
    """'default' or a path. ScenarioError('file:line: problem') for anything wrong with the file."""
    path = DEFAULT_SCENARIO if str(name_or_path) == "default" else Path(name_or_path)
    return load_model(path, Scenario, "scenario", ScenarioError)
