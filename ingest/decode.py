"""From (topic, payload) to a Batch of readings, status changes and dead letters.

Runs in the MQTT network thread, so it does CPU work only, never I/O. The topic picks the
adapter; an adapter raises Rejected for a whole bad message or dead-letters single bad items of
an array, so one bad reading in a device's offline buffer does not cost the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.adapters import line_protocol, native, owntracks, plans
from ingest.validation import Rejected
from tower.config import Settings
from tower.contract import (
    LINE_PROTOCOL_NAMESPACE,
    OWNTRACKS_ROOT,
    PLANS_NAMESPACE,
    SERVICE_NAMESPACES,
    TOPIC_ROOT,
    DeadLetter,
)
from tower.store import Batch

_NATIVE_PREFIX = TOPIC_ROOT + "/"
_OWNTRACKS_PREFIX = OWNTRACKS_ROOT + "/"
_REASONS_SHOWN = 3  # a rejected array's dead letter names this many of its items' reasons


@dataclass(frozen=True)
class Decoder:
    max_payload_bytes: int
    max_future_skew_ms: int
    dead_letter_payload_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Decoder:
        return cls(settings.max_payload_bytes, settings.max_future_skew_s * 1000, settings.dead_letter_payload_bytes)

    def decode(self, topic: str, payload: bytes, received_ms: int) -> Batch:
        try:
            if len(payload) > self.max_payload_bytes:
                raise Rejected(f"payload is {len(payload)} bytes, over the {self.max_payload_bytes}-byte limit")
            if topic.startswith(_NATIVE_PREFIX):
                namespace = topic[len(_NATIVE_PREFIX) :].partition("/")[0]
                if namespace in SERVICE_NAMESPACES:
                    return Batch()  # published by tower services, not devices
                if namespace == LINE_PROTOCOL_NAMESPACE:
                    return line_protocol.decode(self, topic, payload, received_ms)
                if namespace == PLANS_NAMESPACE:
                    return plans.decode(self, topic, payload, received_ms)
                return native.decode(self, topic, payload, received_ms)
            if topic.startswith(_OWNTRACKS_PREFIX):
                return owntracks.decode(self, topic, topic.split("/")[1:], payload, received_ms)
            raise Rejected(f"unknown topic; devices publish on {TOPIC_ROOT}/<kind>/<device_id>/telemetry")
        except Rejected as reason:
            return Batch(dead_letters=[self.dead_letter(topic, payload, str(reason), received_ms)])

    def dead_letter(self, topic: str, payload: bytes, reason: str, received_ms: int) -> DeadLetter:
        kept = payload[: self.dead_letter_payload_bytes].decode("utf-8", errors="backslashreplace")
        return DeadLetter(received_ms, topic, kept, reason)

    def rejected_items(
        self, topic: str, payload: bytes, reasons: list[str], total: int, noun: str, received_ms: int
    ) -> DeadLetter:
        """One dead letter for the rejected items of one message (array items, lines), however many:
        a 200 KB array of junk is one record, not 100,000."""
        if total == 1:
            return self.dead_letter(topic, payload, reasons[0].partition(": ")[2], received_ms)
        shown = "; ".join(reasons[:_REASONS_SHOWN]) + ("; ..." if len(reasons) > _REASONS_SHOWN else "")
        return self.dead_letter(topic, payload, f"{len(reasons)} of {total} {noun} rejected: {shown}", received_ms)
