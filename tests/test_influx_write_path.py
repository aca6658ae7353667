"""The InfluxDB write path against a real server that speaks the v2 write API (VictoriaMetrics):
values, tags and timestamps arrive as written, and a server outage mid-stream loses nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import wait_until
from tests.servers import VictoriaMetrics
from tower.contract import DeviceKind, Reading
from tower.store import Batch, open_store
from tower.timeutil import now_ms


@pytest.fixture
def victoria(tmp_path) -> Iterator[VictoriaMetrics]:
    if VictoriaMetrics.binary is None:
        if os.environ.get("CI"):
            pytest.fail("victoria-metrics is not installed; .ci/run installs it")
        pytest.skip("victoria-metrics not installed")
    server = VictoriaMetrics(tmp_path / "vm").start()
    yield server
    server.stop()


def _url(server: VictoriaMetrics) -> str:
    return f"influxdb://127.0.0.1:{server.port}?org=acme&bucket=tower"


def _samples(server: VictoriaMetrics, metric: str) -> dict[str, list[tuple[int, float]]]:
    """device_id -> [(ts, value), ...] for one measurement_field metric."""
    return {
        series["metric"]["device_id"]: list(zip(series["timestamps"], series["values"], strict=True))
        for series in server.export(f'{{__name__="{metric}"}}')
    }


def test_values_tags_and_event_times_arrive_as_written(victoria, settings):
    store = open_store(_url(victoria), settings)
    t0 = now_ms() - 3_600_000
    store.write(
        Batch(
            readings=[
                Reading(DeviceKind.SHIPMENT, "trk-1", t0, {"lat": 51.92, "temp_c": 3.5, "door_open": True}, 7),
                Reading(DeviceKind.SHIPMENT, "trk-1", t0 + 1500, {"lat": 51.93, "temp_c": 3.75, "door_open": False}, 8),
                Reading(DeviceKind.EQUIPMENT, "pump-1", t0 + 250, {"rpm": 1450.0, "oil_pressure_bar": 2}),
            ]
        )
    )
    store.close()
    assert _samples(victoria, "shipment_lat") == {"trk-1": [(t0, 51.92), (t0 + 1500, 51.93)]}
    assert _samples(victoria, "shipment_temp_c") == {"trk-1": [(t0, 3.5), (t0 + 1500, 3.75)]}
    assert _samples(victoria, "shipment_door_open") == {"trk-1": [(t0, 1), (t0 + 1500, 0)]}
    assert _samples(victoria, "shipment_seq") == {"trk-1": [(t0, 7), (t0 + 1500, 8)]}
    assert _samples(victoria, "equipment_oil_pressure_bar") == {"pump-1": [(t0 + 250, 2.0)]}
    assert [s["metric"] for s in victoria.export('{__name__="equipment_rpm"}')] == [
        {"__name__": "equipment_rpm", "device_id": "pump-1"}
    ]


def test_server_stopped_mid_stream_and_restarted_loses_nothing_and_doubles_nothing(
    victoria, settings, start_collector, publisher
):
    total = 600
    collector = start_collector(store=_url(victoria), influx_max_retry_time_s=2.0, batch_max=50)
    t0 = now_ms() - 600_000
    for seq in range(total):
        if seq == 200:
            wait_until(lambda: collector.stats.stored >= 200, what="200 written before the outage")
            victoria.stop()
        if seq == 400:
            wait_until(lambda: len(collector.spool) > 0, what="batches spooled during the outage")
            victoria.start()
        publisher.send("tower/v1/shipment/trk-7/telemetry", {"ts": t0 + seq * 100, "seq": seq, "lat": 50.0})
    wait_until(
        lambda: len(collector.spool) == 0 and collector.stats.stored == total,
        timeout_s=60,
        what="every reading written after the restart",
    )
    (samples,) = _samples(victoria, "shipment_seq").values()
    assert sorted(int(value) for _, value in samples) == list(range(total))  # every one, none twice
    assert [ts for ts, _ in samples] == [t0 + seq * 100 for seq in range(total)]
