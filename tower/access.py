"""Who may publish and subscribe to what on the broker: every account kind's grants, as data.

One MQTT account per device (named by its device id) and one per service. A device publishes only
on its own topics and subscribes to nothing; each service gets the least it needs. The broker
enforces these grants (tower.accounts writes them into mosquitto's dynamic-security plugin); the
decoder enforces what a broker cannot see: a payload naming another device than its topic.

| account | publishes | subscribes |
|---|---|---|
| device (shipment, ...) | its telemetry, status, `tower/v1/lp/<id>`, `owntracks/<user>/<device>/#` | nothing |
| collector | nothing | `tower/v1/#`, `owntracks/#` (also as `$share/<group>/...`) |
| alerts (the engine) | `tower/v1/alerts/<id>` (retained announcements) | `tower/v1/#`, `owntracks/#` |
| dashboard | nothing | `tower/v1/alerts/+` |
| simulator (demo only) | any device's telemetry and status, `tower/v1/plans/#` (plans and status events) | nothing |
| integration (e.g. a TMS) | `tower/v1/plans/#`, `tower/v1/alerts/+/ack/<its account>` | `tower/v1/alerts/+` |

The collector and the engine read everything under their roots, malformed topics included, so that
ingest can dead-letter what it cannot use. An integration acknowledges an alert on a topic ending in
its own account name, which only it may publish to: the engine records that name, not the payload's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tower.contract import (
    ALERTS_NAMESPACE,
    DEVICE_ID_PATTERN,
    OWNTRACKS_ROOT,
    PLANS_NAMESPACE,
    TOPIC_ROOT,
    DeviceKind,
    line_protocol_topic,
    owntracks_topic,
    status_topic,
    telemetry_topic,
)


class ServiceRole(StrEnum):
    COLLECTOR = "collector"
    ALERTS = "alerts"
    DASHBOARD = "dashboard"
    SIMULATOR = "simulator"
    INTEGRATION = "integration"


AccountKind = DeviceKind | ServiceRole
ANNOUNCEMENTS = f"{TOPIC_ROOT}/{ALERTS_NAMESPACE}/+"


@dataclass(frozen=True)
class Grant:
    action: Literal["publish", "subscribe"]
    topic: str  # an MQTT topic filter: + and # match as in subscriptions


def account_kind(text: str) -> AccountKind:
    """'shipment' -> DeviceKind.SHIPMENT, 'collector' -> ServiceRole.COLLECTOR; ValueError otherwise."""
    for kind in (*DeviceKind, *ServiceRole):
        if kind.value == text:
            return kind
    names = ", ".join(kind.value for kind in (*DeviceKind, *ServiceRole))
    raise ValueError(f"unknown account kind '{text[:40]}'; use one of {names}")


def check_account_name(name: str) -> str:
    """Account names follow the device id rules: they appear in topics (ack/<account>) and ACLs."""
    if not DEVICE_ID_PATTERN.match(name):
        raise ValueError(
            f"account name '{name[:80]}' is not valid: use 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return name


def grants(name: str, kind: AccountKind) -> list[Grant]:
    """Everything the account `name` of this kind may do; anything else the broker refuses."""
    if isinstance(kind, DeviceKind):
        topics = [telemetry_topic(kind, name), status_topic(kind, name), line_protocol_topic(name)]
        owntracks = owntracks_topic(name) if kind is DeviceKind.SHIPMENT else None
        # The app also publishes .../event, /info, /waypoints: ingest dead-letters them, but a refused
        # publish would make mosquitto drop the phone's connection each time.
        return [Grant("publish", topic) for topic in topics + ([f"{owntracks}/#"] if owntracks else [])]
    everything = [f"{TOPIC_ROOT}/#", f"{OWNTRACKS_ROOT}/#"]
    match kind:
        case ServiceRole.COLLECTOR:
            shared = [f"$share/+/{topic}" for topic in everything]
            return [Grant("subscribe", topic) for topic in everything + shared]
        case ServiceRole.ALERTS:
            return [Grant("subscribe", topic) for topic in everything] + [Grant("publish", ANNOUNCEMENTS)]
        case ServiceRole.DASHBOARD:
            return [Grant("subscribe", ANNOUNCEMENTS)]
        case ServiceRole.SIMULATOR:
            devices = [f"{TOPIC_ROOT}/{device}/+/{role}" for device in DeviceKind for role in ("telemetry", "status")]
            plans = f"{TOPIC_ROOT}/{PLANS_NAMESPACE}/#"  # its TMS: plans and status events
            return [Grant("publish", topic) for topic in [*devices, plans]]
        case ServiceRole.INTEGRATION:
            return [
                Grant("publish", f"{TOPIC_ROOT}/{PLANS_NAMESPACE}/#"),
                Grant("publish", f"{ANNOUNCEMENTS}/ack/{name}"),
                Grant("subscribe", ANNOUNCEMENTS),
            ]
    raise AssertionError(f"no grants defined for {kind!r}")
