"""Device models: what a tracker, a warehouse sensor and a machine would report at a moment.

Each device has its own random generator seeded from the run's seed and its id, so its readings do
not depend on how devices interleave. Readings are plain dicts of contract fields (no ts, no seq).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.trips import Trip
from tower.contract import DeviceKind
from tower.masterdata.model import Equipment, WarehouseSensor
from tower.scenario import Fault, FaultType

HOUR_MS = 3_600_000
LOADING_MS = 20 * 60_000  # the tracker wakes this long before departure; doors open while loading
GPS_NOISE_M = 4.0


def ambient_model(mean_c: float, swing_c: float) -> Callable[[int], float]:
    """Outdoor temperature: a daily sine peaking mid-afternoon (UTC hours)."""

    def ambient(t_ms: int) -> float:
        hour = (t_ms / HOUR_MS) % 24
        return mean_c + swing_c * math.sin(2 * math.pi * (hour - 9) / 24)

    return ambient


def device_rng(seed: int, device_id: str) -> random.Random:
    return random.Random(f"{seed}:{device_id}")


@dataclass
class Tracker:
    """The tracker travelling with a shipment: position, speed, cargo climate, doors, shocks."""

    device_id: str
    trip: Trip
    interval_ms: int
    rng: random.Random
    kind: DeviceKind = DeviceKind.SHIPMENT
    battery: float = field(init=False)

    def __post_init__(self) -> None:
        self.battery = self.rng.uniform(70, 100)

    @property
    def active_from_ms(self) -> int:
        return self.trip.departure_ms - LOADING_MS

    @property
    def active_until_ms(self) -> int:
        return self.trip.times_ms[-1]

    def reading(self, t_ms: int, door_fault: bool) -> dict:
        (lat, lon), heading, speed, cargo_c = self.trip.state(t_ms)
        speed = speed if t_ms >= self.trip.departure_ms else 0.0  # parked at the dock until it leaves
        lat += math.degrees(self.rng.gauss(0, GPS_NOISE_M) / 6_371_000)
        lon += math.degrees(self.rng.gauss(0, GPS_NOISE_M) / (6_371_000 * math.cos(math.radians(lat))))
        loading = t_ms < self.trip.departure_ms - 5 * 60_000
        arrived = self.trip.arrival_ms is not None and t_ms >= self.trip.arrival_ms
        shock = abs(self.rng.gauss(0.25, 0.1)) + (self.rng.uniform(1.5, 4) if self.rng.random() < 0.01 else 0)
        self.battery = max(5.0, self.battery - self.interval_ms / HOUR_MS * 0.4)
        cold = self.trip.cargo_temp_c[0] < 15
        return {
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "speed_kmh": round(max(0.0, speed + (self.rng.gauss(0, 1.0) if speed else 0)), 1),
            "heading_deg": round(heading, 1),
            "temp_c": round(cargo_c + self.rng.gauss(0, 0.15), 2),
            "humidity_pct": round(min(100.0, max(0.0, (85 if cold else 60) + self.rng.gauss(0, 2))), 1),
            "door_open": loading or arrived or door_fault,
            "shock_g": round(shock, 2),
            "battery_pct": round(self.battery, 1),
        }


@dataclass
class WarehouseProbe:
    """A room sensor: controlled rooms hold their setpoint, halls and docks follow the weather."""

    sensor: WarehouseSensor
    interval_ms: int
    rng: random.Random
    ambient: Callable[[int], float]
    kind: DeviceKind = DeviceKind.WAREHOUSE
    occupancy: float = field(init=False)
    door_until_ms: int = 0

    def __post_init__(self) -> None:
        self.occupancy = self.rng.uniform(55, 85)

    @property
    def device_id(self) -> str:
        return self.sensor.id

    def reading(self, t_ms: int, door_fault: bool = False) -> dict:
        working = 5 <= (t_ms / HOUR_MS) % 24 < 23
        if t_ms >= self.door_until_ms and working and self.rng.random() < self.interval_ms / (15 * 60_000):
            self.door_until_ms = t_ms + self.rng.randint(3, 10) * 60_000
        door_open = t_ms < self.door_until_ms
        if self.sensor.setpoint_c is not None:
            temp = self.sensor.setpoint_c + self.rng.gauss(0, 0.3) + (1.2 if door_open else 0)
        else:
            indoor = 0.35 if "dock" in self.sensor.zone else 0.6  # how much the building shields it
            temp = self.ambient(t_ms) + indoor * 12 + self.rng.gauss(0, 0.3) - (2 if door_open else 0)
        self.occupancy = min(98.0, max(20.0, self.occupancy + self.rng.gauss(0, 0.4)))
        return {
            "temp_c": round(temp, 2),
            "humidity_pct": round(min(100.0, max(0.0, 55 + self.rng.gauss(0, 3))), 1),
            "dock_door_open": door_open,
            "occupancy_pct": round(self.occupancy, 1),
        }


@dataclass
class Machine:
    """A machine on its duty cycle; bearing wear, motor overheating or sudden failure change it."""

    device_id: str
    group: Equipment
    interval_ms: int
    rng: random.Random
    start_ms: int
    faults: list[Fault]
    kind: DeviceKind = DeviceKind.EQUIPMENT
    bearing_c: float = field(init=False)

    def __post_init__(self) -> None:
        self.bearing_c = sum(self.group.healthy.bearing_temp_c) / 2

    def failure_ms(self) -> int | None:
        """When the machine stops for good, if a fault makes it."""
        times = [self._fault_end(f) for f in self.faults]
        return min(times) if times else None

    def _fault_end(self, fault: Fault) -> int:
        return self.start_ms + fault.at + (0 if fault.type == FaultType.SUDDEN_FAILURE else fault.duration)

    def reading(self, t_ms: int, door_fault: bool = False) -> dict:
        healthy = self.group.healthy
        failed_at = self.failure_ms()
        if failed_at is not None and t_ms >= failed_at:
            self.bearing_c += (20 - self.bearing_c) * 0.05
            return {"vibration_rms_mm_s": round(abs(self.rng.gauss(0.1, 0.05)), 3),
                    "bearing_temp_c": round(self.bearing_c, 2), "motor_current_a": 0.0, "rpm": 0.0,
                    "state": "fault"}  # fmt: skip
        running = self._running(t_ms)
        vib_mid = sum(healthy.vibration_rms_mm_s) / 2
        vib_noise = (healthy.vibration_rms_mm_s[1] - healthy.vibration_rms_mm_s[0]) / 8
        current_mid = sum(healthy.motor_current_a) / 2
        wear, heat = 0.0, 0.0
        for fault in self.faults:
            begin = self.start_ms + fault.at
            if fault.type == FaultType.BEARING_WEAR and t_ms >= begin:
                wear = max(wear, fault.severity * ((t_ms - begin) / fault.duration) ** 2)
            if fault.type == FaultType.MOTOR_OVERHEATING and t_ms >= begin:
                heat = max(heat, fault.severity * min(1.0, (t_ms - begin) / fault.duration))
        target_c = (
            (sum(healthy.bearing_temp_c) / 2 if running else healthy.bearing_temp_c[0] - 8) + 25 * wear + 40 * heat
        )
        self.bearing_c += (target_c - self.bearing_c) * min(1.0, self.interval_ms / (20 * 60_000))
        if not running:
            return {
                "vibration_rms_mm_s": round(abs(self.rng.gauss(0.15, 0.05)), 3),
                "bearing_temp_c": round(self.bearing_c + self.rng.gauss(0, 0.2), 2),
                "motor_current_a": round(abs(self.rng.gauss(0.3, 0.1)), 2),
                "rpm": 0.0,
                "state": "idle",
            }
        return {
            "vibration_rms_mm_s": round(max(0.0, vib_mid * (1 + 3 * wear) + self.rng.gauss(0, vib_noise)), 3),
            "bearing_temp_c": round(self.bearing_c + self.rng.gauss(0, 0.3), 2),
            "motor_current_a": round(current_mid * (1 + 0.35 * heat) + self.rng.gauss(0, current_mid * 0.03), 2),
            "rpm": round(healthy.rpm * (1 + self.rng.gauss(0, 0.003)), 1),
            "state": "running",
        }

    def _running(self, t_ms: int) -> bool:
        hour = (t_ms / HOUR_MS) % 24
        if self.group.type in ("conveyor", "sorter", "reefer_unit"):
            return self.group.type == "reefer_unit" or 6 <= hour < 22
        busy = 0.6 if self.group.type == "forklift" else 0.15  # forklifts and doors run in bursts
        return 6 <= hour < 22 and self.rng.random() < busy
