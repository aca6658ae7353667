"""A shipment's trip, planned in 10-second steps before any message is sent: where the truck is,
how fast it goes, when it arrives, and what the reefer air temperature does. Pure and seeded.

Speeds: urban near either end, motorway in between, drift and short natural slow-downs, the EU
rule of a 45-minute break after 4.5 hours of driving. Faults reshape the profile: a traffic jam
caps the speed, a breakdown stops the truck, a route deviation takes it off the route and back.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass

from tower.geo import LatLon, Route, offset
from tower.masterdata.model import CargoType, Shipment
from tower.scenario import Fault, FaultType

STEP_MS = 10_000
URBAN_M = 4_000  # within this distance of either end the truck drives in town
URBAN_KMH, MOTORWAY_KMH = 38.0, 84.0
JAM_KMH = 8.0
BREAK_AFTER_MS, BREAK_MS = 4.5 * 3_600_000, 45 * 60_000
DEVIATION_M = 3_000.0  # how far off the route a deviation goes at severity 1
MAX_TRIP_MS = 14 * 3_600_000


@dataclass(frozen=True)
class Trip:
    shipment: Shipment
    route: Route
    departure_ms: int
    arrival_ms: int | None  # None: still on the road when the plan ends
    times_ms: tuple[int, ...]
    along_m: tuple[float, ...]
    speed_kmh: tuple[float, ...]
    off_route_m: tuple[float, ...]
    cargo_temp_c: tuple[float, ...]

    def _index(self, t_ms: int) -> int:
        return max(0, min(len(self.times_ms) - 1, bisect_right(self.times_ms, t_ms) - 1))

    def state(self, t_ms: int) -> tuple[LatLon, float, float, float]:
        """(position, heading, speed km/h, cargo °C) at a moment of the trip."""
        i = self._index(t_ms)
        point, heading = self.route.position(self.along_m[i])
        if self.off_route_m[i]:
            # sideways from the route: to the right of the heading
            angle = math.radians(heading + 90)
            point = offset(point, self.off_route_m[i] * math.cos(angle), self.off_route_m[i] * math.sin(angle))
        return point, heading, self.speed_kmh[i], self.cargo_temp_c[i]


def plan_trip(
    shipment: Shipment,
    route: Route,
    cargo: CargoType,
    faults: list[Fault],
    ambient_c: callable,
    rng: random.Random,
) -> Trip:
    departure = shipment.departure
    windows = {
        fault.type: (departure + fault.after, departure + fault.after + fault.duration, fault.severity)
        for fault in faults
    }
    times, along, speeds, off_route, temps = [], [], [], [], []
    distance, drift, driven_ms, slow_until, slow_kmh = 0.0, 0.0, 0, 0, 0.0
    temp = _held_c(cargo) if cargo.controlled else ambient_c(departure)
    break_until, arrival = 0, None
    t = departure
    while t <= departure + MAX_TRIP_MS:
        arrived = distance >= route.length_m
        if arrived and arrival is None:
            arrival = t
        speed = 0.0
        if not arrived:
            urban = distance < URBAN_M or route.length_m - distance < URBAN_M
            drift += -drift * STEP_MS / 120_000 + rng.gauss(0, 1.2)
            speed = (URBAN_KMH if urban else MOTORWAY_KMH) + drift
            if t >= slow_until and rng.random() < 0.004:  # a short natural slow-down
                slow_until, slow_kmh = t + rng.randint(2, 6) * 60_000, rng.uniform(30, 55)
            if t < slow_until:
                speed = min(speed, slow_kmh)
            if driven_ms >= BREAK_AFTER_MS:
                break_until, driven_ms = t + BREAK_MS, 0
            if t < break_until or _active(windows, FaultType.BREAKDOWN, t):
                speed = 0.0
            elif _active(windows, FaultType.TRAFFIC_JAM, t):
                speed = min(speed, JAM_KMH + rng.uniform(-3, 3))
            speed = max(0.0, speed)
            progress = speed / 3.6 * STEP_MS / 1000
            if _active(windows, FaultType.ROUTE_DEVIATION, t):
                progress *= 0.4  # driving away from the route: little progress along it
            distance = min(route.length_m, distance + progress)
            driven_ms += STEP_MS if speed > 0 else 0
        temp = _cargo_temperature(temp, cargo, windows, t, ambient_c(t), arrived)
        times.append(t)
        along.append(distance)
        speeds.append(round(speed, 1))
        off_route.append(_deviation(windows, t))
        temps.append(temp)
        if arrival is not None and t >= arrival + 30 * 60_000:
            break
        t += STEP_MS
    return Trip(shipment, route, departure, arrival, *map(tuple, (times, along, speeds, off_route, temps)))


def _active(windows: dict, kind: FaultType, t: int) -> bool:
    window = windows.get(kind)
    return window is not None and window[0] <= t < window[1]


def _deviation(windows: dict, t: int) -> float:
    """Off-route distance: out over the first third of the window, held, back over the last third."""
    window = windows.get(FaultType.ROUTE_DEVIATION)
    if window is None or not window[0] <= t < window[1]:
        return 0.0
    start, end, severity = window
    third = (end - start) / 3
    ramp = min(1.0, (t - start) / third, (end - t) / third)
    return DEVIATION_M * severity * ramp


def _cargo_temperature(temp: float, cargo: CargoType, windows: dict, t: int, ambient: float, arrived: bool) -> float:
    """First-order air temperature: a working unit's thermostat holds the setpoint against the walls'
    leak (it pulls back within minutes); a failed unit's fans and the sun push it well above ambient;
    an open door lets ambient in faster than the unit can pull."""
    dt_min = STEP_MS / 60_000
    door_open = _active(windows, FaultType.DOOR_OPEN_IN_TRANSIT, t) or arrived
    if not cargo.controlled:
        return temp + (ambient - temp) * dt_min / 90
    if _active(windows, FaultType.REEFER_FAILURE, t):
        severity = windows[FaultType.REEFER_FAILURE][2]
        return temp + (ambient + 8 * severity - temp) * dt_min / 40
    pull = (_held_c(cargo) - temp) * dt_min / 12
    leak = (ambient - temp) * dt_min / 6 if door_open else 0.0
    return temp + pull + leak


def _held_c(cargo: CargoType) -> float:
    """What a working reefer unit holds: the setpoint, or the middle of the range without one."""
    if cargo.setpoint_c is not None:
        return cargo.setpoint_c
    low, high = cargo.min_c, cargo.max_c
    return (low + high) / 2 if low is not None and high is not None else (high - 3 if high is not None else low + 3)
