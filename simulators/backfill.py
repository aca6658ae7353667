"""A simulation played straight into a store, and through the alert rules into an alert book, in
fast-forward: the messages the devices would publish, decoded and validated as the collector
does, without a broker or a clock. Seeds a dashboard with history (tests, benchmarks, screenshots).
"""

from __future__ import annotations

from collections.abc import Iterator

from alerts.backtest import replay
from alerts.book import AlertBook
from alerts.rules import RuleSet
from ingest.decode import Decoder
from simulators.engine import Simulation
from tower.contract import Reading
from tower.masterdata.model import PlanMessage
from tower.masterdata.store import MasterStore
from tower.store import Batch, Store

BATCH = 5_000


def decoded(simulation: Simulation) -> Iterator[tuple[int, Batch]]:
    """(publish time, decoded batch) of every message of the run, in publish order."""
    decoder = Decoder(max_payload_bytes=1 << 20, max_future_skew_ms=5 * 60_000, dead_letter_payload_bytes=1024)
    for message in simulation.messages():
        yield message.publish_ms, decoder.decode(message.topic, message.payload, message.publish_ms)


def arrivals(simulation: Simulation) -> Iterator[tuple[int, Reading | PlanMessage]]:
    """(publish time, plan message or reading) of the run, as the alert engine would see them."""
    for publish_ms, batch in decoded(simulation):
        yield from ((publish_ms, plan) for plan in batch.plans)
        yield from ((publish_ms, reading) for reading in batch.readings)


def backfill(simulation: Simulation, store: Store, rules: RuleSet, book: AlertBook, master: MasterStore) -> int:
    """Every message of the run into the store and the master data (the simulation's network and the
    plans it publishes), and through the rules into the book; readings stored."""
    stored = 0
    master.set_network(simulation.scenario.network(), f"scenario {simulation.scenario.name}")

    def items() -> Iterator[tuple[int, Reading | PlanMessage]]:
        nonlocal stored
        pending = Batch()
        for publish_ms, batch in decoded(simulation):
            yield from ((publish_ms, plan) for plan in batch.plans)  # applied to `master` by the replay
            pending.extend(Batch(batch.readings, batch.dead_letters, batch.statuses))
            yield from ((publish_ms, reading) for reading in batch.readings)
            if len(pending) >= BATCH:
                store.write(pending)
                stored, pending = stored + len(pending.readings), Batch()
        store.write(pending)
        stored += len(pending.readings)

    replay(rules, items(), master, simulation.end_ms, book)
    return stored
