"""Scenario files: the simulator's input. A scenario is a network in the network file's format
(tower/masterdata/model.py: sites, cargo types, lanes, warehouse sensors, equipment) plus what a
simulation plays on it: shipments (times as offsets from the run's start), how often devices
report, the weather, and the faults to inject.

The tower does not read scenarios for its shipments: the simulator publishes each shipment's plan
over MQTT like any TMS would (simulators/tms.py); a scenario file can serve as a network file.
Times inside a scenario are offsets from its start ("90m", "-2d"); `load_scenario` reports a bad
file as `file:line: problem`. The format is documented in simulators/SCENARIOS.md.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tower.masterdata.model import Id, Network, Shipment
from tower.masterdata.view import MasterData
from tower.yamlfile import Duration, FileError, Located, Offset, load_model

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "simulators" / "scenarios" / "default.yaml"


class ScenarioError(FileError):
    """A scenario file that cannot be used; the message names file, line and problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioShipment(_Model):
    id: Id
    tracker: Id
    lane: str
    departure: Offset
    promised: Offset
    cargo: str
    order: str = ""
    customer: str = ""


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


class Scenario(Network):
    """A network (the network file's keys) and the simulation to play on it."""

    name: str
    description: str = ""
    duration: Duration = 86_400_000
    reporting: Reporting = Reporting()
    ambient_c: tuple[float, float] = Field((9.0, 4.0), description="daily mean and half-swing, °C")
    shipments: tuple[ScenarioShipment, ...] = ()
    shipment_waves: tuple[ShipmentWave, ...] = ()
    faults: tuple[Fault, ...] = ()
    random_faults: RandomFaults = RandomFaults()

    @model_validator(mode="after")
    def _shipments_and_faults(self) -> Scenario:
        lanes = {lane.id for lane in self.lanes}
        for group in ("shipments", "shipment_waves"):
            for i, item in enumerate(getattr(self, group)):
                if item.lane not in lanes:
                    raise Located((group, i, "lane"), f"{_name(item)}: unknown lane '{item.lane}'")
                if item.cargo not in self.cargo_types:
                    raise Located((group, i, "cargo"), f"{_name(item)}: unknown cargo type '{item.cargo}'")
        shipments = {s.id for s in self.all_shipments()}
        machines = {m for m, _ in self.machines()}
        for i, fault in enumerate(self.faults):
            known = shipments if fault.type in SHIPMENT_FAULTS else machines
            if fault.target not in known:
                raise Located(("faults", i, "target"), f"fault {fault.type}: unknown target '{fault.target}'")
        ids = [s.tracker for s in self.all_shipments()] + [w.id for w in self.warehouse_sensors] + list(machines)
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"device ids used twice: {', '.join(duplicates[:5])}")
        return self

    def network(self) -> Network:
        """The scenario's network part, as a network file would give it."""
        return Network(**{name: getattr(self, name) for name in Network.model_fields})

    def all_shipments(self) -> list[ScenarioShipment]:
        """Listed shipments and those of every wave, in departure order (times: offsets from the start)."""
        expanded = list(self.shipments)
        for wave in self.shipment_waves:
            drive = self.planned_drive_ms(self.lane_route(wave.lane))
            for n in range(wave.count):
                departure = wave.first_departure + n * wave.every
                promised = -(-(departure + drive + wave.slack) // 60_000) * 60_000  # whole minutes, as customers hear
                expanded.append(
                    ScenarioShipment(
                        id=f"{wave.id_prefix}-{n + 1:02d}",
                        tracker=f"{wave.tracker_prefix}-{n + 1:02d}",
                        lane=wave.lane,
                        departure=f"{departure}ms",
                        promised=f"{promised}ms",
                        cargo=wave.cargo,
                    )
                )
        return sorted(expanded, key=lambda s: (s.departure, s.id))

    def master_data(self, start_ms: int) -> MasterData:
        """What the tower knows once the simulator's TMS has published every plan of a run."""
        return MasterData(self.network(), {shipment.id: shipment for shipment in self.plans(start_ms)})

    def plans(self, start_ms: int) -> list[Shipment]:
        """The shipments as their owner would plan them for a run starting at start_ms (absolute times)."""
        return [
            Shipment(
                id=s.id,
                tracker=s.tracker,
                lane=s.lane,
                cargo=s.cargo,
                departure=start_ms + s.departure,
                promised=start_ms + s.promised,
                order=s.order or f"ORD-{s.id}",
                customer=s.customer or self.site(self.lane(s.lane).destination).name,
            )  # fmt: skip
            for s in self.all_shipments()
        ]


def _name(item: BaseModel) -> str:
    return f"{type(item).__name__} {getattr(item, 'id', None) or getattr(item, 'id_prefix', '')}".strip()


def bundled_scenarios() -> list[str]:
    """The names of the scenarios that ship with the tower (simulators/scenarios/NAME.yaml)."""
    return sorted(path.stem for path in DEFAULT_SCENARIO.parent.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario's name ('default', 'iberia') or a path. ScenarioError('file:line: problem')
    for anything wrong with the file."""
    text = str(name_or_path)
    bundled = DEFAULT_SCENARIO.parent / f"{text}.yaml"
    path = bundled if text in bundled_scenarios() else Path(name_or_path)
    if not path.exists():
        raise ScenarioError(f"{text}: no such scenario file; give a path or one of: {', '.join(bundled_scenarios())}")
    return load_model(path, Scenario, "scenario", ScenarioError)
