"""Nothing lost: duplicates, crashes, store outages, a full spool, shutdown, shared load."""

from __future__ import annotations

import signal
import sqlite3
import threading
from pathlib import Path

from ingest.plan_sink import PlanSink
from ingest.spool import Spool
from ingest.writer import Delivery, IngestStats, Writer
from tests.conftest import collector_process, stop_process, stored_seqs, wait_until
from tower.contract import DeviceKind, Reading
from tower.masterdata.live import LiveMaster
from tower.masterdata.store import MasterStore
from tower.store import Batch
from tower.timeutil import now_ms

T = "tower/v1/shipment/trk-5/telemetry"


def _reading(t0: int, seq: int) -> dict:
    return {"ts": t0 + seq * 100, "seq": seq, "lat": 50 + seq * 1e-5, "lon": 5.0, "temp_c": 4.0}


def _publish(publisher, t0: int, seqs: range) -> None:
    for seq in seqs:
        publisher.send(T, _reading(t0, seq))


def _store_path(settings) -> Path:
    return Path(settings.store.removeprefix("sqlite:///"))


def test_duplicates_are_stored_once_and_fields_merge(start_collector, publisher, store):
    start_collector()
    t0 = now_ms() - 60_000
    for _ in range(3):
        publisher.send(T, _reading(t0, 1))
    publisher.send(T, [_reading(t0, 1), _reading(t0, 2)])
    publisher.send(T, {"ts": t0 + 100, "seq": 1, "shock_g": 3.5})  # same identity, another field
    wait_until(lambda: len(store.readings(T.split("/")[3])) == 2 and store.readings("trk-5")["shock_g"].notna().any())
    frame = store.readings("trk-5")
    assert list(frame["seq"]) == [1, 2]
    assert frame.iloc[0]["temp_c"] == 4.0 and frame.iloc[0]["shock_g"] == 3.5


def test_sigkill_mid_stream_then_restart_loses_nothing(settings, publisher, store, tmp_path):
    total = 3000
    t0 = now_ms() - 3_600_000
    log = tmp_path / "collector.log"
    collector = collector_process(settings, log)
    sender = threading.Thread(target=_publish, args=(publisher, t0, range(total)))
    sender.start()
    wait_until(lambda: len(stored_seqs(store, "trk-5")) >= 500, what="500 stored before the kill")
    collector.kill()  # SIGKILL: no flush, no goodbye
    collector.wait()
    killed_at = len(stored_seqs(store, "trk-5"))
    assert killed_at < total, "the kill should land mid-stream"
    sender.join()  # the rest is published while no collector runs

    collector = collector_process(settings, log)
    try:
        wait_until(lambda: len(stored_seqs(store, "trk-5")) == total, timeout_s=60, what="every seq after restart")
    finally:
        stop_process(collector)
    assert stored_seqs(store, "trk-5") == list(range(total))  # counted by seq: none lost, none twice


def test_store_outage_spools_and_replays_in_order(start_collector, publisher, store, settings):
    collector = start_collector()
    t0 = now_ms() - 600_000
    blocker = sqlite3.connect(_store_path(settings), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the store refuses writes, as during a disk or lock outage
    try:
        _publish(publisher, t0, range(300))
        wait_until(lambda: collector.stats.received == 300, what="300 received")
        wait_until(lambda: len(collector.spool) > 0 and collector.writer._inbox.empty(), what="spooling")
        assert stored_seqs(store, "trk-5") == []
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    wait_until(lambda: len(stored_seqs(store, "trk-5")) == 300, timeout_s=30, what="replay after the outage")
    assert stored_seqs(store, "trk-5") == list(range(300))
    wait_until(lambda: len(collector.spool) == 0, what="empty spool")


def test_full_spool_stops_acknowledging_and_nothing_is_dropped(settings, publisher, store, tmp_path):
    """Store down, spool full, collector killed: what it could not keep, the broker still has."""
    log = tmp_path / "collector.log"
    blocker = sqlite3.connect(_store_path(settings), isolation_level=None)
    collector = collector_process(settings, log, env={"TOWER_SPOOL_MAX_BYTES": "4000", "TOWER_BATCH_MAX": "20"})
    t0 = now_ms() - 600_000
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        _publish(publisher, t0, range(400))
        wait_until(lambda: b"spool full" in log.read_bytes(), timeout_s=30, what="a full spool")
        spooled = sum(p.stat().st_size for p in settings.spool_dir.glob("*.json"))
        assert 0 < spooled <= 4_000
        collector.kill()
        collector.wait()
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    collector = collector_process(settings, log)
    try:
        wait_until(lambda: len(stored_seqs(store, "trk-5")) == 400, timeout_s=60, what="all 400 after restart")
    finally:
        stop_process(collector)
    assert stored_seqs(store, "trk-5") == list(range(400))


def test_sigterm_flushes_and_exits_cleanly(settings, publisher, store, tmp_path):
    log = tmp_path / "collector.log"
    collector = collector_process(settings, log)
    t0 = now_ms() - 600_000
    _publish(publisher, t0, range(200))
    wait_until(lambda: len(stored_seqs(store, "trk-5")) == 200, what="200 stored")
    assert stop_process(collector, signal.SIGTERM) == 0
    last_line = log.read_text().strip().splitlines()[-1]
    assert "received=200 stored=200 dead_lettered=0" in last_line


def test_shared_subscription_splits_the_load(start_collector, publisher, store):
    first = start_collector(ingest_share_group="ingest", ingest_client_id="shared-a")
    second = start_collector(ingest_share_group="ingest", ingest_client_id="shared-b")
    _publish(publisher, now_ms() - 600_000, range(400))
    wait_until(lambda: len(stored_seqs(store, "trk-5")) == 400, what="400 stored by two collectors")
    assert first.stats.stored > 0 and second.stats.stored > 0
    assert first.stats.received + second.stats.received == 400  # each message went to one of them


def test_a_reading_the_store_refuses_is_dead_lettered_and_the_rest_stored(settings, store, tmp_path):
    """The writer on its own with a real store: a reading SQLite cannot hold (a seq beyond 64 bits, as
    decoders before the range check let through) is split off, the other 199 are stored."""
    acknowledged: list[Delivery] = []
    plans = PlanSink(LiveMaster(MasterStore(tmp_path / "master.db")), 1024)
    writer = Writer(store, Spool(tmp_path / "spool", 1_000_000), acknowledged.extend, settings, IngestStats(), plans)
    t0 = now_ms() - 600_000
    bad = Reading(DeviceKind.SHIPMENT, "trk-5", t0 + 137 * 100, {"lat": 50.0}, 2**70)
    readings = [bad if seq == 137 else Reading(DeviceKind.SHIPMENT, "trk-5", t0 + seq * 100, {"lat": 50.0}, seq)
                for seq in range(200)]  # fmt: skip
    writer.start()
    for mid, reading in enumerate(readings, start=1):
        writer.submit(Delivery(mid, 1, 0, now_ms(), Batch(readings=[reading])))
    wait_until(lambda: len(acknowledged) == 200, what="every message acknowledged")
    writer.stop()
    assert stored_seqs(store, "trk-5") == [seq for seq in range(200) if seq != 137]
    (letter,) = store.dead_letters()
    assert letter.topic == T and letter.reason.startswith("store refused: ")
    assert '"seq": 1180591620717411303424' in letter.payload
    assert (writer.stats.stored, writer.stats.dead_lettered, len(writer.spool)) == (199, 1, 0)
