"""InfluxDB line protocol as Telegraf's MQTT output sends it, on tower/v1/lp/<device_id>.

Each line: `<kind>,device_id=<id>[,other tags] field=value[,...] <timestamp ns>`; the measurement
must be a device kind, the device_id tag must be the topic's device (the broker lets a device
publish only on its own topic, so a line naming another device is a forgery or a misconfiguration)
and the timestamp is required (event time, nanoseconds, Telegraf's default). Other tags (Telegraf
adds `host`) are not stored. Lines stand or fall alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from line_protocol_parser import LineFormatError, parse_line

from ingest.validation import Rejected, check_device_id, reading_from_object
from tower.contract import DeviceKind, Reading
from tower.store import Batch

if TYPE_CHECKING:
    from ingest.decode import Decoder


def decode(decoder: Decoder, topic: str, payload: bytes, received_ms: int) -> Batch:
    levels = topic.split("/")
    if len(levels) != 4:
        raise Rejected("unknown topic; line protocol goes to tower/v1/lp/<device_id>, the device sending it")
    topic_device = check_device_id(levels[3])
    lines = [line for line in payload.splitlines() if line.strip() and not line.lstrip().startswith(b"#")]
    if not lines:
        raise Rejected("no line-protocol lines in payload")
    batch, reasons = Batch(), []
    for number, line in enumerate(lines, start=1):
        try:
            batch.readings.append(_reading(decoder, line, topic_device, received_ms))
        except Rejected as reason:
            reasons.append(f"line {number}: {reason}")
    if reasons:
        batch.dead_letters.append(decoder.rejected_items(topic, payload, reasons, len(lines), "lines", received_ms))
    return batch


def _reading(decoder: Decoder, line: bytes, topic_device: str, received_ms: int) -> Reading:
    try:
        point = parse_line(line)
    except (LineFormatError, ValueError) as error:
        raise Rejected(f"invalid line protocol: {error}") from None
    try:
        kind = DeviceKind(point["measurement"])
    except ValueError:
        raise Rejected(
            f"measurement '{point['measurement'][:40]}' is not a device kind; "
            "use shipment, warehouse or equipment (Telegraf: name_override)"
        ) from None
    device_id = point["tags"].get("device_id")
    if device_id is None:
        raise Rejected("line has no device_id tag")
    if device_id != topic_device:
        raise Rejected(
            f"device_id '{device_id[:80]}' is not the topic's device '{topic_device}'; "
            "a device sends only its own readings, on tower/v1/lp/<its device_id>"
        )
    if point["time"] is None:
        raise Rejected("line has no timestamp; event time is required (nanoseconds)")
    obj = {"ts": point["time"] // 1_000_000, **point["fields"]}
    return reading_from_object(kind, device_id, obj, received_ms, decoder.max_future_skew_ms)
