"""Live reads kept for every session of the dashboard process, stale-while-revalidate.

A read younger than FRESH_S is returned as it is. An older one, up to STALE_S, is returned at once
while one background thread reads it again (a moment later, once the page is drawn), so opening a
page never waits on the store for what any session read in the last minute; the page's live part
shows the new read at its next refresh (the sidebar's "as of" says how old what is shown is).
Older than STALE_S, or after `expire()` (a person's action), the caller reads it anew. What a read
reads in turn through other kept reads is fresh, so no read is made from stale parts, and a read
begun before `expire()` is not kept.

`read_ahead` has the background thread make a read before anyone asks (the start page's, while
someone signs in); a caller asking for it meanwhile waits for that read instead of making its own.

Callers get a deep copy of what is kept (as Streamlit's caches give), so no page changes another's.
Nothing here touches Streamlit: the background thread has no session, and Streamlit warns whenever
its caches are used from such a thread.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

FRESH_S = 5  # the live parts of every page refresh on this rhythm
STALE_S = 60  # a page opened may show a read this old until its first refresh
REREAD_AFTER_S = 1.0  # a stale read is read again this long after it was asked for: the page first

log = logging.getLogger("tower.dashboard")
P = ParamSpec("P")
R = TypeVar("R")

_kept: dict[tuple, tuple[float, object]] = {}  # (read, *arguments) -> (monotonic time read, value)
_lock = threading.Lock()
_generation = 0  # counts expire() calls
_under_way: dict[tuple, tuple[Future, bool]] = {}  # reads under way in the background: whether read ahead
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-reread")
_inside = threading.local()  # .reading: a read is running in this thread (what it reads must be fresh)


def expire() -> None:
    """Forget every read (after a write, so that every page shows it at once)."""
    global _generation
    with _lock:
        _kept.clear()
        _generation += 1


def live(read: Callable[P, R]) -> Callable[P, R]:
    """A kept read; its positional arguments are hashable (keyword arguments are not taken)."""

    @functools.wraps(read)
    def kept(*args: P.args) -> R:
        key = (read.__qualname__, *args)
        with _lock:
            found = _kept.get(key)
        age = time.monotonic() - found[0] if found else STALE_S
        if age < FRESH_S:
            return copy.deepcopy(found[1])
        if age < STALE_S and not getattr(_inside, "reading", False):
            _in_background(key, read, args, REREAD_AFTER_S, False)
            return copy.deepcopy(found[1])
        with _lock:
            under_way, ahead = _under_way.get(key, (None, False))
        if ahead and not getattr(_inside, "reading", False) and under_way.result():  # read ahead: wait for it
            with _lock:
                found = _kept.get(key)
            if found is not None:
                return copy.deepcopy(found[1])
        return copy.deepcopy(_read(key, read, args))

    return kept


def read_ahead(kept: Callable[P, R], *args: P.args) -> None:
    """Has the background thread make a kept read now, unless it is kept or under way (a page that is
    about to be asked for: the start page while someone signs in); its caller then waits for it."""
    read = kept.__wrapped__  # type: ignore[attr-defined]
    key = (read.__qualname__, *args)
    with _lock:
        if key in _kept:
            return
    _in_background(key, read, args, 0.0, True)


def _read(key: tuple, read: Callable, args: tuple) -> object:
    began, outer = _generation, getattr(_inside, "reading", False)
    _inside.reading = True
    try:
        value = read(*args)
    finally:
        _inside.reading = outer
    now = time.monotonic()
    with _lock:
        if _generation == began:
            _kept[key] = (now, value)
        for old in [k for k, (at, _) in _kept.items() if now - at > STALE_S]:
            del _kept[old]
    return value


def _in_background(key: tuple, read: Callable, args: tuple, after_s: float, ahead: bool) -> None:
    """Read in the background thread after_s from now (once at a time per read and arguments)."""
    due = time.monotonic() + after_s

    def reread() -> bool:
        time.sleep(max(0.0, due - time.monotonic()))
        try:
            _read(key, read, args)
            return True
        except Exception:
            log.exception("dashboard: reading %s in the background failed (pages keep the last read)", key[0])
            return False
        finally:
            with _lock:
                _under_way.pop(key, None)

    with _lock:
        if key not in _under_way:
            _under_way[key] = (_background.submit(reread), ahead)
