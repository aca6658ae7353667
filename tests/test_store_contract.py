"""The store contract: what every backend must answer alike. Each test runs once per reachable backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tower.contract import DeadLetter, DeviceKind, DeviceStatus, Reading, StatusChange
from tower.store import Batch, Store, open_store

DAY = 86_400_000
T0 = 1_789_999_980_000  # 2026-09-21, on a minute boundary; fixed so every backend sees the same history


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, Store]]:
    url = f"sqlite:///{tmp_path}/contract.db"
    store = open_store(url)
    yield url, store
    store.close()


def _truck(seq: int, ts: int, **fields: object) -> Reading:
    return Reading(DeviceKind.SHIPMENT, "trk-1", ts, {"lat": 50.0 + seq, "lon": 5.0, **fields}, seq)


def test_round_trip_keeps_event_time_values_and_types(backend):
    _, store = backend
    store.write(Batch(readings=[_truck(1, T0, temp_c=3.25, door_open=True, pallets=12)]))
    row = store.readings("trk-1").iloc[0]
    assert row["ts"].value // 1_000_000 == T0
    assert (row["device_id"], row["seq"], row["lat"], row["temp_c"]) == ("trk-1", 1, 51.0, 3.25)
    assert bool(row["door_open"]) is True
    assert row["pallets"] == 12


def test_same_identity_is_stored_once_and_fields_merge(backend):
    _, store = backend
    store.write(Batch(readings=[_truck(1, T0, temp_c=3.0)]))
    store.write(Batch(readings=[_truck(1, T0, temp_c=3.0)]))
    store.write(Batch(readings=[Reading(DeviceKind.SHIPMENT, "trk-1", T0, {"shock_g": 2.0}, 1)]))
    frame = store.readings("trk-1")
    assert len(frame) == 1
    assert (frame.iloc[0]["temp_c"], frame.iloc[0]["shock_g"], frame.iloc[0]["lat"]) == (3.0, 2.0, 51.0)


def test_range_is_half_open_ordered_and_field_filtered(backend):
    _, store = backend
    store.write(Batch(readings=[_truck(i, T0 + i * 1000, temp_c=float(i)) for i in reversed(range(10))]))
    frame = store.readings("trk-1", fields=["temp_c"], since_ms=T0 + 2000, until_ms=T0 + 5000)
    assert list(frame.columns) == ["ts", "device_id", "temp_c"]
    assert list(frame["temp_c"]) == [2.0, 3.0, 4.0]
    assert store.readings("nobody").empty


def test_downsampling_gives_means_per_bucket(backend):
    _, store = backend
    store.write(Batch(readings=[_truck(i, T0 + i * 10_000, temp_c=float(i)) for i in range(12)]))  # 2 minutes
    frame = store.readings("trk-1", fields=["temp_c"], every_ms=60_000)
    assert list(frame["temp_c"]) == [2.5, 8.5]
    assert [t.value // 1_000_000 for t in frame["ts"]] == [T0, T0 + 60_000]


def test_latest_is_the_newest_event_not_the_last_arrival(backend):
    _, store = backend
    store.write(Batch(readings=[_truck(5, T0 + 5000)]))
    store.write(Batch(readings=[_truck(1, T0 + 1000)]))  # late
    store.write(Batch(readings=[Reading(DeviceKind.EQUIPMENT, "pump-1", T0, {"rpm": 1500.0, "state": "running"})]))
    latest = store.latest()
    assert dict(zip(latest["device_id"], latest["seq"], strict=True))["trk-1"] == 5
    only_equipment = store.latest(DeviceKind.EQUIPMENT)
    assert list(only_equipment["device_id"]) == ["pump-1"] and only_equipment.iloc[0]["state"] == "running"


def test_device_registry_with_kind_last_seen_and_status(backend):
    _, store = backend
    store.write(Batch(readings=[_truck(1, T0), _truck(2, T0 + 1000)]))
    store.write(Batch(statuses=[StatusChange(DeviceKind.SHIPMENT, "trk-1", DeviceStatus.OFFLINE, T0 + 2000)]))
    store.write(Batch(statuses=[StatusChange(DeviceKind.WAREHOUSE, "dc-1", DeviceStatus.ONLINE, T0)]))
    devices = {d.device_id: d for d in store.devices()}
    assert devices["trk-1"].kind == DeviceKind.SHIPMENT and devices["trk-1"].last_seen_ms == T0 + 1000
    assert devices["trk-1"].status == DeviceStatus.OFFLINE
    assert devices["dc-1"].last_seen_ms is None and devices["dc-1"].status == DeviceStatus.ONLINE


def test_dead_letters_newest_n_oldest_first(backend):
    _, store = backend
    store.write(Batch(dead_letters=[DeadLetter(T0 + i, "tower/v1/x", "{}", f"reason {i}") for i in range(5)]))
    assert [d.reason for d in store.dead_letters(limit=3)] == ["reason 2", "reason 3", "reason 4"]


def test_retention_rolls_old_raw_into_minute_means_and_expires_rollups(backend):
    _, store = backend
    old = [_truck(i, T0 + i * 10_000, temp_c=float(i)) for i in range(12)]
    recent = [_truck(100, T0 + 40 * DAY, temp_c=7.0)]
    store.write(Batch(readings=old + recent))
    result = store.apply_retention(now_ms=T0 + 45 * DAY, raw_days=30, rollup_days=400)
    assert result.deleted_readings == 12
    frame = store.readings("trk-1", fields=["temp_c"])
    assert list(frame["temp_c"]) == [2.5, 8.5, 7.0]  # minute means of the old, raw of the recent
    assert list(store.readings("trk-1", fields=["temp_c"], every_ms=3_600_000)["temp_c"]) == [5.5, 7.0]
    store.apply_retention(now_ms=T0 + 500 * DAY, raw_days=30, rollup_days=400)
    assert store.readings("trk-1").empty


def test_another_process_reads_while_this_one_writes(backend):
    url, store = backend
    store.write(Batch(readings=[_truck(1, T0)]))
    reader = (
        "import json, sys; from tower.store import open_store; "
        "s = open_store(sys.argv[1]); print(json.dumps([d.device_id for d in s.devices()]))"
    )
    store.write(Batch(readings=[Reading(DeviceKind.WAREHOUSE, "dc-1", T0, {"temp_c": 5.0})]))
    output = subprocess.run([sys.executable, "-c", reader, url], cwd=REPO, capture_output=True, check=True, text=True)
    assert json.loads(output.stdout) == ["dc-1", "trk-1"]
