"""SQLite as the tower's own databases use it (the readings store, the master data, the alert book):
WAL, so readers in other processes never wait for the writer; autocommit mode, so every write is an
explicit IMMEDIATE transaction that takes the write lock before it reads what it bases its write on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path | str, *, synchronous: str, busy_timeout_s: float = 30) -> sqlite3.Connection:
    """A connection shared by the process's threads (callers serialise writes); the parent folder is made.

    synchronous: SQLite's durability setting (FULL: a commit survives a power cut; NORMAL: in WAL mode
    the last commits may be lost, the database never corrupted).
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; everything rolled back if the body or the commit fails."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
