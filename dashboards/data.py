"""The dashboard's one data-access layer: cached reads, and the few writes an operator makes.

Pages never open a store or the alert book themselves. Reads are cached for a few seconds (the
live parts refresh on that rhythm); a write clears the cache so the page shows its effect at once.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from alerts.book import AlertBook
from tower.config import load_settings
from tower.timeutil import now_ms

SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2, "info": 3}
REFRESH_S = 5


def _book_path() -> str:
    return str(load_settings().alerts_db)


@st.cache_resource
def _book(path: str) -> AlertBook:
    return AlertBook(path)


def alert_queue(status: str) -> pd.DataFrame:
    """Alerts, most severe and oldest first (status 'open'), or newest first ('all')."""
    return _alert_queue(_book_path(), status)


def alert_detail(alert_id: str) -> tuple[dict, list[dict], list[dict]] | None:
    """The alert with its runbook, its audit trail and its deliveries."""
    return _alert_detail(_book_path(), alert_id)


def act_on_alert(alert_id: str, action: str, by: str, note: str) -> dict:
    """acknowledge | resolve | close, recorded with the operator's name; ValueError says why not."""
    alert = _book(_book_path()).act(alert_id, action, by, note, now_ms())
    _alert_queue.clear()
    _alert_detail.clear()
    return alert


@st.cache_data(ttl=REFRESH_S)
def _alert_queue(path: str, status: str) -> pd.DataFrame:
    rows = _book(path).alerts(status, limit=5000)
    frame = pd.DataFrame(rows, columns=["id", "severity", "status", "rule", "entity", "site", "kind", "opened_ms",
                                        "fired_ms", "acked_by", "detail"])  # fmt: skip
    for column in ("opened_ms", "fired_ms"):
        frame[column.removesuffix("_ms")] = pd.to_datetime(frame[column], unit="ms", utc=True)
    age_ms = now_ms() - frame["fired_ms"].fillna(frame["opened_ms"])
    frame["age_min"] = (age_ms // 60_000).astype("Int64")
    return frame.drop(columns=["opened_ms", "fired_ms"])


@st.cache_data(ttl=REFRESH_S)
def _alert_detail(path: str, alert_id: str) -> tuple[dict, list[dict], list[dict]] | None:
    book = _book(path)
    alert = book.get(alert_id)
    if alert is None:
        return None
    return alert, book.history(alert_id), book.deliveries(alert_id)
