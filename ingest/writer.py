"""The writer thread: commits decoded messages in batches and only then acknowledges them.

The network thread hands over Deliveries and never waits. Here a batch goes to the store; if the
store is unavailable it goes to the spool; if the spool is full it stays pending, unacknowledged,
so the broker stops sending once our receive window is full (back-pressure, never a drop).
While the spool holds anything, new batches queue behind it so replay keeps arrival order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.plan_sink import PlanSink
from ingest.spool import Spool
from tower.config import Settings
from tower.store import Batch, Store, StoreUnavailable
from tower.timeutil import now_ms

log = logging.getLogger("tower.ingest")
_POLL_S = 0.005  # how often a lingering batch looks for more deliveries


@dataclass(frozen=True, slots=True)
class Delivery:
    """One MQTT message, decoded: what to store and how to acknowledge it."""

    mid: int
    qos: int
    generation: int  # connection it arrived on; a mid means nothing on another connection
    received_ms: int
    batch: Batch


@dataclass
class IngestStats:
    received: int = 0  # messages, counted by the network thread
    stored: int = 0  # readings, counted by the writer from here on
    dead_lettered: int = 0
    max_lag_ms: int = 0  # arrival to durable, worst in the current interval
    last_stored: int = field(default=0, repr=False)

    def line(self, spool: Spool, queued: int, interval_s: float) -> str:
        rate = (self.stored - self.last_stored) / interval_s if interval_s > 0 else 0.0
        self.last_stored = self.stored
        text = (
            f"ingest: received={self.received} stored={self.stored} dead_lettered={self.dead_lettered} "
            f"rate={rate:.0f}/s lag_ms={self.max_lag_ms} queued={queued} spooled_batches={len(spool)}"
        )
        self.max_lag_ms = 0
        return text


class Writer(threading.Thread):
    def __init__(
        self,
        store: Store,
        spool: Spool,
        acknowledge: Callable[[list[Delivery]], None],
        settings: Settings,
        stats: IngestStats,
        plans: PlanSink,
    ) -> None:
        super().__init__(name="ingest-writer", daemon=True)
        self.store, self.spool, self.acknowledge, self.settings, self.stats = (
            store,
            spool,
            acknowledge,
            settings,
            stats,
        )
        self.plans = plans
        self._inbox: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._store_down_since: float | None = None
        self.failure: BaseException | None = None

    def submit(self, delivery: Delivery) -> None:
        """Called from the network thread: never blocks."""
        self._inbox.put(delivery)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Persist and acknowledge everything submitted so far, then end the thread."""
        self._stopping.set()
        self._inbox.put(None)
        self.join(timeout_s)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # a bug, not an outage: stop acking, let the process exit
            self.failure = error
            log.exception("ingest writer failed; unacknowledged messages stay with the broker")

    def _loop(self) -> None:
        settings = self.settings
        pending: list[Delivery] = []
        retry_delay = 0.0
        next_stats = time.monotonic() + settings.stats_interval_s
        next_retention = time.monotonic()
        last_stats = time.monotonic()
        while True:
            self._collect(pending, block=not pending, wait_s=max(retry_delay, settings.batch_linger_ms / 1000))
            stopping = self._stopping.is_set()
            if pending:
                if self._persist(pending):
                    self.acknowledge(pending)
                    pending = []
                    retry_delay = 0.0
                else:
                    retry_delay = min(max(retry_delay * 2, 0.2), 5.0)
                    if stopping:
                        log.warning("stopping with %d messages unacknowledged; the broker keeps them", len(pending))
            elif len(self.spool):
                self._drain_spool()
            if stopping and (not pending or retry_delay):
                return
            now = time.monotonic()
            if now >= next_retention:
                self._apply_retention()
                next_retention = now + settings.retention_interval_s
            if now >= next_stats:
                log.info(self.stats.line(self.spool, self._inbox.qsize() + len(pending), now - last_stats))
                last_stats, next_stats = now, now + settings.stats_interval_s

    def _collect(self, pending: list[Delivery], block: bool, wait_s: float) -> None:
        """Gather deliveries until a batch is full or the linger time has passed.

        Waits by short sleeps rather than a blocking get per message: a get that blocks makes every
        put wake this thread, a context switch per message that halves the collector's throughput.
        """
        count = sum(len(d.batch) for d in pending)
        if block:
            try:
                first = self._inbox.get(timeout=1.0)
            except queue.Empty:
                return
            if first is None:
                return
            pending.append(first)
            count += len(first.batch)
        deadline = time.monotonic() + wait_s
        while count < self.settings.batch_max:
            try:
                delivery = self._inbox.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                time.sleep(min(remaining, _POLL_S))
                continue
            if delivery is None:
                return
            pending.append(delivery)
            count += len(delivery.batch)

    def _persist(self, pending: list[Delivery]) -> bool:
        batch = Batch()
        for delivery in pending:
            batch.extend(delivery.batch)
        self.plans.apply(batch)  # master data first: refused plans become dead letters of this batch
        if len(self.spool):
            self._drain_spool()  # catch up first: replay keeps arrival order
        written = len(self.spool) == 0 and self._write(batch)
        if not written:
            written = self.spool.append(batch)
            if not written:
                log.warning("store down and spool full (%d bytes): not acknowledging", self.spool.size_bytes)
        if written:
            self.stats.stored += len(batch.readings)
            self.stats.dead_lettered += len(batch.dead_letters)
            lag = now_ms() - min(d.received_ms for d in pending)
            self.stats.max_lag_ms = max(self.stats.max_lag_ms, lag)
        return written

    def _write(self, batch: Batch) -> bool:
        try:
            self.store.write(batch)
        except StoreUnavailable as error:
            if self._store_down_since is None:
                self._store_down_since = time.monotonic()
                log.warning("store unavailable, spooling to %s: %s", self.spool.directory, error)
            return False
        if self._store_down_since is not None:
            log.info("store back after %.1f s", time.monotonic() - self._store_down_since)
            self._store_down_since = None
        return True

    def _drain_spool(self) -> None:
        while (batch := self.spool.oldest()) is not None and self._write(batch):
            self.spool.remove_oldest()

    def _apply_retention(self) -> None:
        try:
            result = self.store.apply_retention(
                now_ms(), self.settings.raw_retention_days, self.settings.rollup_retention_days
            )
        except StoreUnavailable as error:
            log.warning("retention skipped: %s", error)
            return
        if result.deleted_readings or result.deleted_rollups:
            log.info("retention: %s", result)
