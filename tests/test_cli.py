"""The `tower` command as a user runs it: outputs in every format, and one clear line per mistake."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tower.contract import DeadLetter, DeviceKind, Reading
from tower.store import Batch, open_store

T0 = 1_789_999_980_000


def tower(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tower.cli", *args], cwd=REPO, capture_output=True, text=True)


@pytest.fixture
def seeded(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    store = open_store(url)
    store.write(
        Batch(
            readings=[
                Reading(DeviceKind.SHIPMENT, "trk-1", T0 + i * 1000, {"lat": 50.0, "lon": 5.0, "temp_c": 4.0 + i}, i)
                for i in range(3)
            ]
            + [Reading(DeviceKind.EQUIPMENT, "pump-1", T0, {"rpm": 1450.0, "state": "running"})],
            dead_letters=[DeadLetter(T0, "tower/v1/truck/x/telemetry", "{}", "unknown device kind 'truck'")],
        )
    )
    store.close()
    return url


def test_help_lists_every_command():
    result = tower("--help")
    for command in ("ingest", "query", "devices", "contract", "broker", "demo"):
        assert command in result.stdout


def test_readings_as_json_have_device_ts_and_fields(seeded):
    result = tower("query", "readings", "--store", seeded, "--device", "trk-1", "--format", "json")
    rows = json.loads(result.stdout)
    assert rows[0] == {
        "ts": "2026-09-21T14:13:00.000Z",
        "device_id": "trk-1",
        "seq": 0,
        "lat": 50.0,
        "lon": 5.0,
        "temp_c": 4.0,
    }
    assert [row["temp_c"] for row in rows] == [4.0, 5.0, 6.0]


def test_readings_as_csv_and_table_with_field_and_time_filters(seeded):
    since, until = "2026-09-21T14:13:01Z", str((T0 + 2000) / 1000)
    result = tower(
        "query",
        "readings",
        "--store",
        seeded,
        "--device",
        "trk-1",
        "--field",
        "temp_c",
        "--since",
        since,
        "--until",
        until,
        "--format",
        "csv",
    )
    assert list(csv.DictReader(io.StringIO(result.stdout))) == [
        {"ts": "2026-09-21T14:13:01.000Z", "device_id": "trk-1", "temp_c": "5.0"}
    ]
    table = tower("query", "readings", "--store", seeded, "--device", "pump-1").stdout
    assert "running" in table and "1450.0" in table


def test_devices_and_dead_letters(seeded):
    devices = json.loads(tower("devices", "--store", seeded, "--format", "json").stdout)
    assert [(d["device_id"], d["kind"], d["last_seen"]) for d in devices] == [
        ("pump-1", "equipment", "2026-09-21T14:13:00.000Z"),
        ("trk-1", "shipment", "2026-09-21T14:13:02.000Z"),
    ]
    # offline is judged at the data's newest time, as the dashboard does, not by the wall clock
    assert [d["offline"] for d in devices] == [False, False]
    (letter,) = json.loads(tower("query", "dead-letters", "--store", seeded, "--format", "json").stdout)
    assert letter["reason"] == "unknown device kind 'truck'" and letter["topic"] == "tower/v1/truck/x/telemetry"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "readings", "--device", "nope"], "no device 'nope'"),
        (["query", "readings", "--device", "trk-1", "--since", "last tuesday"], "'last tuesday' is not a time"),
        (["query", "readings", "--device", "trk-1", "--every", "often"], "'often' is not a duration"),
        (["query", "readings", "--device", "trk-1", "--since", "1h", "--until", "2h"], "is not before --until"),
        (["query", "readings", "--device", "trk-1", "--format", "xml"], "invalid choice: 'xml'"),
        (["query", "readings"], "required: --device"),
        (["query", "dead-letters", "--store", "sqlite:///does/not/exist.db"], "does not exist yet"),
        (["devices", "--store", "postgres://x"], "unknown scheme 'postgres'"),
        (["ingest", "--broker", "http://x"], "is not of the form mqtt[s]://"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["evaluate", "--scenario", "iberian"], "no such scenario file; give a path or one of: default, iberia"),
    ],
)
def test_mistakes_print_one_line_and_exit_non_zero(seeded, args, message):
    if "--store" not in args and args[0] in ("query", "devices"):
        args = [*args, "--store", seeded]
    result = tower(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_configuration_is_one_line_too(seeded):
    result = subprocess.run(
        [sys.executable, "-m", "tower.cli", "devices", "--store", seeded],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TOWER_BATCH_MAX": "lots"},
    )
    assert result.returncode == 2
    assert "batch_max" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_device_controlled_text_is_escaped_for_the_terminal(tmp_path):
    url = f"sqlite:///{tmp_path}/hostile.db"
    store = open_store(url)
    hostile = "\x1b]0;pwned\x07\x1b[2J\u202egnp.exe"
    store.write(
        Batch(dead_letters=[DeadLetter(T0, f"tower/v1/{hostile}", hostile, f"unknown device kind '{hostile}'")])
    )
    store.close()
    for fmt in ("table", "csv"):
        shown = tower("query", "dead-letters", "--store", url, "--format", fmt).stdout
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "\\x1b]0;pwned\\x07" in shown and "\\u202egnp.exe" in shown  # visible, as escapes
    (letter,) = json.loads(tower("query", "dead-letters", "--store", url, "--format", "json").stdout)
    assert letter["payload"] == hostile  # JSON escapes by itself; programs get the exact text


def test_credentials_in_urls_never_reach_the_terminal(seeded):
    for args in (["ingest", "--broker", "mqtts://alice:S3cretPW@h:88x83"], ["ingest", "--broker", "http://alice:S3cretPW@h"],
                 ["devices", "--store", "postgres://alice:S3cretPW@h/db"],
                 ["query", "dead-letters", "--store", "sqlite:///alice:S3cretPW@nowhere/x.db"],
                 # a URL parser takes # and ? in a password for a fragment and a query
                 ["ingest", "--broker", "mqtt://alice:S3cret#PW@h:1883"], ["ingest", "--broker", "mqtt://alice:S3cret?PW@h"],
                 ["devices", "--store", "influxdb://alice:S3cretPW@h:8086?bucket=b"]):  # fmt: skip
        result = tower(*args)
        assert result.returncode == 2 and "alice" in result.stderr, result.stderr
        assert "S3cret" not in result.stderr and "S3cret" not in result.stdout


def test_devices_list_is_the_devices_listing(seeded):
    listed = tower("devices", "list", "--store", seeded, "--format", "csv").stdout
    assert listed == tower("devices", "--store", seeded, "--format", "csv").stdout and "pump-1,equipment" in listed
