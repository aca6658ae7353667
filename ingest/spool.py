"""A bounded on-disk FIFO of batches, for while the store is down.

One file per batch, written to a temporary name, fsynced and renamed, so a batch in the spool
survives a crash as surely as one in the store; that is what lets the collector acknowledge
spooled readings. Files are named by a counter, so replay follows arrival order.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from tower.contract import DeadLetter, DeviceKind, DeviceStatus, Reading, StatusChange
from tower.store import Batch

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class NoSpace(Exception):
    """The spool's file system is full: nothing was written; try again when space returns."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a write interrupted before its rename was never acknowledged
        self.directory = directory
        self.max_bytes = max_bytes
        self._files = sorted(directory.glob("*.json"))
        self._bytes = sum(path.stat().st_size for path in self._files)
        self._counter = int(self._files[-1].stem) + 1 if self._files else 0

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, batch: Batch) -> bool:
        """Durably add the batch; False (nothing written) when it would exceed the bound, NoSpace
        (nothing written) when the disk is full."""
        data = json.dumps(_to_json(batch), separators=(",", ":")).encode()
        if self._bytes + len(data) > self.max_bytes:
            return False
        path = self.directory / f"{self._counter:012d}.json"
        temporary = path.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.rename(path)
            _fsync_directory(self.directory)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            if error.errno in _NO_SPACE:
                raise NoSpace(f"{self.directory}: {error.strerror}") from error
            raise
        self._counter += 1
        self._files.append(path)
        self._bytes += len(data)
        return True

    def oldest(self) -> Batch | None:
        return _from_json(json.loads(self._files[0].read_bytes())) if self._files else None

    def remove_oldest(self) -> None:
        path = self._files.pop(0)
        self._bytes -= path.stat().st_size
        path.unlink()


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _to_json(batch: Batch) -> dict:
    return {
        "readings": [[r.kind.value, r.device_id, r.ts_ms, r.seq, r.fields] for r in batch.readings],
        "dead_letters": [[d.received_ms, d.topic, d.payload, d.reason] for d in batch.dead_letters],
        "statuses": [[s.kind.value, s.device_id, s.status.value, s.received_ms] for s in batch.statuses],
    }


def _from_json(data: dict) -> Batch:
    return Batch(
        readings=[Reading(DeviceKind(k), d, ts, f, seq) for k, d, ts, seq, f in data["readings"]],
        dead_letters=[DeadLetter(*row) for row in data["dead_letters"]],
        statuses=[StatusChange(DeviceKind(k), d, DeviceStatus(s), ms) for k, d, s, ms in data["statuses"]],
    )
