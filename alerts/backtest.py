"""Run rules over history: readings from a CSV file or the store, in event-time order, through the
same service the engine uses (an in-memory alert book, no notifications). What would have fired,
with counts per rule and per day. Master data is the master data store's current revision (or,
for a simulation, the plans its TMS publishes, applied as they arrive)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from alerts.book import AlertBook
from alerts.evaluate import RuleEvaluator
from alerts.rules import RuleSet
from alerts.service import AlertService
from tower.contract import DeviceKind, Reading
from tower.masterdata.model import PlanMessage
from tower.masterdata.store import MasterDataError, MasterStore
from tower.store import Store
from tower.store.frames import plain_value
from tower.timeutil import rfc3339

TICK_MS = 60_000  # the service ticks once a minute of the replay's clock
REQUIRED = ("ts", "device_id", "kind")


def replay(
    rules: RuleSet,
    arrivals: Iterable[tuple[int, Reading | PlanMessage]],
    master: MasterStore | None = None,
    until_ms: int | None = None,
    book: AlertBook | None = None,
) -> AlertBook:
    """Feed (arrival time, reading or plan message) pairs, in the order given, through a fresh alert
    service with the given book (default: in memory); the arrival times are the replay's wall clock.
    Plan messages go into `master` (default: empty, in memory) as the collector applies them, and
    the service follows its revisions. The resulting book."""
    master = master or MasterStore(":memory:")
    service = AlertService(RuleEvaluator(rules, master.snapshot()), book or AlertBook(":memory:"), None, None)
    next_tick = None
    for arrived_ms, item in arrivals:
        if isinstance(item, PlanMessage):
            try:
                if master.apply(item):
                    service.set_master(master.snapshot(), arrived_ms)
            except MasterDataError:
                pass  # the collector dead-letters it; the rules never see it
            continue
        service.observe(item, arrived_ms)
        if next_tick is None or arrived_ms >= next_tick:
            service.tick(arrived_ms)
            next_tick = arrived_ms + TICK_MS
    if next_tick is not None or until_ms is not None:
        end = until_ms if until_ms is not None else next_tick
        service.advance(end)  # silences at the end of the history (during it: once a minute of event time)
        service.tick(end)
    return service.book


def as_arrivals(readings: Iterable[Reading]) -> Iterator[tuple[int, Reading]]:
    """History arrives at its own event time."""
    return ((reading.ts_ms, reading) for reading in readings)


def readings_from_csv(path: str | Path) -> list[Reading]:
    """CSV with columns ts (RFC 3339 or epoch milliseconds), device_id, kind, then one column per field."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as problem:
        raise ValueError(f"{path}: cannot read readings: {problem}") from None
    missing = [column for column in REQUIRED if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; the header is ts,device_id,kind,<fields>")
    kinds = {kind.value for kind in DeviceKind}
    bad = frame.index[~frame["kind"].isin(kinds)]
    if len(bad):
        row = bad[0]
        raise ValueError(f"{path}:{row + 2}: kind '{frame['kind'][row]}' is not one of {', '.join(sorted(kinds))}")
    if pd.api.types.is_numeric_dtype(frame["ts"]):
        stamps = frame["ts"].astype("int64")
    else:
        parsed = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            row = parsed.index[parsed.isna()][0]
            raise ValueError(f"{path}:{row + 2}: ts '{frame['ts'][row]}' is not RFC 3339 or epoch milliseconds")
        stamps = parsed.astype("int64") // 1_000_000
    fields = [column for column in frame.columns if column not in REQUIRED]
    readings = []
    for ts, device, kind, values in zip(stamps, frame["device_id"], frame["kind"], frame[fields].to_dict("records"),
                                        strict=True):  # fmt: skip
        present = {name: plain_value(value) for name, value in values.items() if not pd.isna(value)}
        readings.append(Reading(DeviceKind(kind), str(device), int(ts), present))
    return sorted(readings, key=lambda reading: reading.ts_ms)


def readings_from_store(store: Store, since_ms: int, until_ms: int) -> list[Reading]:
    readings = []
    for device in store.devices():
        frame = store.readings(device.device_id, since_ms=since_ms, until_ms=until_ms)
        for row in frame.drop(columns=["device_id", "seq"], errors="ignore").to_dict("records"):
            ts = int(row.pop("ts").timestamp() * 1000)
            fields = {name: plain_value(value) for name, value in row.items() if not pd.isna(value)}
            readings.append(Reading(device.kind, device.device_id, ts, fields))
    return sorted(readings, key=lambda reading: reading.ts_ms)


def summary(book: AlertBook) -> dict:
    """Every alert that fired, and counts per rule and per day (UTC, by firing time)."""
    fired = [alert for alert in book.alerts("all", limit=1_000_000) if alert["fired_ms"] is not None]
    fired.sort(key=lambda alert: alert["fired_ms"])
    return {
        "alerts": [
            {
                "rule": a["rule"],
                "entity": a["entity"],
                "severity": a["severity"],
                "fired": rfc3339(a["fired_ms"]),
                "resolved": rfc3339(a["resolved_ms"]) if a["resolved_ms"] else None,
                "detail": a["detail"],
            }
            for a in fired
        ],  # fmt: skip
        "per_rule": dict(sorted(Counter(a["rule"] for a in fired).items())),
        "per_day": dict(sorted(Counter(rfc3339(a["fired_ms"])[:10] for a in fired).items())),
    }
