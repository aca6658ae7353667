"""The message contract, defined once as data: device kinds, their fields, topics and limits.

Validation (ingest), the storage schema (tower.store), the device makers' document
(`tower contract`, tower/CONTRACT.md) and later charts and rules all read these tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TOPIC_ROOT = "tower/v1"
LINE_PROTOCOL_NAMESPACE = "lp"
ALERTS_NAMESPACE = "alerts"  # tower/v1/alerts/<id> (announced by the engine), .../<id>/ack/<account>
PLANS_NAMESPACE = "plans"  # tower/v1/plans/shipments/<id>: shipment plans from a TMS or the simulator
SERVICE_NAMESPACES = (ALERTS_NAMESPACE,)  # topics under TOPIC_ROOT that tower services publish, not devices
OWNTRACKS_ROOT = "owntracks"
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# An OwnTracks <user> or <device> topic level: no '.', which joins them in the device id.
OWNTRACKS_LEVEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
EARLIEST_TS_MS = 946_684_800_000  # 2000-01-01: earlier stamps come from devices whose clock was never set
# What every store can hold, checked before any store sees a reading: SQLite and InfluxDB integers
# are signed 64-bit; neither takes an empty field name; names are identifiers so no backend's
# quoting or escaping is ever in play.
INT64_MAX = 2**63 - 1
FIELD_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Columns every reading frame (and the SQLite table) already has, and InfluxDB's time column:
# a field with one of these names would shadow or collide with it.
RESERVED_FIELD_NAMES = frozenset({"device_id", "ts", "kind", "seq", "extra", "time"})


class DeviceKind(StrEnum):
    SHIPMENT = "shipment"
    WAREHOUSE = "warehouse"
    EQUIPMENT = "equipment"


class DeviceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


FieldValue = float | int | bool | str


@dataclass(frozen=True)
class FieldSpec:
    """One measured quantity: how it is named, typed, bounded and described."""

    name: str
    type: type  # float, int, bool or str
    unit: str
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = field(default=())


def _number(name: str, unit: str, lo: float, hi: float, description: str) -> FieldSpec:
    return FieldSpec(name, float, unit, description, lo, hi)


def _flag(name: str, description: str) -> FieldSpec:
    return FieldSpec(name, bool, "", description)


KIND_FIELDS: dict[DeviceKind, tuple[FieldSpec, ...]] = {
    DeviceKind.SHIPMENT: (
        _number("lat", "deg", -90, 90, "WGS84 latitude"),
        _number("lon", "deg", -180, 180, "WGS84 longitude"),
        _number("speed_kmh", "km/h", 0, 250, "ground speed"),
        _number("heading_deg", "deg", 0, 360, "course over ground, 0 = north"),
        _number("temp_c", "°C", -60, 80, "cargo (reefer) air temperature"),
        _number("humidity_pct", "%", 0, 100, "cargo relative humidity"),
        _flag("door_open", "cargo door open"),
        _number("shock_g", "g", 0, 50, "peak acceleration since the last reading"),
        _number("battery_pct", "%", 0, 100, "tracker battery"),
    ),
    DeviceKind.WAREHOUSE: (
        _number("temp_c", "°C", -60, 80, "air temperature"),
        _number("humidity_pct", "%", 0, 100, "relative humidity"),
        _flag("dock_door_open", "dock door open"),
        _number("occupancy_pct", "%", 0, 100, "storage occupancy"),
    ),
    DeviceKind.EQUIPMENT: (
        _number("vibration_rms_mm_s", "mm/s", 0, 100, "vibration velocity, RMS (ISO 10816)"),
        _number("bearing_temp_c", "°C", -40, 250, "bearing temperature"),
        _number("motor_current_a", "A", 0, 2000, "motor current"),
        _number("rpm", "1/min", 0, 100_000, "shaft speed"),
        FieldSpec(
            "state",
            str,
            "",
            "operating state",
            choices=("running", "idle", "stopped", "fault", "maintenance"),
        ),
    ),
}


def storage_columns() -> dict[str, FieldSpec]:
    """Every known field by name, across kinds; a name means the same quantity in every kind."""
    columns: dict[str, FieldSpec] = {}
    for specs in KIND_FIELDS.values():
        for spec in specs:
            known = columns.setdefault(spec.name, spec)
            if (known.type, known.unit) != (spec.type, spec.unit):
                raise ValueError(f"field {spec.name} has two meanings across kinds")
    return columns


@dataclass(frozen=True, slots=True)
class Reading:
    """One validated reading: a device's fields at one event time (epoch milliseconds, UTC)."""

    kind: DeviceKind
    device_id: str
    ts_ms: int
    fields: dict[str, FieldValue]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be accepted, with the reason and what it looked like."""

    received_ms: int
    topic: str
    payload: str
    reason: str


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's retained online/offline status (its MQTT last will)."""

    kind: DeviceKind
    device_id: str
    status: DeviceStatus
    received_ms: int


def telemetry_topic(kind: DeviceKind, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{kind}/{device_id}/telemetry"


def status_topic(kind: DeviceKind, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{kind}/{device_id}/status"


def plan_topic(shipment_id: str) -> str:
    """A shipment's plan, retained: the newest plan of every shipment waits at the broker."""
    return f"{TOPIC_ROOT}/{PLANS_NAMESPACE}/shipments/{shipment_id}"


def plan_status_topic(shipment_id: str) -> str:
    """A shipment's status events (departed, delivered, cancelled), retained: the newest wins."""
    return f"{plan_topic(shipment_id)}/status"


def line_protocol_topic(device_id: str) -> str:
    """Line protocol names its device in the topic too, so the broker can hold a device to its own."""
    return f"{TOPIC_ROOT}/{LINE_PROTOCOL_NAMESPACE}/{device_id}"


def owntracks_device_id(user: str, device: str) -> str | None:
    """owntracks/<user>/<device> -> '<user>.<device>', or None if the levels cannot form a device id.

    '.' is in neither level, so the id splits back into exactly one topic: two topics never share
    a device id (a '-' join made owntracks/trk/rtm-1 and owntracks/trk-rtm/1 the same device).
    """
    if not (OWNTRACKS_LEVEL_PATTERN.match(user) and OWNTRACKS_LEVEL_PATTERN.match(device)):
        return None
    device_id = f"{user}.{device}"
    return device_id if DEVICE_ID_PATTERN.match(device_id) else None


def owntracks_topic(device_id: str) -> str | None:
    """The one OwnTracks topic that maps to this device id, if any (the inverse of owntracks_device_id)."""
    user, _, device = device_id.partition(".")
    return f"{OWNTRACKS_ROOT}/{user}/{device}" if owntracks_device_id(user, device) == device_id else None


def contract_markdown() -> str:
    """The field tables of the device makers' document (tower/CONTRACT.md), generated from the code."""
    lines: list[str] = []
    for kind, specs in KIND_FIELDS.items():
        lines += [
            f"### `{kind}`",
            "",
            "| field | type | unit | valid range | meaning |",
            "|---|---|---|---|---|",
        ]
        for spec in specs:
            cells = [f"`{spec.name}`", _type_name(spec), spec.unit or "-", _range_text(spec), spec.description]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _type_name(spec: FieldSpec) -> str:
    return {float: "number", int: "integer", bool: "boolean", str: "string"}[spec.type]


def _range_text(spec: FieldSpec) -> str:
    if spec.choices:
        return ", ".join(spec.choices)
    if spec.min is None and spec.max is None:
        return "-"
    return f"{spec.min:g} … {spec.max:g}"


def is_plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
