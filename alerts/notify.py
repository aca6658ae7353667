"""Delivery to people through apprise (email, Slack, Teams, Telegram, ntfy, webhooks ... by URL),
off the engine's thread, with retries and a delivery log row for every attempt."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import apprise

from alerts.book import AlertBook
from tower.timeutil import now_ms, rfc3339

log = logging.getLogger("tower.alerts.notify")
RESOLVED_STEP = -1  # the step number of "resolved" notices in the delivery log


@dataclass(frozen=True)
class Notice:
    alert_id: str
    step: int
    recipient: str
    urls: tuple[str, ...]
    title: str
    body: str
    severity: str


def compose(alert: dict, what: str, dashboard_url: str) -> tuple[str, str]:
    """Title and body of a notification: what, where, since when, the runbook and how to acknowledge."""
    runbook = alert["runbook"]
    label = {"firing": alert["severity"].upper(), "escalated-severity": f"NOW {alert['severity'].upper()}",
             "resolved": "RESOLVED"}.get(what, alert["severity"].upper())  # fmt: skip
    title = f"[{label}] {alert['rule']}: {alert['entity']}"
    since = rfc3339(alert["fired_ms"] or alert["opened_ms"])
    lines = [
        alert["detail"],
        f"{alert['kind']} {alert['entity']} (device {alert['device']})"
        + (f" at {alert['site']}" if alert["site"] else ""),
        f"since {since}",
    ]
    if what != "resolved":
        lines += [f"Owner: {runbook['owner']}, respond within {runbook['respond_within'] // 60_000} min"]
        lines += [f"{n}. {step}" for n, step in enumerate(runbook["steps"], 1)]
        lines += [f"Acknowledge: tower alerts ack {alert['id']} --by YOUR-NAME"]
    lines += [f"{dashboard_url.rstrip('/')}/alerts?alert={alert['id']}"]
    return title, "\n".join(lines)


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
            with self._log_lock:
                self._book.log_delivery(notice.alert_id, now_ms(), notice.step, notice.recipient, services, attempt,
                                        ok, error)  # fmt: skip
            if ok:
                return
            log.warning("delivery of %s to %s failed (attempt %d/%d): %s", notice.alert_id, notice.recipient,
                        attempt, self.attempts, error)  # fmt: skip
            if attempt < self.attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
