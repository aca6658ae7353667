"""The writer thread: commits decoded messages in batches and only then acknowledges them.

The network thread hands over Deliveries and never waits. Here a batch goes to the store; if the
store is unavailable it goes to the spool; if the spool is full (its bound, or the disk) it stays
pending, unacknowledged, so the broker stops sending once our receive window is full
(back-pressure, never a drop), and is retried until there is room again.
While the spool holds anything, new batches queue behind it so replay keeps arrival order.
A batch the store refuses (a value it cannot hold) is split until the refused readings are
found; they become dead letters and the rest is stored: one bad reading never stalls the stream.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.dead_letter_cap import DeadLetterCap
from ingest.plan_sink import PlanSink
from ingest.spool import NoSpace, Spool
from tower.config import Settings
from tower.contract import DeadLetter, Reading, telemetry_topic
from tower.store import Batch, Store, StoreRejected, StoreUnavailable
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
    stored: int = 0  # readings the store confirmed, counted by the writer from here on
    dead_lettered: int = 0  # dead letters the store confirmed
    over_cap: int = 0  # dead letters counted but not kept (TOWER_DEAD_LETTER_CAP)
    max_lag_ms: int = 0  # arrival to durable, worst in the current interval
    paused: str = "-"  # why nothing is acknowledged right now: spool-full, disk-full
    last_stored: int = field(default=0, repr=False)

    def line(self, spool: Spool, queued: int, interval_s: float) -> str:
        rate = (self.stored - self.last_stored) / interval_s if interval_s > 0 else 0.0
        self.last_stored = self.stored
        text = (
            f"ingest: received={self.received} stored={self.stored} dead_lettered={self.dead_lettered} "
            f"rate={rate:.0f}/s lag_ms={self.max_lag_ms} queued={queued} spooled_batches={len(spool)} "
            f"over_cap={self.over_cap} paused={self.paused}"
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
        self._paused_since: float | None = None
        self.cap = DeadLetterCap(settings.dead_letter_cap, int(settings.dead_letter_cap_window_s * 1000))
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
            wall = now_ms()
            if summaries := self.cap.roll(wall):  # stored like a message of its own, never acknowledged
                pending.append(Delivery(0, 0, -1, wall, Batch(dead_letters=summaries)))
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
            count += self._take(first, pending)
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
            count += self._take(delivery, pending)

    def _take(self, delivery: Delivery, pending: list[Delivery]) -> int:
        if delivery.batch.dead_letters:
            delivery.batch.dead_letters = self.cap.admit(delivery.batch.dead_letters)
            self.stats.over_cap = self.cap.over_cap
        pending.append(delivery)
        return len(delivery.batch)

    def _persist(self, pending: list[Delivery]) -> bool:
        batch = Batch()
        for delivery in pending:
            batch.extend(delivery.batch)
        if not self.plans.apply(batch):  # master data first: refused plans become dead letters of this batch
            return False
        if len(self.spool):
            self._drain_spool()  # catch up first: replay keeps arrival order
        written = len(self.spool) == 0 and self._write(batch)
        if not written:
            written = self._spool(batch)
        if written:
            lag = now_ms() - min(d.received_ms for d in pending)
            self.stats.max_lag_ms = max(self.stats.max_lag_ms, lag)
        return written

    def _spool(self, batch: Batch) -> bool:
        try:
            if self.spool.append(batch):
                self._pause(None)
                return True
            self._pause("spool-full", f"store down and spool full ({self.spool.size_bytes} bytes)")
        except NoSpace as error:
            self._pause("disk-full", f"store down and disk full ({error})")
        return False

    def _pause(self, reason: str | None, detail: str = "") -> None:
        """Log when acknowledging stops and when it resumes; the stats line shows the reason meanwhile."""
        if reason is not None and self.stats.paused != reason:
            self._paused_since = self._paused_since or time.monotonic()
            log.warning("%s: not acknowledging; the broker keeps the messages; retrying until there is room", detail)
        elif reason is None and self._paused_since is not None:
            log.info("acknowledging again after %.1f s (%s)", time.monotonic() - self._paused_since, self.stats.paused)
            self._paused_since = None
        self.stats.paused = reason or "-"

    def _write(self, batch: Batch) -> bool:
        """Store the batch (less what the store refuses); False if the store is unavailable."""
        try:
            self._write_splitting(batch)
        except StoreUnavailable as error:
            if self._store_down_since is None:
                self._store_down_since = time.monotonic()
                log.warning("store unavailable, spooling to %s: %s", self.spool.directory, error)
            return False
        if self._store_down_since is not None:
            log.info("store back after %.1f s", time.monotonic() - self._store_down_since)
            self._store_down_since = None
        self._pause(None)
        return True

    def _write_splitting(self, batch: Batch) -> None:
        """Halve a refused batch until each refused reading stands alone: log2(batch) extra writes per
        bad reading, none at all while every reading is good."""
        try:
            self.store.write(batch)
        except StoreRejected as refusal:
            if len(batch.readings) > 1:
                half = len(batch.readings) // 2
                self._write_splitting(Batch(batch.readings[:half], batch.dead_letters, batch.statuses))
                self._write_splitting(Batch(batch.readings[half:]))
            elif batch.readings:
                letter = self._refused(batch.readings[0], str(refusal))
                self._write_splitting(Batch([], [*batch.dead_letters, letter], batch.statuses))
            else:
                log.error("the store refused dead letters or statuses, which are dropped: %s", refusal)
            return
        self.stats.stored += len(batch.readings)
        self.stats.dead_lettered += len(batch.dead_letters)

    def _refused(self, reading: Reading, reason: str) -> DeadLetter:
        fields = {"ts": reading.ts_ms, "seq": reading.seq, **reading.fields}
        payload = json.dumps(fields, default=str)[: self.settings.dead_letter_payload_bytes]
        log.warning("store refused a reading of %s: %s", reading.device_id, reason)
        topic = telemetry_topic(reading.kind, reading.device_id)
        return DeadLetter(now_ms(), topic, payload, f"store refused: {reason}")

    def _drain_spool(self) -> None:
        while (batch := self.spool.oldest()) is not None and self._write(batch):
            self.spool.remove_oldest()

    def _apply_retention(self) -> None:
        try:
            settings = self.settings
            result = self.store.apply_retention(
                now_ms(),
                settings.raw_retention_days,
                settings.rollup_retention_days,
                settings.dead_letter_retention_days,
            )
        except StoreUnavailable as error:
            log.warning("retention skipped: %s", error)
            return
        if result.deleted_readings or result.deleted_rollups or result.deleted_dead_letters:
            log.info("retention: %s", result)
