"""Alert lifecycle, audit trail, restart, on-call schedules, escalation, silences, and delivery
through apprise to real receivers (an HTTP webhook server and an SMTP server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.book import AlertBook
from alerts.conditions import State
from alerts.engine import Snapshot, restore, snapshot
from alerts.evaluate import Change, RuleEvaluator
from alerts.notify import Deliverer
from alerts.oncall import OnCall, OnCallError, load_oncall
from alerts.rules import RuleSet, Severity
from alerts.service import AlertService
from tests.conftest import wait_until
from tests.receivers import SmtpReceiver, WebhookReceiver
from tower.contract import DeviceKind, Reading

T0 = 1_789_948_800_000  # 2026-09-21T00:00Z, a Monday
MIN = 60_000
RUNBOOK = {"owner": "site maintenance", "respond_within": "15m", "steps": ["Lock out the machine", "Inspect it"]}
RULES = RuleSet.model_validate({"rules": [
    {"id": "machine-fault", "type": "threshold", "scope": {"kind": "equipment"}, "field": "state", "equals": "fault",
     "clear_for": "5m", "severity": "critical", "runbook": RUNBOOK},
]})  # fmt: skip
RULE = RULES.rules[0]


def _change(state: State, at: int, severity: Severity = Severity.MAJOR, entity: str = "conv-1") -> Change:
    return Change(RULE, entity, entity, DeviceKind.EQUIPMENT, "dc-venlo", state, severity, at, 1.0, f"{state} at {at}")


def _reading(minute: int, state: str, device: str = "conv-1") -> Reading:
    return Reading(DeviceKind.EQUIPMENT, device, T0 + minute * MIN, {"state": state, "rpm": 0.0})


def _oncall(webhook: WebhookReceiver, smtp: SmtpReceiver | None = None, **policy) -> OnCall:
    contacts = {
        "anna": {"name": "Anna", "urls": [webhook.url("/anna")] + ([smtp.url("anna@example.com")] if smtp else [])},
        "bram": {"name": "Bram", "urls": [webhook.url("/bram")]},
        "lead": {"name": "Shift lead", "urls": [webhook.url("/lead")]},
    }
    return OnCall.model_validate({
        "contacts": contacts,
        "schedules": {"maintenance": {"rotation": {"start": "2026-09-21T08:00:00+02:00", "every": "1d",
                                                   "members": ["anna", "bram"]}}},
        "policies": {"machines": {"levels": [{"after": "0m", "notify": ["maintenance"]},
                                             {"after": "10m", "notify": ["lead"]}], **policy}},
        "routes": [{"match": {"severity_at_least": "major", "kinds": ["equipment"]}, "policy": "machines"}],
    })  # fmt: skip


def test_lifecycle_from_pending_to_closed_with_an_audit_trail(tmp_path):
    book = AlertBook(tmp_path / "alerts.db")
    assert book.apply(_change(State.PENDING, T0), wall_ms=T0) is None
    fired = book.apply(_change(State.FIRING, T0 + MIN), wall_ms=T0 + 2 * MIN)
    assert (
        fired.what == "firing" and fired.alert["status"] == "firing" and fired.alert["raised_wall_ms"] == T0 + 2 * MIN
    )
    alert_id = fired.alert["id"]
    assert book.apply(_change(State.FIRING, T0 + 3 * MIN), wall_ms=T0) is None  # same alert, updated
    risen = book.apply(_change(State.FIRING, T0 + 4 * MIN, Severity.CRITICAL), wall_ms=T0)
    assert risen.what == "escalated-severity" and risen.alert["severity"] == "critical"
    assert len(book.alerts("all")) == 1  # one open alert per (rule, entity)
    book.act(alert_id, "acknowledge", "anna", "on my way", T0 + 5 * MIN)
    with pytest.raises(ValueError, match="is acknowledged; only pending or firing alerts can be acknowledged"):
        book.act(alert_id, "acknowledge", "bram", "", T0 + 6 * MIN)
    resolved = book.apply(_change(State.NORMAL, T0 + 20 * MIN), wall_ms=T0 + 20 * MIN)
    assert resolved.what == "resolved" and resolved.alert["resolved_ms"] == T0 + 20 * MIN
    book.act(alert_id, "close", "anna", "bearing replaced", T0 + 30 * MIN)
    trail = [(row["status"], row["actor"], row["note"]) for row in book.history(alert_id)]
    assert trail == [
        ("pending", "engine", f"pending at {T0}"),
        ("firing", "engine", f"firing at {T0 + MIN}"),
        ("firing", "engine", f"severity major -> critical: firing at {T0 + 4 * MIN}"),
        ("acknowledged", "anna", "on my way"),
        ("resolved", "engine", f"condition cleared: normal at {T0 + 20 * MIN}"),
        ("closed", "anna", "bearing replaced"),
    ]
    # A pending alert that clears before its hold leaves no record; a new breach is a new alert.
    book.apply(_change(State.PENDING, T0 + 40 * MIN), wall_ms=T0)
    book.apply(_change(State.NORMAL, T0 + 41 * MIN), wall_ms=T0)
    assert [a["id"] for a in book.alerts("all")] == [alert_id]
    with pytest.raises(ValueError, match="no alert 'nope'"):
        book.act("nope", "acknowledge", "anna", "", T0)


def test_a_refresh_brings_the_detail_up_to_date_without_changing_what_a_person_decides_on(tmp_path):
    from dataclasses import replace

    book = AlertBook(tmp_path / "alerts.db")
    alert_id = book.apply(_change(State.FIRING, T0), wall_ms=T0).alert["id"]
    seen = book.get(alert_id)["revision"]
    refresh = replace(_change(State.FIRING, T0 + 5 * MIN), value=7.0, detail="out of range 5 min", refresh=True)
    assert book.apply(refresh, wall_ms=T0) is None  # nothing to announce
    alert = book.get(alert_id)
    assert (alert["detail"], alert["value"], alert["status"]) == ("out of range 5 min", 7.0, "firing")
    # A person who looked before the refresh still acts on what they saw.
    assert (
        book.act(alert_id, "resolve", "anna", "moved the pallets", T0 + 6 * MIN, revision=seen)["status"] == "resolved"
    )
    # A refresh for an alert a person ended raises nothing new.
    assert book.apply(replace(refresh, at_ms=T0 + 10 * MIN), wall_ms=T0) is None
    assert [a["id"] for a in book.alerts("all")] == [alert_id] and book.get(alert_id)["detail"] == "out of range 5 min"


def test_resolved_alerts_close_after_the_configured_time(tmp_path):
    book = AlertBook(tmp_path / "alerts.db")
    alert_id = book.apply(_change(State.FIRING, T0), wall_ms=T0).alert["id"]
    book.apply(_change(State.NORMAL, T0 + MIN), wall_ms=T0 + MIN)
    assert book.close_resolved(before_wall_ms=T0, wall_ms=T0 + 2 * MIN) == 0
    assert book.close_resolved(before_wall_ms=T0 + 2 * MIN, wall_ms=T0 + 2 * MIN) == 1
    assert book.get(alert_id)["status"] == "closed"


def test_a_restarted_engine_keeps_its_open_alerts_and_rule_state(tmp_path):
    state_path = tmp_path / "state.pickle"
    book = AlertBook(tmp_path / "alerts.db")
    service = AlertService(RuleEvaluator(RULES), book, None, None)
    for minute in range(5):
        service.observe(_reading(minute, "running" if minute < 3 else "fault"), T0)
    snapshot(state_path, Snapshot("rules-v1", service.evaluator, service.seq))
    book.close()
    # ... the process restarts ...
    book = AlertBook(tmp_path / "alerts.db")
    (open_alert,) = book.alerts("open")
    restored = restore(state_path, RuleEvaluator(RULES), "rules-v1")
    service = AlertService(restored.evaluator, book, None, None, seq=restored.seq)
    for minute in range(5, 8):
        service.observe(_reading(minute, "fault"), T0)
    assert [a["id"] for a in book.alerts("all")] == [open_alert["id"]]  # still the same alert, not a new one
    for minute in range(8, 15):
        service.observe(_reading(minute, "running"), T0)
    assert book.get(open_alert["id"])["status"] == "resolved"
    assert restore(state_path, RuleEvaluator(RULES), "rules-v2").evaluator.watermark_ms == 0  # other rules: fresh


def test_rotation_hands_off_at_its_time_and_overrides_win():
    with WebhookReceiver() as webhook:
        oncall = _oncall(webhook)
    schedule = oncall.schedules["maintenance"]
    at = lambda text: int(datetime.fromisoformat(text).timestamp() * 1000)  # noqa: E731
    assert schedule.on_call(at("2026-09-21T09:00:00+02:00")) == "anna"
    assert schedule.on_call(at("2026-09-22T07:59:00+02:00")) == "anna"
    assert schedule.on_call(at("2026-09-22T08:00:00+02:00")) == "bram"
    assert schedule.on_call(at("2026-09-23T08:00:00+02:00")) == "anna"
    with_override = schedule.model_copy(update={"overrides": (
        schedule.model_validate({"rotation": schedule.rotation, "overrides": [
            {"who": "bram", "starts": "2026-09-23T12:00:00+02:00", "ends": "2026-09-23T18:00:00+02:00"}]}).overrides
    )})  # fmt: skip
    assert with_override.on_call(at("2026-09-23T13:00:00+02:00")) == "bram"
    assert with_override.on_call(at("2026-09-23T18:00:00+02:00")) == "anna"


def test_on_call_file_errors_name_the_line(tmp_path):
    path = tmp_path / "oncall.yaml"
    path.write_text(
        "contacts:\n  anna: {name: Anna, urls: ['json://localhost/x']}\n"
        "policies:\n  p:\n    levels:\n      - {after: 0m, notify: [nobody]}\n"
        "routes:\n  - {policy: p}\n"
    )
    with pytest.raises(OnCallError, match=rf"{path}:6: .*'nobody' is neither a contact nor a schedule"):
        load_oncall(path)


def test_escalation_notifies_each_level_in_time_until_acknowledged(tmp_path):
    with WebhookReceiver() as webhook:
        deliverer = Deliverer(tmp_path / "alerts.db", attempts=1)
        book = AlertBook(tmp_path / "alerts.db")
        service = AlertService(RuleEvaluator(RULES), book, _oncall(webhook, repeat=1, repeat_after="20m"), deliverer)
        wall = int(datetime(2026, 9, 21, 9, 0, tzinfo=UTC).timestamp() * 1000)  # 11:00 in Venlo: Anna's shift
        service.observe(_reading(0, "fault"), wall)
        deliverer.wait_idle()
        assert [path for _, path, _ in webhook.received] == ["/anna"]
        service.tick(wall + 9 * MIN)
        deliverer.wait_idle()
        assert len(webhook.received) == 1  # level 2 is due after 10 minutes, not before
        service.tick(wall + 10 * MIN)
        deliverer.wait_idle()
        assert [path for _, path, _ in webhook.received] == ["/anna", "/lead"]
        service.tick(wall + 30 * MIN)  # the chain repeats 20 minutes after its last level
        deliverer.wait_idle()
        assert [path for _, path, _ in webhook.received] == ["/anna", "/lead", "/anna"]
        (alert,) = book.alerts("open")
        book.act(alert["id"], "acknowledge", "anna", "looking", wall + 31 * MIN)
        service.tick(wall + 60 * MIN)  # acknowledged: the repeat's second level never goes out
        deliverer.stop()
        assert len(webhook.received) == 3
        assert {d["recipient"] for d in book.deliveries(alert["id"])} == {"anna", "lead"}


def test_silence_holds_notifications_until_it_ends(tmp_path):
    with WebhookReceiver() as webhook:
        deliverer = Deliverer(tmp_path / "alerts.db", attempts=1)
        book = AlertBook(tmp_path / "alerts.db")
        service = AlertService(RuleEvaluator(RULES), book, _oncall(webhook), deliverer)
        wall = int(datetime(2026, 9, 21, 9, 0, tzinfo=UTC).timestamp() * 1000)
        book.silence(
            {"entity": "conv-*", "rule": "machine-*"}, wall - MIN, wall + 30 * MIN, "lead", "planned maintenance"
        )
        service.observe(Reading(DeviceKind.EQUIPMENT, "conv-1", T0, {"state": "fault"}), wall)
        service.tick(wall + 20 * MIN)
        deliverer.wait_idle()
        assert webhook.received == []  # the alert exists, its notifications wait
        assert book.alerts("open")[0]["status"] == "firing"
        with pytest.raises(ValueError, match="silence matchers are"):
            book.silence({"colour": "red"}, wall, wall + MIN, "lead", "")
        service.tick(wall + 31 * MIN)
        deliverer.stop()
        assert sorted(path for _, path, _ in webhook.received) == ["/anna", "/lead"]  # both levels now due


def test_delivery_by_webhook_and_email_carries_the_runbook_and_how_to_acknowledge(tmp_path):
    with WebhookReceiver() as webhook, SmtpReceiver() as smtp:
        deliverer = Deliverer(tmp_path / "alerts.db", attempts=1)
        book = AlertBook(tmp_path / "alerts.db")
        service = AlertService(RuleEvaluator(RULES), book, _oncall(webhook, smtp), deliverer,
                               dashboard_url="http://tower.example:8501")  # fmt: skip
        wall = int(datetime(2026, 9, 21, 9, 0, tzinfo=UTC).timestamp() * 1000)
        service.observe(_reading(0, "fault"), wall)
        deliverer.wait_idle()
        (alert,) = book.alerts("open")
        (body,) = webhook.bodies("/anna")
        assert body["title"] == "[CRITICAL] machine-fault: conv-1"
        assert "1. Lock out the machine" in body["message"] and f"tower alerts ack {alert['id']}" in body["message"]
        assert f"http://tower.example:8501/alerts?alert={alert['id']}" in body["message"]
        wait_until(lambda: smtp.messages, what="email")
        recipients, text = smtp.messages[0]
        assert recipients == ["anna@example.com"] and "machine-fault: conv-1" in text
        for minute in range(1, 8):  # the machine runs again: resolved, and once quiet long enough Anna is told
            service.observe(_reading(minute, "running"), wall + minute * MIN)
        service.tick(wall + 8 * MIN)
        deliverer.wait_idle()
        assert len(webhook.bodies("/anna")) == 1  # not yet: it may flap back
        service.tick(wall + 6 * MIN + RULE.quiet)
        deliverer.stop()
        resolved = webhook.bodies("/anna")[-1]
        assert resolved["title"] == "[RESOLVED] machine-fault: conv-1"
        assert "How it ended: condition cleared: state is running" in resolved["message"]
        assert all(d["ok"] for d in book.deliveries(alert["id"]))


def test_failed_deliveries_are_retried_and_every_attempt_is_logged(tmp_path):
    with WebhookReceiver() as webhook:
        webhook.status = 500
        deliverer = Deliverer(tmp_path / "alerts.db", attempts=3, backoff_s=0.05)
        book = AlertBook(tmp_path / "alerts.db")
        service = AlertService(RuleEvaluator(RULES), book, _oncall(webhook), deliverer)
        wall = int(datetime(2026, 9, 21, 9, 0, tzinfo=UTC).timestamp() * 1000)
        service.observe(_reading(0, "fault"), wall)
        deliverer.stop()
        attempts = book.deliveries()
        assert [(d["recipient"], d["attempt"], d["ok"]) for d in attempts] == [("anna", 1, 0), ("anna", 2, 0),
                                                                               ("anna", 3, 0)]  # fmt: skip
        assert all("500" in d["error"] for d in attempts) and attempts[0]["service"] == "json"
        assert len(webhook.received) == 3


def test_a_notice_in_flight_at_a_crash_is_sent_again_once(tmp_path):
    """Written before it is sent: one without an outcome after a stop is sent on the next start, and a
    second stop during that does not make a third copy."""
    with WebhookReceiver() as webhook:
        book = AlertBook(tmp_path / "alerts.db")
        with book.transaction():  # what a crashed engine left: a notice written, its delivery never finished
            book.add_notice("a1", 0, "anna", (webhook.url("/anna"),), "[CRITICAL] machine-fault: conv-1", "body",
                            "critical", T0)  # fmt: skip
        deliverer = Deliverer(tmp_path / "alerts.db", attempts=1)
        service = AlertService(RuleEvaluator(RULES), book, _oncall(webhook), deliverer)
        assert service.resend_unfinished() == 1
        deliverer.wait_idle()
        assert [b["title"] for b in webhook.bodies("/anna")] == ["[CRITICAL] machine-fault: conv-1"]
        assert service.resend_unfinished() == 0  # done now
        book.db.execute("UPDATE notices SET done=0")  # as if the re-send had been in flight at a second crash
        assert service.resend_unfinished() == 0
        deliverer.stop()
        assert len(webhook.received) == 1 and book.unfinished_notices() == []


def test_after_a_crash_the_redelivered_readings_record_nothing_twice(tmp_path):
    """The engine's restart in miniature: a snapshot, more readings recorded, a crash; the restored
    state plus the redelivery of everything after the snapshot (the last of it twice: taken but not
    acknowledged) ends with the book of an engine that never stopped, transition for transition."""
    states = ["running", "fault", "fault"] + ["running"] * 17 + ["fault"] + ["running"] * 9  # two alerts
    readings = [[_reading(minute, state)] for minute, state in enumerate(states)]

    def book_of(service: AlertService) -> list[tuple]:
        return [(a["id"], a["status"], a["fired_ms"], a["resolved_ms"], len(service.book.history(a["id"])))
                for a in service.book.alerts("all")]  # fmt: skip

    reference = AlertService(RuleEvaluator(RULES), AlertBook(tmp_path / "reference.db"), None, None)
    for item in readings:
        reference.observe_input(item, T0)
    crashed = AlertService(RuleEvaluator(RULES), AlertBook(tmp_path / "crashed.db"), None, None)
    for item in readings[:5]:
        crashed.observe_input(item, T0)
    snapshot(tmp_path / "state.pickle", Snapshot("rules", crashed.evaluator, crashed.seq))
    for item in readings[5:25]:  # recorded in the book, not in the snapshot; then the process dies
        crashed.observe_input(item, T0)
    restored = restore(tmp_path / "state.pickle", RuleEvaluator(RULES), "rules")
    again = AlertService(restored.evaluator, AlertBook(tmp_path / "crashed.db"), None, None, seq=restored.seq)
    for item in [readings[4], *readings[5:]]:
        again.observe_input(item, T0)
    assert book_of(again) == book_of(reference) and len(book_of(reference)) == 2
