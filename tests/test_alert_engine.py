"""`tower alerts run` as a real process on a real mosquitto: readings in, a webhook out, the alert
announced on MQTT, acknowledged over MQTT and from the command line, and a restart in between."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from alerts.book import AlertBook
from alerts.engine import alert_topic
from tests.conftest import REPO, stop_process, tower_process, wait_until
from tests.receivers import WebhookReceiver
from tower.mqtt import connect, make_client
from tower.timeutil import now_ms

MIN = 60_000


def tower(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tower.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True)  # fmt: skip


@pytest.fixture
def webhook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def engine_env(settings, webhook, tmp_path):
    """The engine's environment; afterwards its retained alerts and its session leave the shared broker."""
    env = _engine_env(settings, webhook, tmp_path)
    yield env
    cleaner, address, properties = make_client(settings, env["TOWER_ALERTS_CLIENT_ID"])  # ends its session
    connect(cleaner, address, properties, persistent=False)
    cleaner.loop_start()
    for alert in AlertBook(settings.alerts_db).alerts("all"):
        cleaner.publish(alert_topic(alert["id"]), b"", qos=1, retain=True).wait_for_publish(5)
    cleaner.disconnect()
    cleaner.loop_stop()


def _engine_env(settings, webhook, tmp_path) -> dict:
    oncall = tmp_path / "oncall.yaml"
    oncall.write_text(f"""
contacts:
  anna: {{name: Anna, urls: ["{webhook.url("/anna")}"]}}
policies:
  everything: {{levels: [{{notify: [anna]}}]}}
routes:
  - {{match: {{severity_at_least: major}}, policy: everything}}
""")
    return {
        **os.environ,
        "TOWER_BROKER": settings.broker,
        "TOWER_MQTT_PROTOCOL": settings.mqtt_protocol,
        "TOWER_DATA_DIR": str(settings.data_dir),
        "TOWER_ONCALL": str(oncall),
        "TOWER_ALERTS_CLIENT_ID": f"test-alerts-{os.getpid()}-{tmp_path.name}",
    }


def _machine(publisher, minute_ms: int, state: str, device: str = "conv-9") -> None:
    publisher.send(f"tower/v1/equipment/{device}/telemetry",
                   {"ts": minute_ms, "state": state, "rpm": 0.0 if state == "fault" else 1450.0})  # fmt: skip


def _watch(settings) -> dict[str, dict]:
    """Alert announcements as they arrive, by topic (the watcher stops with the test's broker session);
    not the retained ones earlier tests on the same broker left."""
    announced: dict[str, dict] = {}
    watcher, address, properties = make_client(settings, f"test-watch-{os.getpid()}-{len(_watchers)}")
    watcher.on_message = lambda c, u, m: (announced.__setitem__(m.topic, json.loads(m.payload))
                                          if m.payload and not m.retain else None)  # fmt: skip
    watcher.on_connect = lambda c, *args: c.subscribe("tower/v1/alerts/+", qos=1)
    connect(watcher, address, properties, persistent=False)
    watcher.loop_start()
    _watchers.append(watcher)
    return announced


_watchers: list = []


@pytest.fixture(autouse=True)
def _stop_watchers():
    yield
    while _watchers:
        watcher = _watchers.pop()
        watcher.disconnect()
        watcher.loop_stop()


def test_engine_notifies_announces_takes_acks_and_survives_a_restart(settings, publisher, webhook, engine_env,
                                                                     tmp_path):  # fmt: skip
    log = tmp_path / "alerts.log"
    announced = _watch(settings)

    engine = tower_process(["alerts", "run"], settings, log, engine_env)
    start = now_ms() - 30 * MIN
    for minute in range(3):
        _machine(publisher, start + minute * MIN, "running")
    _machine(publisher, start + 3 * MIN, "fault")
    wait_until(lambda: webhook.received, what="the webhook notification")
    assert webhook.bodies("/anna")[0]["title"] == "[CRITICAL] machine-fault: conv-9"
    wait_until(lambda: announced, what="the alert announced on MQTT")
    ((topic, alert),) = announced.items()
    assert topic == f"tower/v1/alerts/{alert['id']}" and alert["status"] == "firing"
    assert alert["runbook"]["owner"] == "site maintenance"

    listed = json.loads(tower(engine_env, "alerts", "list", "--format", "json").stdout)
    assert [(row["id"], row["status"], row["rule"]) for row in listed] == [(alert["id"], "firing", "machine-fault")]

    # Restart: readings sent while the engine is down wait in its persistent session.
    assert stop_process(engine) == 0
    for minute in range(4, 6):
        _machine(publisher, start + minute * MIN, "fault")
    engine = tower_process(["alerts", "run"], settings, log, engine_env)
    assert b"rule state restored" in log.read_bytes()

    # The topic names the acting account (the broker's ACL holds each integration to its own; tests/test_security.py)
    publisher.send(f"tower/v1/alerts/{alert['id']}/ack/anna", {"note": "on site in 10 min"})
    wait_until(lambda: announced[topic]["status"] == "acknowledged", what="the MQTT acknowledgement")
    assert announced[topic]["acked_by"] == "anna"

    for minute in range(6, 14):  # running again for longer than clear_for (5 min): resolved
        _machine(publisher, start + minute * MIN, "running")
    wait_until(lambda: announced[topic]["status"] == "resolved", what="automatic resolution")
    assert stop_process(engine) == 0

    book = AlertBook(settings.alerts_db)
    assert [a["id"] for a in book.alerts("all")] == [alert["id"]]  # one alert across the restart
    assert [(row["status"], row["actor"]) for row in book.history(alert["id"])] == [
        ("firing", "engine"), ("acknowledged", "anna"), ("resolved", "engine"),
    ]  # fmt: skip
    result = tower(engine_env, "alerts", "ack", alert["id"], "--by", "bram")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "is resolved; only pending or firing alerts can be acknowledged" in result.stderr
    closed = tower(engine_env, "alerts", "close", alert["id"], "--by", "bram", "--note", "bearing replaced")
    assert closed.returncode == 0 and "closed by bram" in closed.stdout
    shown = tower(engine_env, "alerts", "show", alert["id"])
    assert "1. Lock out conv-9 at unknown site and inspect it" in shown.stdout  # no master data: no site name
    assert "closed" in shown.stdout and "notify step 0 anna via json: delivered" in shown.stdout


def test_command_line_acknowledgement_stops_the_escalation(settings, publisher, webhook, engine_env, tmp_path):
    oncall = tmp_path / "oncall.yaml"
    two_levels = "levels: [{notify: [anna]}, {after: 8s, notify: [anna]}]"
    oncall.write_text(oncall.read_text().replace("levels: [{notify: [anna]}]", two_levels))
    announced = _watch(settings)
    engine = tower_process(["alerts", "run"], settings, tmp_path / "alerts.log", engine_env)
    _machine(publisher, now_ms() - MIN, "fault")
    wait_until(lambda: webhook.received, what="the first notification")
    (alert,) = json.loads(tower(engine_env, "alerts", "list", "--format", "json").stdout)
    acked = tower(engine_env, "alerts", "ack", alert["id"], "--by", "anna", "--note", "mine")
    assert acked.returncode == 0 and f"{alert['id']} acknowledged by anna" in acked.stdout
    topic = alert_topic(alert["id"])  # a person's action from the command line is announced like any other
    wait_until(lambda: announced.get(topic, {}).get("status") == "acknowledged", what="the CLI ack announced")
    assert announced[topic]["acked_by"] == "anna"
    assert AlertBook(settings.alerts_db).history(alert["id"])[-1]["via"] == "cli"
    book = AlertBook(settings.alerts_db)
    assert book.escalation_steps_done(alert["id"]) == {0}, "acknowledged only after the second level was due"
    # A control: the same fault on another machine, raised after the acknowledgement. The engine escalates
    # the oldest alert first, so once the control's second level is recorded, the acknowledged one's was due.
    _machine(publisher, now_ms() - MIN, "fault", device="conv-8")
    wait_until(lambda: len(book.alerts("all")) == 2, what="the control alert")
    control = next(a for a in book.alerts("all") if a["id"] != alert["id"])
    wait_until(lambda: book.escalation_steps_done(control["id"]) == {0, 1}, timeout_s=30, what="the control escalated")
    assert book.escalation_steps_done(alert["id"]) == {0}
    wait_until(lambda: len(webhook.received) == 3, what="the control's two notifications")
    assert stop_process(engine) == 0
    titles = [body["title"] for body in webhook.bodies("/anna")]
    assert (
        titles.count("[CRITICAL] machine-fault: conv-9") == 1 and titles.count("[CRITICAL] machine-fault: conv-8") == 2
    )
