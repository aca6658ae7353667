"""What keeps a long-running service (`tower ingest`, `tower alerts run`) from doing harm quietly:
one instance per state (a second exits 1 naming the first; a SIGKILLed one frees its state), a
broker that refuses the account for good ends the service with one line, and a wrong scheme or
port, or a session taken over, is said as such. Against a real mosquitto."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from alerts.book import AlertBook
from tests.conftest import (
    REPO,
    run_collector_until_it_warns,
    service_env,
    stop_process,
    stored_seqs,
    tower_process,
    wait_until,
)
from tower.access import account_kind
from tower.accounts import account_admin
from tower.broker import LocalBroker, mosquitto_tool
from tower.config import load_settings
from tower.mqtt import BrokerUnavailable, ServiceConnection, connect, make_client
from tower.process import AlreadyRunning, exclusive
from tower.timeutil import now_ms

INGEST, ALERTS = ["ingest"], ["alerts", "run"]


def tower_exits(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A `tower` service expected to end by itself (the generous timeout only guards the suite)."""
    return subprocess.run([sys.executable, "-m", "tower.cli", *command], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def _readings(publisher, device: str, seqs: range, base_ms: int) -> None:
    for seq in seqs:
        publisher.send(f"tower/v1/shipment/{device}/telemetry", {"ts": base_ms + seq * 1000, "seq": seq, "temp_c": 4.0})


# -- one instance per state -------------------------------------------------------------------------


def test_a_second_collector_on_the_same_spool_exits_and_the_first_loses_nothing(settings, store, publisher,
                                                                                 tmp_path):  # fmt: skip
    base = now_ms() - 3_600_000
    log = tmp_path / "collector.log"
    first = tower_process(INGEST, settings, log)
    restarted = None
    try:
        _readings(publisher, "lock-1", range(0, 50), base)
        second = tower_exits(INGEST, service_env(settings))
        assert second.returncode == 1, second.stderr
        (line,) = second.stderr.strip().splitlines()  # nothing else: the lock is taken before anything is said
        assert line.startswith("tower: error: the spool ") and f"client id '{settings.ingest_client_id}'" in line
        assert f"is in use by PID {first.pid} " in line and "TOWER_INGEST_CLIENT_ID or TOWER_DATA_DIR" in line
        _readings(publisher, "lock-1", range(50, 100), base)
        wait_until(lambda: stored_seqs(store, "lock-1") == list(range(100)), what="every reading stored once")
        assert b"disconnected" not in log.read_bytes()  # the second never reached the broker

        first.kill()  # SIGKILL: the kernel releases the lock with the process
        first.wait()
        _readings(publisher, "lock-1", range(100, 150), base)
        restarted = tower_process(INGEST, settings, log)
        wait_until(lambda: stored_seqs(store, "lock-1") == list(range(150)), what="the restarted collector's readings")
    finally:
        for process in (first, restarted):
            if process is not None and process.poll() is None:
                stop_process(process)
    assert restarted.returncode == 0


def test_a_second_alert_engine_on_the_same_data_dir_exits_and_the_first_keeps_alerting(settings, publisher,
                                                                                        tmp_path):  # fmt: skip
    env = service_env(settings, {"TOWER_ALERTS_CLIENT_ID": f"test-alerts-lock-{os.getpid()}"})
    log = tmp_path / "alerts.log"
    first = tower_process(ALERTS, settings, log, env)
    restarted = None
    try:
        second = tower_exits(ALERTS, {**env, "TOWER_ALERTS_CLIENT_ID": "another-client-id"})
        assert second.returncode == 1, second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert line.startswith(f"tower: error: the alert book {settings.alerts_db} ")
        assert f"is in use by PID {first.pid} " in line and "another TOWER_DATA_DIR" in line

        minute = now_ms() - 10 * 60_000
        for offset, state in enumerate(["running", "running", "fault"]):
            publisher.send("tower/v1/equipment/lock-conv/telemetry",
                           {"ts": minute + offset * 60_000, "state": state, "rpm": 1.0})  # fmt: skip
        book = AlertBook(settings.alerts_db)
        wait_until(lambda: [a["status"] for a in book.alerts("all")] == ["firing"], what="the first engine's alert")

        first.send_signal(signal.SIGKILL)
        first.wait()
        restarted = tower_process(ALERTS, settings, log, env)
    finally:
        for process in (first, restarted):
            if process is not None and process.poll() is None:
                stop_process(process)
    assert restarted.returncode == 0
    assert [a["status"] for a in book.alerts("all")] == ["firing"]
    book.close()


def test_the_lock_names_its_holder_and_stays_with_the_process_not_a_forked_child(tmp_path):
    lock = tmp_path / "state" / "service.lock"
    with exclusive(lock, "the state", "stop the other"):
        with pytest.raises(AlreadyRunning) as held, exclusive(lock, "the state", "stop the other"):
            pass  # another open of the file is another holder, as another process would be
        assert str(held.value) == f"the state is in use by PID {os.getpid()} (it holds {lock}); stop the other"
        running, told = os.pipe()
        child = os.fork()  # as the alert engine's snapshot writer
        if child == 0:  # back in Python: the fork hooks have run
            os.write(told, b"!")
            time.sleep(60)
            os._exit(0)
        os.read(running, 1)
        os.close(running)
        os.close(told)
    try:
        with exclusive(lock, "the state", "stop the other"):  # the parent let go; the child lives on without it
            pass
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


# -- refusals the broker will not change its mind about ---------------------------------------------


@pytest.fixture(scope="module")
def accounts_broker(tmp_path_factory):
    with LocalBroker(tmp_path_factory.mktemp("accounts-broker"), accounts=True) as broker:
        yield broker


def _account(broker: LocalBroker, name: str, kind: str) -> str:
    with account_admin(load_settings(broker=broker.admin_url)) as admin:
        return admin.add(name, account_kind(kind))


@pytest.mark.parametrize("command", [INGEST, ALERTS], ids=["ingest", "alerts"])
def test_a_wrong_password_ends_the_service_with_one_line(accounts_broker, settings, tmp_path, command):
    name, client_id = f"svc-{command[0]}-{os.getpid()}", f"test-{command[0]}-{os.getpid()}"
    _account(accounts_broker, name, "collector" if command == INGEST else "alerts")
    env = service_env(settings, {"TOWER_BROKER": accounts_broker.url_for(name, "Wr0ngPassw0rd"),
                                 "TOWER_INGEST_CLIENT_ID": client_id, "TOWER_ALERTS_CLIENT_ID": client_id})  # fmt: skip
    ended = tower_exits(command, env)
    assert ended.returncode == 1, ended.stderr
    assert "Traceback" not in ended.stderr and "Wr0ngPassw0rd" not in ended.stderr
    refused = [line for line in ended.stderr.splitlines() if "refused" in line]
    assert refused == [f"tower: error: broker mqtt://{name}@127.0.0.1:{accounts_broker.port} refused account "
                       f"'{name}' with client id '{client_id}': Not authorized; check the account and password in "
                       "TOWER_BROKER, and that the account exists ('tower accounts list')"]  # fmt: skip
    assert ended.stderr.splitlines()[-1] == refused[0]


def test_an_account_removed_while_the_collector_runs_ends_it(accounts_broker, settings, tmp_path):
    name = f"svc-removed-{os.getpid()}"
    password = _account(accounts_broker, name, "collector")
    log = tmp_path / "collector.log"
    collector = tower_process(INGEST, settings, log, {"TOWER_BROKER": accounts_broker.url_for(name, password)})
    try:
        with account_admin(load_settings(broker=accounts_broker.admin_url)) as admin:
            admin.remove(name)  # the broker disconnects it; its reconnection is refused
        assert collector.wait(60) == 1
    finally:
        if collector.poll() is None:
            stop_process(collector)
    text = log.read_text()
    assert text.strip().splitlines()[-1].startswith(f"tower: error: broker mqtt://{name}@")
    assert "Not authorized" in text and "Traceback" not in text


# -- a wrong scheme or port, a session taken over -----------------------------------------------------


def test_mqtts_at_a_plain_text_port_says_the_tls_handshake_failed(broker, settings, store, caplog):
    tls_at_plain = settings.model_copy(update={"broker": broker.url.replace("mqtt:", "mqtts:")})
    client, address, properties = make_client(tls_at_plain, f"test-tls-{os.getpid()}")
    with pytest.raises(BrokerUnavailable, match=r"the TLS handshake with 127\.0\.0\.1:\d+ failed .* is it a plain-text"
                                                 r" MQTT port\? check the scheme \(mqtts:// for TLS"):  # fmt: skip
        connect(client, address, properties, persistent=False)
    # The service's retries say the same (paho hands on_connect_fail no error: tower.mqtt reads the one being handled).
    run_collector_until_it_warns(tls_at_plain, store, caplog, "the TLS handshake with", "the collector's TLS warning")
    assert "retrying" in caplog.text and "unreachable" not in caplog.text


def _mosquitto_version() -> tuple[int, ...]:
    banner = subprocess.run([mosquitto_tool("mosquitto"), "-h"], capture_output=True, text=True).stdout
    return tuple(int(part) for part in re.search(r"version (\d+)\.(\d+)\.(\d+)", banner).groups())


def test_a_session_taken_over_is_an_error_naming_the_client_id(caplog):
    """Pure: what the service says on the DISCONNECT reason mosquitto 2.0.15+ (and EMQX, HiveMQ) send."""
    client, address, _ = make_client(load_settings(broker="mqtt://127.0.0.1:1883"), "tower-ingest")
    connection = ServiceConnection(client, address, "tower-ingest", logging.getLogger("tower.ingest"))
    with caplog.at_level(logging.WARNING, logger="tower.ingest"):
        connection.accepted(ReasonCode(PacketTypes.CONNACK, identifier=0))
        connection.disconnected(ReasonCode(PacketTypes.DISCONNECT, identifier=142))
    (record,) = caplog.records
    assert record.levelname == "ERROR" and "Session taken over" in record.getMessage()
    assert "another process connected with the same client id 'tower-ingest'" in record.getMessage()


@pytest.mark.skipif(_mosquitto_version() < (2, 0, 15), reason="mosquitto before 2.0.15 closes a taken-over "
                    "session without the DISCONNECT (Session taken over) MQTT 5 prescribes")  # fmt: skip
def test_the_broker_taking_our_session_over_is_logged_as_an_error(settings, tmp_path):
    log = tmp_path / "collector.log"
    collector = tower_process(INGEST, settings, log)
    try:
        intruder, address, properties = make_client(settings, settings.ingest_client_id, persistent=True)
        connect(intruder, address, properties, persistent=True)
        intruder.loop_start()
        wait_until(lambda: b"Session taken over" in log.read_bytes(), what="the collector's error")
        intruder.disconnect()
        intruder.loop_stop()
    finally:
        assert stop_process(collector) == 0
    assert re.search(rb"ERROR tower.ingest: .*Session taken over; another process connected with the same client id",
                     log.read_bytes())  # fmt: skip
