"""Hostile messages against real `tower ingest` and `tower alerts run` processes on mosquitto: each is
dead-lettered with a reason (or stored, where it is valid), published once and as a retained message
that every new subscriber receives at start, while a reading published right after it is stored and
both services keep running. And the watchdog's view of paho's network thread."""

from __future__ import annotations

import os

import pytest

from alerts.book import AlertBook
from tests.conftest import collector_process, stop_process, tower_process, wait_until
from tower.mqtt import connect, make_client, network_loop_alive
from tower.store import open_store
from tower.timeutil import now_ms

T = now_ms() - 600_000

# (topic, payload, what the dead letter's reason says; None: the message is valid and stored)
HOSTILE = [
    ("tower/v1/shipment/h-brackets/telemetry", b"[" * 20_000, "invalid JSON: recursion limit exceeded"),
    ("owntracks/hostile/deep", b'{"a":' * 10_000, "invalid JSON: recursion limit exceeded"),
    (
        "tower/v1/shipment/h-seq/telemetry",
        b'{"ts": %d, "seq": 100000000000000000000000000000, "temp_c": 4}' % T,
        "field seq: Input should be less than or equal to 9223372036854775807",
    ),
    ("tower/v1/shipment/h-inf/telemetry", b'{"ts": %d, "temp_c": 4, "x": 1e400}' % T, "field x: inf is not a finite"),
    ("tower/v1/shipment/h-inf2/telemetry", b'{"ts": %d, "temp_c": 4, "x": Infinity}' % T, "field x: inf is not"),
    ("tower/v1/shipment/h-empty/telemetry", b'{"ts": %d, "temp_c": 4, "": 5}' % T, "field name '' is not allowed"),
    ("tower/v1/shipment/h-ones/telemetry", b"[" + b"1," * 100_000 + b"1]", "100001 of 100001 items rejected"),
    ("tower/v1/shipment/h-pallets/telemetry", b'{"ts": %d, "temp_c": 4, "pallet_count": 12}' % T, None),
    (
        "tower/v1/shipment/h-column/telemetry",
        b'{"ts": %d, "temp_c": 4, "device_id": 5}' % T,
        "field name 'device_id' is reserved",
    ),
]


def _canary(publisher, number: int) -> str:
    device = f"canary-{number}"
    publisher.send(f"tower/v1/shipment/{device}/telemetry", {"ts": T + number, "seq": number, "temp_c": 4.0})
    return device


def _machine_fault(publisher, device: str) -> None:
    for minute in range(4):
        state = "fault" if minute == 3 else "running"
        publisher.send(f"tower/v1/equipment/{device}/telemetry", {"ts": T + minute * 60_000, "state": state})


def _reasons(store, topic: str) -> list[str]:
    return [letter.reason for letter in store.dead_letters() if letter.topic == topic]


def test_hostile_messages_once_and_retained_are_dead_lettered_and_ingest_and_alerts_go_on(
    settings, publisher, store, tmp_path
):
    collector = collector_process(settings, tmp_path / "ingest.log")
    engine = fresh_collector = None
    try:
        for number, (topic, payload, reason) in enumerate(HOSTILE):
            for _ in range(2):  # the second is a QoS 1 redelivery of the same message
                publisher.send(topic, payload)
            canary = _canary(publisher, number)
            wait_until(lambda canary=canary: not store.readings(canary).empty, what=f"canary after {topic}")
            if reason is None:
                assert list(store.readings(topic.split("/")[3])["pallet_count"]) == [12]
            else:
                assert [reason in text for text in _reasons(store, topic)] == [True, True], _reasons(store, topic)
        ones = _reasons(store, "tower/v1/shipment/h-ones/telemetry")[0]
        assert "item 0: expected a JSON object, got int; item 1:" in ones  # one dead letter, the first reasons

        for topic, payload, _ in HOSTILE:  # every new subscription receives these before anything else
            publisher.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
        fresh = settings.model_copy(
            update={"store": f"sqlite:///{tmp_path}/fresh.db", "ingest_client_id": f"{settings.ingest_client_id}-b"}
        )
        fresh_collector = collector_process(fresh, tmp_path / "fresh.log")
        engine = tower_process(["alerts", "run"], settings, tmp_path / "alerts.log",
                               {"TOWER_ALERTS_CLIENT_ID": f"test-hostile-alerts-{os.getpid()}"})  # fmt: skip
        fresh_store = open_store(fresh.store)
        canary = _canary(publisher, 99)
        _machine_fault(publisher, "h-machine")
        wait_until(lambda: not fresh_store.readings(canary).empty, what="the canary after the retained messages")
        for topic, _, reason in HOSTILE:
            if reason is not None:
                assert any(reason in text for text in _reasons(fresh_store, topic)), (
                    topic,
                    _reasons(fresh_store, topic),
                )
        book = AlertBook(settings.alerts_db)
        wait_until(lambda: book.alerts("all"), what="the alert engine still evaluating")
        assert [alert["rule"] for alert in book.alerts("all")] == ["machine-fault"]
        assert collector.poll() is None and fresh_collector.poll() is None and engine.poll() is None
        fresh_store.close()

        # Reconnecting to its kept session, a collector is not sent the retained messages again (MQTT 5).
        letters = len(store.dead_letters())
        stop_process(collector)
        collector = collector_process(settings, tmp_path / "ingest.log")
        canary = _canary(publisher, 100)
        wait_until(lambda: not store.readings(canary).empty, what="the canary after the restart")
        assert len(store.dead_letters()) == letters
    finally:
        for topic, _, _ in HOSTILE:  # the broker is shared by the whole suite
            publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        for process in (collector, fresh_collector, engine):
            if process is not None:
                stop_process(process)
        _clear_announcements(publisher, settings)


def _clear_announcements(publisher, settings) -> None:
    for alert in AlertBook(settings.alerts_db).alerts("all"):
        publisher.client.publish(f"tower/v1/alerts/{alert['id']}", b"", qos=1, retain=True).wait_for_publish(10)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the point of the test
def test_the_watchdog_sees_paho_network_thread_die(settings, publisher):
    """paho ends its thread when a callback raises; network_loop_alive reads that for the watchdogs."""
    client, address, properties = make_client(settings, f"test-watchdog-{os.getpid()}")

    def fail(*_):
        raise RuntimeError("a callback bug")

    client.on_message = fail
    client.on_connect = lambda c, *_: c.subscribe("tower/v1/watchdog/test", qos=1)
    subscribed = []
    client.on_subscribe = lambda *_: subscribed.append(True)
    connect(client, address, properties, persistent=False)
    client.loop_start()
    try:
        wait_until(lambda: subscribed, what="subscription")
        assert network_loop_alive(client)
        thread = client._thread
        publisher.send("tower/v1/watchdog/test", b"x")
        wait_until(lambda: not network_loop_alive(client), what="paho's thread to end")
        thread.join(10)  # its exception is reported here, not in the next test
    finally:
        client.disconnect()
        client.socket() and client.socket().close()
