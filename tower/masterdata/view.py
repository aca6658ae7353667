"""One revision of master data, resolved for use: which entity a device stands for at a moment, a
shipment's plan with its route and sites, what a position means against a plan, the nearest site.

`MasterData` is immutable; the store (store.py) hands out a new one per revision, so the engine,
the dashboard, the API and the CLI can say which revision they judged by.

A tracker can carry many shipments over time (one after another). At a moment it stands for the
shipment whose loading has begun most recently (planned departure minus LOADING_MS) and which is
neither cancelled nor over; a tracker with shipments but none active is idle (shipment rules
rest); a device master data does not know is its own entity (rules that need no plan still apply).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property

from tower.domain import ShipmentStatus
from tower.geo import LatLon, Route, distance_m
from tower.masterdata.model import CargoType, Equipment, Network, Range, Shipment, Site, WarehouseSensor
from tower.timeutil import rfc3339

LOADING_MS = 60 * 60_000  # a tracker belongs to its next shipment from this long before departure


@dataclass(frozen=True)
class ShipmentPlan:
    """A shipment resolved against the network: its route and sites, cargo type and planned speed."""

    shipment: Shipment
    route: Route
    origin: Site
    destination: Site
    cargo_type: CargoType
    planned_speed_m_s: float

    @property
    def shipment_id(self) -> str:
        return self.shipment.id

    @property
    def tracker(self) -> str:
        return self.shipment.tracker

    @property
    def lane(self) -> str:
        return self.shipment.lane or f"{self.origin.id}>{self.destination.id}"

    @property
    def cargo(self) -> str:
        return self.shipment.cargo

    @property
    def departure_ms(self) -> int:
        return self.shipment.departure

    @property
    def promised_ms(self) -> int:
        return self.shipment.promised

    @property
    def status(self) -> ShipmentStatus:
        return self.shipment.status


@dataclass(frozen=True)
class Entity:
    """What a device's readings are about: a shipment (for its tracker), a room, a machine, or the
    device itself. `ranges` are the allowed or healthy ranges per field that relative rule limits
    and cold-chain rules judge against."""

    entity_id: str
    site: str = ""
    plan: ShipmentPlan | None = None
    ranges: dict[str, Range] = field(default_factory=dict)
    idle: bool = False  # a known tracker with no active shipment
    site_type: str = ""

    @property
    def cargo(self) -> str:
        return self.plan.cargo if self.plan else ""


@dataclass(frozen=True)
class Position:
    """What a tracker's position means against its plan, computed once per reading."""

    off_route_m: float
    along_m: float
    site: str | None  # the site whose geofence contains it
    site_type: str | None
    at_destination: bool
    site_name: str | None = None


class MasterData:
    def __init__(self, network: Network | None = None, shipments: dict[str, Shipment] | None = None,
                 revision: int = 0) -> None:  # fmt: skip
        self.network = network or Network()
        self.shipments: dict[str, Shipment] = shipments or {}
        self.revision = revision
        self.sites: dict[str, Site] = {site.id: site for site in self.network.sites}
        self.sensors: dict[str, WarehouseSensor] = {sensor.id: sensor for sensor in self.network.warehouse_sensors}
        self.machines: dict[str, Equipment] = dict(self.network.machines())
        self._entities: dict[str, Entity] = {}  # the same object for the same answer: cheap to compare

    @cached_property
    def plans(self) -> dict[str, ShipmentPlan]:
        """Every shipment that resolves against the network, by shipment id."""
        resolved = {}
        for shipment in self.shipments.values():
            if self.network.problem_with(shipment) is None:
                resolved[shipment.id] = self._resolve(shipment)
        return resolved

    @cached_property
    def _by_tracker(self) -> dict[str, tuple[list[int], list[ShipmentPlan]]]:
        grouped: dict[str, list[ShipmentPlan]] = {}
        for plan in self.plans.values():
            grouped.setdefault(plan.tracker, []).append(plan)
        index = {}
        for tracker, plans in grouped.items():
            plans.sort(key=lambda plan: (plan.departure_ms, plan.shipment_id))
            index[tracker] = ([plan.departure_ms - LOADING_MS for plan in plans], plans)
        return index

    def plan_for(self, tracker: str, ts_ms: int) -> ShipmentPlan | None:
        """The shipment a tracker carries at a moment (see the module's docstring)."""
        found = self._by_tracker.get(tracker)
        if found is None:
            return None
        starts, plans = found
        for plan in reversed(plans[: bisect_right(starts, ts_ms)]):
            if plan.status is ShipmentStatus.CANCELLED:
                continue
            return None if plan.status is ShipmentStatus.DELIVERED and _before(plan.shipment.delivered, ts_ms) else plan
        return None

    def entity(self, device_id: str, ts_ms: int) -> Entity:
        """What the device's reading at ts_ms is about."""
        if device_id in self._by_tracker:
            plan = self.plan_for(device_id, ts_ms)
            key = f"{device_id}>{plan.shipment_id if plan else ''}"
        else:
            plan, key = None, device_id
        found = self._entities.get(key)
        if found is None:
            found = self._entities[key] = self._entity(device_id, plan)
        return found

    def context(self, entity: Entity, device_id: str, position: LatLon | None) -> dict[str, str]:
        """Master data a person needs with an alert about this entity (runbooks, notifications)."""
        site = self.sites.get(entity.site)
        context = {"device": device_id, "site": site.name if site else entity.site}
        plan = entity.plan
        if plan is not None:
            shipment = plan.shipment
            context |= {"shipment": plan.shipment_id, "order": shipment.order, "cargo": plan.cargo,
                        "customer": shipment.customer or plan.destination.name, "origin": plan.origin.name,
                        "destination": plan.destination.name, "lane": plan.lane,
                        "promised": rfc3339(plan.promised_ms)}  # fmt: skip
        where = position or (site.position if site else None)
        if where is not None:
            context["position"] = f"{where[0]:.4f}, {where[1]:.4f}"
            for name, cold in (("nearest_site", False), ("nearest_cold_store", True)):
                nearest = self.nearest_site(where, cold_storage=cold)
                if nearest is not None:
                    context[name] = f"{nearest[0].name} ({nearest[1] / 1000:.0f} km)"
        return context

    def _entity(self, device_id: str, plan: ShipmentPlan | None) -> Entity:
        if device_id in self._by_tracker:
            if plan is None:
                return Entity(device_id, idle=True)
            ranges = {"temp_c": plan.cargo_type.range} if plan.cargo_type.controlled else {}
            return Entity(plan.shipment_id, plan.origin.id, plan, ranges, site_type=plan.origin.type)
        sensor = self.sensors.get(device_id)
        if sensor is not None:
            ranges = {"temp_c": sensor.range} if sensor.range.bounded else {}
            return Entity(device_id, sensor.site, ranges=ranges, site_type=self._site_type(sensor.site))
        machine = self.machines.get(device_id)
        if machine is not None:
            return Entity(device_id, machine.site, ranges=machine.healthy.ranges(),
                          site_type=self._site_type(machine.site))  # fmt: skip
        return Entity(device_id)

    def locate(self, plan: ShipmentPlan, point: LatLon) -> Position:
        off_route, along = plan.route.distance_from(point)
        at_destination = plan.destination.contains(point)
        if at_destination:
            site = plan.destination
        elif plan.origin.contains(point):
            site = plan.origin
        else:
            site = next((s for s in self.network.sites if s.contains(point)), None)
        if site is None:
            return Position(off_route, along, None, None, at_destination)
        return Position(off_route, along, site.id, site.type, at_destination, site.name)

    def nearest_site(self, point: LatLon, *, cold_storage: bool = False) -> tuple[Site, float] | None:
        """The nearest site (with cold storage, if asked) and its distance in metres."""
        candidates = [s for s in self.network.sites if s.cold_storage or not cold_storage]
        if not candidates:
            return None
        best = min(candidates, key=lambda site: distance_m(point, site.position))
        return best, distance_m(point, best.position)

    def _site_type(self, site_id: str) -> str:
        site = self.sites.get(site_id)
        return site.type if site else ""

    def _resolve(self, shipment: Shipment) -> ShipmentPlan:
        network = self.network
        if shipment.lane is not None:
            lane = network.lane(shipment.lane)
            origin, destination, route = lane.origin, lane.destination, network.lane_route(lane.id)
        else:
            origin, destination = shipment.origin, shipment.destination
            route = network.route(origin, destination, shipment.via)
        return ShipmentPlan(shipment, route, self.sites[origin], self.sites[destination],
                            network.cargo_types[shipment.cargo], network.planned_speed_kmh / 3.6)  # fmt: skip


def _before(moment_ms: int | None, ts_ms: int) -> bool:
    return moment_ms is not None and moment_ms <= ts_ms
