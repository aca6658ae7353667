"""The store contract: what every backend must answer alike. Each test runs once per reachable backend.

- sqlite: always; written and read through the store.
- influxdb-1.x: Debian's influxd 1.6.7 (no v2 write API), seeded through its /write endpoint with the
  backend's own line protocol, read through the backend's InfluxQL.
- influxdb-2: when TOWER_INFLUX_URL (+ TOWER_INFLUX_TOKEN, _ORG, _BUCKET) points at one, as
  docker-compose provides: the complete round trip. Its bucket is emptied before each test.
The write path against VictoriaMetrics is in test_influx_write_path.py.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.servers import InfluxDB1
from tower.config import load_settings
from tower.contract import DeadLetter, DeviceKind, DeviceStatus, Reading, StatusChange
from tower.store import Batch, Store, open_store
from tower.store.influx import InfluxStore, line_protocol
from tower.store.sqlite import SqliteStore

T0 = 1_789_999_980_000  # 2026-09-21, on a minute boundary; fixed so every backend sees the same history
_databases = itertools.count()


@dataclass
class Backend:
    store: Store
    seed: Callable[[Batch], None]
    elsewhere: Callable[[Batch], None]  # another writer (a second collector, Telegraf): not this store's registry


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory) -> Iterator[InfluxDB1 | None]:
    if InfluxDB1.binary is None:
        if os.environ.get("CI"):
            pytest.fail("influxd (Debian's influxdb) is not installed; .ci/run installs it")
        yield None
        return
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb1")).start()
    yield server
    server.stop()


def _sqlite(tmp_path, influxdb1) -> Backend:
    store = open_store(f"sqlite:///{tmp_path}/contract.db")
    return Backend(store, store.write, lambda batch: _write_and_close(open_store(f"sqlite:///{tmp_path}/contract.db"),
                                                                      batch))  # fmt: skip


def _influxdb1(tmp_path, influxdb1) -> Backend:
    if influxdb1 is None:
        pytest.skip("influxd not installed")
    database = f"contract{next(_databases)}"
    influxdb1.create_database(database)
    store = InfluxStore(influxdb1.url, "", database, None, SqliteStore(tmp_path / "registry.db"), 5)

    def elsewhere(batch: Batch) -> None:
        if batch.readings:
            influxdb1.write_lines(database, [line_protocol(r) for r in batch.readings])

    def seed(batch: Batch) -> None:
        elsewhere(batch)
        store.registry.write_registry(batch)

    return Backend(store, seed, elsewhere)


def _influxdb2(tmp_path, influxdb1) -> Backend:
    url = os.environ.get("TOWER_INFLUX_URL")
    if not url:
        pytest.skip("TOWER_INFLUX_URL not set (docker-compose provides an InfluxDB 2)")
    settings = load_settings(data_dir=tmp_path)
    store = open_store(url, settings)
    store._client.delete_api().delete(  # a clean bucket for every test
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),
        "",
        settings.influx_bucket,
        settings.influx_org,
    )
    other = open_store(url, load_settings(data_dir=tmp_path / "elsewhere"))
    return Backend(store, store.write, lambda batch: _write_and_close(other, batch))


def _write_and_close(store: Store, batch: Batch) -> None:
    store.write(batch)
    store.close()


@pytest.fixture(params=[_sqlite, _influxdb1, _influxdb2], ids=["sqlite", "influxdb-1.x", "influxdb-2"])
def backend(request: pytest.FixtureRequest, tmp_path, influxdb1) -> Iterator[Backend]:
    opened = request.param(tmp_path, influxdb1)
    yield opened
    opened.store.close()


def _truck(seq: int, ts: int, **fields: object) -> Reading:
    return Reading(DeviceKind.SHIPMENT, "trk-1", ts, {"lat": 50.0 + seq, "lon": 5.0, **fields}, seq)


def test_round_trip_keeps_event_time_values_and_types(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(1, T0, temp_c=3.25, door_open=True, pallets=12)]))
    row = store.readings("trk-1").iloc[0]
    assert row["ts"].value // 1_000_000 == T0
    assert (row["device_id"], row["seq"], row["lat"], row["temp_c"]) == ("trk-1", 1, 51.0, 3.25)
    assert bool(row["door_open"]) is True
    assert row["pallets"] == 12


def test_same_identity_is_stored_once_and_fields_merge(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(1, T0, temp_c=3.0)]))
    seed(Batch(readings=[_truck(1, T0, temp_c=3.0)]))
    seed(Batch(readings=[Reading(DeviceKind.SHIPMENT, "trk-1", T0, {"shock_g": 2.0}, 1)]))
    frame = store.readings("trk-1")
    assert len(frame) == 1
    assert (frame.iloc[0]["temp_c"], frame.iloc[0]["shock_g"], frame.iloc[0]["lat"]) == (3.0, 2.0, 51.0)


def test_range_is_half_open_ordered_and_field_filtered(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(i, T0 + i * 1000, temp_c=float(i)) for i in reversed(range(10))]))
    frame = store.readings("trk-1", fields=["temp_c"], since_ms=T0 + 2000, until_ms=T0 + 5000)
    assert list(frame.columns) == ["ts", "device_id", "temp_c"]
    assert list(frame["temp_c"]) == [2.0, 3.0, 4.0]
    assert store.readings("nobody").empty


def test_downsampling_gives_means_per_bucket(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(i, T0 + i * 10_000, temp_c=float(i)) for i in range(12)]))  # 2 minutes
    frame = store.readings("trk-1", fields=["temp_c"], every_ms=60_000)
    assert list(frame["temp_c"]) == [2.5, 8.5]
    assert [t.value // 1_000_000 for t in frame["ts"]] == [T0, T0 + 60_000]


def test_reading_count_by_event_time(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(i, T0 + i * 1000, temp_c=1.0) for i in range(10)]))
    seed(Batch(readings=[Reading(DeviceKind.EQUIPMENT, "pump-1", T0 + 500, {"rpm": 1500.0})]))
    assert store.reading_count(T0, T0 + 5000) == 6
    assert store.reading_count(T0 + 10_000, T0 + 20_000) == 0


def test_latest_is_the_newest_event_not_the_last_arrival(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(5, T0 + 5000)]))
    seed(Batch(readings=[_truck(1, T0 + 1000)]))  # late
    seed(Batch(readings=[Reading(DeviceKind.EQUIPMENT, "pump-1", T0, {"rpm": 1500.0, "state": "running"})]))
    latest = store.latest()
    assert dict(zip(latest["device_id"], latest["seq"], strict=True))["trk-1"] == 5
    only_equipment = store.latest(DeviceKind.EQUIPMENT)
    assert list(only_equipment["device_id"]) == ["pump-1"] and only_equipment.iloc[0]["state"] == "running"


def test_device_registry_with_kind_last_seen_and_status(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(1, T0), _truck(2, T0 + 1000)]))
    seed(Batch(statuses=[StatusChange(DeviceKind.SHIPMENT, "trk-1", DeviceStatus.OFFLINE, T0 + 2000)]))
    seed(Batch(statuses=[StatusChange(DeviceKind.WAREHOUSE, "dc-1", DeviceStatus.ONLINE, T0)]))
    devices = {d.device_id: d for d in store.devices()}
    assert devices["trk-1"].kind == DeviceKind.SHIPMENT and devices["trk-1"].last_seen_ms == T0 + 1000
    assert devices["trk-1"].status == DeviceStatus.OFFLINE
    assert devices["dc-1"].last_seen_ms is None and devices["dc-1"].status == DeviceStatus.ONLINE


def test_dead_letters_newest_n_oldest_first(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(dead_letters=[DeadLetter(T0 + i, "tower/v1/x", "{}", f"reason {i}") for i in range(5)]))
    assert [d.reason for d in store.dead_letters(limit=3)] == ["reason 2", "reason 3", "reason 4"]


def test_dead_letters_expire_after_their_retention(backend):
    store, seed = backend.store, backend.seed
    seed(Batch(dead_letters=[DeadLetter(T0 + day * 86_400_000, "tower/v1/x", "{}", f"day {day}") for day in range(4)]))
    result = store.apply_retention(T0 + 16 * 86_400_000, raw_days=30, rollup_days=400, dead_letter_days=14)
    assert result.deleted_dead_letters == 2 and [d.reason for d in store.dead_letters()] == ["day 2", "day 3"]


def test_rows_mixing_extra_fields_and_one_named_like_a_column(backend):
    """Stores written before extra-field names were checked may hold one named like a column."""
    store, seed = backend.store, backend.seed
    seed(Batch(readings=[_truck(1, T0, pallets=12), _truck(2, T0 + 1000, oil_bar=2.5), _truck(3, T0 + 2000)]))
    seed(Batch(readings=[Reading(DeviceKind.SHIPMENT, "trk-2", T0, {"lat": 1.0, "device_id": 5, "ts": 9}, 1)]))
    frame = store.readings("trk-1")
    assert list(frame["seq"]) == [1, 2, 3] and list(frame["device_id"]) == ["trk-1"] * 3
    assert list(frame["pallets"].fillna(0)) == [12, 0, 0] and list(frame["oil_bar"].fillna(0)) == [0, 2.5, 0]
    odd = store.readings("trk-2")
    assert (odd.iloc[0]["device_id"], odd.iloc[0]["extra.device_id"], odd.iloc[0]["extra.ts"]) == ("trk-2", 5, 9)
    assert odd.iloc[0]["ts"].value // 1_000_000 == T0
    assert store.readings("trk-2", every_ms=60_000).iloc[0]["extra.device_id"] == 5
    latest = store.latest().set_index("device_id")
    assert latest.loc["trk-1", "seq"] == 3 and latest.loc["trk-2", "extra.device_id"] == 5


def test_a_device_another_writer_stored_is_found_with_its_readings(backend):
    """A dashboard on another host, or readings Telegraf wrote: the store itself knows the device."""
    store = backend.store
    backend.elsewhere(Batch(readings=[Reading(DeviceKind.EQUIPMENT, "tel-9", T0 + i * 1000, {"rpm": 900.0 + i}, i)
                                      for i in range(3)]))  # fmt: skip
    devices = {d.device_id: d for d in store.devices()}
    assert devices["tel-9"].kind == DeviceKind.EQUIPMENT and devices["tel-9"].last_seen_ms == T0 + 2000
    assert list(store.readings("tel-9")["rpm"]) == [900.0, 901.0, 902.0]
    assert list(store.readings("tel-9", every_ms=60_000)["rpm"]) == [901.0]
    assert store.latest(DeviceKind.EQUIPMENT).set_index("device_id").loc["tel-9", "rpm"] == 902.0
