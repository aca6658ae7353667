"""The alert book's tables (SQLite), and the columns that books made by earlier versions lack."""

from __future__ import annotations

import sqlite3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, entity TEXT NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL,
    site TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL,
    opened_ms INTEGER NOT NULL, fired_ms INTEGER, raised_wall_ms INTEGER, acked_ms INTEGER, acked_by TEXT,
    resolved_ms INTEGER, resolved_wall_ms INTEGER, closed_ms INTEGER,
    value REAL, detail TEXT NOT NULL, runbook TEXT NOT NULL, context TEXT NOT NULL DEFAULT '{}',
    revision INTEGER NOT NULL DEFAULT 0, resolution TEXT NOT NULL DEFAULT '', resolved_by TEXT, group_id TEXT,
    group_key TEXT NOT NULL DEFAULT '', quiet_ms INTEGER NOT NULL DEFAULT 0, resolved_notice INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_alert ON alerts (rule, entity)
    WHERE status IN ('pending', 'firing', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status);
CREATE TABLE IF NOT EXISTS transitions (
    alert_id TEXT NOT NULL, at_ms INTEGER NOT NULL, status TEXT NOT NULL, actor TEXT NOT NULL, note TEXT NOT NULL,
    via TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS transitions_by_alert ON transitions (alert_id);
CREATE TABLE IF NOT EXISTS escalations (alert_id TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (alert_id, step));
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, step INTEGER NOT NULL, recipient TEXT NOT NULL,
    urls TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, severity TEXT NOT NULL, created_ms INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, resent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notices_not_done ON notices (done) WHERE done = 0;
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
CREATE TABLE IF NOT EXISTS engine_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# What the engine looks up every input or tick: an alert's predecessor (flapping), its group, owed notices.
_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_by_rule_entity ON alerts (rule, entity);
CREATE INDEX IF NOT EXISTS alerts_by_group_key ON alerts (group_key);
CREATE INDEX IF NOT EXISTS alerts_by_group ON alerts (group_id);
CREATE INDEX IF NOT EXISTS alerts_owing_a_notice ON alerts (resolved_notice) WHERE resolved_notice = 1;
"""
# Columns that books made by earlier versions lack: (table, column, declaration).
_ADDED = (
    ("alerts", "context", "TEXT NOT NULL DEFAULT '{}'"),
    ("alerts", "revision", "INTEGER NOT NULL DEFAULT 0"),
    ("alerts", "resolution", "TEXT NOT NULL DEFAULT ''"),
    ("alerts", "resolved_by", "TEXT"),
    ("alerts", "group_id", "TEXT"),
    ("alerts", "group_key", "TEXT NOT NULL DEFAULT ''"),
    ("alerts", "quiet_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("alerts", "resolved_notice", "INTEGER NOT NULL DEFAULT 0"),
    ("transitions", "via", "TEXT NOT NULL DEFAULT ''"),
)


def create_tables(db: sqlite3.Connection) -> None:
    """Tables that do not exist yet, and the columns an older book lacks."""
    db.executescript(_SCHEMA)
    for table, column, declaration in _ADDED:
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    db.executescript(_INDEXES)  # after the columns they need
