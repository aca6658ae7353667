"""Kept reads (dashboards/kept.py): fresh ones returned as they are, stale ones at once while they are
read again behind, too old ones and forgotten ones read anew, and what a read reads in turn fresh.
Time is moved by ageing what is kept (a test waits on nothing but the background read it starts)."""

from __future__ import annotations

import threading

import pytest

from dashboards import kept
from tests.conftest import wait_until


@pytest.fixture(autouse=True)
def forgotten():
    kept.expire()
    yield
    kept.expire()


def _age(seconds: float, read: str = "") -> None:
    """What is kept (of the read named, or all) becomes this much older."""
    with kept._lock:
        for key, (at, value) in list(kept._kept.items()):
            if key[0].endswith(read):
                kept._kept[key] = (at - seconds, value)


def test_fresh_reads_are_kept_and_stale_ones_returned_at_once_while_read_again():
    source = {"value": 1}
    calls = []
    go_on = threading.Event()

    @kept.live
    def read(name: str) -> list[int]:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            assert go_on.wait(10)
        return [source["value"]]

    assert read("a") == [1] and read("a") == [1] and len(calls) == 1  # fresh: read once
    read("a").append(99)
    assert read("a") == [1]  # a copy: no caller changes what others get
    source["value"] = 2
    _age(kept.FRESH_S + 1)
    assert read("a") == [1]  # stale: at once, while it is read again in the background (held)
    wait_until(lambda: len(calls) == 2, what="read again")
    assert read("a") == [1] and len(calls) == 2  # one reading again at a time
    assert calls[1].startswith("dashboard-reread")
    go_on.set()
    wait_until(lambda: read("a") == [2], what="the new read is kept")
    assert len(calls) == 2


def test_too_old_and_forgotten_reads_are_read_by_the_caller():
    source = {"value": 1}

    @kept.live
    def read() -> int:
        return source["value"]

    assert read() == 1
    source["value"] = 2
    _age(kept.STALE_S + 1)
    assert read() == 2  # too old to show: read anew, not in the background
    source["value"] = 3
    kept.expire()
    assert read() == 3  # a person's action: every page shows it at once


def test_a_read_begun_before_expire_is_not_kept():
    source = {"value": 1}
    reading, go_on = threading.Event(), threading.Event()

    @kept.live
    def read() -> int:
        value = source["value"]
        if threading.current_thread().name.startswith("dashboard-reread"):
            reading.set()
            assert go_on.wait(10)
        return value

    assert read() == 1
    _age(kept.FRESH_S + 1)
    assert read() == 1 and reading.wait(10)  # read again behind, seeing value 1
    source["value"] = 2
    kept.expire()  # the write happened while that read was under way
    go_on.set()
    wait_until(lambda: not kept._under_way, what="the background read is done")
    assert read() == 2


def test_what_a_read_reads_in_turn_is_fresh():
    source = {"inner": 1}

    @kept.live
    def inner() -> int:
        return source["inner"]

    @kept.live
    def outer() -> int:
        return inner() * 10

    assert outer() == 10
    source["inner"] = 2
    _age(kept.FRESH_S + 1, "inner")  # stale: a page would get it at once
    _age(kept.STALE_S + 1, "outer")  # too old: read anew, and with it inner, fresh
    assert outer() == 20
    assert inner() == 2


def test_a_read_made_ahead_is_waited_for_not_made_twice():
    calls = []
    started, go_on = threading.Event(), threading.Event()

    @kept.live
    def read() -> str:
        calls.append(threading.current_thread().name)
        started.set()
        assert go_on.wait(10)
        return "read"

    kept.read_ahead(read)
    assert started.wait(10)  # the background thread is reading
    kept.read_ahead(read)  # under way: not asked twice
    threading.Timer(0.2, go_on.set).start()
    assert read() == "read"  # waited for the read ahead
    assert len(calls) == 1 and calls[0].startswith("dashboard-reread")
    kept.read_ahead(read)  # kept: nothing to do
    assert len(calls) == 1
