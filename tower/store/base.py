"""The store interface every backend implements, and the types that cross it.

A store keeps readings by event time. A reading is identified by (device_id, ts): writing the
same identity again merges its fields (same field: last write wins), so redelivery is idempotent.
This is InfluxDB's point model, which the SQLite backend follows so both answer alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tower.contract import DeadLetter, DeviceKind, DeviceStatus, Reading, StatusChange
from tower.timeutil import now_ms

if TYPE_CHECKING:
    import pandas as pd

    from tower.masterdata.model import PlanMessage


class StoreUnavailable(Exception):
    """The store cannot take writes right now (down, locked, disk full); retrying later may work."""


class StoreRejected(Exception):
    """The store refuses something in this batch (a value it cannot hold): the same batch will fail
    again, so retrying or spooling it would stall every batch behind it. None of it was stored."""


@dataclass
class Batch:
    """What one durable write carries; it is stored entirely or not at all."""

    readings: list[Reading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    plans: list[PlanMessage] = field(default_factory=list)  # master data: applied before the store sees the batch

    def __len__(self) -> int:
        return len(self.readings) + len(self.dead_letters) + len(self.statuses) + len(self.plans)

    def extend(self, other: Batch) -> None:
        self.readings += other.readings
        self.dead_letters += other.dead_letters
        self.statuses += other.statuses
        self.plans += other.plans


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    kind: DeviceKind
    last_seen_ms: int | None  # event time of the newest reading
    status: DeviceStatus | None = None
    status_ms: int | None = None


@dataclass(frozen=True)
class RetentionResult:
    rolled_up_rows: int
    deleted_readings: int
    deleted_rollups: int
    deleted_dead_letters: int = 0


class Store(ABC):
    """Readings by event time, device registry, dead letters."""

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Durably store the batch, or raise StoreUnavailable or StoreRejected having stored none of it."""

    @abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """Every device seen, with kind, last event time and status."""

    def as_of_ms(self) -> int:
        """The newest event time in the store (the wall clock when it is empty): the "now" of every
        view of the data (dashboard, API, CLI), so a replay or a late backlog is judged at its own time."""
        return max((d.last_seen_ms for d in self.devices() if d.last_seen_ms is not None), default=now_ms())

    @abstractmethod
    def latest(self, kind: DeviceKind | None = None) -> pd.DataFrame:
        """The newest reading of each device: columns device_id, kind, ts, seq and the fields."""

    @abstractmethod
    def readings(
        self,
        device_id: str,
        fields: list[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        every_ms: int | None = None,
    ) -> pd.DataFrame:
        """Readings of one device in [since, until), ordered by ts; with every_ms, means per time bucket.

        Columns: ts (UTC), device_id, then one column per field (all fields the device reported
        in the range, or those asked for). Text fields are left out of downsampled results.
        """

    @abstractmethod
    def reading_count(self, since_ms: int, until_ms: int) -> int:
        """How many readings (all devices) have an event time in [since, until): the ingest rate."""

    @abstractmethod
    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        """The newest dead letters, oldest first."""

    @abstractmethod
    def apply_retention(
        self, now_ms: int, raw_days: float, rollup_days: float, dead_letter_days: float
    ) -> RetentionResult:
        """Roll raw readings older than raw_days into 1-minute means, drop rollups older than rollup_days
        and dead letters that arrived more than dead_letter_days ago."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections; the store is unusable afterwards."""
