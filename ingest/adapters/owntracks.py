"""OwnTracks location messages (owntracks/<user>/<device>) as shipment-tracker readings.

Device id: '<user>.<device>' (tower.contract.owntracks_device_id: one topic, one id). `_type:
location` becomes a reading; `_type: lwt` (the app's last will) marks the tracker offline. Other
message types carry nothing we store and are dead-lettered with the reason, so a misconfigured
phone is visible rather than silently ignored. A payload naming another topic than the one it came
on (OwnTracks' own `topic` key) is dead-lettered: the broker only vouches for the topic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.adapters.native import parse_json
from ingest.validation import Rejected, reading_from_object
from tower.contract import DeviceKind, DeviceStatus, StatusChange, owntracks_device_id
from tower.store import Batch

if TYPE_CHECKING:
    from ingest.decode import Decoder

# OwnTracks key -> contract field (vel is km/h, cog degrees, batt percent in OwnTracks' format)
FIELD_MAP = {"lat": "lat", "lon": "lon", "vel": "speed_kmh", "cog": "heading_deg", "batt": "battery_pct"}


def decode(decoder: Decoder, topic: str, levels: list[str], payload: bytes, received_ms: int) -> Batch:
    if len(levels) != 2:
        raise Rejected("unknown topic; OwnTracks publishes on owntracks/<user>/<device>")
    device_id = owntracks_device_id(*levels)
    if device_id is None:
        raise Rejected(
            "OwnTracks user and device must be letters, digits, '_' or '-' (no '.'), starting alphanumeric, "
            "at most 64 characters together"
        )
    message = parse_json(payload)
    if not isinstance(message, dict):
        raise Rejected("OwnTracks message must be a JSON object")
    named = message.get("topic", topic)
    if named != topic:
        raise Rejected(f"payload names topic '{str(named)[:80]}' but came on '{topic}'; a device sends only its own")
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
