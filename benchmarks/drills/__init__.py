"""Fault drills as code: real processes, a real broker and store, one thing broken at a time.

Each drill returns a DrillResult (published / acknowledged by the broker / stored / lost /
duplicated; the alert engine drill counts alerts and notifications against its reference instead
of stored readings); `make drills` runs them all at full size and prints the table,
tests/test_drills.py runs the short form. A drill is a function (workdir, Scale) -> DrillResult registered in DRILLS.
"""

from __future__ import annotations

from benchmarks.drills.alerts import DRILLS as ALERT_DRILLS
from benchmarks.drills.ingest import DRILLS as INGEST_DRILLS

DRILLS = {**INGEST_DRILLS, **ALERT_DRILLS}
