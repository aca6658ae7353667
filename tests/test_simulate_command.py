"""Scenario files that are wrong get an error naming file, line and problem; `tower simulate`
runs a scenario through a real broker into the store at the requested speed."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, wait_until
from tower.contract import DeviceKind
from tower.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario
from tower.timeutil import now_ms

GOOD = DEFAULT_SCENARIO.read_text()


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("lane: rtm-brd, count: 3", "lane: rtm-nowhere, count: 3"), 74, "unknown lane 'rtm-nowhere'"),
        (("lat: 51.8740", "lat: north"), 13, "sites.0.lat: Input should be a valid number"),
        (("lat: 52.3850", "lat: 152.3850"), 23, "sites.4.lat: Input should be less than or equal to 90"),
        (
            ("{type: breakdown, target: SHP-RTM-NIJ-01,", "{type: meltdown, target: SHP-RTM-NIJ-01,"),
            128,
            "faults.3.type: Input should be",
        ),
        (("duration: 24h", "duration: a day"), 7, "'a day' is not a duration"),
        (("reporting: {", "reporting: [{"), 9, "not valid YAML"),
        (
            ("{type: sudden_failure, target: fork-ant-02, at: 14h}", "{type: sudden_failure, target: fork-ant-02}"),
            146,
            "is an equipment fault: give 'at'",
        ),
    ],
)
def test_scenario_errors_name_file_line_and_problem(tmp_path, change, line, message):
    path = tmp_path / "broken.yaml"
    assert change[0] in GOOD
    path.write_text(GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(error.value).startswith(f"{path}:{line}: "), str(error.value)
    assert message in str(error.value)


def test_a_bad_scenario_is_one_line_from_the_command(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(GOOD.replace("lat: 51.8740", "lat: north", 1))
    result = subprocess.run([sys.executable, "-m", "tower.cli", "simulate", "--scenario", str(path)],
                            cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{path}:13: sites.0.lat" in result.stderr


def test_two_simulated_hours_at_3600x_take_about_two_seconds_and_land_in_the_store(
    settings, start_collector, store, tmp_path
):
    start_collector()
    truth, protocol = tmp_path / "truth.jsonl", settings.mqtt_protocol
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tower.cli", "simulate", "--speed", "3600", "--duration", "2h", "--seed", "3",
         "--broker", settings.broker, "--truth", str(truth)],
        cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "TOWER_MQTT_PROTOCOL": protocol},
    )  # fmt: skip
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert 2.0 <= elapsed < 8.0  # two seconds of pacing, plus start-up
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    assert {"traffic_jam", "bearing_wear", "reefer_failure"} <= {r["fault"] for r in records}
    wait_until(lambda: {d.kind for d in store.devices()} == set(DeviceKind), what="all kinds stored")
    # 120 readings a minute apart; wait for all but the last so the span below is not read mid-write
    wait_until(lambda: len(store.readings("conv-rtm-01")) >= 119, what="two hours of a conveyor")
    frame = store.readings("conv-rtm-01")
    span_ms = (frame["ts"].iloc[-1] - frame["ts"].iloc[0]).total_seconds() * 1000
    assert 7_000_000 < span_ms < 7_200_000  # two simulated hours of event time
    assert frame["ts"].iloc[-1].value // 1_000_000 <= now_ms()  # never ahead of the present
