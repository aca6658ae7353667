"""The embedded default store: one SQLite file in WAL mode.

Layout: `readings` holds one row per (device_id, ts) with a column per contract field
(tower.contract.storage_columns) and `extra` (JSON) for fields the contract does not know;
`rollups` holds 1-minute sum/count/min/max per (device, field) for history past raw retention;
`devices` is the registry (kind, first/last event time, status); `dead_letters` the rejects.
Commits are synchronous=FULL: once write() returns, the batch survives a power cut.
pandas is imported by the read methods only: the collector writes and never pays its ~50 MB.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tower import sqlitedb
from tower.contract import (
    RESERVED_FIELD_NAMES,
    DeadLetter,
    DeviceKind,
    DeviceStatus,
    FieldSpec,
    Reading,
    is_plain_number,
    storage_columns,
)
from tower.store.base import Batch, DeviceInfo, RetentionResult, Store, StoreRejected, StoreUnavailable

if TYPE_CHECKING:
    import pandas as pd

ROLLUP_MS = 60_000
_SQL_TYPE = {float: "REAL", int: "INTEGER", bool: "INTEGER", str: "TEXT"}
# Errors that name the data, not the database: the same batch fails again however long one waits.
# Everything else (locked, busy, disk full, I/O error) is the database's state and passes.
_REFUSALS = (OverflowError, sqlite3.IntegrityError, sqlite3.DataError)
_REFUSAL_MESSAGES = ("malformed JSON",)
# Extra-field names that would shadow a column of every reading frame: files written before the
# contract reserved them may hold such keys; readers show them as extra.<name> (frames.field_column).
_SHADOWING = ", ".join(f"'{name}'" for name in sorted(RESERVED_FIELD_NAMES))


class SqliteStore(Store):
    def __init__(self, path: Path, busy_timeout_ms: int = 2000) -> None:
        self.path = path
        self._columns: dict[str, FieldSpec] = storage_columns()
        # Means are taken of numbers only: booleans and text are left out of rollups and downsampling.
        self._numeric = [name for name, spec in self._columns.items() if spec.type in (float, int)]
        self._lock = threading.Lock()
        self._db = sqlitedb.connect(path, synchronous="FULL", busy_timeout_s=busy_timeout_ms / 1000)
        # A larger page cache and fewer, larger checkpoints: hot B-tree pages of many devices' series
        # are written back once per checkpoint rather than once per few commits.
        self._db.execute("PRAGMA cache_size=-16384")
        self._db.execute("PRAGMA wal_autocheckpoint=8000")
        self._create_schema()
        self._upsert_sql = self._reading_upsert_sql()

    # -- schema -------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        field_columns = ", ".join(f"{name} {_SQL_TYPE[spec.type]}" for name, spec in self._columns.items())
        with self._lock:
            self._db.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS readings (
                    device_id TEXT NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, seq INTEGER,
                    {field_columns}, extra TEXT,
                    PRIMARY KEY (device_id, ts)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS rollups (
                    device_id TEXT NOT NULL, field TEXT NOT NULL, bucket INTEGER NOT NULL,
                    n INTEGER NOT NULL, total REAL NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
                    PRIMARY KEY (device_id, field, bucket)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS devices (
                    device_id TEXT PRIMARY KEY, kind TEXT NOT NULL,
                    first_ts INTEGER, last_ts INTEGER, status TEXT, status_ms INTEGER);
                CREATE TABLE IF NOT EXISTS dead_letters (
                    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL,
                    topic TEXT NOT NULL, payload TEXT NOT NULL, reason TEXT NOT NULL);
                """
            )
            # A contract that gained fields since this file was created gains columns.
            existing = {row[1] for row in self._db.execute("PRAGMA table_info(readings)")}
            for name, spec in self._columns.items():
                if name not in existing:
                    self._db.execute(f"ALTER TABLE readings ADD COLUMN {name} {_SQL_TYPE[spec.type]}")

    def _reading_upsert_sql(self) -> str:
        names = list(self._columns)
        merged = ", ".join(f"{name} = coalesce(excluded.{name}, {name})" for name in ["seq", *names])
        return (
            f"INSERT INTO readings (device_id, ts, kind, seq, {', '.join(names)}, extra) "
            f"VALUES ({', '.join('?' * (len(names) + 5))}) "
            f"ON CONFLICT (device_id, ts) DO UPDATE SET kind = excluded.kind, {merged}, "
            "extra = CASE WHEN excluded.extra IS NULL THEN extra WHEN extra IS NULL THEN excluded.extra "
            "ELSE json_patch(extra, excluded.extra) END"
        )

    # -- writes -------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        names, known = list(self._columns), self._columns.keys()
        rows = []
        for r in batch.readings:
            unknown = r.fields.keys() - known
            try:
                extra = json.dumps({name: r.fields[name] for name in unknown}, allow_nan=False) if unknown else None
            except ValueError as error:  # Infinity is not JSON: json_patch would call the row malformed later
                raise StoreRejected(f"sqlite {self.path}: {error}") from None
            rows.append((r.device_id, r.ts_ms, r.kind.value, r.seq, *map(r.fields.get, names), extra))
        with self._transaction() as db:
            db.executemany(self._upsert_sql, rows)
            self._write_registry(db, batch)

    def write_registry(self, batch: Batch) -> None:
        """Everything but the readings themselves: for a backend that keeps readings elsewhere."""
        with self._transaction() as db:
            self._write_registry(db, batch)

    def _write_registry(self, db: sqlite3.Connection, batch: Batch) -> None:
        db.executemany(
            "INSERT INTO devices (device_id, kind, first_ts, last_ts) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, "
            "first_ts = min(coalesce(first_ts, excluded.first_ts), excluded.first_ts), "
            "last_ts = max(coalesce(last_ts, excluded.last_ts), excluded.last_ts)",
            _device_spans(batch.readings),
        )
        db.executemany(
            "INSERT INTO devices (device_id, kind, status, status_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET status = excluded.status, status_ms = excluded.status_ms",
            [(s.device_id, s.kind.value, s.status.value, s.received_ms) for s in batch.statuses],
        )
        db.executemany(
            "INSERT INTO dead_letters (received_ms, topic, payload, reason) VALUES (?, ?, ?, ?)",
            [(d.received_ms, d.topic, d.payload, d.reason) for d in batch.dead_letters],
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, all rolled back if SQLite cannot take it (StoreUnavailable) or
        refuses a value in it (StoreRejected)."""
        with self._lock:
            try:
                with sqlitedb.write_transaction(self._db):
                    yield self._db
            except _REFUSALS as error:
                raise StoreRejected(f"sqlite {self.path}: {error}") from error
            except sqlite3.OperationalError as error:
                if any(message in str(error) for message in _REFUSAL_MESSAGES):
                    raise StoreRejected(f"sqlite {self.path}: {error}") from error
                raise StoreUnavailable(f"sqlite {self.path}: {error}") from error

    def apply_retention(
        self, now_ms: int, raw_days: float, rollup_days: float, dead_letter_days: float
    ) -> RetentionResult:
        cutoff = (now_ms - int(raw_days * 86_400_000)) // ROLLUP_MS * ROLLUP_MS
        with self._transaction() as db:
            rolled = db.execute(
                "INSERT INTO rollups (device_id, field, bucket, n, total, lo, hi) "
                f"SELECT device_id, field, ts / {ROLLUP_MS} * {ROLLUP_MS}, count(*), sum(v), min(v), max(v) "
                f"FROM ({self._long_projection('ts < :cutoff')}) WHERE true GROUP BY 1, 2, 3 "
                "ON CONFLICT (device_id, field, bucket) DO UPDATE SET n = n + excluded.n, "
                "total = total + excluded.total, lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)",
                {"cutoff": cutoff},
            ).rowcount
            deleted = db.execute("DELETE FROM readings WHERE ts < ?", (cutoff,)).rowcount
            expired = db.execute(
                "DELETE FROM rollups WHERE bucket < ?", (now_ms - int(rollup_days * 86_400_000),)
            ).rowcount
        return RetentionResult(rolled, deleted, expired, self.expire_dead_letters(now_ms, dead_letter_days))

    def expire_dead_letters(self, now_ms: int, days: float) -> int:
        """Drop dead letters that arrived more than `days` ago; how many went."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM dead_letters WHERE received_ms < ?", (now_ms - int(days * 86_400_000),)
            ).rowcount

    def _long_projection(self, where: str) -> str:
        """Readings as (device_id, ts, field, v) rows: one per numeric value, extra fields included."""
        parts = [
            f"SELECT device_id, ts, '{name}' AS field, {name} AS v FROM readings WHERE {where} AND {name} IS NOT NULL"
            for name in self._numeric
        ]
        # Rows written before extras were checked may hold text that is not a JSON object (Infinity): skipped.
        parts.append(
            f"SELECT device_id, ts, CASE WHEN j.key IN ({_SHADOWING}) THEN 'extra.' || j.key ELSE j.key END, "
            "j.value FROM readings, json_each(CASE WHEN json_valid(readings.extra) THEN "
            "CASE WHEN json_type(readings.extra) = 'object' THEN readings.extra END END) AS j "
            f"WHERE {where} AND readings.extra IS NOT NULL AND j.type IN ('integer', 'real')"
        )
        return " UNION ALL ".join(parts)

    # -- reads --------------------------------------------------------------------------------

    def devices(self) -> list[DeviceInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, kind, last_ts, status, status_ms FROM devices ORDER BY device_id"
            ).fetchall()
        return [
            DeviceInfo(device_id, DeviceKind(kind), last_ts, DeviceStatus(status) if status else None, status_ms)
            for device_id, kind, last_ts, status, status_ms in rows
        ]

    def latest(self, kind: DeviceKind | None = None) -> pd.DataFrame:
        from tower.store.frames import tidy_readings

        where, params = ("WHERE d.kind = ?", [kind.value]) if kind else ("", [])
        frame = self._frame(
            # CROSS JOIN keeps devices the outer loop: one primary-key seek per device. A plain JOIN
            # let the planner scan every reading (27 s instead of 18 ms on 19 M readings).
            "SELECT r.* FROM devices d CROSS JOIN readings r ON r.device_id = d.device_id AND r.ts = d.last_ts "
            f"{where} ORDER BY r.device_id",
            params,
        )
        return tidy_readings(frame, ["device_id", "ts", "kind"])

    def readings(
        self,
        device_id: str,
        fields: list[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        every_ms: int | None = None,
    ) -> pd.DataFrame:
        import pandas as pd

        from tower.store.frames import tidy_readings

        since, until = since_ms if since_ms is not None else 0, until_ms if until_ms is not None else 2**62
        params = {"device": device_id, "since": since, "until": until}
        if every_ms:
            frame = self._downsampled(params, every_ms)
        else:
            frame = self._frame(
                "SELECT * FROM readings WHERE device_id = :device AND ts >= :since AND ts < :until ORDER BY ts",
                params,
            ).drop(columns=["kind"])
            if self._has_rollups(params):  # the part of the range past raw retention: minute means
                frame = pd.concat([self._rollup_means(params), frame])
        frame["device_id"] = device_id
        return tidy_readings(frame, ["ts", "device_id"], fields)

    def _downsampled(self, params: dict, every_ms: int) -> pd.DataFrame:
        import pandas as pd

        from tower.store.frames import utc

        where = "device_id = :device AND ts >= :since AND ts < :until"
        sql = (
            f"SELECT ts / {every_ms} * {every_ms} AS bucket, field, sum(v) AS total, count(*) AS n "
            f"FROM ({self._long_projection(where)}) GROUP BY 1, 2 "
            f"UNION ALL SELECT bucket / {every_ms} * {every_ms}, field, sum(total), sum(n) FROM rollups "
            "WHERE device_id = :device AND bucket >= :since AND bucket < :until GROUP BY 1, 2"
        )
        with self._lock:
            long = pd.read_sql_query(sql, self._db, params=params)
        if long.empty:
            return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ms, UTC]")})
        sums = long.groupby(["bucket", "field"])[["total", "n"]].sum()
        wide = (sums["total"] / sums["n"]).unstack("field").reset_index()
        wide.columns.name = None
        wide.insert(0, "ts", utc(wide.pop("bucket")))
        return wide

    def _has_rollups(self, params: dict) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM rollups WHERE device_id = :device AND bucket >= :since AND bucket < :until LIMIT 1",
                    params,
                ).fetchone()
                is not None
            )

    def _rollup_means(self, params: dict) -> pd.DataFrame:
        import pandas as pd

        from tower.store.frames import utc

        with self._lock:
            long = pd.read_sql_query(
                "SELECT bucket AS ts, field, total / n AS v FROM rollups "
                "WHERE device_id = :device AND bucket >= :since AND bucket < :until",
                self._db,
                params=params,
            )
        wide = long.pivot(index="ts", columns="field", values="v").reset_index()
        wide.columns.name = None
        wide["ts"] = utc(wide["ts"])
        return wide

    def reading_count(self, since_ms: int, until_ms: int) -> int:
        # Per device, so each count is a range seek on the primary key, not a scan of the table.
        with self._lock:
            (count,) = self._db.execute(
                "SELECT coalesce(sum((SELECT count(*) FROM readings r WHERE r.device_id = d.device_id "
                "AND r.ts >= :since AND r.ts < :until)), 0) FROM devices d",
                {"since": since_ms, "until": until_ms},
            ).fetchone()
        return count

    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT received_ms, topic, payload, reason FROM dead_letters ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [DeadLetter(*row) for row in reversed(rows)]

    def _frame(self, sql: str, params: Iterable | dict) -> pd.DataFrame:
        """Reading rows as a frame: ts as UTC datetimes, extra JSON as columns."""
        import pandas as pd

        from tower.store.frames import field_column, utc

        with self._lock:
            frame = pd.read_sql_query(sql, self._db, params=params)
        frame["ts"] = utc(frame["ts"])
        extras = [_extra_fields(text) for text in frame.pop("extra")]
        if any(extras):
            expanded = pd.DataFrame(extras, index=frame.index)
            for name in expanded.columns.intersection(frame.columns):
                if name in self._columns:  # an extra that became a contract field: one column
                    frame[name] = frame[name].combine_first(expanded.pop(name))
            expanded = expanded.rename(columns=field_column)
            frame = pd.concat([frame, expanded], axis="columns")
        return frame

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _extra_fields(text: object) -> dict:
    """The extra fields of one row (NULL comes back as None or NaN); numbers only, non-finite ones
    (stored before extras were checked) left out, unreadable text ignored rather than failing a read."""
    if not isinstance(text, str):
        return {}
    try:
        fields = json.loads(text, parse_constant=lambda constant: None)
    except ValueError:
        return {}
    if not isinstance(fields, dict):
        return {}
    return {name: value for name, value in fields.items() if is_plain_number(value)}


def _device_spans(readings: list[Reading]) -> list[tuple[str, str, int, int]]:
    spans: dict[str, list] = {}
    for r in readings:
        span = spans.get(r.device_id)
        if span is None:
            spans[r.device_id] = [r.device_id, r.kind.value, r.ts_ms, r.ts_ms]
        else:
            span[2] = min(span[2], r.ts_ms)
            span[3] = max(span[3], r.ts_ms)
    return [tuple(span) for span in spans.values()]
