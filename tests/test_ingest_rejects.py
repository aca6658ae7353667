"""Each malformed input is dead-lettered with its own reason while the collector keeps going."""

from __future__ import annotations

import pytest

from ingest.dead_letter_cap import DeadLetterCap
from tests.conftest import wait_until
from tower.contract import DeadLetter
from tower.timeutil import now_ms

GOOD = {"lat": 50.0, "lon": 5.0}
T = "tower/v1/shipment/trk-9/telemetry"

# (name, topic, payload, words the reason must contain)
MALFORMED = [
    ("invalid JSON", T, b'{"ts": 1700000000, "lat": ', "invalid JSON"),
    ("wrong type", T, b'{"ts": 1763800000, "lat": "fifty", "lon": 5}', "field lat: Input should be a valid number"),
    ("boolean as number", T, b'{"ts": 1763800000, "temp_c": true}', "field temp_c"),
    ("latitude out of range", T, b'{"ts": 1763800000, "lat": 91.5, "lon": 5}', "field lat: Input should be less than"),
    ("longitude out of range", T, b'{"ts": 1763800000, "lat": 50, "lon": -181}', "field lon: Input should be greater"),
    ("missing ts", T, b'{"lat": 50, "lon": 5}', "field ts: Field required"),
    ("garbage ts", T, b'{"ts": "yesterday-ish", "lat": 50}', "field ts: Input should be a valid datetime"),
    ("ts without offset", T, b'{"ts": "2026-11-22T10:00:00", "lat": 50}', "timezone"),
    ("unset device clock", T, b'{"ts": 5, "lat": 50}', "before 2000-01-01"),
    ("unknown text field", T, b'{"ts": 1763800000, "lat": 50, "note": "hi"}', "unknown field 'note' is str"),
    ("no fields", T, b'{"ts": 1763800000, "seq": 3}', "no fields"),
    ("not an object", T, b'"just a string"', "Input should be an object"),
    ("empty array", T, b"[]", "empty array"),
    ("unknown kind", "tower/v1/truck/trk-9/telemetry", b'{"ts": 1763800000}', "unknown device kind 'truck'"),
    ("unknown leaf", "tower/v1/shipment/trk-9/position", b"{}", "unknown topic"),
    ("topic too short", "tower/v1/shipment/trk-9", b"{}", "unknown topic"),
    ("OwnTracks topic too short", "owntracks/u", b"{}", "unknown topic"),
    ("invalid device id", "tower/v1/shipment/trk 9!/telemetry", b'{"ts": 1763800000}', "invalid device id"),
    ("bad status", "tower/v1/shipment/trk-9/status", b"sleeping", "status must be 'online' or 'offline'"),
    ("bad state", "tower/v1/equipment/m-1/telemetry", b'{"ts": 1763800000, "state": "on fire"}', "field state"),
    ("bad line protocol", "tower/v1/lp/m-1", b"equipment,device_id=m-1", "invalid line protocol"),
    ("line protocol without time", "tower/v1/lp/m-1", b"equipment,device_id=m-1 rpm=5", "no timestamp"),
    ("OwnTracks waypoint", "owntracks/u/p", b'{"_type": "waypoint", "tst": 1763800000}', "_type 'waypoint'"),
]


def test_each_malformed_input_gets_its_own_reason_and_ingest_goes_on(start_collector, publisher, store, settings):
    start_collector()
    t0 = now_ms() - 600_000
    for index, (_, topic, payload, _) in enumerate(MALFORMED):
        publisher.send(topic, payload)
        publisher.send(T, {"ts": t0 + index * 1000, "seq": index, **GOOD})  # the collector keeps storing
    future = now_ms() + 10 * 60_000
    publisher.send(T, {"ts": future, **GOOD})
    oversize = b'{"ts": 1763800000, "lat": 50, "pad": "' + b"x" * settings.max_payload_bytes + b'"}'
    publisher.send(T, oversize)
    publisher.send(T, {"ts": t0 + 500_000, "seq": 999, **GOOD})

    wait_until(lambda: len(store.readings("trk-9")) == len(MALFORMED) + 1, what="every good reading")
    letters = store.dead_letters()
    assert len(letters) == len(MALFORMED) + 2
    for (name, topic, payload, expected), letter in zip(MALFORMED, letters, strict=False):
        assert letter.topic == topic, name
        assert expected in letter.reason, f"{name}: {letter.reason}"
        assert letter.payload == payload.decode()[: settings.dead_letter_payload_bytes], name
    assert "in the future (limit 300 s)" in letters[-2].reason
    assert "over the 262144-byte limit" in letters[-1].reason
    assert len(letters[-1].payload) == settings.dead_letter_payload_bytes  # truncated, not the whole payload
    assert all(letter.received_ms >= t0 for letter in letters)


def test_one_bad_item_in_an_offline_buffer_does_not_cost_the_others(start_collector, publisher, store):
    start_collector()
    t0 = now_ms() - 60_000
    publisher.send(
        T, [{"ts": t0, "lat": 1, "lon": 1}, {"ts": t0 + 1000, "lat": 95, "lon": 1}, {"ts": t0 + 2000, "lat": 2}]
    )
    wait_until(lambda: len(store.readings("trk-9")) == 2 and store.dead_letters(), what="2 stored, 1 rejected")
    (letter,) = store.dead_letters()
    assert letter.reason.startswith("1 of 3 items rejected: item 1: field lat")
    assert '"lat": 95' in letter.payload


@pytest.mark.parametrize("payload", [b'{"ts": 1763800000, "lat": NaN}', b'{"ts": 1763800000, "lat": Infinity}'])
def test_non_finite_numbers_are_rejected(start_collector, publisher, store, payload):
    start_collector()
    publisher.send(T, payload)
    wait_until(store.dead_letters, what="dead letter")
    assert not store.devices()


def test_a_flooding_topic_keeps_its_first_dead_letters_and_a_count_of_the_rest(start_collector, publisher, store):
    collector = start_collector(dead_letter_cap=3, dead_letter_cap_window_s=1.0)
    for n in range(10):
        publisher.send("tower/v1/shipment/flood-1/telemetry", b"junk %d" % n)
    publisher.send("tower/v1/shipment/quiet-1/telemetry", b"junk")
    summary = "7 more dead letters from this topic in the last 1 s were counted, not kept"
    wait_until(lambda: any(summary in d.reason for d in store.dead_letters()), what="the flood's summary")
    topics = [d.topic.split("/")[3] for d in store.dead_letters()]
    assert topics.count("flood-1") == 4 and topics.count("quiet-1") == 1  # three kept, one summary
    assert collector.stats.over_cap == 7


def test_the_cap_counts_per_topic_and_starts_again_each_window():
    cap = DeadLetterCap(per_topic=2, window_ms=60_000)
    assert cap.roll(0) == []
    letters = [DeadLetter(t, topic, "", "bad") for t, topic in enumerate(["a", "a", "b", "a", "a"])]
    assert [d.topic for d in cap.admit(letters)] == ["a", "a", "b"] and cap.over_cap == 2
    assert cap.roll(59_999) == []
    (summary,) = cap.roll(60_000)
    assert (summary.topic, summary.reason.split()[0]) == ("a", "2")
    assert len(cap.admit(letters[:2])) == 2 and cap.roll(60_001) == []
