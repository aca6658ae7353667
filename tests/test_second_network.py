"""The default rules on a network that is not the demo's (simulators/scenarios/iberia.yaml: other
region and weather, cargo types and ranges, site types, id styles, reporting intervals, healthy
ranges, faults drawn at random): every fault type that should alert is caught, with few false alarms,
for two seeds. The demo network's own figures are held in tests/test_alert_scoring.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCENARIO = REPO / "simulators" / "scenarios" / "iberia.yaml"


@pytest.mark.parametrize("seed", [1, 2])
def test_default_rules_catch_every_fault_on_a_second_network(seed):
    result = subprocess.run([sys.executable, "-m", "tower.cli", "evaluate", "--scenario", str(SCENARIO), "--seed",
                             str(seed), "--format", "json"], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    scored = [score for score in report["faults"] if score["should_alert"]]
    assert len(scored) >= 6  # jams, breakdowns, deviations, reefers, doors, silences, wear...
    for score in scored:
        assert score["recall"] >= 0.95, score
        assert score["precision"] is None or score["precision"] >= 0.9, score
    assert report["late_warned_30min_before"] == report["late_shipments"] > 0
