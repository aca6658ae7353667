"""The fault drills of `make drills` in their short form: a collector killed three times, the broker
killed with the deployed configuration, SQLite locked, VictoriaMetrics stopped and the disk full,
each in the middle of a QoS 1 stream; nothing acknowledged is lost, nothing is stored twice."""

from __future__ import annotations

import os

import pytest

from benchmarks.drills import DRILLS
from benchmarks.drills.harness import SHORT


@pytest.mark.parametrize("name", list(DRILLS))
def test_drill_loses_nothing_and_stores_nothing_twice(name, tmp_path):
    result = DRILLS[name](tmp_path, SHORT)
    if result.detail.startswith("skipped"):
        if os.environ.get("CI"):
            pytest.fail(f"{name} {result.detail}")
        pytest.skip(result.detail)
    assert (result.published, result.acknowledged, result.stored) == (SHORT.readings,) * 3, result
    assert (result.lost, result.duplicated) == (0, 0), result
