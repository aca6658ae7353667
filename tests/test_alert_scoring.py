"""`tower evaluate` against the simulator's ground truth, the C-MAPSS engines against the best fixed
threshold, `tower backtest` on CSV and on the store, and one clear line for each mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tower.contract import DeviceKind, Reading
from tower.store import Batch, open_store

CMAPSS = REPO.parent / "shared" / "data" / "cmapss" / "train_FD001.txt"
T0 = 1_789_948_800_000
MIN = 60_000


def tower(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tower.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_default_rules_meet_the_targets_on_the_default_scenario():
    result = tower("evaluate", "--scenario", "default", "--seed", "1", "--duration", "24h", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    scored = {row["fault"]: row for row in report["faults"] if row["should_alert"]}
    assert set(scored) == {"traffic_jam", "breakdown", "route_deviation", "reefer_failure", "door_open_in_transit",
                           "tracker_offline", "bearing_wear", "motor_overheating", "sudden_failure"}  # fmt: skip
    for fault, row in scored.items():
        assert row["recall"] >= 0.95 and row["precision"] >= 0.9, (fault, row)
    assert report["late_shipments"] >= 3
    assert report["late_warned_30min_before"] >= 0.8 * report["late_shipments"]
    bearing = [d for d in report["detections"] if d["fault"] == "bearing_wear"]
    assert bearing and all(d["lead_min"] >= 12 * 60 for d in bearing)
    assert report["seconds"] < 120


def test_evaluate_prints_a_table_per_fault_type():
    result = tower("evaluate", "--duration", "6h")
    assert result.returncode == 0, result.stderr
    assert "recall" in result.stdout and "traffic_jam" in result.stdout and "n/a: nothing to score" in result.stdout


@pytest.mark.skipif(not CMAPSS.exists(), reason=f"C-MAPSS data not at {CMAPSS}")
def test_drift_rules_warn_more_cmapss_engines_in_time_than_the_best_fixed_threshold():
    result = tower("evaluate-cmapss", "--data", str(CMAPSS), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ours, best = report["rules"], report["best_fixed_threshold"]
    assert best["name"].startswith("s11 above") and 78 <= best["in_time"] <= 86  # the issue's ~82 %, reproduced
    assert ours["in_time"] > best["in_time"] and ours["early"] <= best["early"]


def test_backtest_on_a_csv_prints_what_would_have_fired_per_rule_and_day(tmp_path):
    rows = ["ts,device_id,kind,state,bearing_temp_c"]
    for minute in range(2 * 24 * 60 // 10):  # two days, one reading every 10 minutes
        ts = T0 + minute * 10 * MIN
        faulty = minute in (30, 31, 200)
        rows.append(f"{ts},conv-1,equipment,{'fault' if faulty else 'running'},{80 if 100 <= minute < 104 else 45}")
    path = tmp_path / "history.csv"
    path.write_text("\n".join(rows) + "\n")
    env = {"TOWER_DATA_DIR": str(tmp_path / "var")}
    result = tower("backtest", "--rules", "default", "--readings", str(path), "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["per_rule"] == {"machine-fault": 2}  # "hot" is relative to a healthy range
    network = tmp_path / "network.yaml"
    network.write_text("sites: [{id: plant, name: Plant, type: dc, lat: 50, lon: 8}]\n"
                       "equipment: [{id: conv-1, site: plant, type: conveyor, healthy: {vibration_rms_mm_s: [1, 2],"
                       " bearing_temp_c: [38, 52], motor_current_a: [6, 10], rpm: 1450}}]\n")  # fmt: skip
    assert tower("network", "load", str(network), env=env).returncode == 0
    report = json.loads(tower("backtest", "--rules", "default", "--readings", str(path), "--format", "json",
                              env=env).stdout)  # fmt: skip
    assert report["per_rule"] == {"bearing-hot": 1, "machine-fault": 2}  # 80 °C is 28 above its healthy top
    assert report["per_day"] == {"2026-09-21": 2, "2026-09-22": 1}
    table = tower("backtest", "--rules", "default", "--readings", str(path), env=env)
    assert "3 alerts would have fired" in table.stdout and "machine-fault" in table.stdout


def test_backtest_over_the_store(tmp_path):
    url = f"sqlite:///{tmp_path}/tower.db"
    store = open_store(url)
    store.write(Batch(readings=[
        Reading(DeviceKind.EQUIPMENT, "conv-1", T0 + m * MIN, {"state": "fault" if m == 5 else "running"})
        for m in range(10)
    ]))  # fmt: skip
    store.close()
    result = tower("backtest", "--rules", "default", "--store", url, "--since", str(T0 // 1000),
                   "--until", str(T0 // 1000 + 3600), "--format", "json",
                   env={"TOWER_DATA_DIR": str(tmp_path / "var")})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["per_rule"] == {"machine-fault": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--rules", "default", "--readings", "CSV:ts,device_id,temp_c\n1,a,3\n"],
         "missing column(s) kind; the header is ts,device_id,kind,<fields>"),
        (["backtest", "--rules", "default", "--readings", "CSV:ts,device_id,kind\n1,a,truck\n"],
         ":2: kind 'truck' is not one of"),
        (["backtest", "--rules", "nope.yaml", "--readings", "x.csv"], "nope.yaml: cannot read rule file"),
        (["evaluate", "--duration", "soon"], "'soon' is not a duration"),
        (["alerts", "ack", "abc", "--by", "me"], "no alerts yet"),
        (["alerts", "silence", "--match", "site", "--for", "1h", "--by", "me"], "is not KEY=PATTERN"),
        (["evaluate-cmapss", "--data", "missing.txt"], "missing.txt: cannot read C-MAPSS data"),
    ],
)  # fmt: skip
def test_mistakes_print_one_line_and_exit_2(tmp_path, args, message):
    args = [_materialise(tmp_path, arg) for arg in args]
    result = tower(*args, env={"TOWER_DATA_DIR": str(tmp_path / "var")})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def _materialise(tmp_path: Path, arg: str) -> str:
    if not arg.startswith("CSV:"):
        return arg
    path = tmp_path / "readings.csv"
    path.write_text(arg[4:])
    return str(path)
