"""The alert engine drill: two `tower alerts run` on one broker and one scenario stream, each with
its own MQTT session, data directory and webhook receiver; one is SIGKILLed twice mid-stream and
started again, the other (the reference) is left alone. Both must end with the same alerts and
have sent the same notifications.

Both engines know the scenario's network and shipments from the start (their master data stores
are filled before the stream, as a collector would fill them from the TMS's plans), so the stream
is the only input. A sentinel reading after the stream (a machine fault, paged at once) tells when
an engine has worked through everything before it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from alerts.book import AlertBook
from benchmarks.drills.harness import REPO, DrillResult, Scale, wait_for
from ingest.decode import Decoder
from simulators.engine import Simulation
from tests.receivers import WebhookReceiver
from tower.broker import LocalBroker
from tower.config import load_settings
from tower.masterdata.store import MasterStore
from tower.mqtt import QosPublisher, connect, make_client
from tower.scenario import load_scenario
from tower.timeutil import now_ms

SENTINEL = "drill-sentinel"
RATE = 2_000  # messages/s: the stream takes long enough for kills between snapshots
SNAPSHOT_S = 2  # TOWER_ALERTS_SNAPSHOT_S of both engines


class EngineProcess:
    """`tower alerts run` with its own session, data directory, on-call file and webhook receiver."""

    def __init__(self, name: str, workdir: Path, broker_url: str, webhook: WebhookReceiver) -> None:
        self.name, self.folder, self.webhook = name, workdir / name, webhook
        self.folder.mkdir(parents=True)
        oncall = self.folder / "oncall.yaml"
        oncall.write_text(f"contacts: {{desk: {{name: Desk, urls: ['{webhook.url('/desk')}']}}}}\n"
                          "policies: {all: {levels: [{notify: [desk]}]}}\n"
                          "routes: [{match: {severity_at_least: info}, policy: all}]\n")  # fmt: skip
        self.log = self.folder / "engine.log"
        self.env = {**os.environ, "TOWER_BROKER": broker_url, "TOWER_MQTT_PROTOCOL": "5",
                    "TOWER_DATA_DIR": str(self.folder / "var"), "TOWER_ALERTS_CLIENT_ID": f"drill-{name}",
                    "TOWER_ONCALL": str(oncall), "TOWER_ALERTS_SNAPSHOT_S": str(SNAPSHOT_S)}  # fmt: skip
        self.settings = load_settings(data_dir=self.folder / "var")
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> EngineProcess:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "tower.cli", "alerts", "run"], cwd=REPO,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.starts += 1
        wait_for(lambda: self.log.read_bytes().count(b"subscribed to") >= self.starts, 60, f"{self.name} subscribed")
        return self

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def alerts(self) -> Counter:
        book = AlertBook(self.settings.alerts_db)
        try:
            return Counter((a["id"], a["rule"], a["entity"], a["status"], a["severity"], a["fired_ms"],
                            a["resolved_ms"], a["detail"]) for a in book.alerts("all", limit=1_000_000))  # fmt: skip
        finally:
            book.close()

    def notifications(self) -> Counter:
        """Each notice by its title and the alert it is about (bodies tell the newest position at the
        moment of sending, which two engines reach at different moments)."""
        return Counter((body["title"], body["message"].rsplit("alert=", 1)[-1]) for body in self.webhook.bodies())

    def resent(self) -> Counter:
        """Notices the engine sent once more after a restart because their outcome was not written."""
        book = AlertBook(self.settings.alerts_db)
        try:
            rows = book.db.execute("SELECT title, alert_id FROM notices WHERE resent=1").fetchall()
            return Counter((title, alert_id) for title, alert_id in rows)
        finally:
            book.close()

    def paged_sentinel(self) -> bool:
        return any(SENTINEL in body["title"] for body in self.webhook.bodies())


def engine_kills(workdir: Path, scale: Scale, kills: int = 2) -> DrillResult:
    """SIGKILL one engine at 1/3 and 2/3 of the stream published, start it again at once."""
    scenario = load_scenario("default")
    duration = scale.scenario_hours * 3_600_000
    simulation = Simulation(scenario, 1, now_ms() - duration - 120_000, duration)
    decoder = Decoder(max_payload_bytes=1 << 20, max_future_skew_ms=5 * 60_000, dead_letter_payload_bytes=1024)
    stream = []
    with LocalBroker(workdir / "broker") as broker, WebhookReceiver() as hook_a, WebhookReceiver() as hook_b:
        reference = EngineProcess("reference", workdir, broker.url, hook_a)
        killed = EngineProcess("killed", workdir, broker.url, hook_b)
        masters = [MasterStore(engine.settings.master_db) for engine in (reference, killed)]
        for master in masters:
            master.set_network(scenario.network(), f"scenario {scenario.name}")
        for message in simulation.messages():
            plans = decoder.decode(message.topic, message.payload, message.publish_ms).plans
            for master in masters:
                for plan in plans:
                    master.apply(plan)
            if not plans:
                stream.append(message)
        for master in masters:
            master.close()
        last_ts = stream[-1].publish_ms
        try:
            reference.start()
            killed.start()
            published = _publish(broker.url, stream, last_ts, killed, kills)
            wait_for(lambda: reference.paged_sentinel() and killed.paged_sentinel(), scale.wait_s,
                     "both engines paged for the sentinel")  # fmt: skip
            time.sleep(2.5)  # two ticks: resolved notices due at the final watermark go out
        finally:
            reference.stop()
            killed.stop()
        want_alerts, got_alerts = reference.alerts(), killed.alerts()
        want_notes, got_notes = reference.notifications(), killed.notifications()
        resent = killed.resent()
    missing = (want_alerts - got_alerts) + (want_notes - got_notes)
    in_flight = (got_notes - want_notes) & resent  # delivered, but killed before its outcome was written
    extra = (got_alerts - want_alerts) + ((got_notes - want_notes) - in_flight)
    when = " and ".join(f"{k}/{kills + 1}" for k in range(1, kills + 1))
    detail = (f"alerts {got_alerts.total()} (reference {want_alerts.total()}), notifications {got_notes.total()} "
              f"(reference {want_notes.total()}; {in_flight.total()} in flight at a kill, sent again); killed at "
              f"{when} of the stream, snapshots every {SNAPSHOT_S} s")  # fmt: skip
    return DrillResult(f"alert engine SIGKILL x{kills} vs reference", published, published,
                       got_alerts.total() + got_notes.total(), missing.total(), extra.total(), detail)  # fmt: skip


def _publish(broker_url: str, stream: list, last_ts: int, killed: EngineProcess, kills: int) -> int:
    """The stream at RATE, QoS 1, killing and restarting the engine at the fractions; then the sentinel."""
    client, address, properties = make_client(load_settings(broker=broker_url, mqtt_protocol="5"), "drill-stream")
    connect(client, address, properties, persistent=False)
    client.loop_start()
    publisher = QosPublisher(client)
    kill_at = {len(stream) * k // (kills + 1) for k in range(1, kills + 1)}
    began = time.monotonic()
    try:
        for index, message in enumerate(stream):
            if index in kill_at:
                killed.kill()
                killed.start()  # meanwhile the stream goes on into its session
            wait = began + index / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            publisher.publish(message.topic, message.payload, retain=message.retain)
        publisher.publish(f"tower/v1/equipment/{SENTINEL}/telemetry",
                          b'{"ts": %d, "state": "fault", "rpm": 0.0}' % (last_ts + 1000))  # fmt: skip
        publisher.flush()
    finally:
        client.disconnect()
        client.loop_stop()
    return len(stream) + 1


DRILLS = {"alert-engine-kills": engine_kills}
