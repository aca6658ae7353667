"""Scenario files that are wrong get an error naming file, line and problem; `tower simulate`
runs a scenario through a real broker into the store at the requested speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ingest.decode import Decoder
from tests.conftest import REPO, wait_until
from tower.contract import DeviceKind
from tower.mqtt import connect, make_client
from tower.scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario
from tower.timeutil import now_ms

GOOD = DEFAULT_SCENARIO.read_text()
MINUTE, HOUR = 60_000, 3_600_000


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


def test_two_simulated_hours_at_3600x_are_paced_and_land_in_the_store(settings, start_collector, store, tmp_path):
    start_collector()
    arrivals: list[tuple[int, int]] = []  # (event time, arrival), both epoch ms on this machine's clock
    decoder = Decoder.from_settings(settings)
    watcher, address, properties = make_client(settings, f"test-pace-{os.getpid()}")
    watcher.on_message = lambda c, u, m: arrivals.extend(
        (r.ts_ms, now_ms()) for r in decoder.decode(m.topic, m.payload, now_ms()).readings
    )
    watcher.on_connect = lambda c, *_: c.subscribe("tower/v1/+/+/telemetry", qos=1)
    connect(watcher, address, properties, persistent=False)
    watcher.loop_start()
    truth, protocol = tmp_path / "truth.jsonl", settings.mqtt_protocol
    launched = now_ms()
    start = (launched - 2 * HOUR - MINUTE) // 1000 * 1000  # the run ends before the present: no clamping to now
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tower.cli", "simulate", "--speed", "3600", "--duration", "2h", "--seed", "3",
             "--start", str(start // 1000), "--broker", settings.broker, "--truth", str(truth)],
            cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "TOWER_MQTT_PROTOCOL": protocol},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        wait_until(lambda: max((ts for ts, _ in arrivals), default=0) >= start + 2 * HOUR - MINUTE, what="the last")
    finally:
        watcher.disconnect()
        watcher.loop_stop()
    # Paced at 3600x: no reading is published before its moment, (ts - start) / 3600 after the launch.
    early = [(ts, arrived) for ts, arrived in arrivals if arrived < launched + (ts - start) / 3600]
    assert not early, f"{len(early)} of {len(arrivals)} readings published ahead of their paced moment: {early[:3]}"
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    assert {"traffic_jam", "bearing_wear", "reefer_failure"} <= {r["fault"] for r in records}
    wait_until(lambda: {d.kind for d in store.devices()} == set(DeviceKind), what="all kinds stored")
    # 120 readings a minute apart; wait for all but the last so the span below is not read mid-write
    wait_until(lambda: len(store.readings("conv-rtm-01")) >= 119, what="two hours of a conveyor")
    frame = store.readings("conv-rtm-01")
    span_ms = (frame["ts"].iloc[-1] - frame["ts"].iloc[0]).total_seconds() * 1000
    assert 7_000_000 < span_ms < 7_200_000  # two simulated hours of event time
    assert frame["ts"].iloc[0].value // 1_000_000 >= start
