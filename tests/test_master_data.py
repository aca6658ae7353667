"""Master data from the operator's systems, live, on a network of the tests' own (not the demo's):
the network file, `tower shipments import`, plans and status events over MQTT (a real mosquitto and
collector), bad plans refused with a reason on every path, and a running alert engine that tracks,
alerts and stops alerting as shipments come and go without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts.book import AlertBook
from alerts.evaluate import RuleEvaluator
from alerts.rules import load_rules
from tests.conftest import REPO, stop_process, tower_process, wait_until
from tower.contract import DeviceKind, Reading, plan_status_topic, plan_topic, telemetry_topic
from tower.domain import OPEN_STATUSES
from tower.masterdata.files import load_network_file
from tower.masterdata.model import Network, Shipment, StatusEvent
from tower.masterdata.store import MasterDataError, MasterStore
from tower.masterdata.view import MasterData
from tower.timeutil import now_ms, rfc3339
from tower.yamlfile import FileError

MIN = 60_000
# A small network in Scandinavia with names, cargo and site types of its own.
NETWORK = """\
planned_speed_kmh: 70
sites:
  - {id: NO-OSL-TERM, name: Oslo Alnabru terminal, type: hub, lat: 59.9290, lon: 10.8390, cold_storage: true}
  - {id: SE-GOT-HARBOUR, name: Göteborg harbour, type: port, lat: 57.6900, lon: 11.9000, geofence: {radius_m: 900}}
  - {id: K-1001, name: Fiskehallen Drammen, type: customer, lat: 59.7440, lon: 10.2040}
cargo_types:
  laks: {min_c: -1.0, max_c: 3.0, setpoint_c: 0.5, description: fresh salmon}
  tørrvare: {}
lanes:
  - {id: L7, origin: NO-OSL-TERM, destination: K-1001, road: E18, via: [[59.9000, 10.6000], [59.8000, 10.3500]]}
"""
NORDIC = Network.model_validate(yaml.safe_load(NETWORK))


@pytest.fixture
def network_file(tmp_path: Path) -> Path:
    path = tmp_path / "nordic.yaml"
    path.write_text(NETWORK)
    return path


def tower(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tower.cli", *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True)  # fmt: skip


def plan(shipment_id: str, tracker: str, departure_ms: int, **fields: object) -> dict:
    return {"id": shipment_id, "tracker": tracker, "lane": "L7", "cargo": "laks", "departure": rfc3339(departure_ms),
            "promised": rfc3339(departure_ms + 3 * 60 * MIN), "order": f"PO-{shipment_id}", "customer": "Fiskehallen",
            **fields}  # fmt: skip


# -- the model and files ---------------------------------------------------------------------------


def test_a_network_file_error_names_file_line_and_problem(tmp_path):
    path = tmp_path / "network.yaml"
    path.write_text(NETWORK.replace("destination: K-1001", "destination: K-9999"))
    with pytest.raises(FileError) as error:
        load_network_file(path)
    assert str(error.value).startswith(f"{path}:10: lanes.0.destination: lane L7: unknown site 'K-9999'")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lane": None}, "give a lane, or an origin and a destination site"),
        ({"departure": "2026-11-23T08:00:00"}, "has no time zone"),
        ({"promised": "2026-01-01T00:00:00Z"}, "promised must be after departure"),
        ({"tracker": "no spaces allowed"}, "tracker\n  String should match pattern"),
        ({"origin": "NO-OSL-TERM"}, "not both"),
    ],
)
def test_a_bad_plan_is_refused_with_its_reason(change, reason):
    fields = {**plan("S-1", "T-1", now_ms()), **change}
    with pytest.raises(ValueError, match=reason):
        Shipment.model_validate({key: value for key, value in fields.items() if value is not None})


def test_the_store_versions_changes_keeps_progress_and_checks_the_network(tmp_path, network_file):
    store = MasterStore(tmp_path / "master.db")
    assert store.sync_network_file(network_file) and not store.sync_network_file(network_file)
    revision = store.revision()
    shipment = Shipment.model_validate(plan("S-1", "T-1", now_ms()))
    assert store.put_shipment(shipment, "test") and store.revision() == revision + 1
    assert not store.put_shipment(shipment, "test") and store.revision() == revision + 1  # same plan again
    store.apply_status("S-1", StatusEvent(status="departed", ts=now_ms()), "test")
    store.put_shipment(shipment, "a retained plan delivered again")
    assert store.shipment("S-1").status == "departed"  # a plan sent again does not take it back
    with pytest.raises(MasterDataError, match="unknown lane 'L9'"):
        store.put_shipment(shipment.model_copy(update={"id": "S-2", "lane": "L9"}), "test")
    with pytest.raises(MasterDataError, match="unknown cargo type 'bananas' \\(known: laks, tørrvare\\)"):
        store.put_shipments([shipment.model_copy(update={"id": "S-3"}),
                             shipment.model_copy(update={"id": "S-4", "cargo": "bananas"})], "test")  # fmt: skip
    assert store.shipment("S-3") is None  # all or none
    assert [s.id for s in store.snapshot().shipments.values()] == ["S-1"]


def test_a_network_edit_that_would_strand_trucks_on_the_road_is_refused(tmp_path, network_file):
    store = MasterStore(tmp_path / "master.db")
    store.sync_network_file(network_file)
    store.put_shipment(Shipment.model_validate(plan("S-1", "T-1", now_ms() - 60 * MIN)), "test")
    revision = store.revision()
    network_file.write_text(NETWORK.replace("  - {id: L7,", "  - {id: L8,"))
    with pytest.raises(MasterDataError, match=r"1 active shipment\(s\) would lose .*S-1: unknown lane 'L7'"):
        store.sync_network_file(network_file)
    assert store.revision() == revision and store.snapshot().network.lanes[0].id == "L7"
    store.apply_status("S-1", StatusEvent(status="delivered", ts=now_ms()), "test")
    assert store.sync_network_file(network_file)  # once it is delivered, the lane may go


def test_csv_import_is_all_or_nothing_and_names_every_bad_line(tmp_path, network_file):
    env = {"TOWER_DATA_DIR": str(tmp_path / "var")}
    assert tower(env, "network", "load", str(network_file)).returncode == 0
    departure = rfc3339(now_ms())
    good = tmp_path / "good.csv"
    good.write_text("id,tracker,lane,cargo,departure,promised,order,customer,ref:booking\n"
                    f"S-10,T-10,L7,laks,{departure},2030-01-01T00:00:00Z,PO-10,Fiskehallen,B-77\n")  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("id,tracker,lane,cargo,departure,promised\n"
                   f"S-11,T-11,L7,laks,{departure},2030-01-01T00:00:00Z\n"
                   f"S-12,T-12,L9,laks,{departure},2030-01-01T00:00:00Z\n"
                   f"S-13,T-13,L7,bananas,{departure},2030-01-01T00:00:00Z\n"
                   f"S-14,T-14,L7,laks,yesterday,2030-01-01T00:00:00Z\n")  # fmt: skip
    result = tower(env, "shipments", "import", str(bad))
    assert result.returncode == 2
    assert f"{bad}:3: unknown lane 'L9'" in result.stderr and f"{bad}:4: unknown cargo type 'bananas'" in result.stderr
    assert f"{bad}:5: departure: 'yesterday' is not a time" in result.stderr
    assert "Traceback" not in result.stderr
    assert tower(env, "shipments", "list", "--format", "json").stdout.strip() == "[]"  # nothing half-imported
    assert tower(env, "shipments", "import", str(good)).returncode == 0
    shown = tower(env, "shipments", "show", "S-10")
    assert "ref:booking: B-77" in shown.stdout and "L7" in shown.stdout  # a reference as it was given


# -- MQTT: plans and status events, dead letters ---------------------------------------------------


def test_plans_and_status_events_over_mqtt_and_bad_ones_dead_lettered(settings, store, publisher, start_collector,
                                                                       network_file):  # fmt: skip
    master = MasterStore(settings.master_db)
    master.sync_network_file(network_file)
    start_collector()
    departure = now_ms() - 10 * MIN
    publisher.send(plan_topic("S-MQ-1"), plan("S-MQ-1", "T-MQ-1", departure))
    wait_until(lambda: master.shipment("S-MQ-1") is not None, what="the plan in the master data")
    publisher.send(plan_status_topic("S-MQ-1"), {"status": "departed", "ts": rfc3339(departure + MIN)})
    wait_until(lambda: master.shipment("S-MQ-1").status == "departed", what="the status event")
    revision = master.revision()
    bad = {
        plan_topic("S-MQ-2"): (plan("S-MQ-2", "T-MQ-2", departure, lane="L9"), "unknown lane 'L9'"),
        plan_topic("S-MQ-3"): (b'{"tracker": "T-MQ-3", "lane":', "invalid JSON"),
        plan_topic("S-MQ-4"): (plan("S-MQ-5", "T-MQ-4", departure), "plan for shipment 'S-MQ-5' published on the "
                                                                    "topic of 'S-MQ-4'"),
        plan_status_topic("S-NONE"): ({"status": "delivered", "ts": rfc3339(departure)}, "unknown shipment 'S-NONE'"),
        plan_topic("S-MQ-6"): (plan("S-MQ-6", "T-MQ-6", departure, promised=rfc3339(departure)),
                               "promised must be after departure"),
    }  # fmt: skip
    for topic, (payload, _) in bad.items():
        publisher.send(topic, payload)
    publisher.send(telemetry_topic(DeviceKind.SHIPMENT, "T-MQ-1"), {"ts": now_ms(), "temp_c": 0.4})  # the canary
    wait_until(lambda: not store.readings("T-MQ-1").empty, what="the canary reading")
    wait_until(lambda: len(store.dead_letters()) >= len(bad), what="a dead letter per bad plan")
    reasons = {letter.topic: letter.reason for letter in store.dead_letters()}
    for topic, (_, reason) in bad.items():
        assert reason in reasons[topic], (topic, reasons[topic])
    assert master.revision() == revision  # bad plans changed nothing
    for topic in (plan_topic("S-MQ-1"), plan_status_topic("S-MQ-1"), *bad):
        publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # leave the broker clean


# -- live: the engine follows master data as it changes ---------------------------------------------


def _drive(tracker: str, departure_ms: int, minutes: range, door_open: bool = False) -> list[tuple[str, dict]]:
    """Readings a minute apart along lane L7 at 60 km/h from departure."""
    route = NORDIC.lane_route("L7")
    return [(telemetry_topic(DeviceKind.SHIPMENT, tracker),
             {"ts": departure_ms + m * MIN, **dict(zip(("lat", "lon"), route.position(m * 1000)[0], strict=True)),
              "speed_kmh": 60.0, "temp_c": 0.6, "door_open": door_open}) for m in minutes]  # fmt: skip


def test_shipments_created_while_the_tower_runs_are_tracked_alerted_and_stop_when_cancelled(
    settings, publisher, start_collector, start_api, network_file, tmp_path, monkeypatch
):
    """By CSV, by MQTT and by the API: each is tracked and alerted within seconds, with no restart."""
    start_collector(network=network_file)
    env = {"TOWER_NETWORK": str(network_file), "TOWER_ALERTS_CLIENT_ID": f"test-alerts-md-{os.getpid()}"}
    engine = tower_process(["alerts", "run"], settings, tmp_path / "alerts.log", env)
    cli_env = {"TOWER_DATA_DIR": str(settings.data_dir)}
    api = start_api(settings.data_dir, TOWER_STORE=settings.store, TOWER_API_TOKEN="tms-secret-1",
                    TOWER_API_TOKEN_NAME="tms")  # fmt: skip
    try:
        departure = now_ms() - 40 * MIN
        csv = tmp_path / "today.csv"
        csv.write_text(
            "id,tracker,lane,cargo,departure,promised,order,customer\n"
            f"S-CSV,T-CSV,L7,laks,{rfc3339(departure)},{rfc3339(departure + 3 * 60 * MIN)},PO-9,Fiskehallen\n"
        )
        assert tower(cli_env, "shipments", "import", str(csv)).returncode == 0
        publisher.send(plan_topic("S-MQTT"), plan("S-MQTT", "T-MQTT", departure))
        with api.client("tms-secret-1") as http:
            created = http.post("/shipments", json=plan("S-API", "T-API", departure))
            assert created.status_code == 201, created.text
        master = MasterStore(settings.master_db)
        wait_until(lambda: master.shipment("S-MQTT") is not None, what="the MQTT plan")
        for tracker in ("T-CSV", "T-MQTT", "T-API"):  # on the road, then the doors open for 5 minutes
            for topic, reading in _drive(tracker, departure, range(0, 30)) + _drive(tracker, departure, range(30, 36),
                                                                                    door_open=True):  # fmt: skip
                publisher.send(topic, reading)
        book = AlertBook(settings.alerts_db)

        def door_alert(shipment: str) -> dict | None:
            return next((a for a in book.alerts("all") if a["rule"] == "door-open-in-transit"
                         and a["entity"] == shipment), None)  # fmt: skip

        wait_until(lambda: door_alert("S-CSV") and door_alert("S-MQTT") and door_alert("S-API"), 30, "door alerts")
        alert = door_alert("S-CSV")
        assert alert["device"] == "T-CSV" and "Call the driver of S-CSV at once" in alert["runbook"]["steps"][0]
        assert alert["context"]["customer"] == "Fiskehallen" and alert["context"]["order"] == "PO-9"

        # the dashboard shows both, with no restart
        monkeypatch.setenv("TOWER_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("TOWER_STORE", settings.store)
        from dashboards import data

        data.expire()
        shown = data.shipment_table(data.source()).set_index("shipment")
        assert {"S-CSV", "S-MQTT", "S-API"} <= set(shown.index) and shown.loc["S-CSV", "open_alerts"] >= 1
        with api.client("tms-secret-1") as http:  # the API tells where it stands, by the same read model
            standing = http.get("/shipments/S-API").json()["standing"]
        assert standing["status"] == shown.loc["S-API", "status"] and standing["open_alerts"] >= 1, standing
        cli = json.loads(tower({**cli_env, "TOWER_STORE": settings.store}, "shipments", "show", "S-API",
                               "--format", "json").stdout)["standing"]  # fmt: skip
        assert (cli["status"], cli["open_alerts"]) == (standing["status"], standing["open_alerts"])

        # cancelled: its alert ends, and nothing new is raised for it
        assert tower(cli_env, "shipments", "cancel", "S-CSV", "--reason", "customer closed", "--by", "kari"
                     ).returncode == 0  # fmt: skip
        publisher.send(plan_status_topic("S-MQTT"), {"status": "cancelled", "ts": rfc3339(now_ms()), "note": "no"})
        with api.client("tms-secret-1") as http:
            assert http.post("/shipments/S-API/cancel", json={"reason": "order withdrawn"}).status_code == 200
        for shipment in ("S-CSV", "S-MQTT", "S-API"):
            wait_until(lambda s=shipment: door_alert(s)["status"] not in OPEN_STATUSES, 30, f"{shipment} resolved")
            assert "cancelled" in book.history(door_alert(shipment)["id"])[-1]["note"]
        for topic, reading in _drive("T-CSV", departure, range(36, 44), door_open=True):
            publisher.send(topic, reading)
        publisher.send(telemetry_topic(DeviceKind.EQUIPMENT, "canary-7"), {"ts": now_ms(), "state": "fault"})
        wait_until(lambda: any(a["entity"] == "canary-7" for a in book.alerts("all")), 30, "the canary's alert")
        assert [a["status"] for a in book.alerts("all") if a["entity"] == "S-CSV"] == ["resolved"]
    finally:
        assert stop_process(engine) == 0
        for shipment in ("S-MQTT",):
            for topic in (plan_topic(shipment), plan_status_topic(shipment)):
                publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)


# -- delivered: one definition, robust to a GPS outlier ---------------------------------------------


def test_a_gps_outlier_at_the_destination_does_not_deliver_the_shipment():
    network = NORDIC
    departure = 1_800_000_000_000
    shipment = Shipment.model_validate(plan("S-1", "T-1", departure))
    evaluator = RuleEvaluator(load_rules("default"), MasterData(network, {"S-1": shipment}))
    destination = network.site("K-1001").position
    readings = [Reading(DeviceKind.SHIPMENT, "T-1", r["ts"], {k: v for k, v in r.items() if k != "ts"})
                for _, r in _drive("T-1", departure, range(0, 20))]  # fmt: skip
    outlier = Reading(DeviceKind.SHIPMENT, "T-1", departure + 20 * MIN + 30_000,
                      {"lat": destination[0], "lon": destination[1], "speed_kmh": 60.0, "temp_c": 0.6})  # fmt: skip
    later = [Reading(DeviceKind.SHIPMENT, "T-1", r["ts"], {k: v for k, v in r.items() if k != "ts"})
             for _, r in _drive("T-1", departure, range(21, 30), door_open=True)]  # fmt: skip
    changes = [change for reading in [*readings, outlier, *later] for change in evaluator.observe(reading)]
    assert evaluator.tracking_changes()[-1].arrived_ms is None  # not delivered
    # the rules still apply (refreshes of the firing alert aside)
    assert [c.rule.id for c in changes if c.state == "firing" and not c.refresh] == [
        "door-open-in-transit"
    ]  # rules apply
    at_customer = [Reading(DeviceKind.SHIPMENT, "T-1", departure + (45 + m) * MIN,
                           {"lat": destination[0], "lon": destination[1] + 0.0001 * m}) for m in range(3)]  # fmt: skip
    for reading in at_customer:
        evaluator.observe(reading)
    assert evaluator.tracking_changes()[-1].arrived_ms == departure + 45 * MIN  # two readings inside: delivered
