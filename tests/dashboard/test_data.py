"""The dashboard's data functions on the seeded store (conftest.py), checked against the simulation's
own truth, and every view (Overview, Map, Alerts, the CLI) counting the same shipments and alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from alerts.book import AlertBook
from alerts.shipment_view import RuleRoles
from dashboards import charts, data, kpis, shipments
from dashboards.maps import POINTS, SHIPMENT
from simulators.tms import PLAN_LEAD_MS
from tests.conftest import REPO
from tests.dashboard.conftest import page
from tower.domain import ACTIVE_STATUSES, ON_THE_ROAD, SEVERITIES_WORST_FIRST
from tower.store.sqlite import SqliteStore

# -- data functions ------------------------------------------------------------------------------


def test_shipment_statuses_match_the_simulated_trips(var, simulation):
    table = data.shipment_table(data.source()).set_index("shipment")
    as_of = data.as_of(data.source())
    released = {s for s, trip in simulation.trips.items() if trip.departure_ms - PLAN_LEAD_MS <= simulation.end_ms}
    assert set(table.index) == released and 40 < len(released) < 63  # the TMS has not released later plans yet
    for shipment_id in released:
        trip, row = simulation.trips[shipment_id], table.loc[shipment_id]
        if trip.departure_ms > as_of:
            assert row["status"] == "planned", shipment_id
        elif trip.arrival_ms is not None and trip.arrival_ms + 2 * 60_000 < as_of:
            assert row["status"] == "delivered", shipment_id
            assert abs(row["arrival_ms"] - trip.arrival_ms) <= 2 * 60_000, shipment_id  # two GPS fixes inside
        elif trip.arrival_ms is None or trip.arrival_ms > as_of:
            assert row["status"] in ON_THE_ROAD, shipment_id
    # SHP-ANT-LIE-02 broke down 30 min after departure: the delay rule has it at risk, with the minutes
    assert table.loc["SHP-ANT-LIE-02", "status"] == "at risk"
    assert table.loc["SHP-ANT-LIE-02", "late_by_min"] > 5
    assert table.loc["SHP-RTM-EIN-02", "status"] == "on time"


def test_overview_figures_agree_with_the_store_and_the_book(var):
    src = data.source()
    figures = {kpi.label: kpi for kpi in data.overview(src, 6 * 3_600_000)}
    table = data.shipment_table(src)
    assert figures["In transit"].value == table["status"].isin(ON_THE_ROAD).sum() == 6
    assert figures["Predicted late"].value == 1  # SHP-ANT-LIE-02
    book = AlertBook(var / "alerts.db")
    active = [a for a in book.alerts("open") if a["status"] in ACTIVE_STATUSES]
    assert len(active) < len(book.alerts("open"))  # pending ones stand in the book and are not counted
    for severity in ("critical", "major", "minor"):
        assert figures[f"Active {severity}"].value == sum(a["severity"] == severity for a in active)
    as_of = data.as_of(src)
    recent = SqliteStore(var / "tower.db").reading_count(as_of - kpis.RATE_WINDOW_MS, as_of + 1)
    assert figures["Ingest rate"].value == round(recent / 300, 1) > 0
    devices = data.devices(src)
    assert figures["Devices online"].value + figures["Devices offline"].value == devices["expected"].sum()
    assert figures["On-time rate"].value is not None and 0 <= figures["On-time rate"].value <= 100


def test_kpi_rules_on_hand_made_frames():
    shipments = pd.DataFrame({
        "shipment": ["a", "b", "c"], "status": ["delivered", "late", "delivered"], "cold_chain": [True, True, False],
        "departure_ms": [0, 0, 0], "promised_ms": [100, 150, 120], "arrival_ms": [90.0, None, 130.0],
        "last_ms": [95, 160, 140],
    })  # fmt: skip
    assert kpis.on_time_rate(shipments, 0, 200) == pytest.approx(100 / 3, abs=0.1)  # a on time; b, c late
    assert kpis.in_transit_at(shipments, 85) == 3 and kpis.in_transit_at(shipments, 135) == 1
    alerts = pd.DataFrame({
        "rule": ["cold"], "entity": ["b"], "fired_ms": [50.0], "resolved_ms": [70.0], "raised_wall_ms": [1_000.0],
        "acked_ms": [121_000.0], "resolved_wall_ms": [None],
    })  # fmt: skip
    roles = RuleRoles(frozenset(), frozenset({"cold"}))
    assert kpis.cold_chain_compliance(shipments, alerts, roles, 0, 200) == 50.0
    assert kpis.cold_chain_compliance(shipments, alerts, roles, 80, 200) == 100.0
    assert kpis.mean_minutes(alerts, "acked_ms", 0, 100) == 2.0
    assert kpis.mean_minutes(alerts, "resolved_wall_ms", 0, 100) is None


def test_shipment_detail_replays_the_delay_rule_and_builds_the_timeline(var):
    src = data.source()
    detail = data.shipment_detail(src, "SHP-ANT-LIE-02")
    eta = detail.eta
    assert len(eta) > 10
    assert (eta["eta_early_ms"] <= eta["eta_ms"]).all() and (eta["eta_ms"] <= eta["eta_late_ms"]).all()
    assert eta["eta_ms"].iloc[-1] > detail.plan.promised_ms  # what made the alert fire
    events = list(detail.timeline["event"])
    assert events[0] == "planned departure" and "departed" in events and "promised delivery" in events
    # each step of the alert with what the engine said then (not the alert's newest detail at its first time)
    book = AlertBook(src.alerts_db)
    alert = next(a for a in book.alerts("all") if a["entity"] == "SHP-ANT-LIE-02" and a["rule"] == "delivery-at-risk")
    steps = [(s["at_ms"], s["note"]) for s in book.history(alert["id"])]
    shown = detail.timeline[detail.timeline["event"].str.startswith("alert delivery-at-risk")]
    assert list(zip(shown["ts_ms"], shown["detail"], strict=True)) == steps and steps
    delivered = data.shipment_detail(src, "SHP-RTM-AMS-01")
    arrived = delivered.timeline[delivered.timeline["event"] == "delivered"]
    assert len(arrived) == 1 and abs(arrived["ts_ms"].iloc[0] - delivered.row["arrival_ms"]) < 60_000  # 1-min means
    # reefer failure 15 min after departure, out of range from 08:19:40 until its arrival at 08:43:20: the
    # budget counts the minutes in transit, frozen at delivery (unloading is not an excursion)
    chilled = data.shipment_detail(src, "SHP-VNL-DUS-02")
    assert chilled.budget_min == 30 and 20 <= chilled.excursion_min <= 24
    assert data.shipment_detail(src, "nope") is None


def test_replay_times_and_chart_points_are_bounded_and_a_chosen_time_stays(var):
    """The replay's slider steps through about REPLAY_STEPS times over the planned trip whatever the
    track's length, and a time on it is still there when more positions have come in; a chart gets at
    most CHART_POINTS means."""
    plan = data.master(data.source()).plans["SHP-ANT-LIE-02"]
    trip_min = (plan.promised_ms - plan.departure_ms) // 60_000
    track = [plan.departure_ms + minute * 60_000 for minute in range(2 * trip_min)]  # late: twice the trip
    earlier = shipments.replay_times(track[: trip_min // 2], plan, 20)
    later = shipments.replay_times(track, plan, 20)
    assert 20 <= len(later) <= 45 and later[-1] == track[-1] and later[0] == track[0]
    assert set(earlier[:-1]) <= set(later)  # every time but the then newest is still a step
    frame = pd.DataFrame({"ts_ms": track, "temp_c": [float(n % 7) for n in range(len(track))]})
    thin = charts.thinned(frame)
    assert len(thin) <= charts.CHART_POINTS < len(frame) and thin["temp_c"].between(0, 6).all()
    assert thin["ts_ms"].is_monotonic_increasing and charts.thinned(frame.iloc[:10]).equals(frame.iloc[:10])


def test_shipments_most_urgent_first():
    statuses = ["delivered", "on time", "at risk", "late", "excursion", "at risk", "planned"]
    table = pd.DataFrame({"shipment": list("abcdefg"), "promised_ms": [7, 6, 5, 4, 3, 2, 1], "status": statuses})
    assert list(shipments.most_urgent_first(table)["shipment"]) == list("edfcbga")  # at risk: the earlier promise first


def test_equipment_health_warehouse_conditions_and_dock_doors(var):
    src = data.source()
    ranked = data.equipment_health(src)
    assert len(ranked) == len(data.master(src).machines)
    assert list(ranked["health"]) == sorted(ranked["health"])  # riskiest first
    assert ranked["health"].between(0, 100).all()
    hours, words = data.projections(src, "conv-rtm-03", 6 * 3_600_000)["vibration_rms_mm_s"]
    assert hours is not None and "trending +" in words  # bearing wear since 07:00
    sensors = data.site_sensors(src, "dc-rotterdam")
    assert len(sensors) >= 2 and sensors["temp_c"].notna().all()
    doors = data.dock_activity(src, "dc-rotterdam", 24 * 3_600_000)
    assert (doors["openings"] > 0).all() and not doors.empty


def _tower(var, *args: str) -> list[dict]:
    env = {**os.environ, "TOWER_DATA_DIR": str(var), "TOWER_STORE": f"sqlite:///{var}/tower.db"}
    done = subprocess.run([sys.executable, "-m", "tower.cli", *args, "--format", "json"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout)


def test_overview_map_alerts_and_the_cli_count_the_same(var):
    """One read model: the Overview's figures, the Map's statuses, the Alerts page's active queue and
    the CLI's lists agree on the seeded store (they disagreed when one counted pending alerts)."""
    overview = {metric.label: metric.value for metric in page("overview").metric}
    mapped = page("map")  # on the road, by default
    map_deck = json.loads(mapped.get("deck_gl_json_chart")[0].proto.json)
    on_map = [row["id"] for row in next(layer for layer in map_deck["layers"] if layer["id"] == POINTS)["data"]
              if row["kind"] == SHIPMENT]  # fmt: skip
    queue = {metric.label: metric.value for metric in page("alerts").metric}
    cli_alerts = [row for row in _tower(var, "alerts", "list") if row["status"] in ACTIVE_STATUSES]
    cli_shipments = {row["id"]: row["progress"] for row in _tower(var, "shipments", "list")}
    table = data.shipment_table(data.source()).set_index("shipment")["status"]

    assert dict(cli_shipments) == table.to_dict()  # where each shipment stands, shipment by shipment
    on_the_road = sorted(s for s, status in cli_shipments.items() if status in ON_THE_ROAD)
    assert sorted(on_map) == on_the_road and int(overview["In transit"]) == len(on_the_road) == 6
    for severity in SEVERITIES_WORST_FIRST[:3]:
        in_cli = sum(row["severity"] == severity for row in cli_alerts)
        assert int(overview[f"Active {severity}"]) == int(queue[severity]) == in_cli, severity
    assert sum(int(queue[s]) for s in SEVERITIES_WORST_FIRST) == len(cli_alerts) > 0
    # an opened alert says what the queue and the CLI say of it (its detail as of the newest reading)
    opened = page("alerts", alert=cli_alerts[0]["id"])
    assert cli_alerts[0]["detail"] in [element.value for element in opened.markdown], cli_alerts[0]
