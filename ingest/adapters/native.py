"""The native contract: tower/v1/<kind>/<device_id>/telemetry (JSON object or array) and .../status."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic_core import from_json

from ingest.validation import Rejected, check_device_id, reading_from_json, reading_from_object
from tower.contract import DeviceKind, DeviceStatus, StatusChange
from tower.store import Batch

if TYPE_CHECKING:
    from ingest.decode import Decoder

_KINDS = ", ".join(kind.value for kind in DeviceKind)


def decode(decoder: Decoder, topic: str, payload: bytes, received_ms: int) -> Batch:
    kind, device_id, role = parse_topic(topic)
    if role == "status":
        return Batch(statuses=[StatusChange(kind, device_id, _status(payload), received_ms)])
    if payload.lstrip()[:1] != b"[":
        reading = reading_from_json(kind, device_id, payload, received_ms, decoder.max_future_skew_ms)
        return Batch(readings=[reading])
    return _offline_buffer(decoder, topic, kind, device_id, payload, received_ms)


@lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> tuple[DeviceKind, str, str]:
    """tower/v1/<kind>/<device_id>/<role> -> (kind, device_id, role); cached: a fleet reuses its topics."""
    levels = topic.split("/")[2:]
    if len(levels) != 3 or levels[2] not in ("telemetry", "status"):
        raise Rejected("unknown topic; use tower/v1/<kind>/<device_id>/telemetry or .../status")
    kind_name, device_id, role = levels
    try:
        kind = DeviceKind(kind_name)
    except ValueError:
        raise Rejected(f"unknown device kind '{kind_name[:40]}'; use one of {_KINDS}") from None
    return kind, check_device_id(device_id), role


def _offline_buffer(
    decoder: Decoder, topic: str, kind: DeviceKind, device_id: str, payload: bytes, received_ms: int
) -> Batch:
    """A JSON array: each item stands or falls alone; the rejected ones make one dead letter."""
    items = parse_json(payload)
    if not items:
        raise Rejected("empty array; send at least one reading")
    batch, reasons = Batch(), []
    for index, item in enumerate(items):
        try:
            batch.readings.append(reading_from_object(kind, device_id, item, received_ms, decoder.max_future_skew_ms))
        except Rejected as reason:
            reasons.append(f"item {index}: {reason}")
    if reasons:
        batch.dead_letters.append(decoder.rejected_items(topic, payload, reasons, len(items), "items", received_ms))
    return batch


def parse_json(payload: bytes) -> object:
    """JSON to Python with pydantic-core's parser: nesting deeper than 200 levels and numbers beyond
    what a float or a 4300-digit int holds are errors, where json.loads raises RecursionError."""
    try:
        return from_json(payload)
    except ValueError as error:
        raise Rejected(f"invalid JSON: {error}") from None


def _status(payload: bytes) -> DeviceStatus:
    text = payload.decode("utf-8", errors="replace").strip().strip('"').lower()
    try:
        return DeviceStatus(text)
    except ValueError:
        raise Rejected(f"status must be 'online' or 'offline', got '{text[:40]}'") from None
