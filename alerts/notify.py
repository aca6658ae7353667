"""Notices for people, and their delivery through apprise (email, Slack, Teams, Telegram, ntfy,
webhooks ... by URL), off the engine's thread, with retries and a delivery log row for every attempt.

A notice is written to the alert book before it is sent and marked done when its delivery has an
outcome; the engine re-sends, once, the notices a crash left without one."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import apprise

from alerts.book import AlertBook
from tower.timeutil import now_ms, parse_moment_ms

log = logging.getLogger("tower.alerts.notify")
RESOLVED_STEP = -1  # the step number of "resolved" notices in the delivery log


@dataclass(frozen=True)
class Notice:
    notice_id: int  # its row in the alert book's notices, written before it is sent
    alert_id: str
    step: int
    recipient: str
    urls: tuple[str, ...]
    title: str
    body: str
    severity: str


@dataclass(frozen=True)
class Reader:
    """Who a notice is written for: the contact's name (whom the acknowledgement link acts as) and zone."""

    name: str
    zone: ZoneInfo
    ack_url: str | None  # the one-click link, when the tower has an API to follow it


def compose(alert: dict, what: str, reader: Reader, now: dict[str, str], group: list[dict],
            dashboard_url: str) -> tuple[str, str]:  # fmt: skip
    """Title and body of a notice: what, where, how bad, since when (in the reader's zone), what to do
    and how to acknowledge; for a resolved alert, how it ended. `now`: the alert's master data context
    as it stands now (latest position, nearest sites); `group`: the other open alerts of its group."""
    context = {**alert["context"], **now}
    label = {"firing": alert["severity"].upper(), "escalated-severity": f"NOW {alert['severity'].upper()}",
             "resolved": "RESOLVED"}.get(what, alert["severity"].upper())  # fmt: skip
    title = f"[{label}] {alert['rule']}: {alert['entity']}"
    when = partial(local_time, zone=reader.zone)
    lines = [f"What: {alert['detail']}", f"About: {_about(alert, context)}"]
    where = _where(context)
    if where:
        lines.append(f"Where: {where}")
    lines.append(f"How bad: {alert['severity']} (rule {alert['rule']})")
    lines.append(f"Since: {when(alert['fired_ms'] or alert['opened_ms'])}")
    if context.get("promised"):
        lines.append(f"Promised: {when(parse_moment_ms(context['promised']))}")
    if what == "resolved":
        lines.insert(0, f"How it ended: {alert['resolution'] or 'resolved'} ({when(alert['resolved_ms'])})")
    else:
        runbook = alert["runbook"]
        lines.append(f"What to do ({runbook['owner']}, respond within {runbook['respond_within'] // 60_000} min):")
        lines += [f"  {n}. {step}" for n, step in enumerate(runbook["steps"], 1)]
    if group:
        shown = ", ".join(f"{a['entity']} since {when(a['fired_ms'])}" for a in group[:10])
        more = f" and {len(group) - 10} more" if len(group) > 10 else ""
        lines.append(f"Same rule, same place ({len(group)} more, not paged separately): {shown}{more}")
    if what != "resolved":
        if reader.ack_url:
            lines.append(f"Acknowledge (as {reader.name}, one click): {reader.ack_url}")
        lines.append(f"Or: tower alerts ack {alert['id']} --by {reader.name}")
    lines.append(f"{dashboard_url.rstrip('/')}/alerts?alert={alert['id']}")
    return title, "\n".join(lines)


def local_time(ms: int, zone: ZoneInfo) -> str:
    """Date, time and zone, e.g. 2026-11-23 14:05 CET."""
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M %Z")


def _about(alert: dict, context: dict[str, str]) -> str:
    parts = [f"{alert['kind']} {alert['entity']} (device {alert['device']})"]
    if context.get("shipment"):
        parts.append(f"order {context.get('order') or '-'} for {context.get('customer')}, {context.get('cargo')}, "
                     f"{context.get('origin')} to {context.get('destination')}")  # fmt: skip
    elif context.get("site"):
        parts.append(f"at {context['site']}")
    return ", ".join(parts)


def _where(context: dict[str, str]) -> str:
    """The latest position and the nearest named place; a shipment's destination and customer."""
    parts = []
    if context.get("position"):
        near = f", near {context['nearest_site']}" if context.get("nearest_site") else ""
        parts.append(f"{context['position']}{near}")
    if context.get("shipment"):
        parts.append(f"bound for {context.get('customer')} at {context.get('destination')}")
    elif context.get("site") and not context.get("position"):
        parts.append(context["site"])
    return "; ".join(parts)


def send(urls: tuple[str, ...], title: str, body: str, severity: str) -> tuple[bool, str]:
    """One attempt through apprise; (delivered, what went wrong)."""
    problems: list[str] = []
    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(os.path.expandvars(url)):
            problems.append(f"not an apprise URL: {service(url)}://...")
    if problems:
        return False, "; ".join(problems)
    kind = apprise.NotifyType.FAILURE if severity in ("critical", "major") else apprise.NotifyType.WARNING
    result = notifier.notify(
        body=body,
        title=title,
        notify_type=kind,
        log_callback=lambda entry, plugin=None: (
            problems.append(entry.message) if entry.level in ("WARNING", "ERROR") else None
        ),
    )
    return bool(result), "; ".join(problems)[:500]


def service(url: str) -> str:
    """What a URL is without its secrets: its scheme."""
    return url.partition("://")[0]


class Deliverer:
    """Worker threads sending notices; `attempts` tries each with doubling back-off, all logged.
    The workers share one connection to the alert book, opened here: opening one per thread raced
    with the other openers over switching the file to WAL ("database is locked")."""

    def __init__(self, book_path: Path | str, attempts: int = 3, backoff_s: float = 1.0, workers: int = 2) -> None:
        self.attempts, self.backoff_s = attempts, backoff_s
        self._queue: queue.Queue[Notice | None] = queue.Queue()
        self._book = AlertBook(book_path)
        self._log_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"deliver-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, notice: Notice) -> None:
        self._queue.put(notice)

    def wait_idle(self) -> None:
        self._queue.join()

    def stop(self) -> None:
        self._queue.join()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._book.close()

    def _work(self) -> None:
        while (notice := self._queue.get()) is not None:
            try:
                self._deliver(notice)
            except Exception:  # a bug in one delivery must not kill the worker
                log.exception("delivering %s to %s failed", notice.alert_id, notice.recipient)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _deliver(self, notice: Notice) -> None:
        services = ",".join(sorted({service(url) for url in notice.urls}))
        for attempt in range(1, self.attempts + 1):
            ok, error = send(notice.urls, notice.title, notice.body, notice.severity)
            last = ok or attempt == self.attempts
            with self._log_lock, self._book.transaction():
                self._book.log_delivery(notice.alert_id, now_ms(), notice.step, notice.recipient, services, attempt,
                                        ok, error)  # fmt: skip
                if last:
                    self._book.finish_notice(notice.notice_id)
            if ok:
                return
            log.warning("delivery of %s to %s failed (attempt %d/%d): %s", notice.alert_id, notice.recipient,
                        attempt, self.attempts, error)  # fmt: skip
            if attempt < self.attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
