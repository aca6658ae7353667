"""The spool on its own: arrival order, its bound, and batches that survive a restart."""

from __future__ import annotations

from ingest.spool import Spool
from tower.contract import DeadLetter, DeviceKind, DeviceStatus, Reading, StatusChange
from tower.store import Batch


def _batch(seq: int) -> Batch:
    return Batch(
        readings=[Reading(DeviceKind.SHIPMENT, "trk-1", 1_790_000_000_000 + seq, {"lat": 1.0, "door_open": True}, seq)],
        dead_letters=[DeadLetter(1, "t", "p", f"r{seq}")],
        statuses=[StatusChange(DeviceKind.SHIPMENT, "trk-1", DeviceStatus.ONLINE, 2)],
    )


def test_batches_come_back_in_order_and_intact_after_a_restart(tmp_path):
    spool = Spool(tmp_path, max_bytes=1_000_000)
    for seq in range(3):
        assert spool.append(_batch(seq))
    (tmp_path / "000000000099.tmp").write_text("half-written")  # a crash before the rename
    reopened = Spool(tmp_path, max_bytes=1_000_000)
    assert len(reopened) == 3 and not list(tmp_path.glob("*.tmp"))
    assert reopened.oldest() == _batch(0)
    reopened.remove_oldest()
    assert reopened.oldest() == _batch(1)
    assert reopened.append(_batch(3))  # numbering continues after the restart
    seen = []
    while (batch := reopened.oldest()) is not None:
        seen.append(batch.readings[0].seq)
        reopened.remove_oldest()
    assert seen == [1, 2, 3] and reopened.size_bytes == 0


def test_a_full_spool_refuses_and_writes_nothing(tmp_path):
    spool = Spool(tmp_path, max_bytes=600)
    accepted = 0
    while spool.append(_batch(accepted)):
        accepted += 1
    assert accepted >= 1 and spool.size_bytes <= 600
    assert len(list(tmp_path.glob("*.json"))) == accepted
