"""The alert book: every alert's lifecycle, audit trail, escalation steps, deliveries and silences,
and where each shipment stands as the engine sees it (`tracking`: newest position, ETA band,
minutes out of range, arrival), in SQLite (`$TOWER_DATA_DIR/alerts.db`), shared by the engine, the
CLI, the API and the dashboard.

Lifecycle: pending -> firing -> acknowledged -> resolved -> closed. One open alert (pending,
firing or acknowledged) per (rule, entity); a change for it updates that alert, and a higher
severity is recorded and announced. A pending alert whose condition clears before its hold leaves
no record. The engine's transitions are stamped with the data's event time; people's with the
wall clock. Every transition is a row in `transitions` (time, status, actor, note).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from alerts.conditions import State
from alerts.evaluate import Change, Tracking
from tower.domain import OPEN_STATUSES, Severity

ENGINE = "engine"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, entity TEXT NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL,
    site TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL,
    opened_ms INTEGER NOT NULL, fired_ms INTEGER, raised_wall_ms INTEGER, acked_ms INTEGER, acked_by TEXT,
    resolved_ms INTEGER, resolved_wall_ms INTEGER, closed_ms INTEGER,
    value REAL, detail TEXT NOT NULL, runbook TEXT NOT NULL, context TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_alert ON alerts (rule, entity)
    WHERE status IN ('pending', 'firing', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status);
CREATE TABLE IF NOT EXISTS transitions (
    alert_id TEXT NOT NULL, at_ms INTEGER NOT NULL, status TEXT NOT NULL, actor TEXT NOT NULL, note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_alert ON transitions (alert_id);
CREATE TABLE IF NOT EXISTS escalations (alert_id TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (alert_id, step));
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL, at_ms INTEGER NOT NULL, step INTEGER NOT NULL, recipient TEXT NOT NULL,
    service TEXT NOT NULL, attempt INTEGER NOT NULL, ok INTEGER NOT NULL, error TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tracking (
    shipment_id TEXT PRIMARY KEY, tracker TEXT NOT NULL, last_ms INTEGER NOT NULL, lat REAL, lon REAL, temp_c REAL,
    speed_kmh REAL, remaining_m REAL, arrived_ms INTEGER, eta_early_ms INTEGER, eta_ms INTEGER, eta_late_ms INTEGER,
    excursion_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY, matcher TEXT NOT NULL, starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL, note TEXT NOT NULL
);
"""
SILENCE_KEYS = ("rule", "entity", "device", "site", "kind", "severity")


@dataclass(frozen=True)
class Event:
    """Something the engine announces: an alert (as stored now) and what happened to it."""

    alert: dict
    what: str  # firing | escalated-severity | resolved


class AlertBook:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        if "context" not in {row[1] for row in self.db.execute("PRAGMA table_info(alerts)")}:
            self.db.execute("ALTER TABLE alerts ADD COLUMN context TEXT NOT NULL DEFAULT '{}'")  # books before 0.2

    def close(self) -> None:
        self.db.close()

    # -- the engine's side ------------------------------------------------------------------------

    def apply(self, change: Change, wall_ms: int) -> Event | None:
        """Record a rule's state change; the event to announce, if any."""
        current = self._open(change.rule.id, change.entity_id)
        severity = change.severity.label
        with self._tx():
            if change.state is State.PENDING:
                if current is None:
                    self._insert(change, "pending", None, None)
                return None
            if change.state is State.FIRING:
                if current is None:
                    alert_id = self._insert(change, "firing", change.at_ms, wall_ms)
                    return Event(self.get(alert_id), "firing")
                if current["status"] == "pending":
                    self.db.execute(
                        "UPDATE alerts SET status='firing', fired_ms=?, raised_wall_ms=?, severity=?, value=?, "
                        "detail=? WHERE id=?",
                        (change.at_ms, wall_ms, severity, change.value, change.detail, current["id"]),
                    )
                    self._transition(current["id"], change.at_ms, "firing", ENGINE, change.detail)
                    return Event(self.get(current["id"]), "firing")
                risen = Severity.of(current["severity"]) < change.severity
                self.db.execute(
                    "UPDATE alerts SET severity=?, value=?, detail=? WHERE id=?",
                    (severity if risen else current["severity"], change.value, change.detail, current["id"]),
                )
                if risen:
                    note = f"severity {current['severity']} -> {severity}: {change.detail}"
                    self._transition(current["id"], change.at_ms, current["status"], ENGINE, note)
                    return Event(self.get(current["id"]), "escalated-severity")
                return None
            if current is None:
                return None
            if current["status"] == "pending":  # cleared before its hold: never an alert
                self.db.execute("DELETE FROM alerts WHERE id=?", (current["id"],))
                self.db.execute("DELETE FROM transitions WHERE alert_id=?", (current["id"],))
                return None
            self.db.execute(
                "UPDATE alerts SET status='resolved', resolved_ms=?, resolved_wall_ms=?, value=?, detail=? WHERE id=?",
                (change.at_ms, wall_ms, change.value, change.detail, current["id"]),
            )
            self._transition(current["id"], change.at_ms, "resolved", ENGINE, f"condition cleared: {change.detail}")
            return Event(self.get(current["id"]), "resolved")

    def close_resolved(self, before_wall_ms: int, wall_ms: int) -> int:
        """Close alerts resolved (on the wall clock) before the given moment; how many."""
        ids = [row[0] for row in self.db.execute(
            "SELECT id FROM alerts WHERE status='resolved' AND resolved_wall_ms < ?", (before_wall_ms,))]  # fmt: skip
        with self._tx():
            for alert_id in ids:
                self.db.execute("UPDATE alerts SET status='closed', closed_ms=? WHERE id=?", (wall_ms, alert_id))
                self._transition(alert_id, wall_ms, "closed", ENGINE, "resolved long enough")
        return len(ids)

    def unacknowledged(self) -> list[dict]:
        return self._alerts("SELECT * FROM alerts WHERE status='firing' ORDER BY raised_wall_ms")

    def escalation_steps_done(self, alert_id: str) -> set[int]:
        return {row[0] for row in self.db.execute("SELECT step FROM escalations WHERE alert_id=?", (alert_id,))}

    def mark_escalated(self, alert_id: str, step: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO escalations VALUES (?, ?)", (alert_id, step))

    def log_delivery(self, alert_id: str, at_ms: int, step: int, recipient: str, service: str, attempt: int,
                     ok: bool, error: str) -> None:  # fmt: skip
        self.db.execute(
            "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, at_ms, step, recipient, service, attempt, int(ok), error),
        )

    def save_tracking(self, rows: list[Tracking]) -> None:
        if rows:
            with self._tx():
                self.db.executemany(f"INSERT OR REPLACE INTO tracking VALUES ({', '.join('?' * 13)})",
                                    [astuple(row) for row in rows])  # fmt: skip

    def tracking(self) -> dict[str, Tracking]:
        """Every shipment the engine has seen a reading of, by shipment id: where it stands."""
        return {row["shipment_id"]: Tracking(**row) for row in self._rows("SELECT * FROM tracking")}

    # -- people's side ----------------------------------------------------------------------------

    def act(self, alert_id: str, action: str, by: str, note: str, wall_ms: int) -> dict:
        """A person's action by name (acknowledge, resolve, close), as the CLI and dashboard offer it."""
        method = {"acknowledge": self.acknowledge, "resolve": self.resolve, "close": self.close_alert}[action]
        return method(alert_id, by, note, wall_ms)

    def acknowledge(self, alert_id: str, by: str, note: str, wall_ms: int) -> dict:
        alert = self._must(alert_id, ("pending", "firing"), "acknowledge")
        with self._tx():
            self.db.execute(
                "UPDATE alerts SET status='acknowledged', acked_ms=?, acked_by=? WHERE id=?", (wall_ms, by, alert_id)
            )
            self._transition(alert_id, wall_ms, "acknowledged", by, note)
        return self.get(alert["id"])

    def resolve(self, alert_id: str, by: str, note: str, wall_ms: int) -> dict:
        self._must(alert_id, OPEN_STATUSES, "resolve")
        with self._tx():
            self.db.execute(
                "UPDATE alerts SET status='resolved', resolved_ms=?, resolved_wall_ms=? WHERE id=?",
                (wall_ms, wall_ms, alert_id),
            )
            self._transition(alert_id, wall_ms, "resolved", by, note)
        return self.get(alert_id)

    def close_alert(self, alert_id: str, by: str, note: str, wall_ms: int) -> dict:
        self._must(alert_id, ("resolved",), "close")
        with self._tx():
            self.db.execute("UPDATE alerts SET status='closed', closed_ms=? WHERE id=?", (wall_ms, alert_id))
            self._transition(alert_id, wall_ms, "closed", by, note)
        return self.get(alert_id)

    def silence(self, matcher: dict[str, str], starts_ms: int, ends_ms: int, by: str, note: str) -> int:
        unknown = set(matcher) - set(SILENCE_KEYS)
        if unknown or not matcher:
            raise ValueError(f"silence matchers are {', '.join(SILENCE_KEYS)} (e.g. site=dc-venlo), not {unknown}")
        if ends_ms <= starts_ms:
            raise ValueError("a silence must end after it starts")
        cursor = self.db.execute(
            "INSERT INTO silences (matcher, starts_ms, ends_ms, created_by, note) VALUES (?, ?, ?, ?, ?)",
            (json.dumps(matcher, sort_keys=True), starts_ms, ends_ms, by, note),
        )
        return cursor.lastrowid

    def silenced_by(self, alert: dict, wall_ms: int) -> int | None:
        """The id of an active silence matching the alert, if any."""
        for row in self.db.execute("SELECT id, matcher FROM silences WHERE starts_ms <= ? AND ends_ms > ?",
                                   (wall_ms, wall_ms)):  # fmt: skip
            matcher = json.loads(row["matcher"])
            if all(fnmatchcase(str(alert[key]), pattern) for key, pattern in matcher.items()):
                return row["id"]
        return None

    # -- reading ----------------------------------------------------------------------------------

    def get(self, alert_id: str) -> dict | None:
        rows = self._alerts("SELECT * FROM alerts WHERE id=?", (alert_id,))
        return rows[0] if rows else None

    def alerts(self, status: str = "open", limit: int = 1000) -> list[dict]:
        """Open alerts by severity then age, or all alerts newest first."""
        if status == "open":
            return self._alerts(
                "SELECT * FROM alerts WHERE status IN ('pending', 'firing', 'acknowledged') "
                "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'minor' THEN 2 ELSE 3 END, "
                "opened_ms LIMIT ?",
                (limit,),
            )
        return self._alerts("SELECT * FROM alerts ORDER BY opened_ms DESC LIMIT ?", (limit,))

    def alerts_since(self, since_ms: int) -> list[dict]:
        """Alerts open now, or opened or resolved at or after since (event time), oldest first."""
        return self._alerts(
            "SELECT * FROM alerts WHERE status IN ('pending', 'firing', 'acknowledged') OR opened_ms >= ? "
            "OR resolved_ms >= ? ORDER BY opened_ms",
            (since_ms, since_ms),
        )

    def history(self, alert_id: str) -> list[dict]:
        return self._rows("SELECT * FROM transitions WHERE alert_id=? ORDER BY rowid", (alert_id,))

    def deliveries(self, alert_id: str | None = None) -> list[dict]:
        if alert_id is None:
            return self._rows("SELECT * FROM deliveries ORDER BY rowid")
        return self._rows("SELECT * FROM deliveries WHERE alert_id=? ORDER BY rowid", (alert_id,))

    # -- internals --------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _open(self, rule: str, entity: str) -> dict | None:
        rows = self._alerts(
            "SELECT * FROM alerts WHERE rule=? AND entity=? AND status IN ('pending', 'firing', 'acknowledged')",
            (rule, entity),
        )
        return rows[0] if rows else None

    def _insert(self, change: Change, status: str, fired_ms: int | None, wall_ms: int | None) -> str:
        alert_id = hashlib.sha1(f"{change.rule.id}|{change.entity_id}|{change.at_ms}".encode()).hexdigest()[:12]
        runbook = change.rule.runbook.rendered(change.context).model_dump(mode="json")
        self.db.execute(
            "INSERT INTO alerts (id, rule, entity, device, kind, site, severity, status, opened_ms, fired_ms, "
            "raised_wall_ms, value, detail, runbook, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, change.rule.id, change.entity_id, change.device_id, str(change.kind), change.site,
             change.severity.label, status, change.at_ms, fired_ms, wall_ms, change.value, change.detail,
             json.dumps(runbook), json.dumps(change.context)),
        )  # fmt: skip
        self._transition(alert_id, change.at_ms, status, ENGINE, change.detail)
        return alert_id

    def _transition(self, alert_id: str, at_ms: int, status: str, actor: str, note: str) -> None:
        self.db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?, ?)", (alert_id, at_ms, status, actor, note))

    def _must(self, alert_id: str, statuses: tuple[str, ...], action: str) -> dict:
        alert = self.get(alert_id)
        if alert is None:
            raise ValueError(f"no alert '{alert_id}' (see 'tower alerts list --status all')")
        if alert["status"] not in statuses:
            raise ValueError(f"alert {alert_id} is {alert['status']}; only {' or '.join(statuses)} alerts can be "
                             f"{action}d")  # fmt: skip
        return alert

    def _alerts(self, sql: str, params: tuple = ()) -> list[dict]:
        """Alert rows with the runbook and context as dicts."""
        rows = self._rows(sql, params)
        for row in rows:
            row["runbook"], row["context"] = json.loads(row["runbook"]), json.loads(row["context"])
        return rows

    def _rows(self, sql: str, params: tuple = ()) -> list[dict]:
        return [dict(row) for row in self.db.execute(sql, params)]
