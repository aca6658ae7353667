"""OwnTracks location messages (owntracks/<user>/<device>) as shipment-tracker readings.

Device id: '<user>-<device>'. `_type: location` becomes a reading; `_type: lwt` (the app's last
will) marks the tracker offline. Other message types carry nothing we store and are dead-lettered
with the reason, so a misconfigured phone is visible rather than silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.adapters.native import parse_json
from ingest.validation import Rejected, check_device_id, reading_from_object
from tower.contract import DeviceKind, DeviceStatus, StatusChange
from tower.store import Batch

if TYPE_CHECKING:
    from ingest.decode import Decoder

# OwnTracks key -> contract field (vel is km/h, cog degrees, batt percent in OwnTracks' format)
FIELD_MAP = {"lat": "lat", "lon": "lon", "vel": "speed_kmh", "cog": "heading_deg", "batt": "battery_pct"}


def decode(decoder: Decoder, topic: str, levels: list[str], payload: bytes, received_ms: int) -> Batch:
    if len(levels) != 2:
        raise Rejected("unknown topic; OwnTracks publishes on owntracks/<user>/<device>")
    device_id = check_device_id(f"{levels[0]}-{levels[1]}")
    message = parse_json(payload)
    if not isinstance(message, dict):
        raise Rejected("OwnTracks message must be a JSON object")
    message_type = message.get("_type")
    if message_type == "lwt":
        return Batch(statuses=[StatusChange(DeviceKind.SHIPMENT, device_id, DeviceStatus.OFFLINE, received_ms)])
    if message_type != "location":
        raise Rejected(f"OwnTracks _type '{message_type}' is not stored; only location and lwt are")
    if "tst" not in message:
        raise Rejected("OwnTracks location without tst (the fix's epoch seconds)")
    fields = {FIELD_MAP[key]: value for key, value in message.items() if key in FIELD_MAP}
    reading = reading_from_object(
        DeviceKind.SHIPMENT,
        device_id,
        {"ts": message["tst"], **fields},
        received_ms,
        decoder.max_future_skew_ms,
    )
    return Batch(readings=[reading])
