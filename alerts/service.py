"""The alert service without the network: readings in -> rule changes -> the alert book ->
notices by route, escalation and silence, and an announcement per alert transition.

The engine (engine.py) feeds it from MQTT and publishes its announcements; tests and benchmarks
drive it directly. `tick` is called about once a second with the wall clock: escalations, resolved
notices whose quiet period is over, auto-closing, tracking, and announcing what people did.

Inputs (one MQTT message's readings) that change the rule state are numbered; the book records the
number of the last input whose changes it holds, in the same transaction as the changes, their
escalation steps and their notices. After a crash the engine restores the rule state of its last
snapshot and the broker redelivers what came after it (and what the snapshot holds but was not yet
acknowledged: duplicates to the state, not numbered): those inputs get the same numbers again, and
the changes of the ones the book already holds are not recorded twice (no second `arrived`, no
second page).

People act on the book directly (AlertBook.act, from the CLI, the dashboard, the API, a one-click
link, or the engine for MQTT); the service is the one announcer: every transition, the engine's and
people's, is announced from the book's audit trail, in order, and a person's resolution is told to
those who were paged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from alerts.book import AlertBook, Event
from alerts.evaluate import Change, RuleEvaluator
from alerts.links import AckLinks
from alerts.notify import RESOLVED_STEP, Deliverer, Notice, Reader, compose
from alerts.oncall import Contact, OnCall, due_steps
from tower.contract import Reading
from tower.masterdata.view import MasterData

log = logging.getLogger("tower.alerts")
ANNOUNCED = "announced"  # the book's cursor: the last transition announced


class AlertService:
    def __init__(
        self,
        evaluator: RuleEvaluator,
        book: AlertBook,
        oncall: OnCall | None,
        deliverer: Deliverer | None,
        announce: Callable[[dict], None] | None = None,
        dashboard_url: str = "http://localhost:8501",
        close_after_ms: int = 24 * 3_600_000,
        *,
        links: AckLinks | None = None,
        group_window_ms: int = 0,
        seq: int | None = None,
    ) -> None:
        self.evaluator, self.book, self.oncall, self.deliverer = evaluator, book, oncall, deliverer
        self.announce, self.dashboard_url, self.close_after_ms = announce, dashboard_url, close_after_ms
        self.links, self.group_window_ms = links, group_window_ms
        self.applied = book.applied_seq()
        self.seq = self.applied if seq is None else seq  # a fresh rule state numbers on after the book
        self._announced = book.cursor(ANNOUNCED)
        if self._announced is None and announce is not None:  # a book from before: its history is not news
            self._announced = book.last_transition()
            book.set_cursor(ANNOUNCED, self._announced)

    def observe(self, reading: Reading, wall_ms: int) -> None:
        self.observe_input([reading], wall_ms)

    def observe_input(self, readings: list[Reading], wall_ms: int) -> None:
        """One input (an MQTT message's readings): evaluated, and numbered if it changed the rule state
        (a redelivered message the state already holds is all duplicates: not numbered, so the numbers
        after a restart are those of before); its changes recorded unless the book has them."""
        placed = self.evaluator.placed
        changes = [change for reading in readings for change in self.evaluator.observe(reading)]
        if self.evaluator.placed == placed:
            self._record(changes, wall_ms)  # none, but for a re-binding after a master data change
            return
        self.seq += 1
        if changes and self.seq > self.applied:
            self._record(changes, wall_ms, self.seq)

    def set_master(self, master: MasterData, wall_ms: int) -> None:
        """A new revision of master data: alerts of entities that ended (cancelled, moved on) resolve."""
        self._record(self.evaluator.set_master(master), wall_ms)

    def advance(self, wall_ms: int) -> None:
        """Judge silences at the current watermark (a replay's clock tick; the engine's scan is per minute)."""
        self._record(self.evaluator.advance(self.evaluator.watermark_ms), wall_ms)

    def tick(self, wall_ms: int) -> None:
        self.book.save_tracking(self.evaluator.tracking_changes())
        notices: list[Notice] = []
        with self.book.transaction():
            for alert in self.book.unacknowledged():
                notices += self._escalate(alert, wall_ms)
            for alert in self.book.resolved_notices_due(self.evaluator.watermark_ms, wall_ms):
                self.book.mark_resolved_noticed(alert["id"])
                notices += self._tell_those_paged(alert, "resolved", wall_ms)
            self.book.close_resolved(wall_ms - self.close_after_ms, wall_ms)
        self._send(notices)
        self._announce_transitions()

    def resend_unfinished(self) -> int:
        """Notices a crash left without an outcome, sent once more (never a third time); how many."""
        resent = 0
        for row in self.book.unfinished_notices():
            again = not row["resent"] and self.deliverer is not None
            self.book.mark_resent(row["id"], give_up=not again)
            if again:
                self.deliverer.submit(Notice(row["id"], row["alert_id"], row["step"], row["recipient"], row["urls"],
                                             row["title"], row["body"], row["severity"]))  # fmt: skip
                resent += 1
            else:
                log.warning("notice %d of alert %s to %s was in flight at two crashes; not sent a third time",
                            row["id"], row["alert_id"], row["recipient"])  # fmt: skip
        return resent

    def _record(self, changes: list[Change], wall_ms: int, seq: int | None = None) -> None:
        notices: list[Notice] = []
        with self.book.transaction():
            events = [event for change in changes if (event := self.book.apply(change, wall_ms, self.group_window_ms))]
            if seq is not None:
                self.book.set_applied_seq(seq)
            for event in events:
                notices += self._notices_for(event, wall_ms)
        if seq is not None:
            self.applied = seq
        for event in events:
            log.info("%s %s %s: %s", event.what, event.alert["id"], event.alert["rule"], event.alert["detail"])
        self._send(notices)
        if events:
            self._announce_transitions()

    def _notices_for(self, event: Event, wall_ms: int) -> list[Notice]:
        if event.what == "firing":
            return self._escalate(event.alert, wall_ms)
        if event.what == "escalated-severity":  # those paged hear of it; a higher severity may route to more
            return self._tell_those_paged(event.alert, event.what, wall_ms) + self._escalate(event.alert, wall_ms)
        return []  # resolved: told once its quiet period is over (tick); reopened: nothing new to tell

    def _escalate(self, alert: dict, wall_ms: int) -> list[Notice]:
        """Every escalation step of a group's lead that is due and not yet done, unless silenced."""
        policy = self.oncall.policy_for(alert) if self.oncall else None
        if policy is None or self.deliverer is None or alert["status"] != "firing":
            return []
        if alert["group_id"] not in (None, alert["id"]):  # a member: its group's lead is notified
            return []
        due = due_steps(policy, alert["raised_wall_ms"], wall_ms, self.book.escalation_steps_done(alert["id"]))
        if not due or self.book.silenced_by(alert, wall_ms) is not None:
            return []
        notices = []
        for step, level in due:
            self.book.mark_escalated(alert["id"], step)
            for name, contact in self.oncall.recipients(level, wall_ms):
                notices.append(self._notice(alert, "firing", step, name, contact, wall_ms))
        return notices

    def _tell_those_paged(self, alert: dict, what: str, wall_ms: int) -> list[Notice]:
        """Severity rises and resolutions go to everyone the escalation has already reached."""
        policy = self.oncall.policy_for(alert) if self.oncall else None
        if policy is None or self.deliverer is None or alert["raised_wall_ms"] is None:
            return []
        done = self.book.escalation_steps_done(alert["id"])
        told = {
            name: contact
            for step, delay, level in policy.steps()
            if step in done
            for name, contact in self.oncall.recipients(level, alert["raised_wall_ms"] + delay)
        }
        step = RESOLVED_STEP if what == "resolved" else 0
        return [self._notice(alert, what, step, name, contact, wall_ms) for name, contact in told.items()]

    def _notice(self, alert: dict, what: str, step: int, name: str, contact: Contact, wall_ms: int) -> Notice:
        """A notice written for one contact (their zone, a link that acknowledges as them), in the book."""
        link = self.links.url(alert["id"], name) if self.links and what != "resolved" else None
        group = self.book.open_in_group(alert)
        now = self.evaluator.context_now(alert["device"]) if alert["status"] != "resolved" else {}
        title, body = compose(alert, what, Reader(name, ZoneInfo(contact.zone), link), now, group, self.dashboard_url)
        notice_id = self.book.add_notice(alert["id"], step, name, contact.urls, title, body, alert["severity"],
                                         wall_ms)  # fmt: skip
        return Notice(notice_id, alert["id"], step, name, contact.urls, title, body, alert["severity"])

    def _send(self, notices: list[Notice]) -> None:
        for notice in notices:  # written to the book (committed) first: a crash from here on re-sends it
            self.deliverer.submit(notice)

    def _announce_transitions(self) -> None:
        """Announce every alert with transitions the book recorded since the last announcement (the
        engine's and people's alike, in order); pending alerts are not news."""
        if self.announce is None:
            return
        rows = self.book.transitions_after(self._announced)
        if not rows:
            return
        for alert_id in dict.fromkeys(row["alert_id"] for row in rows):
            alert = self.book.get(alert_id)
            if alert is not None and alert["status"] != "pending":
                self.announce(alert)
        self._announced = rows[-1]["rowid"]
        self.book.set_cursor(ANNOUNCED, self._announced)
