"""Master data for a long-running service (the alert engine, the dashboard, the API): the store's
current revision, looked up at most once per `poll_s`, and the configured network file loaded into
the store whenever it changes on disk. A bad network file is logged once (`file:line: problem`)
and the network stays as it was, so a typo never takes the tower's sites away.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tower.masterdata.store import MasterDataError, MasterStore
from tower.masterdata.view import MasterData
from tower.yamlfile import FileError, file_state

log = logging.getLogger("tower.masterdata")


class LiveMaster:
    def __init__(self, store: MasterStore, network_file: Path | None = None, poll_s: float = 1.0) -> None:
        self.store, self.network_file, self.poll_s = store, network_file, poll_s
        self._file_state: tuple[int, int] | None = None
        self._checked = -float("inf")
        self._current: MasterData | None = None

    def current(self) -> MasterData:
        now = time.monotonic()
        if self._current is None or now - self._checked >= self.poll_s:
            self._checked = now
            self._follow_file()
            self._current = self.store.snapshot()
        return self._current

    def _follow_file(self) -> None:
        if self.network_file is None:
            return
        try:
            state = file_state(self.network_file)
        except OSError as problem:
            state = (-1, -1)
            if self._file_state != state:
                log.error("network file %s: %s; keeping the network as it was", self.network_file, problem.strerror)
            self._file_state = state
            return
        if state == self._file_state:
            return
        self._file_state = state
        try:
            if self.store.sync_network_file(self.network_file):
                log.info("network reloaded from %s (revision %d)", self.network_file, self.store.revision())
        except (FileError, MasterDataError) as problem:
            log.error("%s; keeping the network as it was", problem)
