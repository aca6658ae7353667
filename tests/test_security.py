"""Only known devices publish, each as itself; only an integration's account acknowledges alerts.

Against mosquitto running deploy/mosquitto.conf as shipped (TLS with a CA made by
deploy/make-certs.sh, anonymous off, accounts and ACLs in the dynamic-security plugin, set up with
`tower devices|accounts`), plus the decoder's own checks where the broker cannot see a forgery.
"""

from __future__ import annotations

import getpass
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alerts.book import AlertBook
from ingest.collector import Collector
from ingest.decode import Decoder
from tests.conftest import REPO, run_collector_until_it_warns, stop_process, tower_process, wait_until
from tower.access import account_kind
from tower.accounts import account_admin
from tower.broker import LocalBroker, dynamic_security_plugin, free_port, mosquitto_tool
from tower.config import Settings, load_settings
from tower.mqtt import BrokerUnavailable, connect, make_client
from tower.store import open_store
from tower.timeutil import now_ms

NOT_AUTHORIZED = 135  # MQTT 5 reason code, in CONNACK, PUBACK and SUBACK
_ids = itertools.count()


class Deployment:
    """The shipped broker configuration on a free loopback port, with an account per role."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.ca_file = root / "certs" / "ca.crt"
        subprocess.run([REPO / "deploy" / "make-certs.sh", root / "certs", "127.0.0.1", "localhost"], check=True,
                       capture_output=True)  # fmt: skip
        admin_password = "admin-" + os.urandom(12).hex()
        (root / "data").mkdir()
        subprocess.run([mosquitto_tool("mosquitto_ctrl"), "dynsec", "init", root / "data" / "dynamic-security.json",
                        "admin", admin_password], check=True, capture_output=True)  # fmt: skip
        shipped = (REPO / "deploy" / "mosquitto.conf").read_text()
        config = re.sub(r"(?m)^listener 8883 0\.0\.0\.0$", f"listener {self.port} 127.0.0.1", shipped)
        assert config != shipped, "deploy/mosquitto.conf no longer has 'listener 8883 0.0.0.0'"
        config = config.replace("/usr/lib/mosquitto_dynamic_security.so", dynamic_security_plugin())
        config = f"user {getpass.getuser()}\n" + config.replace("/mosquitto/", f"{root}/")
        self.broker = LocalBroker(root, port=self.port, config=config)
        self.admin_url = self.url("admin", admin_password)
        self.passwords: dict[str, str] = {}

    def url(self, account: str, password: str) -> str:
        return f"mqtts://{account}:{password}@127.0.0.1:{self.port}"

    def settings(self, account: str | None = None, **overrides: object) -> Settings:
        """Settings connecting as the account (as admin by default), verifying the broker with the CA."""
        broker = self.admin_url if account is None else self.url(account, self.passwords[account])
        return load_settings(broker=broker, mqtt_ca_file=self.ca_file, **overrides)

    def add(self, name: str, kind: str) -> None:
        with account_admin(self.settings()) as admin:
            self.passwords[name] = admin.add(name, account_kind(kind))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory):
    deployment = Deployment(tmp_path_factory.mktemp("deployed"))
    with deployment.broker:
        for name, kind in [("tower-ingest", "collector"), ("tower-alerts", "alerts"), ("tower-dashboard", "dashboard"),
                           ("tms", "integration"), ("wms", "integration"), ("conv-a", "equipment"),
                           ("conv-b", "equipment"), ("anna.phone", "shipment"), ("bob.phone", "shipment")]:  # fmt: skip
            deployment.add(name, kind)
        yield deployment


class Probe:
    """One MQTT client as one account, reporting what the broker answered (CONNACK, SUBACK, PUBACK)."""

    def __init__(self, settings: Settings) -> None:
        self.client, address, properties = make_client(settings, f"probe-{os.getpid()}-{next(_ids)}")
        self.answered = threading.Event()
        self.connack: int | None = None
        self.pubacks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.answered.set()
        self.client.on_publish = lambda c, u, mid, code, props: self.pubacks.__setitem__(mid, code.value)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        connect(self.client, address, properties, persistent=False)
        self.client.loop_start()
        assert self.answered.wait(10), "no answer from the broker"

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.connack = reason_code.value
        self.answered.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        self.subacks[mid] = [code.value for code in reason_codes]

    def publish(self, topic: str, payload: bytes | str | dict, retain: bool = False) -> int:
        """The broker's PUBACK reason code: 0 accepted, 135 not authorised (mosquitto then drops the connection)."""
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        info = self.client.publish(topic, body, qos=1, retain=retain)
        wait_until(lambda: info.mid in self.pubacks, what=f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> int:
        _, mid = self.client.subscribe(topic, qos=1)
        wait_until(lambda: mid in self.subacks, what=f"SUBACK for {topic}")
        return self.subacks[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes():
    opened: list[Probe] = []

    def open_probe(settings: Settings) -> Probe:
        opened.append(Probe(settings))
        return opened[-1]

    yield open_probe
    for probe in opened:
        probe.close()


def test_anonymous_and_wrong_password_are_refused(deployed, probes):
    assert probes(deployed.settings("conv-a")).connack == 0
    anonymous = load_settings(broker=f"mqtts://127.0.0.1:{deployed.port}", mqtt_ca_file=deployed.ca_file)
    assert probes(anonymous).connack == NOT_AUTHORIZED
    wrong = load_settings(broker=deployed.url("conv-a", "guessed"), mqtt_ca_file=deployed.ca_file)
    assert probes(wrong).connack == NOT_AUTHORIZED


def test_plain_text_and_unverified_connections_to_the_tls_listener_fail(deployed, probes):
    plain = load_settings(broker=deployed.url("conv-a", deployed.passwords["conv-a"]).replace("mqtts:", "mqtt:"))
    probe = probes(plain)  # TCP connects; the TLS listener drops the plain CONNECT
    assert probe.connack is None and not probe.client.is_connected()
    untrusted = load_settings(broker=deployed.url("conv-a", deployed.passwords["conv-a"]))  # the system's CAs
    with pytest.raises(BrokerUnavailable, match="CERTIFICATE_VERIFY_FAILED.*check TOWER_MQTT_CA_FILE"):
        Probe(untrusted)


def test_a_service_on_plain_text_at_the_tls_port_says_so(deployed, tmp_path, caplog):
    url = deployed.url("tower-ingest", deployed.passwords["tower-ingest"]).replace("mqtts:", "mqtt:")
    settings = load_settings(broker=url, store=f"sqlite:///{tmp_path}/t.db", data_dir=tmp_path / "var",
                             ingest_client_id=f"test-ingest-plain-{os.getpid()}")  # fmt: skip
    store = open_store(settings.store, settings)
    try:
        run_collector_until_it_warns(settings, store, caplog, "without an MQTT answer", "the collector's warning")
    finally:
        store.close()
    said = (f"mqtt://tower-ingest@127.0.0.1:{deployed.port} closed the connection without an MQTT answer; is it a "
            "TLS port? check the scheme (mqtts:// for TLS, mqtt:// for plain text)")  # fmt: skip
    assert said in caplog.text


def test_a_device_publishes_only_as_itself(deployed, probes, tmp_path):
    settings = deployed.settings("tower-ingest", store=f"sqlite:///{tmp_path}/t.db", data_dir=tmp_path / "var",
                                 ingest_client_id=f"test-ingest-{os.getpid()}")  # fmt: skip
    store = open_store(settings.store, settings)
    collector = Collector(settings, store)
    collector.start()
    try:
        wait_until(collector.subscribed.is_set, what="collector subscription over TLS as tower-ingest")
        device, phone = probes(deployed.settings("conv-a")), probes(deployed.settings("anna.phone"))
        ts = now_ms() - 60_000
        ns = ts * 1_000_000
        # The broker refuses another device's topics, another kind, and the tower's own namespaces.
        for topic in ["tower/v1/equipment/conv-b/telemetry", "tower/v1/equipment/conv-b/status", "tower/v1/lp/conv-b",
                      "tower/v1/shipment/conv-a/telemetry", "owntracks/bob/phone", "tower/v1/alerts/forged",
                      "tower/v1/plans/shipments/s-1"]:  # fmt: skip
            assert probes(deployed.settings("conv-a")).publish(topic, {"ts": ts, "rpm": 1.0}) == NOT_AUTHORIZED, topic
        location = {"_type": "location", "tst": ts // 1000, "lat": 1, "lon": 1}
        assert probes(deployed.settings("anna.phone")).publish("owntracks/bob/phone", location) == NOT_AUTHORIZED
        # Where the broker lets a message through (its own topic), a payload naming another device is dead-lettered.
        lines = f"equipment,device_id=conv-b rpm=7 {ns}\nequipment,device_id=conv-a rpm=8 {ns}\n"
        assert device.publish("tower/v1/lp/conv-a", lines) == 0
        forged = {"_type": "location", "tst": ts // 1000, "lat": 1.0, "lon": 1.0, "topic": "owntracks/bob/phone"}
        assert phone.publish("owntracks/anna/phone", forged) == 0
        assert phone.publish("owntracks/anna/phone", {**forged, "topic": "owntracks/anna/phone"}) == 0
        assert device.publish("tower/v1/equipment/conv-a/telemetry", {"ts": ts + 1, "rpm": 9.0}) == 0
        wait_until(lambda: len(store.readings("conv-a")) == 2 and len(store.readings("anna.phone")) == 1,
                   what="the devices' own readings")  # fmt: skip
    finally:
        collector.stop()
    assert {d.device_id for d in store.devices()} == {"conv-a", "anna.phone"}
    assert list(store.readings("conv-a")["rpm"]) == [8.0, 9.0]
    reasons = {letter.topic: letter.reason for letter in store.dead_letters()}
    assert "device_id 'conv-b' is not the topic's device 'conv-a'" in reasons["tower/v1/lp/conv-a"]
    assert "payload names topic 'owntracks/bob/phone'" in reasons["owntracks/anna/phone"]
    store.close()


def test_a_device_subscribes_to_nothing(deployed, probes):
    device = probes(deployed.settings("conv-a"))
    for topic in ["tower/v1/#", "tower/v1/alerts/+", "tower/v1/equipment/conv-b/telemetry",
                  "tower/v1/equipment/conv-a/telemetry", "owntracks/#", "#", "$SYS/#"]:  # fmt: skip
        assert device.subscribe(topic) == NOT_AUTHORIZED, topic
    dashboard = probes(deployed.settings("tower-dashboard"))
    assert dashboard.subscribe("tower/v1/alerts/+") < 128
    assert dashboard.subscribe("tower/v1/#") == NOT_AUTHORIZED


def test_only_an_integration_acknowledges_and_the_audit_shows_its_account(deployed, probes, tmp_path):
    settings = deployed.settings("tower-alerts", data_dir=tmp_path / "var", alerts_client_id=f"alerts-{os.getpid()}")
    env = {"TOWER_MQTT_CA_FILE": str(deployed.ca_file), "TOWER_ALERTS_CLIENT_ID": settings.alerts_client_id}
    engine = tower_process(["alerts", "run"], settings, tmp_path / "alerts.log", env)
    try:
        tms, device = probes(deployed.settings("tms")), probes(deployed.settings("conv-b"))
        assert tms.subscribe("tower/v1/alerts/+") == 1
        minute = now_ms() - 10 * 60_000
        for offset, state in enumerate(["running", "running", "fault"]):
            assert device.publish("tower/v1/equipment/conv-b/telemetry",
                                  {"ts": minute + offset * 60_000, "state": state, "rpm": 10.0}) == 0  # fmt: skip
        wait_until(lambda: tms.messages, what="the alert announced to the integration")
        alert = json.loads(tms.messages[0][1])
        ack = f"tower/v1/alerts/{alert['id']}/ack"
        for account, topic, payload in [
            ("conv-b", f"{ack}/conv-b", {"note": "a device acknowledging"}),
            ("wms", f"{ack}/tms", {"by": "tms", "note": "wms posing as tms"}),
            ("tms", f"{ack}/wms", {"note": "tms posing as wms"}),
            ("tower-dashboard", f"{ack}/tower-dashboard", {}),
            ("tms", f"tower/v1/alerts/{alert['id']}", b""),  # deleting the retained announcement
            ("tms", f"tower/v1/alerts/{alert['id']}", {**alert, "status": "resolved"}),  # forging one
        ]:
            assert probes(deployed.settings(account)).publish(topic, payload, retain=True) == NOT_AUTHORIZED, account
        book = AlertBook(settings.alerts_db)
        assert book.get(alert["id"])["status"] == "firing"
        assert tms.publish(f"{ack}/tms", {"by": "Operations Director", "note": "carrier informed"}) == 0
        wait_until(lambda: book.get(alert["id"])["status"] == "acknowledged", what="the integration's ack")
    finally:
        assert stop_process(engine) == 0
    assert book.get(alert["id"])["acked_by"] == "tms"
    history = [(row["status"], row["actor"], row["note"]) for row in book.history(alert["id"])]
    assert history[-1] == ("acknowledged", "tms", "for Operations Director: carrier informed")
    assert [actor for _, actor, _ in history] == ["engine", "tms"]


def tower(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tower.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_device_accounts_from_the_command_line(deployed, probes):
    env = {"TOWER_BROKER": deployed.admin_url, "TOWER_MQTT_CA_FILE": str(deployed.ca_file)}
    added = tower("devices", "add", "trk-new", "--kind", "shipment", env=env)
    assert added.returncode == 0, added.stderr
    (password,) = added.stdout.split()  # the password alone on stdout, shown this once
    assert "publishes tower/v1/shipment/trk-new/telemetry" in added.stderr and password not in added.stderr
    deployed.passwords["trk-new"] = password
    first = probes(deployed.settings("trk-new"))
    assert first.connack == 0
    listed = json.loads(tower("accounts", "list", "--format", "json", env=env).stdout)
    assert {"name": "trk-new", "kind": "shipment"}.items() <= next(a for a in listed if a["name"] == "trk-new").items()
    again = tower("devices", "add", "trk-new", "--kind", "shipment", env=env)
    assert again.returncode == 2 and "account 'trk-new' exists" in again.stderr

    rotated = tower("devices", "rotate", "trk-new", env=env)
    assert rotated.returncode == 0 and rotated.stdout.strip() != password
    wait_until(lambda: not first.client.is_connected(), what="the old password's session disconnected")
    assert probes(deployed.settings("trk-new")).connack == NOT_AUTHORIZED  # the old password
    deployed.passwords["trk-new"] = rotated.stdout.strip()
    assert probes(deployed.settings("trk-new")).connack == 0

    service = tower("devices", "remove", "tower-ingest", env=env)
    assert service.returncode == 2 and "not a device account" in service.stderr
    assert tower("devices", "remove", "trk-new", env=env).returncode == 0
    assert probes(deployed.settings("trk-new")).connack == NOT_AUTHORIZED
    assert tower("accounts", "sync", env=env).stderr.startswith("updated the grants of 0 accounts")

    secret = deployed.passwords["conv-a"]
    not_admin = tower("accounts", "list", env={**env, "TOWER_BROKER": deployed.url("conv-a", secret)})
    assert not_admin.returncode == 2 and "not the broker's admin account" in not_admin.stderr
    wrong_password = {**env, "TOWER_BROKER": deployed.url("admin", "S3cretPW")}
    wrong = tower("devices", "add", "x", "--kind", "shipment", env=wrong_password)
    assert wrong.returncode == 2 and "refused the connection" in wrong.stderr
    assert "S3cretPW" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    simulator = tower("simulate", "--speed", "max", "--duration", "1m", "--broker", deployed.url("conv-a", "S3cretPW"),
                      env=env)  # fmt: skip
    assert simulator.returncode == 2 and "refused the connection: Not authorized" in simulator.stderr
    assert "S3cretPW" not in simulator.stderr


# -- the decoder: what the broker cannot see ------------------------------------------------------------

DECODER = Decoder(max_payload_bytes=65_536, max_future_skew_ms=300_000, dead_letter_payload_bytes=1024)


def test_two_owntracks_topics_never_map_to_the_same_device():
    location = json.dumps({"_type": "location", "tst": now_ms() // 1000, "lat": 1.0, "lon": 2.0}).encode()
    topics = ["owntracks/trk/rtm-ams-01", "owntracks/trk-rtm/ams-01", "owntracks/trk-rtm-ams/01"]
    ids = {topic: DECODER.decode(topic, location, now_ms()).readings[0].device_id for topic in topics}
    assert ids == {"owntracks/trk/rtm-ams-01": "trk.rtm-ams-01", "owntracks/trk-rtm/ams-01": "trk-rtm.ams-01",
                   "owntracks/trk-rtm-ams/01": "trk-rtm-ams.01"}  # fmt: skip
    (letter,) = DECODER.decode("owntracks/trk.rtm/ams-01", location, now_ms()).dead_letters
    assert "no '.'" in letter.reason  # 'trk.rtm.ams-01' could come from two topics


def test_payloads_naming_another_device_are_dead_lettered():
    ns = (now_ms() - 1000) * 1_000_000
    line_protocol = DECODER.decode("tower/v1/lp/m-1", f"equipment,device_id=m-2 rpm=1 {ns}".encode(), now_ms())
    assert not line_protocol.readings and "is not the topic's device 'm-1'" in line_protocol.dead_letters[0].reason
    (letter,) = DECODER.decode("tower/v1/lp/gw/x", b"equipment,device_id=m-1 rpm=1", now_ms()).dead_letters
    assert "tower/v1/lp/<device_id>" in letter.reason
    native = json.dumps({"ts": now_ms() - 1000, "rpm": 1.0, "device_id": 2}).encode()
    (letter,) = DECODER.decode("tower/v1/equipment/m-1/telemetry", native, now_ms()).dead_letters
    assert "field name 'device_id' is reserved" in letter.reason  # the topic names the device
    buffered = json.dumps([{"ts": now_ms() - 1000, "rpm": 1.0}, {"ts": now_ms() - 900, "rpm": 1.0, "device_id": 2}])
    batch = DECODER.decode("tower/v1/equipment/m-1/telemetry", buffered.encode(), now_ms())
    assert len(batch.readings) == 1 and "field name 'device_id' is reserved" in batch.dead_letters[0].reason


def test_a_client_certificate_where_the_broker_requires_one(tmp_path, probes):
    certs = tmp_path / "certs"
    make_certs = REPO / "deploy" / "make-certs.sh"
    subprocess.run([make_certs, certs, "127.0.0.1"], check=True, capture_output=True)
    subprocess.run([make_certs, certs, "--client", "tower-ingest"], check=True, capture_output=True)
    port = free_port()
    config = (f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
              f"cafile {certs}/ca.crt\ncertfile {certs}/server.crt\nkeyfile {certs}/server.key\n"
              "require_certificate true\nuse_identity_as_username true\n")  # fmt: skip
    with LocalBroker(tmp_path, port=port, config=config):
        url, ca = f"mqtts://127.0.0.1:{port}", certs / "ca.crt"
        cert, key = certs / "tower-ingest.crt", certs / "tower-ingest.key"
        accepted = probes(load_settings(broker=url, mqtt_ca_file=ca, mqtt_cert_file=cert, mqtt_key_file=key))
        assert accepted.connack == 0
        try:  # no certificate: the handshake fails (TLS 1.2), or the broker closes at once (TLS 1.3)
            refused = Probe(load_settings(broker=url, mqtt_ca_file=ca))
        except BrokerUnavailable:
            pass
        else:
            refused.close()
            assert refused.connack is None
    with pytest.raises(ValueError, match="go together"):
        make_client(load_settings(broker=url, mqtt_ca_file=ca, mqtt_cert_file=cert), "x")
    with pytest.raises(ValueError, match="plain text; use mqtts://"):
        make_client(load_settings(broker=f"mqtt://127.0.0.1:{port}", mqtt_ca_file=ca), "x")
