"""The master data store: the network and every shipment, kept durably in SQLite
(`$TOWER_DATA_DIR/master.db`, next to the alert book) and versioned.

Every change that changes something bumps one revision counter and is written to `changes` (what,
which, from where); a write that changes nothing (a retained plan delivered again, the same network
file read again) changes no revision. Readers poll `revision()` (one indexed read) and take a new
`MasterData` snapshot only when it moved, so the engine, the dashboard, the API and the CLI work
from the same revision within a poll of each other. Writers are other processes too (the
collector for MQTT plans, the API, the CLI); each write is one IMMEDIATE transaction.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tower import sqlitedb
from tower.domain import ShipmentStatus
from tower.masterdata.files import load_network_file
from tower.masterdata.model import Network, PlanMessage, Shipment, StatusEvent
from tower.masterdata.view import MasterData
from tower.timeutil import now_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS network (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1), doc TEXT NOT NULL, digest TEXT NOT NULL,
    source TEXT NOT NULL, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (
    id TEXT PRIMARY KEY, doc TEXT NOT NULL, tracker TEXT NOT NULL, status TEXT NOT NULL,
    departure_ms INTEGER NOT NULL, promised_ms INTEGER NOT NULL, revision INTEGER NOT NULL, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS shipments_by_tracker ON shipments (tracker);
CREATE TABLE IF NOT EXISTS changes (
    revision INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, what TEXT NOT NULL,
    subject TEXT NOT NULL, source TEXT NOT NULL);
"""
_ORDER = {ShipmentStatus.PLANNED: 0, ShipmentStatus.DEPARTED: 1, ShipmentStatus.DELIVERED: 2,
          ShipmentStatus.CANCELLED: 3}  # fmt: skip


# A shipment nobody reported delivered or cancelled counts as on its way until a day past its promise
# (a tracker's arrival is the engine's to see, not the master data's).
STILL_ACTIVE_MS = 24 * 3_600_000


class MasterDataError(ValueError):
    """A change the master data cannot take; str() says why (a dead-letter reason, an API 422, a CLI line)."""


class MasterStore:
    def __init__(self, path: Path | str) -> None:
        self.db = sqlitedb.connect(path, synchronous="FULL")
        self.db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._snapshot: MasterData | None = None

    def close(self) -> None:
        self.db.close()

    # -- reading ----------------------------------------------------------------------------------

    def revision(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COALESCE(MAX(revision), 0) FROM changes").fetchone()[0]

    def snapshot(self) -> MasterData:
        """The current revision, resolved (cached until the revision moves)."""
        revision = self.revision()
        if self._snapshot is None or self._snapshot.revision != revision:
            with self._lock:
                network = self._network()
                shipments = {row[0]: Shipment.model_validate_json(row[1])
                             for row in self.db.execute("SELECT id, doc FROM shipments")}  # fmt: skip
            self._snapshot = MasterData(network, shipments, revision)
        return self._snapshot

    def shipment(self, shipment_id: str) -> Shipment | None:
        with self._lock:
            row = self.db.execute("SELECT doc FROM shipments WHERE id=?", (shipment_id,)).fetchone()
        return Shipment.model_validate_json(row[0]) if row else None

    def shipments(self, status: str | None = None, limit: int = 100_000, offset: int = 0) -> list[Shipment]:
        """Shipments by planned departure, newest first; of one status if given; `offset` pages on."""
        where, params = ("WHERE status=?", (status,)) if status else ("", ())
        with self._lock:
            rows = self.db.execute(f"SELECT doc FROM shipments {where} ORDER BY departure_ms DESC, id LIMIT ? OFFSET ?",
                                   (*params, limit, offset)).fetchall()  # fmt: skip
        return [Shipment.model_validate_json(row[0]) for row in rows]

    def changes(self, limit: int = 100) -> list[dict]:
        """The newest changes (revision, at_ms, what, subject, source), newest first."""
        with self._lock:
            rows = self.db.execute("SELECT revision, at_ms, what, subject, source FROM changes "
                                   "ORDER BY revision DESC LIMIT ?", (limit,)).fetchall()  # fmt: skip
        return [dict(zip(("revision", "at_ms", "what", "subject", "source"), row, strict=True)) for row in rows]

    # -- writing ----------------------------------------------------------------------------------

    def set_network(self, network: Network, source: str) -> bool:
        """Replace the network; False if it is the one already held. MasterDataError if the new network
        lacks a lane, site or cargo type a shipment still on its way needs (planned or departed, and
        promised less than STILL_ACTIVE_MS ago): an edit must not silently end the tracking of trucks on
        the road; finish or cancel them first."""
        doc = network.model_dump_json()
        digest = hashlib.sha256(doc.encode()).hexdigest()
        with self._tx():
            row = self.db.execute("SELECT digest FROM network").fetchone()
            if row and row[0] == digest:
                return False
            orphaned = [
                (shipment.id, problem) for shipment in self._active() if (problem := network.problem_with(shipment))
            ]
            if orphaned:
                named = ", ".join(shipment_id for shipment_id, _ in orphaned[:5])
                more = f" and {len(orphaned) - 5} more" if len(orphaned) > 5 else ""
                raise MasterDataError(
                    f"{source}: {len(orphaned)} active shipment(s) would lose their route or cargo type "
                    f"({named}{more}: {orphaned[0][1]}); finish or cancel them first"
                )
            revision = self._change("network", "network", source)
            self.db.execute("INSERT OR REPLACE INTO network VALUES (1, ?, ?, ?, ?)", (doc, digest, source, revision))
        return True

    def sync_network_file(self, path: Path | str) -> bool:
        """Load a network file (or a scenario's network part); True if that changed the network.
        A bad file raises FileError (`file:line: problem`) and leaves the network as it was."""
        return self.set_network(load_network_file(path), str(path))

    def put_shipments(self, shipments: list[Shipment], source: str) -> int:
        """Create or update shipments, all or none: MasterDataError names the first that cannot be
        taken. How many changed."""
        changed = 0
        with self._tx():
            network = self._network()
            for shipment in shipments:
                changed += self._put(network, shipment, source)
        return changed

    def put_shipment(self, shipment: Shipment, source: str) -> bool:
        return self.put_shipments([shipment], source) > 0

    def apply(self, message: PlanMessage) -> bool:
        """A plan or status event that arrived as a message; MasterDataError if it is refused."""
        source = f"mqtt:{message.topic}"
        if message.shipment is not None:
            return self.put_shipment(message.shipment, source)
        return self.apply_status(message.shipment_id, message.event, source)

    def apply_status(self, shipment_id: str, event: StatusEvent, source: str) -> bool:
        """The owner's status event (departed, delivered, cancelled); False if it changed nothing."""
        with self._tx():
            current = self._shipment(shipment_id)
            if current is None:
                raise MasterDataError(f"unknown shipment '{shipment_id}'; send its plan first")
            try:
                updated = event.applied_to(current)
            except ValueError as problem:
                raise MasterDataError(str(problem)) from None
            return self._write(updated, source, f"shipment {event.status}") > 0

    # -- internals --------------------------------------------------------------------------------

    def _put(self, network: Network, shipment: Shipment, source: str) -> int:
        problem = network.problem_with(shipment)
        if problem:
            raise MasterDataError(f"shipment {shipment.id}: {problem}")
        current = self._shipment(shipment.id)
        if current is not None:
            if current.tracker != shipment.tracker and current.status is not ShipmentStatus.PLANNED:
                raise MasterDataError(f"shipment {shipment.id} is {current.status}; its tracker cannot change now")
            shipment = _keep_progress(current, shipment)
        return self._write(shipment, source, "shipment created" if current is None else "shipment updated")

    def _write(self, shipment: Shipment, source: str, what: str) -> int:
        doc = shipment.model_dump_json()
        row = self.db.execute("SELECT doc FROM shipments WHERE id=?", (shipment.id,)).fetchone()
        if row and row[0] == doc:
            return 0
        revision = self._change(what, shipment.id, source)
        self.db.execute(
            "INSERT OR REPLACE INTO shipments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (shipment.id, doc, shipment.tracker, shipment.status.value, shipment.departure, shipment.promised,
             revision, source),
        )  # fmt: skip
        return 1

    def _active(self) -> list[Shipment]:
        rows = self.db.execute("SELECT doc FROM shipments WHERE status IN (?, ?) AND promised_ms > ?",
                               (ShipmentStatus.PLANNED.value, ShipmentStatus.DEPARTED.value,
                                now_ms() - STILL_ACTIVE_MS))  # fmt: skip
        return [Shipment.model_validate_json(row[0]) for row in rows]

    def _shipment(self, shipment_id: str) -> Shipment | None:
        row = self.db.execute("SELECT doc FROM shipments WHERE id=?", (shipment_id,)).fetchone()
        return Shipment.model_validate_json(row[0]) if row else None

    def _network(self) -> Network:
        row = self.db.execute("SELECT doc FROM network").fetchone()
        return Network.model_validate_json(row[0]) if row else Network()

    def _change(self, what: str, subject: str, source: str) -> int:
        cursor = self.db.execute("INSERT INTO changes (at_ms, what, subject, source) VALUES (?, ?, ?, ?)",
                                 (now_ms(), what, subject, source))  # fmt: skip
        return cursor.lastrowid

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock, sqlitedb.write_transaction(self.db):
            yield


def _keep_progress(current: Shipment, incoming: Shipment) -> Shipment:
    """A plan sent again (a retained message, a re-import) does not take a shipment back: status
    only moves forward, and reported departure/delivery times stay."""
    if _ORDER[incoming.status] >= _ORDER[current.status]:
        return incoming.model_copy(update={"departed": incoming.departed or current.departed,
                                           "delivered": incoming.delivered or current.delivered})  # fmt: skip
    return incoming.model_copy(update={"status": current.status, "departed": current.departed,
                                       "delivered": current.delivered, "note": current.note})  # fmt: skip
