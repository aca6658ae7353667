"""What the API reads and writes, opened once per process: the master data store (followed live,
with the network file when one is configured), the alert book, the readings store (only for "as
of": the newest event time, as the dashboard takes it) and which rules say late or out of range.

Where a shipment stands is alerts.shipment_view's answer, the dashboard's: from the plan, the
engine's tracking of it and its active alerts, judged "as of" the newest reading in the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alerts.book import AlertBook
from alerts.rules import load_rules
from alerts.shipment_view import RuleRoles, ShipmentView, shipment_views
from tower.config import Settings
from tower.masterdata.live import LiveMaster
from tower.masterdata.model import Shipment
from tower.masterdata.store import MasterStore
from tower.masterdata.view import MasterData
from tower.store import open_store

AS_OF_TTL_S = 1.0  # "as of" scans the device registry; once a second is fresh enough for a reading's time


class Backend:
    def __init__(self, settings: Settings) -> None:
        self.master = MasterStore(settings.master_db)
        self.live = LiveMaster(self.master, settings.network)
        self.book = AlertBook(settings.alerts_db)
        self.store = open_store(settings.store, settings)
        self.roles = RuleRoles.of(load_rules(settings.alert_rules))
        self._book_lock = threading.Lock()  # one SQLite connection; its transactions must not interleave
        self.write_lock = threading.Lock()  # create-if-absent is a check and a write
        self._as_of: tuple[float, int] | None = None

    def close(self) -> None:
        self.master.close()
        self.book.close()
        self.store.close()

    @contextmanager
    def alert_book(self) -> Iterator[AlertBook]:
        with self._book_lock:
            yield self.book

    def network(self) -> MasterData:
        """The current revision (the network file, if configured, followed)."""
        return self.live.current()

    def as_of(self) -> int:
        """Store.as_of_ms, read at most once every AS_OF_TTL_S."""
        checked = time.monotonic()
        if self._as_of is None or checked - self._as_of[0] >= AS_OF_TTL_S:
            self._as_of = (checked, self.store.as_of_ms())
        return self._as_of[1]

    def judge(self, shipments: list[Shipment], as_of: int) -> Judgement:
        """Where each shipment stands, for those the network can resolve; why not, for the others."""
        network = self.network().network
        problems = {s.id: problem for s in shipments if (problem := network.problem_with(s)) is not None}
        plans = MasterData(network, {s.id: s for s in shipments if s.id not in problems}).plans
        with self.alert_book() as book:
            tracking = book.tracking()
            alerts = [a for a in book.alerts("open", limit=1_000_000) if a["entity"] in plans]
        views = shipment_views(plans, {i: tracking[i] for i in plans if i in tracking}, alerts, self.roles, as_of)
        by_shipment: dict[str, list[dict]] = {}
        for alert in alerts:
            by_shipment.setdefault(alert["entity"], []).append(alert)
        return Judgement({view.shipment: view for view in views}, problems, by_shipment)


@dataclass(frozen=True)
class Judgement:
    views: dict[str, ShipmentView]  # by shipment id
    problems: dict[str, str]  # why a shipment cannot be tracked, by shipment id
    open_alerts: dict[str, list[dict]]  # alert book rows, most severe first, by shipment id
