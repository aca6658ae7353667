"""SQLite-only behaviour: retention with rollups, and readers in other processes (WAL)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tower.contract import DeviceKind, Reading
from tower.store import Batch
from tower.store.sqlite import SqliteStore

DAY = 86_400_000
T0 = 1_789_999_980_000


@pytest.fixture
def store(tmp_path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "tower.db")
    yield opened
    opened.close()


def _truck(seq: int, ts: int, **fields: object) -> Reading:
    return Reading(DeviceKind.SHIPMENT, "trk-1", ts, {"lat": 50.0 + seq, "lon": 5.0, **fields}, seq)


def test_retention_rolls_old_raw_into_minute_means_and_expires_rollups(store):
    old = [_truck(i, T0 + i * 10_000, temp_c=float(i)) for i in range(12)]
    recent = [_truck(100, T0 + 40 * DAY, temp_c=7.0)]
    store.write(Batch(readings=old + recent))
    result = store.apply_retention(now_ms=T0 + 45 * DAY, raw_days=30, rollup_days=400, dead_letter_days=14)
    assert result.deleted_readings == 12
    frame = store.readings("trk-1", fields=["temp_c"])
    assert list(frame["temp_c"]) == [2.5, 8.5, 7.0]  # minute means of the old, raw of the recent
    assert list(store.readings("trk-1", fields=["temp_c"], every_ms=3_600_000)["temp_c"]) == [5.5, 7.0]
    store.apply_retention(now_ms=T0 + 500 * DAY, raw_days=30, rollup_days=400, dead_letter_days=14)
    assert store.readings("trk-1").empty


def test_another_process_reads_while_this_one_writes(store):
    store.write(Batch(readings=[_truck(1, T0)]))
    reader = (
        "import json, sys; from tower.store import open_store; "
        "s = open_store(sys.argv[1]); print(json.dumps([d.device_id for d in s.devices()]))"
    )
    store.write(Batch(readings=[Reading(DeviceKind.WAREHOUSE, "dc-1", T0, {"temp_c": 5.0})]))
    output = subprocess.run(
        [sys.executable, "-c", reader, f"sqlite:///{store.path}"], cwd=REPO, capture_output=True, check=True, text=True
    )
    assert json.loads(output.stdout) == ["dc-1", "trk-1"]
