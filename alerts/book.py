"""The alert book: every alert's lifecycle, audit trail, escalation steps, notices and their
deliveries, silences, and where each shipment stands as the engine sees it (`tracking`: newest
position, ETA band, minutes out of range, arrival), in SQLite (`$TOWER_DATA_DIR/alerts.db`), shared
by the engine, the CLI, the API and the dashboard.

Lifecycle: pending -> firing -> acknowledged -> resolved -> closed. One open alert (pending,
firing or acknowledged) per (rule, entity); a change for it updates that alert, and a higher
severity is recorded and announced. A pending alert whose condition clears before its hold leaves
no record. A rule that fires again within its `quiet` after the engine resolved it reopens the
same alert (flapping). The engine's transitions are stamped with the data's event time; people's
with the wall clock. Every transition is a row in `transitions` (time, status, actor, note, via).

People act through `act` only (the CLI, the dashboard, the HTTP API, the one-click link and the
engine for MQTT acknowledgements), so every action is checked, audited and later announced alike.
Every write reads the alert inside its transaction and updates it with a compare-and-set on its
`revision`, so the engine never overwrites a person's action nor a person the engine's.

Grouping: an alert that fires while an alert of the same rule at the same place (a shipment's
lane, else the entity's site, else the entity) has been firing for less than the group window
joins that alert's group (`group_id` = the lead's id). Only leads are notified; their notices list
the members; acknowledging a lead acknowledges its firing members; a lead that resolves hands the
group to its oldest open member.
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
from alerts.schema import create_tables
from tower import sqlitedb
from tower.domain import OPEN_STATUSES, Severity

ENGINE = "engine"
ACTIONS = {"acknowledge": ("pending", "firing"), "resolve": OPEN_STATUSES, "close": ("resolved",)}
NO_NOTICE, NOTICE_OWED, NOTICE_SENT = 0, 1, 2  # alerts.resolved_notice: the resolved notice to those told

SILENCE_KEYS = ("rule", "entity", "device", "site", "kind", "severity")


@dataclass(frozen=True)
class Event:
    """Something the engine announces: an alert (as stored now) and what happened to it."""

    alert: dict
    what: str  # firing | escalated-severity | resolved | reopened


class AlertBook:
    def __init__(self, path: Path | str) -> None:
        self.db = sqlitedb.connect(path, synchronous="NORMAL")
        self.db.row_factory = sqlite3.Row
        create_tables(self.db)
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE: reads inside see what the write is based on); nests."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with sqlitedb.write_transaction(self.db):
                yield
        finally:
            self._depth = 0

    # -- the engine's side ------------------------------------------------------------------------

    def apply(self, change: Change, wall_ms: int, group_window_ms: int = 0) -> Event | None:
        """Record a rule's state change; the event to announce, if any."""
        with self.transaction():
            current = self._open(change.rule.id, change.entity_id)
            if change.refresh:
                if current is not None and current["fired_ms"] is not None:  # not a revision: nothing to decide on
                    self.db.execute("UPDATE alerts SET value=?, detail=? WHERE id=?",
                                    (change.value, change.detail, current["id"]))  # fmt: skip
                return None
            if change.state is State.PENDING:
                if current is None and self._flapping(change) is None:
                    self._insert(change, "pending", None, group_window_ms)
                return None
            if change.state is State.FIRING:
                return self._fire(change, current, wall_ms, group_window_ms)
            if current is None:
                return None
            if current["status"] == "pending":  # cleared before its hold: never an alert
                self.db.execute("DELETE FROM alerts WHERE id=?", (current["id"],))
                self.db.execute("DELETE FROM transitions WHERE alert_id=?", (current["id"],))
                return None
            cleared = f"condition cleared: {change.detail}" if change.detail else "condition cleared"
            resolution = change.resolution or cleared
            self._resolve(current, change.at_ms, wall_ms, ENGINE, resolution, resolution)
            return Event(self.get(current["id"]), "resolved")

    def _fire(self, change: Change, current: dict | None, wall_ms: int, group_window_ms: int) -> Event | None:
        severity = change.severity.label
        if current is None:
            flapping = self._flapping(change)
            if flapping is not None:
                return self._reopen(flapping, change)
            alert_id = self._insert(change, "firing", wall_ms, group_window_ms)
            return Event(self.get(alert_id), "firing") if alert_id else None
        if current["fired_ms"] is None:  # pending until now (a person may have acknowledged it already)
            status = "firing" if current["status"] == "pending" else current["status"]
            group = self._group_for(current["group_key"], change.at_ms, group_window_ms, current["id"])
            self._update(current, status=status, fired_ms=change.at_ms, raised_wall_ms=wall_ms, severity=severity,
                         value=change.value, detail=change.detail, group_id=group)  # fmt: skip
            note = change.detail if status == "firing" else f"fired: {change.detail}"
            self._transition(current["id"], change.at_ms, status, ENGINE, note)
            return Event(self.get(current["id"]), "firing")
        risen = Severity.of(current["severity"]) < change.severity
        self._update(
            current, severity=severity if risen else current["severity"], value=change.value, detail=change.detail
        )
        if risen:
            note = f"severity {current['severity']} -> {severity}: {change.detail}"
            self._transition(current["id"], change.at_ms, current["status"], ENGINE, note)
            return Event(self.get(current["id"]), "escalated-severity")
        return None

    def applied_seq(self) -> int:
        """The last input (numbered by the engine) whose changes are in the book."""
        row = self.db.execute("SELECT value FROM engine_state WHERE key='applied_seq'").fetchone()
        return row[0] if row else 0

    def set_applied_seq(self, seq: int) -> None:
        self.set_cursor("applied_seq", seq)

    def cursor(self, key: str) -> int | None:
        row = self.db.execute("SELECT value FROM engine_state WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, key: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO engine_state VALUES (?, ?)", (key, value))

    def close_resolved(self, before_wall_ms: int, wall_ms: int) -> int:
        """Close alerts resolved (on the wall clock) before the given moment; how many."""
        with self.transaction():
            rows = self._alerts("SELECT * FROM alerts WHERE status='resolved' AND resolved_wall_ms < ?",
                                (before_wall_ms,))  # fmt: skip
            for alert in rows:
                self._update(alert, status="closed", closed_ms=wall_ms)
                self._transition(alert["id"], wall_ms, "closed", ENGINE, "resolved long enough")
        return len(rows)

    def unacknowledged(self) -> list[dict]:
        """Firing alerts that lead their group (members are notified through their lead)."""
        return self._alerts("SELECT * FROM alerts WHERE status='firing' AND (group_id IS NULL OR group_id=id) "
                            "ORDER BY raised_wall_ms")  # fmt: skip

    def members(self, alert: dict) -> list[dict]:
        """The other open alerts of the alert's group, oldest first."""
        return self._alerts("SELECT * FROM alerts WHERE group_id=? AND id<>? AND status IN ('firing', 'acknowledged')"
                            " ORDER BY fired_ms", (alert["group_id"] or alert["id"], alert["id"]))  # fmt: skip

    def open_in_group(self, alert: dict) -> list[dict]:
        """The other open alerts of the same rule at the same place that fired within its group (or,
        for a resolved lead, that still are open): what its notices list."""
        if alert["group_id"] in (None, alert["id"]) and alert["status"] in ("firing", "acknowledged"):
            return self.members(alert)
        if alert["status"] in ("resolved", "closed") and alert["group_id"] == alert["id"]:
            return self._alerts("SELECT * FROM alerts WHERE group_key=? AND id<>? AND status IN "
                                "('firing', 'acknowledged') AND group_id IS NOT NULL ORDER BY fired_ms",
                                (alert["group_key"], alert["id"]))  # fmt: skip
        return []

    def escalation_steps_done(self, alert_id: str) -> set[int]:
        return {row[0] for row in self.db.execute("SELECT step FROM escalations WHERE alert_id=?", (alert_id,))}

    def mark_escalated(self, alert_id: str, step: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO escalations VALUES (?, ?)", (alert_id, step))

    def resolved_notices_due(self, watermark_ms: int, wall_ms: int) -> list[dict]:
        """Resolved alerts whose notice to those told is due: at once when a person resolved it; when
        the engine did, once it has stayed resolved for the rule's quiet period (event time or wall clock)."""
        return self._alerts(
            "SELECT * FROM alerts WHERE resolved_notice=? AND (resolved_by<>? OR resolved_ms + quiet_ms <= ? "
            "OR resolved_wall_ms + quiet_ms <= ?) ORDER BY resolved_wall_ms",
            (NOTICE_OWED, ENGINE, watermark_ms, wall_ms),
        )

    def mark_resolved_noticed(self, alert_id: str) -> None:
        self.db.execute("UPDATE alerts SET resolved_notice=? WHERE id=?", (NOTICE_SENT, alert_id))

    def transitions_after(self, rowid: int) -> list[dict]:
        """Transitions recorded after the given row (for announcing), oldest first."""
        return self._rows("SELECT rowid, * FROM transitions WHERE rowid > ? ORDER BY rowid", (rowid,))

    def last_transition(self) -> int:
        return self.db.execute("SELECT coalesce(max(rowid), 0) FROM transitions").fetchone()[0]

    # -- notices: written before they are sent, so one in flight at a crash is sent again ----------

    def add_notice(self, alert_id: str, step: int, recipient: str, urls: tuple[str, ...], title: str, body: str,
                   severity: str, wall_ms: int) -> int:  # fmt: skip
        cursor = self.db.execute(
            "INSERT INTO notices (alert_id, step, recipient, urls, title, body, severity, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, step, recipient, json.dumps(urls), title, body, severity, wall_ms),
        )
        return cursor.lastrowid

    def finish_notice(self, notice_id: int) -> None:
        """Its delivery has an outcome (delivered, or failed after every attempt)."""
        self.db.execute("UPDATE notices SET done=1 WHERE id=?", (notice_id,))

    def unfinished_notices(self) -> list[dict]:
        rows = self._rows("SELECT * FROM notices WHERE done=0 ORDER BY id")
        for row in rows:
            row["urls"] = tuple(json.loads(row["urls"]))
        return rows

    def mark_resent(self, notice_id: int, give_up: bool) -> None:
        self.db.execute("UPDATE notices SET resent=1, done=? WHERE id=?", (int(give_up), notice_id))

    def log_delivery(self, alert_id: str, at_ms: int, step: int, recipient: str, service: str, attempt: int,
                     ok: bool, error: str) -> None:  # fmt: skip
        self.db.execute(
            "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, at_ms, step, recipient, service, attempt, int(ok), error),
        )

    def save_tracking(self, rows: list[Tracking]) -> None:
        if rows:
            with self.transaction():
                self.db.executemany(f"INSERT OR REPLACE INTO tracking VALUES ({', '.join('?' * 13)})",
                                    [astuple(row) for row in rows])  # fmt: skip

    def tracking(self) -> dict[str, Tracking]:
        """Every shipment the engine has seen a reading of, by shipment id: where it stands."""
        return {row["shipment_id"]: Tracking(**row) for row in self._rows("SELECT * FROM tracking")}

    # -- people's side ----------------------------------------------------------------------------

    def act(self, alert_id: str, action: str, by: str, note: str, wall_ms: int, *, revision: int | None = None,
            via: str = "") -> dict:  # fmt: skip
        """A person's action (acknowledge, resolve, close): the one way every channel acts (`via`: cli,
        dashboard, api, mqtt, link). With `revision`, only if the alert is still as the person saw it."""
        if action not in ACTIONS:
            raise ValueError(f"'{action}' is not an action; use {', '.join(ACTIONS)}")
        with self.transaction():
            alert = self._must(alert_id, ACTIONS[action], action)
            if revision is not None and alert["revision"] != revision:
                raise ValueError(f"alert {alert_id} changed meanwhile ({alert['status']} now); look again and retry")
            if action == "acknowledge":
                self._acknowledge(alert, by, note, wall_ms, via)
                if alert["group_id"] in (None, alert_id):  # a lead: its group is taken care of
                    for member in self.members(alert):
                        if member["status"] == "firing":
                            self._acknowledge(member, by, f"with its group's lead {alert_id}", wall_ms, via)
            elif action == "resolve":
                how = f"resolved by {by}" + (f": {note}" if note else "")
                self._resolve(alert, wall_ms, wall_ms, by, how, note, via)
            else:
                self._update(alert, status="closed", closed_ms=wall_ms)
                self._transition(alert_id, wall_ms, "closed", by, note, via)
        return self.get(alert_id)

    def silence(self, matcher: dict[str, str], starts_ms: int, ends_ms: int, by: str, note: str) -> int:
        unknown = set(matcher) - set(SILENCE_KEYS)
        if unknown or not matcher:
            raise ValueError(f"silence matchers are {', '.join(SILENCE_KEYS)} (e.g. site=SITE_ID), not {unknown}")
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

    def _open(self, rule: str, entity: str) -> dict | None:
        rows = self._alerts(
            "SELECT * FROM alerts WHERE rule=? AND entity=? AND status IN ('pending', 'firing', 'acknowledged')",
            (rule, entity),
        )
        return rows[0] if rows else None

    def _flapping(self, change: Change) -> dict | None:
        """The alert of this rule and entity the engine resolved less than the rule's quiet ago, if
        its resolved notice has not gone out: firing again reopens it instead of paging anew."""
        rows = self._alerts(
            "SELECT * FROM alerts WHERE rule=? AND entity=? AND status='resolved' AND resolved_by=? "
            "AND resolved_notice<>? AND resolved_ms <= ? AND resolved_ms + quiet_ms > ? "
            "ORDER BY resolved_ms DESC LIMIT 1",
            (change.rule.id, change.entity_id, ENGINE, NOTICE_SENT, change.at_ms, change.at_ms),
        )
        return rows[0] if rows else None

    def _reopen(self, alert: dict, change: Change) -> Event:
        status = "acknowledged" if alert["acked_by"] else "firing"
        risen = Severity.of(alert["severity"]) < change.severity
        self._update(alert, status=status, resolved_ms=None, resolved_wall_ms=None, resolution="", resolved_by=None,
                     resolved_notice=NO_NOTICE, severity=max(Severity.of(alert["severity"]), change.severity).label,
                     value=change.value, detail=change.detail)  # fmt: skip
        after = (change.at_ms - alert["resolved_ms"]) // 60_000
        self._transition(alert["id"], change.at_ms, status, ENGINE,
                         f"firing again {after} min after it cleared: {change.detail}")  # fmt: skip
        return Event(self.get(alert["id"]), "escalated-severity" if risen else "reopened")

    def _resolve(self, alert: dict, at_ms: int, wall_ms: int, by: str, resolution: str, note: str,
                 via: str = "") -> None:  # fmt: skip
        told = bool(self.escalation_steps_done(alert["id"]))
        self._update(alert, status="resolved", resolved_ms=at_ms, resolved_wall_ms=wall_ms, resolution=resolution,
                     resolved_by=by, resolved_notice=NOTICE_OWED if told else NO_NOTICE)  # fmt: skip
        self._transition(alert["id"], at_ms, "resolved", by, note, via)
        members = self.members(alert) if alert["group_id"] == alert["id"] else []
        if members:  # the group goes on under its oldest open member, as far escalated as it was
            lead = members[0]["id"]
            self.db.execute("UPDATE alerts SET group_id=?, revision=revision+1 WHERE group_id=? AND id<>?",
                            (lead, alert["id"], alert["id"]))  # fmt: skip
            self.db.execute("INSERT OR IGNORE INTO escalations SELECT ?, step FROM escalations WHERE alert_id=?",
                            (lead, alert["id"]))  # fmt: skip

    def _acknowledge(self, alert: dict, by: str, note: str, wall_ms: int, via: str) -> None:
        self._update(alert, status="acknowledged", acked_ms=wall_ms, acked_by=by)
        self._transition(alert["id"], wall_ms, "acknowledged", by, note, via)

    def _group_for(self, key: str, fired_ms: int, window_ms: int, alert_id: str) -> str:
        """The lead of the open group this alert joins, or the alert itself."""
        if window_ms <= 0:
            return alert_id
        row = self.db.execute(
            "SELECT id FROM alerts WHERE group_key=? AND group_id=id AND id<>? AND status IN ('firing', 'acknowledged')"
            " AND fired_ms >= ? ORDER BY fired_ms LIMIT 1",
            (key, alert_id, fired_ms - window_ms),
        ).fetchone()
        return row[0] if row else alert_id

    def _insert(self, change: Change, status: str, raised_wall_ms: int | None, group_window_ms: int) -> str | None:
        """A new alert; None if this very change was recorded before (an input replayed after a restart)."""
        alert_id = hashlib.sha1(f"{change.rule.id}|{change.entity_id}|{change.at_ms}".encode()).hexdigest()[:12]
        if self.db.execute("SELECT 1 FROM alerts WHERE id=?", (alert_id,)).fetchone():
            return None
        runbook = change.rule.runbook.rendered(change.context).model_dump(mode="json")
        place = change.context.get("lane") or change.site or change.entity_id
        key = f"{change.rule.id}|{place}"
        firing = status == "firing"
        group = self._group_for(key, change.at_ms, group_window_ms, alert_id) if firing else None
        self.db.execute(
            "INSERT INTO alerts (id, rule, entity, device, kind, site, severity, status, opened_ms, fired_ms, "
            "raised_wall_ms, value, detail, runbook, context, group_id, group_key, quiet_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, change.rule.id, change.entity_id, change.device_id, str(change.kind), change.site,
             change.severity.label, status, change.at_ms, change.at_ms if firing else None, raised_wall_ms,
             change.value, change.detail, json.dumps(runbook), json.dumps(change.context), group, key,
             change.rule.quiet),
        )  # fmt: skip
        self._transition(alert_id, change.at_ms, status, ENGINE, change.detail)
        return alert_id

    def _update(self, alert: dict, **columns: object) -> None:
        """Compare-and-set on the alert's revision: a write based on a stale read fails."""
        assignments = ", ".join(f"{name}=?" for name in columns)
        cursor = self.db.execute(f"UPDATE alerts SET {assignments}, revision=revision+1 WHERE id=? AND revision=?",
                                 (*columns.values(), alert["id"], alert["revision"]))  # fmt: skip
        if cursor.rowcount != 1:
            raise ValueError(f"alert {alert['id']} changed meanwhile; look again and retry")

    def _transition(self, alert_id: str, at_ms: int, status: str, actor: str, note: str, via: str = "") -> None:
        self.db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?, ?, ?)", (alert_id, at_ms, status, actor, note,
                                                                            via))  # fmt: skip

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
