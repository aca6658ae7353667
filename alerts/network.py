"""Master data as the rules need it: which entity a device stands for, its site, and for a
shipment's tracker the plan it is judged against (route, promised time, cargo range).

Built from a scenario placed at an absolute start time; without a scenario every device is its
own entity and shipment-aware rules (geofence, route, delay, cold chain) have nothing to judge.
"""

from __future__ import annotations

from dataclasses import dataclass

from tower.geo import LatLon, Route
from tower.scenario import CargoType, Scenario, Site, load_scenario
from tower.timeutil import now_ms, parse_moment_ms

DAY_MS = 86_400_000


def scenario_start_ms(text: str | None) -> int:
    """When a scenario's time 0 is: the given moment, or today 00:00 UTC."""
    return parse_moment_ms(text) if text else now_ms() // DAY_MS * DAY_MS


@dataclass(frozen=True)
class ShipmentPlan:
    shipment_id: str
    lane: str
    route: Route
    origin: Site
    destination: Site
    departure_ms: int
    promised_ms: int
    cargo: str
    cargo_range: CargoType
    planned_speed_m_s: float


@dataclass(frozen=True)
class Entity:
    """What an alert is about: a shipment (for its tracker), or the device itself."""

    entity_id: str
    site: str = ""
    plan: ShipmentPlan | None = None

    @property
    def cargo(self) -> str:
        return self.plan.cargo if self.plan else ""


@dataclass(frozen=True)
class Position:
    """What a tracker's position means against its plan, computed once per reading."""

    off_route_m: float
    along_m: float
    site: str | None  # the site whose geofence contains it


def load_network(scenario: str | None, start_ms: int) -> Network:
    """Master data from a scenario file (or 'default') placed at start_ms; none without a scenario."""
    return Network(load_scenario(scenario), start_ms) if scenario else Network()


class Network:
    def __init__(self, scenario: Scenario | None = None, start_ms: int = 0) -> None:
        self.sites: tuple[Site, ...] = scenario.sites if scenario else ()
        self._entities: dict[str, Entity] = {}
        if scenario is None:
            return
        for shipment in scenario.all_shipments():
            lane = scenario.lane(shipment.lane)
            plan = ShipmentPlan(
                shipment_id=shipment.id,
                lane=lane.id,
                route=scenario.route(lane.id),
                origin=scenario.site(lane.origin),
                destination=scenario.site(lane.destination),
                departure_ms=start_ms + shipment.departure,
                promised_ms=start_ms + shipment.promised,
                cargo=shipment.cargo,
                cargo_range=scenario.cargo_types[shipment.cargo],
                planned_speed_m_s=scenario.planned_speed_kmh / 3.6,
            )
            self._entities[shipment.tracker] = Entity(shipment.id, lane.origin, plan)
        for sensor in scenario.warehouse_sensors:
            self._entities[sensor.id] = Entity(sensor.id, sensor.site)
        for machine_id, group in scenario.all_equipment():
            self._entities[machine_id] = Entity(machine_id, group.site)

    def plans(self) -> dict[str, ShipmentPlan]:
        """Every shipment's plan by its tracker's device id."""
        return {device: e.plan for device, e in self._entities.items() if e.plan is not None}

    def entity(self, device_id: str) -> Entity:
        found = self._entities.get(device_id)
        if found is None:
            found = self._entities[device_id] = Entity(device_id)
        return found

    def locate(self, plan: ShipmentPlan, point: LatLon) -> Position:
        off_route, along = plan.route.distance_from(point)
        site = next((s.id for s in (plan.origin, plan.destination, *self.sites) if s.contains(point)), None)
        return Position(off_route, along, site)
