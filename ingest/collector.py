"""`tower ingest`: the MQTT collector.

A persistent MQTT session (fixed client id, QoS 1, manual acknowledgement) feeds the decoder in
paho's network thread; the Writer commits and acknowledges. Whatever was not acknowledged when
the process died is redelivered by the broker on the next start, and stored once.
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from ingest.decode import Decoder
from ingest.plan_sink import PlanSink
from ingest.spool import Spool
from ingest.writer import Delivery, IngestStats, Writer
from tower.config import Settings, redact_url
from tower.contract import OWNTRACKS_ROOT, TOPIC_ROOT
from tower.health import beat
from tower.masterdata.live import LiveMaster
from tower.masterdata.store import MasterStore
from tower.mqtt import ServiceConnection, connect, make_client, network_loop_alive, subscriptions
from tower.process import exclusive, stop_event, tune_gc_for_streaming
from tower.store import Batch, Store
from tower.timeutil import now_ms

log = logging.getLogger("tower.ingest")

SUBSCRIPTIONS = (f"{TOPIC_ROOT}/#", f"{OWNTRACKS_ROOT}/#")


class Collector:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.stats = IngestStats()
        self.decoder = Decoder.from_settings(settings)
        self.spool = Spool(settings.spool_dir, settings.spool_max_bytes)
        self.master = LiveMaster(MasterStore(settings.master_db), settings.network)
        plans = PlanSink(self.master, settings.dead_letter_payload_bytes)
        self.writer = Writer(store, self.spool, self._acknowledge, settings, self.stats, plans)
        self.client, self.address, self._properties = make_client(
            settings, settings.ingest_client_id, persistent=True, manual_ack=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.connection = ServiceConnection(self.client, self.address, settings.ingest_client_id, log)
        self.subscribed = threading.Event()
        self._generation = 0

    def topics(self) -> list[str]:
        group = self.settings.ingest_share_group
        return [f"$share/{group}/{topic}" if group else topic for topic in SUBSCRIPTIONS]

    def start(self) -> None:
        self.writer.start()
        connect(self.client, self.address, self._properties, persistent=True, retry=True)
        self.client.loop_start()

    def stop(self) -> None:
        """Flush: store and acknowledge what has arrived, then leave the session to the broker."""
        self.writer.stop()
        self.client.disconnect()
        self.client.loop_stop()
        self.master.store.close()
        log.info(self.stats.line(self.spool, 0, 0))

    # -- paho callbacks (network thread: CPU only, no I/O) ---------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        if not self.connection.accepted(reason_code):
            return
        self._generation += 1
        log.info("connected to %s (session present: %s)", self.address, flags.session_present)
        # Subscribing again is harmless when the session already holds these subscriptions.
        client.subscribe(subscriptions(self.settings, self.topics()))

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties=None) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused subscriptions %s: %s", self.topics(), refused)
            return
        log.info("subscribed to %s", ", ".join(self.topics()))
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        self._generation += 1  # acknowledgements for the old connection's mids must not be sent
        self.connection.disconnected(reason_code)

    def _on_message(self, client: mqtt.Client, userdata, message: mqtt.MQTTMessage) -> None:
        received = now_ms()
        self.stats.received += 1
        try:
            batch = self.decoder.decode(message.topic, message.payload, received)
        except Exception as error:  # an input nobody foresaw: dead-lettered and acknowledged like any reject
            batch = self._undecodable(message, error, received)
        self.writer.submit(Delivery(message.mid, message.qos, self._generation, received, batch))

    def _undecodable(self, message: mqtt.MQTTMessage, error: Exception, received: int) -> Batch:
        """The dead letter of a message the decoder failed on; must not raise, or paho's thread dies."""
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(topic is not UTF-8)"
        reason = f"could not be decoded ({type(error).__name__}: {str(error)[:200]})"
        log.warning("message on %s %s", topic, reason)
        return Batch(dead_letters=[self.decoder.dead_letter(topic, message.payload, reason, received)])

    def _acknowledge(self, deliveries: list[Delivery]) -> None:
        """Called by the writer once the deliveries are durable; in arrival order, as MQTT requires."""
        generation = self._generation
        for delivery in deliveries:
            if delivery.qos and delivery.generation == generation:
                self.client.ack(delivery.mid, delivery.qos)


def run(settings: Settings, store: Store) -> int:
    """Run until SIGTERM/SIGINT, then flush and exit. Returns the process exit code.

    AlreadyRunning if another collector holds this spool (its client id's); BrokerRefused, after
    flushing, if the broker refuses the account or client id for good.
    """
    with exclusive(settings.spool_dir / "collector.lock", f"the spool {settings.spool_dir} of client id "
                   f"'{settings.ingest_client_id}'", "stop that collector, or give this one another "
                   "TOWER_INGEST_CLIENT_ID or TOWER_DATA_DIR"):  # fmt: skip
        return _collect(settings, store)


def _collect(settings: Settings, store: Store) -> int:
    tune_gc_for_streaming()
    collector = Collector(settings, store)
    done = stop_event()
    log.info("collecting %s from %s into %s", ", ".join(collector.topics()), collector.address,
             redact_url(settings.store))  # fmt: skip
    collector.start()
    failed = False
    while not done.wait(1.0):
        if collector.writer.failure is not None or collector.connection.refused is not None:
            failed = True
            break
        if not network_loop_alive(collector.client):
            log.error("the MQTT network loop stopped; exiting so that a supervisor restarts the collector")
            failed = True
            break
        if collector.client.is_connected():
            beat(settings.health_dir / settings.ingest_client_id)
    collector.stop()
    if collector.connection.refused is not None:
        raise collector.connection.refused
    return 1 if failed else 0
