"""Store backends behind one interface (tower.store.base.Store), chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tower.store.base import Batch, DeviceInfo, RetentionResult, Store, StoreUnavailable

__all__ = ["Batch", "DeviceInfo", "RetentionResult", "Store", "StoreUnavailable", "open_store"]


def open_store(url: str, must_exist: bool = False) -> Store:
    """sqlite:///relative/path.db or sqlite:////absolute/path.db (SQLAlchemy's convention).

    must_exist: for commands that only read, a missing store is a mistake, not a new store.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if not parts.path or parts.path == "/":
            raise ValueError(f"store URL '{url}' names no file; use sqlite:///var/tower.db")
        from tower.store.sqlite import SqliteStore

        path = Path(parts.path[1:])
        if must_exist and not path.exists():
            raise ValueError(f"store {url} does not exist yet; start 'tower ingest' or pass --store")
        return SqliteStore(path)
    raise ValueError(f"store URL '{url}' has unknown scheme '{parts.scheme}'; use sqlite:///path/to/file.db")
