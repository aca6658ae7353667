"""Store backends behind one interface (tower.store.base.Store), chosen by URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tower.store.base import Batch, DeviceInfo, RetentionResult, Store, StoreRejected, StoreUnavailable

if TYPE_CHECKING:
    from tower.config import Settings

__all__ = ["Batch", "DeviceInfo", "RetentionResult", "Store", "StoreRejected", "StoreUnavailable", "open_store"]

_FORMS = "sqlite:///path/to/file.db, influxdb://host:8086?org=ORG&bucket=BUCKET or https://host:8086"


def open_store(url: str, settings: Settings | None = None, must_exist: bool = False) -> Store:
    """The backend the URL names.

    sqlite:///relative/path.db, sqlite:////absolute/path.db (SQLAlchemy's convention);
    influxdb://host:port?org=..&bucket=.. (plain HTTP) or http(s)://host:port with org and bucket
    in the query or in settings; the token comes only from settings (TOWER_INFLUX_TOKEN[_FILE]).
    must_exist: for commands that only read, a missing SQLite file is a mistake, not a new store.
    """
    from tower.config import redact_url  # messages reach terminals and logs: no credentials in them

    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as problem:  # e.g. "Invalid IPv6 URL"
        raise ValueError(f"store URL '{shown}' cannot be read ({problem}); use {_FORMS}") from None
    if parts.scheme == "sqlite":
        if not parts.path or parts.path == "/":
            raise ValueError(f"store URL '{shown}' names no file; use sqlite:///var/tower.db")
        from tower.store.sqlite import SqliteStore

        path = Path(parts.path[1:])
        if must_exist and not path.exists():
            raise ValueError(f"store {shown} does not exist yet; start 'tower ingest' or pass --store")
        return SqliteStore(path)
    if parts.scheme in ("influxdb", "http", "https"):
        return _open_influx(parts, settings)
    raise ValueError(f"store URL '{shown}' has unknown scheme '{parts.scheme}'; use {_FORMS}")


def _open_influx(parts, settings: Settings | None) -> Store:
    from tower.config import load_settings, redact_url
    from tower.store.influx import InfluxStore
    from tower.store.sqlite import SqliteStore

    settings = settings or load_settings()
    if "@" in parts.netloc or "@" in parts.path:
        raise ValueError(f"store URL '{redact_url(parts.geturl())}': InfluxDB store URLs hold no credentials; give "
                         "the token in TOWER_INFLUX_TOKEN (or TOWER_INFLUX_TOKEN_FILE)")  # fmt: skip
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    org, bucket = query.get("org", settings.influx_org), query.get("bucket", settings.influx_bucket)
    if not parts.hostname or not bucket:
        raise ValueError(
            "InfluxDB store needs a host and a bucket: influxdb://host:8086?org=ORG&bucket=BUCKET "
            "(or TOWER_INFLUX_ORG / TOWER_INFLUX_BUCKET)"
        )
    scheme = "http" if parts.scheme == "influxdb" else parts.scheme
    return InfluxStore(
        f"{scheme}://{parts.netloc}",
        org or "",
        bucket,
        settings.influx_token_value(),
        SqliteStore(settings.registry_path),
        settings.influx_max_retry_time_s,
    )
