"""`tower alerts run`: the alert engine on MQTT.

Its own persistent MQTT session (client id `tower-alerts`, QoS 1) on the same stream as ingest,
so readings sent while it is down wait at the broker. paho's network thread only decodes; one
engine thread evaluates, records, escalates (once a second) and snapshots the rule state.

Restarts change nothing: a message is acknowledged to the broker only once a snapshot of the rule
state holds its effect (every `alerts_snapshot_s`, or sooner when half of `alerts_inflight_max`
messages wait), so after a crash the snapshot plus the broker's redelivery of everything after it
is exactly the stream the engine had seen, in the same order; the alert book skips the changes it
already holds (service.py) and missing data is judged on event time at fixed points of the stream
(evaluate.py), never on the wall clock, so working through a backlog raises no false silence. The
snapshot is written by a forked child (copy-on-write): pickling 10,000 devices' state takes about
0.5 s here, which would stall evaluation.

Alerts are announced retained on `tower/v1/alerts/<id>`; an acknowledgement arrives on
`tower/v1/alerts/<id>/ack/<account>` as {"note": "..."}: the broker lets only that account publish
there (tower.access), so the account is the actor recorded. MQTT does not tell a subscriber who
published; the topic has to.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import pickle
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from alerts.book import AlertBook
from alerts.evaluate import STATE_FORMAT, RuleEvaluator
from alerts.links import AckLinks
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
from tower.mqtt import ServiceConnection, connect, make_client, network_loop_alive, subscriptions
from tower.process import exclusive, stop_event, tune_gc_for_streaming
from tower.timeutil import now_ms

log = logging.getLogger("tower.alerts")
ALERTS_TOPIC = f"{TOPIC_ROOT}/alerts"
_TICK_S = 1.0
_ACKS_PER_MESSAGE = 50  # PUBACKs paho's thread sends with each message it takes


def alert_topic(alert_id: str) -> str:
    return f"{ALERTS_TOPIC}/{alert_id}"


@dataclass
class Snapshot:
    """The rule state and the number of the last input it holds."""

    fingerprint: str
    evaluator: RuleEvaluator
    seq: int | None = None


def build_evaluator(settings: Settings) -> tuple[RuleEvaluator, str]:
    """The evaluator for the configured rules, and their fingerprint (master data comes later, live)."""
    rules = load_rules(settings.alert_rules)
    fingerprint = hashlib.sha1(f"{STATE_FORMAT}|{rules.model_dump_json()}".encode()).hexdigest()
    return RuleEvaluator(rules), fingerprint


def restore(path: Path, fresh: RuleEvaluator, fingerprint: str) -> Snapshot:
    """The snapshot if it was taken with the same rules (master data is set after); else a fresh start."""
    try:
        with path.open("rb") as handle:
            saved = pickle.load(handle)
    except FileNotFoundError:
        return Snapshot(fingerprint, fresh)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ValueError, TypeError) as problem:
        log.warning("rule state snapshot %s unreadable (%s); starting fresh", path, problem)
        return Snapshot(fingerprint, fresh)
    if not isinstance(saved, Snapshot) or saved.fingerprint != fingerprint:
        log.info("rules changed since the snapshot; starting the rule state fresh")
        return Snapshot(fingerprint, fresh)
    log.info("rule state restored from %s (watermark %d, input %s)", path, saved.evaluator.watermark_ms, saved.seq)
    return saved


def snapshot(path: Path, state: Snapshot) -> None:
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class _Message:
    mid: int
    qos: int
    readings: list | None = None  # decoded readings, or
    ack: tuple[str, str, bytes] | None = None  # (alert id, account, payload) of an acknowledgement


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        fresh, self.fingerprint = build_evaluator(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for partial in settings.data_dir.glob(f"{settings.alerts_state.stem}.*.tmp"):  # a writer killed mid-way
            partial.unlink(missing_ok=True)
        restored = restore(settings.alerts_state, fresh, self.fingerprint)
        self.evaluator = restored.evaluator
        self.master = LiveMaster(MasterStore(settings.master_db), settings.network)
        self.book = AlertBook(settings.alerts_db)
        oncall = load_oncall(settings.oncall) if settings.oncall else None
        self.deliverer = Deliverer(settings.alerts_db) if oncall else None
        self.decoder = Decoder.from_settings(settings)
        session = settings.model_copy(update={"inflight_max": settings.alerts_inflight_max})
        self.client, self.address, self._properties = make_client(
            session, settings.alerts_client_id, persistent=True, manual_ack=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connection = ServiceConnection(self.client, self.address, settings.alerts_client_id, log)
        self.service = AlertService(
            self.evaluator, self.book, oncall, self.deliverer, self._announce, settings.dashboard_url,
            int(settings.alerts_close_after_s * 1000), links=AckLinks.from_settings(settings) if oncall else None,
            group_window_ms=int(settings.alerts_group_window_s * 1000), seq=restored.seq,
        )  # fmt: skip
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._unacked: dict[int, int] = {}  # packet id -> qos of messages evaluated, in order, awaiting a snapshot
        self._acks: deque[tuple[int, int]] = deque()  # held by a written snapshot, to be acknowledged
        self._ack_lock = threading.Lock()
        self._writer: tuple[int, list[tuple[int, int]]] | None = None  # (pid, what it covers) of a snapshot child
        self.failed = False
        self.subscribed = threading.Event()
        self.client.on_subscribe = self._on_subscribe

    def run(self, stop: threading.Event) -> None:
        self.service.set_master(self.master.current(), now_ms())
        resent = self.service.resend_unfinished()
        if resent:
            log.info("re-sent %d notices whose delivery a stop interrupted", resent)
        connect(self.client, self.address, self._properties, persistent=True, retry=True)
        self.client.loop_start()
        last_tick = last_snapshot = time.monotonic()
        try:
            while not stop.is_set():
                if self.connection.refused is not None:
                    self.failed = True
                    break
                if not network_loop_alive(self.client):
                    log.error("the MQTT network loop stopped; exiting so that a supervisor restarts the engine")
                    self.failed = True
                    break
                try:
                    self._handle(self._inbox.get(timeout=_TICK_S / 4))
                except queue.Empty:
                    self._send_acks()  # the stream pauses: paho's thread takes no message to send them with
                self._reap_writer()
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
                due = now - last_snapshot >= self.settings.alerts_snapshot_s
                if self._unacked and self._writer is None and (due or len(self._unacked) >= self._ack_batch):
                    last_snapshot = now
                    self._snapshot(background=True)
        finally:
            self._stop()

    @property
    def _ack_batch(self) -> int:
        return max(1, self.settings.alerts_inflight_max * 3 // 4)

    def _stop(self) -> None:
        """Snapshot what was evaluated and acknowledge it, then leave; what waits unevaluated in the inbox
        was not acknowledged, so the broker sends it again on the next start."""
        self._reap_writer(wait=True)
        self._snapshot(background=False)
        self._send_acks()
        self.client.disconnect()
        self.client.loop_stop()
        if self.deliverer:
            self.deliverer.stop()
        self.book.close()
        self.master.store.close()
        log.info("alert engine stopped; rule state saved to %s", self.settings.alerts_state)

    def _snapshot(self, background: bool) -> None:
        covered = list(self._unacked.items())
        state = Snapshot(self.fingerprint, self.evaluator, self.service.seq)
        if background and hasattr(os, "fork"):
            pid = os.fork()
            if pid == 0:  # the child: only this thread exists here; it writes the file and leaves
                code = 1
                try:
                    gc.disable()  # a collection would touch every object and copy every page
                    snapshot(self.settings.alerts_state, state)
                    code = 0
                finally:
                    os._exit(code)
            self._writer = (pid, covered)
            return
        snapshot(self.settings.alerts_state, state)
        self._acknowledge(covered)

    def _reap_writer(self, wait: bool = False) -> None:
        if self._writer is None:
            return
        pid, covered = self._writer
        done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        if not done:
            return
        self._writer = None
        if os.waitstatus_to_exitcode(status) == 0:
            self._acknowledge(covered)
        else:
            log.error("writing the rule state snapshot failed (exit %d); trying again at the next one",
                      os.waitstatus_to_exitcode(status))  # fmt: skip

    def _acknowledge(self, covered: list[tuple[int, int]]) -> None:
        """The messages a written snapshot holds may be acknowledged (PUBACK in the order received)."""
        for mid, qos in covered:
            if self._unacked.pop(mid, None) is not None and qos:
                self._acks.append((mid, qos))

    def _send_acks(self, at_most: int | None = None) -> None:
        """PUBACK what snapshots hold, in order. While messages flow, paho's thread sends a few with
        each message it takes (the PUBACKs then leave with its next write, no wake-up of its loop per
        ack); the engine thread sends the rest when the stream pauses."""
        with self._ack_lock:
            for _ in range(len(self._acks) if at_most is None else min(at_most, len(self._acks))):
                self.client.ack(*self._acks.popleft())

    def _handle(self, message: _Message) -> None:
        if message.readings:  # a redelivery of what the state holds is all duplicates: it changes nothing
            self.service.observe_input(message.readings, now_ms())
        elif message.ack is not None:
            self._take_acknowledgement(*message.ack)
        if message.qos:
            self._unacked[message.mid] = message.qos

    def _take_acknowledgement(self, alert_id: str, account: str, payload: bytes) -> None:
        try:
            command = json.loads(payload or b"{}")
            note = str(command.get("note", ""))
            if command.get("by") not in (None, account):  # a claim, kept as one: the account is the actor
                note = f"for {str(command['by'])[:80]}: {note}"
            self.book.act(alert_id, "acknowledge", account, note, now_ms(), via="mqtt")
            log.info("alert %s acknowledged by %s over MQTT", alert_id, account)
        except (ValueError, AttributeError) as problem:
            log.warning("ignored acknowledgement of %s by %s: %s (send {\"note\": TEXT} or nothing)", alert_id,
                        account, problem)  # fmt: skip

    def _announce(self, alert: dict) -> None:
        self.client.publish(alert_topic(alert["id"]), json.dumps(alert), qos=1, retain=True)

    # -- paho callbacks (network thread: decode only) ---------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        if not self.connection.accepted(reason_code):
            return
        log.info("connected to %s (session present: %s)", self.address, flags.session_present)
        # Retained messages only with a new subscription: a reconnect must not insert them into the stream.
        client.subscribe(subscriptions(self.settings, [f"{TOPIC_ROOT}/#", f"{OWNTRACKS_ROOT}/#"]))

    def _on_disconnect(self, client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        self.connection.disconnected(reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties=None) -> None:
        log.info("subscribed to %s/# and %s/#", TOPIC_ROOT, OWNTRACKS_ROOT)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata, message: mqtt.MQTTMessage) -> None:
        if self._acks:
            self._send_acks(_ACKS_PER_MESSAGE)
        try:
            taken = self._take(message)
        except Exception as error:  # one message must not stop the engine; ingest dead-letters it
            log.warning("ignored a message the decoder failed on (%s: %s)", type(error).__name__, str(error)[:200])
            taken = _Message(message.mid, message.qos)
        self._inbox.put(taken)  # every message, used or not, is acknowledged in its turn

    def _take(self, message: mqtt.MQTTMessage) -> _Message:
        topic = message.topic
        if topic.startswith(ALERTS_TOPIC + "/"):
            parts = topic.split("/")  # tower/v1/alerts/<id>/ack/<account>
            ack = (parts[3], parts[5], message.payload) if len(parts) == 6 and parts[4] == "ack" else None
            return _Message(message.mid, message.qos, ack=ack)
        batch = self.decoder.decode(topic, message.payload, now_ms())
        return _Message(message.mid, message.qos, readings=batch.readings)  # bad ones: ingest's


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the exit code. AlreadyRunning if another engine holds this data
    directory; BrokerRefused, after a snapshot, if the broker refuses the account or client id for good."""
    with exclusive(settings.data_dir / "alerts.lock", f"the alert book {settings.alerts_db}",
                   "stop that alert engine, or give this one another TOWER_DATA_DIR"):  # fmt: skip
        return _run(settings)


def _run(settings: Settings) -> int:
    engine = Engine(settings)
    tune_gc_for_streaming()
    stop = stop_event()
    rules = len(engine.evaluator.rules)
    oncall = settings.oncall or "none (alerts announced on MQTT only)"
    log.info("alert engine: %d rules, master data %s (network file %s), on-call %s, alerts in %s", rules,
             settings.master_db, settings.network or "none", oncall, settings.alerts_db)  # fmt: skip
    engine.run(stop)
    if engine.connection.refused is not None:
        raise engine.connection.refused
    return 1 if engine.failed else 0
