"""The alert service without the network: readings in -> rule changes -> the alert book ->
notifications by route, escalation and silence, and an announcement per alert change.

The engine (engine.py) feeds it from MQTT and publishes its announcements; tests and benchmarks
drive it directly. `tick` is called about once a second with the wall clock: escalations, silences
ending, auto-closing, and the missing-data watermark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from alerts.book import AlertBook, Event
from alerts.evaluate import Change, RuleEvaluator
from alerts.notify import RESOLVED_STEP, Deliverer, Notice, compose
from alerts.oncall import OnCall, due_steps
from tower.contract import Reading
from tower.masterdata.view import MasterData

log = logging.getLogger("tower.alerts")


class AlertService:
    def __init__(
        self,
        evaluator: RuleEvaluator,
        book: AlertBook,
        oncall: OnCall | None,
        deliverer: Deliverer | None,
        announce: Callable[[dict], None] = lambda alert: None,
        dashboard_url: str = "http://localhost:8501",
        close_after_ms: int = 24 * 3_600_000,
    ) -> None:
        self.evaluator, self.book, self.oncall, self.deliverer = evaluator, book, oncall, deliverer
        self.announce, self.dashboard_url, self.close_after_ms = announce, dashboard_url, close_after_ms

    def observe(self, reading: Reading, wall_ms: int) -> None:
        self._record(self.evaluator.observe(reading), wall_ms)

    def set_master(self, master: MasterData, wall_ms: int) -> None:
        """A new revision of master data: alerts of entities that ended (cancelled, moved on) resolve."""
        self._record(self.evaluator.set_master(master), wall_ms)

    def acknowledge(self, alert_id: str, by: str, note: str, wall_ms: int) -> dict:
        alert = self.book.acknowledge(alert_id, by, note, wall_ms)
        self.announce(alert)
        return alert

    def tick(self, wall_ms: int) -> None:
        self._record(self.evaluator.advance(self.evaluator.watermark_ms), wall_ms)
        self.book.save_tracking(self.evaluator.tracking_changes())
        for alert in self.book.unacknowledged():
            self._escalate(alert, wall_ms)
        self.book.close_resolved(wall_ms - self.close_after_ms, wall_ms)

    def _record(self, changes: list[Change], wall_ms: int) -> None:
        for change in changes:
            event = self.book.apply(change, wall_ms)
            if event is not None:
                self._on_event(event, wall_ms)

    def _on_event(self, event: Event, wall_ms: int) -> None:
        alert = event.alert
        self.announce(alert)
        log.info("%s %s %s: %s", event.what, alert["id"], alert["rule"], alert["detail"])
        if event.what == "firing":
            self._escalate(alert, wall_ms)
        else:
            self._notify_again(alert, event.what)
            if event.what == "escalated-severity":  # a higher severity may route to more people
                self._escalate(alert, wall_ms)

    def _escalate(self, alert: dict, wall_ms: int) -> None:
        """Notify every escalation step that is due and not yet done, unless silenced."""
        policy = self.oncall.policy_for(alert) if self.oncall else None
        if policy is None or self.deliverer is None:
            return
        due = due_steps(policy, alert["raised_wall_ms"], wall_ms, self.book.escalation_steps_done(alert["id"]))
        if not due or self.book.silenced_by(alert, wall_ms) is not None:
            return
        title, body = compose(alert, "firing", self.dashboard_url)
        for step, level in due:
            self.book.mark_escalated(alert["id"], step)
            for name, contact in self.oncall.recipients(level, wall_ms):
                self.deliverer.submit(Notice(alert["id"], step, name, contact.urls, title, body, alert["severity"]))

    def _notify_again(self, alert: dict, what: str) -> None:
        """Severity rises and resolutions go to everyone the escalation has already reached."""
        policy = self.oncall.policy_for(alert) if self.oncall else None
        if policy is None or self.deliverer is None or alert["raised_wall_ms"] is None:
            return
        done = self.book.escalation_steps_done(alert["id"])
        told = {
            name: contact
            for step, delay, level in policy.steps()
            if step in done
            for name, contact in self.oncall.recipients(level, alert["raised_wall_ms"] + delay)
        }
        title, body = compose(alert, what, self.dashboard_url)
        step = RESOLVED_STEP if what == "resolved" else 0
        for name, contact in told.items():
            self.deliverer.submit(Notice(alert["id"], step, name, contact.urls, title, body, alert["severity"]))
