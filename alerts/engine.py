"""`tower alerts run`: the alert engine on MQTT.

Its own persistent MQTT session (client id `tower-alerts`, QoS 1) on the same stream as ingest,
so readings sent while it is down wait at the broker. paho's network thread only decodes; one
engine thread evaluates, records, escalates (once a second) and snapshots the rule state every
`alerts_snapshot_s` and on shutdown. Alerts are announced retained on `tower/v1/alerts/<id>`;
an acknowledgement arrives on `tower/v1/alerts/<id>/ack/<account>` as {"note": "..."}: the broker
lets only that account publish there (tower.access), so the account is the actor recorded. MQTT
does not tell a subscriber who published; the topic has to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import queue
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from alerts.book import AlertBook
from alerts.evaluate import RuleEvaluator
from alerts.notify import Deliverer
from alerts.oncall import load_oncall
from alerts.rules import load_rules
from alerts.service import AlertService
from ingest.decode import Decoder
from tower.config import Settings
from tower.contract import OWNTRACKS_ROOT, TOPIC_ROOT
from tower.health import beat
from tower.masterdata.live import LiveMaster
from tower.masterdata.store import MasterStore
from tower.mqtt import connect, make_client, network_loop_alive
from tower.process import stop_event, tune_gc_for_streaming
from tower.timeutil import now_ms

log = logging.getLogger("tower.alerts")
ALERTS_TOPIC = f"{TOPIC_ROOT}/alerts"
_TICK_S = 1.0


def alert_topic(alert_id: str) -> str:
    return f"{ALERTS_TOPIC}/{alert_id}"


def build_evaluator(settings: Settings) -> tuple[RuleEvaluator, str]:
    """The evaluator for the configured rules, and their fingerprint (master data comes later, live)."""
    rules = load_rules(settings.alert_rules)
    return RuleEvaluator(rules), hashlib.sha1(rules.model_dump_json().encode()).hexdigest()


def restore(path: Path, fresh: RuleEvaluator, fingerprint: str) -> RuleEvaluator:
    """The snapshot's evaluator if it was taken with the same rules (master data is set after)."""
    try:
        with path.open("rb") as handle:
            saved_fingerprint, evaluator = pickle.load(handle)
    except FileNotFoundError:
        return fresh
    except (OSError, pickle.PickleError, EOFError, AttributeError, ValueError) as problem:
        log.warning("rule state snapshot %s unreadable (%s); starting fresh", path, problem)
        return fresh
    if saved_fingerprint != fingerprint:
        log.info("rules changed since the snapshot; starting the rule state fresh")
        return fresh
    log.info("rule state restored from %s (watermark %d)", path, evaluator.watermark_ms)
    return evaluator


def snapshot(path: Path, evaluator: RuleEvaluator, fingerprint: str) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        pickle.dump((fingerprint, evaluator), handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        fresh, self.fingerprint = build_evaluator(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.evaluator = restore(settings.alerts_state, fresh, self.fingerprint)
        self.master = LiveMaster(MasterStore(settings.master_db), settings.network)
        self.book = AlertBook(settings.alerts_db)
        oncall = load_oncall(settings.oncall) if settings.oncall else None
        self.deliverer = Deliverer(settings.alerts_db) if oncall else None
        self.decoder = Decoder.from_settings(settings)
        self.client, self.address, self._properties = make_client(settings, settings.alerts_client_id, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.service = AlertService(
            self.evaluator, self.book, oncall, self.deliverer, self._announce, settings.dashboard_url,
            int(settings.alerts_close_after_s * 1000),
        )  # fmt: skip
        self._inbox: queue.Queue = queue.Queue()
        self.failed = False
        self.subscribed = threading.Event()
        self.client.on_subscribe = self._on_subscribe

    def run(self, stop: threading.Event) -> None:
        self.service.set_master(self.master.current(), now_ms())
        connect(self.client, self.address, self._properties, persistent=True, retry=True)
        self.client.loop_start()
        last_tick = last_snapshot = time.monotonic()
        try:
            while not stop.is_set():
                if not network_loop_alive(self.client):
                    log.error("the MQTT network loop stopped; exiting so that a supervisor restarts the engine")
                    self.failed = True
                    break
                try:
                    item = self._inbox.get(timeout=_TICK_S / 4)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._handle(item)
                now = time.monotonic()
                if now - last_tick >= _TICK_S:
                    last_tick = now
                    master = self.master.current()
                    if master.revision != self.evaluator.master.revision:
                        self.service.set_master(master, now_ms())
                        log.info("master data revision %d: %d shipments", master.revision, len(master.shipments))
                    self.service.tick(now_ms())
                    if self.client.is_connected():
                        beat(self.settings.health_dir / self.settings.alerts_client_id)
                if now - last_snapshot >= self.settings.alerts_snapshot_s:
                    last_snapshot = now
                    snapshot(self.settings.alerts_state, self.evaluator, self.fingerprint)
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            while not self._inbox.empty():  # what had arrived before the disconnect
                self._handle(self._inbox.get())
            snapshot(self.settings.alerts_state, self.evaluator, self.fingerprint)
            if self.deliverer:
                self.deliverer.stop()
            self.book.close()
            self.master.store.close()
            log.info("alert engine stopped; rule state saved to %s", self.settings.alerts_state)

    def _handle(self, item: tuple) -> None:
        if item[0] == "ack":
            _, alert_id, account, payload = item
            try:
                command = json.loads(payload or b"{}")
                note = str(command.get("note", ""))
                if command.get("by") not in (None, account):  # a claim, kept as one: the account is the actor
                    note = f"for {str(command['by'])[:80]}: {note}"
                self.service.acknowledge(alert_id, account, note, now_ms())
                log.info("alert %s acknowledged by %s over MQTT", alert_id, account)
            except (ValueError, AttributeError) as problem:
                log.warning("ignored acknowledgement of %s by %s: %s (send {\"note\": TEXT} or nothing)", alert_id,
                            account, problem)  # fmt: skip
            return
        wall = now_ms()
        for reading in item[1]:
            self.service.observe(reading, wall)

    def _announce(self, alert: dict) -> None:
        self.client.publish(alert_topic(alert["id"]), json.dumps(alert), qos=1, retain=True)

    # -- paho callbacks (network thread: decode only) ---------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the connection: %s", self.address, reason_code)
            return
        log.info("connected to %s (session present: %s)", self.address, flags.session_present)
        client.subscribe([(f"{TOPIC_ROOT}/#", 1), (f"{OWNTRACKS_ROOT}/#", 1)])

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties=None) -> None:
        log.info("subscribed to %s/# and %s/#", TOPIC_ROOT, OWNTRACKS_ROOT)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            self._take(message)
        except Exception as error:  # one message must not stop the engine; ingest dead-letters it
            log.warning("ignored a message the decoder failed on (%s: %s)", type(error).__name__, str(error)[:200])

    def _take(self, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        if topic.startswith(ALERTS_TOPIC + "/"):
            parts = topic.split("/")  # tower/v1/alerts/<id>/ack/<account>
            if len(parts) == 6 and parts[4] == "ack":
                self._inbox.put(("ack", parts[3], parts[5], message.payload))
            return
        batch = self.decoder.decode(topic, message.payload, now_ms())
        if batch.readings:  # bad messages are ingest's to dead-letter
            self._inbox.put(("readings", batch.readings))


def run(settings: Settings) -> int:
    engine = Engine(settings)
    tune_gc_for_streaming()
    stop = stop_event()
    rules = len(engine.evaluator.rules)
    oncall = settings.oncall or "none (alerts announced on MQTT only)"
    log.info("alert engine: %d rules, master data %s (network file %s), on-call %s, alerts in %s", rules,
             settings.master_db, settings.network or "none", oncall, settings.alerts_db)  # fmt: skip
    engine.run(stop)
    return 1 if engine.failed else 0
