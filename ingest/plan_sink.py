"""Applies the plan messages of a batch to the master data store before the batch is stored; a
plan the master data refuses (unknown lane, site or cargo type; a status event for an unknown or
finished shipment) becomes a dead letter in the same batch, with the reason.

Applying is idempotent (the same plan again changes nothing), so a plan redelivered after a crash
between this and the acknowledgement is harmless. With a network file configured the collector
follows it too, so a plan for a lane just added to the file is not refused for want of a reload.
"""

from __future__ import annotations

import logging
import sqlite3

from tower.contract import DeadLetter
from tower.masterdata.live import LiveMaster
from tower.masterdata.model import PlanMessage
from tower.masterdata.store import MasterDataError
from tower.store import Batch

log = logging.getLogger("tower.ingest")


class PlanSink:
    def __init__(self, master: LiveMaster, dead_letter_payload_bytes: int) -> None:
        self.master = master
        self.payload_bytes = dead_letter_payload_bytes

    def apply(self, batch: Batch) -> bool:
        """Take the batch's plans into the master data; refused ones join its dead letters. False:
        the master data store is unavailable (locked, disk full): nothing may be acknowledged yet."""
        try:
            if batch.plans:
                self.master.current()  # a changed network file first: a plan may need its new lane
            for message in list(batch.plans):
                self._apply(batch, message)
        except sqlite3.Error as error:
            log.warning("master data store unavailable, plans wait: %s", error)
            return False
        batch.plans = []
        return True

    def _apply(self, batch: Batch, message: PlanMessage) -> None:
        try:
            changed = self.master.store.apply(message)
        except MasterDataError as reason:
            kept = message.payload[: self.payload_bytes].decode("utf-8", errors="backslashreplace")
            batch.dead_letters.append(DeadLetter(message.received_ms, message.topic, kept, str(reason)))
            return
        if changed:
            log.info("master data: shipment %s from %s", message.shipment_id, message.topic)
