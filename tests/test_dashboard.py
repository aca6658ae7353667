"""The dashboard on a seeded store: 9 h 15 min of the default scenario played through decoding into
SQLite and through the default rules into an alert book (simulators/backfill.py). Its data
functions are checked against the simulation's own truth, every page runs under AppTest, the
Alerts page's acknowledge changes the book, and a real headless Chromium renders the running app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from alerts.book import AlertBook
from alerts.rules import load_rules
from alerts.shipment_view import RuleRoles
from dashboards import data, kpis
from dashboards.users import add_user
from simulators.backfill import backfill
from simulators.engine import Simulation
from simulators.tms import PLAN_LEAD_MS
from tests.browser import SCREENSHOTS, chromium, dashboard
from tests.conftest import REPO
from tower.domain import ON_THE_ROAD, OPEN_STATUSES
from tower.masterdata.store import MasterStore
from tower.scenario import load_scenario
from tower.store.sqlite import SqliteStore
from tower.timeutil import parse_moment_ms

START = "2026-01-05T00:00:00Z"
SEEDED_MS = int(9.25 * 3_600_000)
PAGES = ["overview", "map", "shipment", "warehouses", "equipment", "alerts"]
PASSWORD = "a long test password"  # of each test user, who is named after their role


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    return Simulation(load_scenario("default"), 1, parse_moment_ms(START), SEEDED_MS)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, simulation) -> Path:
    folder = tmp_path_factory.mktemp("seeded")
    store = SqliteStore(folder / "tower.db")
    stored = backfill(simulation, store, load_rules("default"), AlertBook(folder / "alerts.db"),
                      MasterStore(folder / "master.db"))  # fmt: skip
    store.close()
    assert stored > 30_000
    for role in ("viewer", "operator", "admin"):
        add_user(folder / "dashboard-users.yaml", role, role, PASSWORD, START)
    return folder


@pytest.fixture
def var(seeded, tmp_path, monkeypatch) -> Path:
    """A private copy of the seeded store and book, and the dashboard's settings pointing at it."""
    folder = tmp_path / "var"
    shutil.copytree(seeded, folder)
    for name, value in {"TOWER_STORE": f"sqlite:///{folder}/tower.db", "TOWER_DATA_DIR": str(folder)}.items():
        monkeypatch.setenv(name, value)
    return folder


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
    firing = [a for a in book.alerts("open") if a["fired_ms"] is not None]
    for severity in ("critical", "major", "minor"):
        assert figures[f"Open {severity}"].value == sum(a["severity"] == severity for a in firing)
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
    assert any(e.startswith("alert delivery-at-risk") for e in events)
    delivered = data.shipment_detail(src, "SHP-RTM-AMS-01")
    arrived = delivered.timeline[delivered.timeline["event"] == "delivered"]
    assert len(arrived) == 1 and abs(arrived["ts_ms"].iloc[0] - delivered.row["arrival_ms"]) < 60_000  # 1-min means
    # reefer failure 15 min after departure, out of range from 08:19:40 until its arrival at 08:43:20: the
    # budget counts the minutes in transit, frozen at delivery (unloading is not an excursion)
    chilled = data.shipment_detail(src, "SHP-VNL-DUS-02")
    assert chilled.budget_min == 30 and 20 <= chilled.excursion_min <= 24
    assert data.shipment_detail(src, "nope") is None


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


# -- pages under AppTest -------------------------------------------------------------------------


def sign_in(app: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(password)
    return app.button(key="sign_in_submit").click().run()


def _page(name: str, role: str = "operator", **query: str) -> AppTest:
    app = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=60)
    app.run()
    sign_in(app, role)
    for key, value in query.items():
        app.query_params[key] = value
    return app.switch_page(f"views/{name}.py").run()


@pytest.mark.parametrize("name", PAGES)
def test_every_page_runs_without_exceptions(var, name):
    app = _page(name)
    assert not app.exception, [e.message for e in app.exception]
    assert app.title[0].value


def test_overview_shows_the_kpis_and_the_map(var):
    app = _page("overview")
    labels = [metric.label for metric in app.metric]
    assert labels[:4] == ["In transit", "On-time rate", "Predicted late", "Cold-chain compliance"]
    assert {"Mean time to acknowledge", "Devices offline", "Ingest rate", "Ingest lag"} <= set(labels)
    deck = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
    shipments = next(layer for layer in deck["layers"] if layer["id"] == "shipments")
    assert len(shipments["data"]) == 6


def test_map_filters_and_the_selected_shipment(var):
    app = _page("map")
    app.multiselect(key="f_status").set_value(["at risk"]).run()
    deck = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
    layers = {layer["id"]: layer for layer in deck["layers"]}
    assert [s["shipment"] for s in layers["shipments"]["data"]] == ["SHP-ANT-LIE-02"]
    assert [t["shipment"] for t in layers["trails"]["data"]] == ["SHP-ANT-LIE-02"]  # few shown: trails drawn
    assert len(layers["trails"]["data"][0]["path"]) > 5
    assert len(layers["sites"]["data"]) == len(data.master(data.source()).data.network.sites)


def _select(app: AppTest, layer: str, picked: dict) -> AppTest:
    """What the browser sends back when a point of a pickable layer is clicked."""
    app.session_state["map"] = {"selection": {"indices": {layer: [0]}, "objects": {layer: [picked]}}}
    return app.run()


def test_selecting_on_the_map_shows_the_shipment_or_the_site(var):
    app = _select(_page("map"), "shipments", {"shipment": "SHP-RTM-EIN-02"})
    assert [s.value for s in app.subheader] == ["Shipment SHP-RTM-EIN-02"]
    assert app.dataframe[0].value["shipment"].tolist() == ["SHP-RTM-EIN-02"]
    deck = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
    trails = next(layer for layer in deck["layers"] if layer["id"] == "trails")["data"]
    assert "SHP-RTM-EIN-02" in [t["shipment"] for t in trails]  # its trail is drawn
    app = _select(_page("map"), "sites", {"site": "dc-rotterdam"})
    assert [s.value for s in app.subheader] == ["Site dc-rotterdam"]
    assert "wh-rtm-chilled" in app.dataframe[0].value["sensor"].tolist()


def test_shipment_page_opens_from_a_link(var):
    app = _page("shipment", shipment="SHP-ANT-LIE-02")
    assert not app.exception
    assert app.selectbox(key="shipment_id").value == "SHP-ANT-LIE-02"
    assert any("at risk" in m.value for m in app.markdown)
    assert app.select_slider(key="replay_at").value is not None


# -- the Alerts page: acknowledge changes the book -------------------------------------------------


def test_acknowledging_from_the_alerts_page_records_the_operator(var):
    book = AlertBook(var / "alerts.db")
    alert = next(a for a in book.alerts("open") if a["status"] == "firing")
    app = _page("alerts", alert=alert["id"])
    assert not app.exception
    assert any(alert["runbook"]["steps"][0] in m.value for m in app.markdown)
    app.text_input(key="by").input("Anna")
    app.text_input(key="note").input("on my way")
    app.button[-1].click().run()  # the form's Apply (acknowledge is the default action)
    assert not app.exception
    assert book.get(alert["id"])["status"] == "acknowledged" and book.get(alert["id"])["acked_by"] == "Anna"
    assert book.history(alert["id"])[-1]["note"] == "on my way"
    assert any("acknowledged (by Anna)" in s.value for s in app.success)


def test_an_action_without_a_name_is_refused(var):
    book = AlertBook(var / "alerts.db")
    alert = next(a for a in book.alerts("open") if a["status"] == "firing")
    app = _page("alerts", alert=alert["id"])
    app.button[-1].click().run()
    assert any("Enter your name" in e.value for e in app.error)
    assert book.get(alert["id"])["status"] in OPEN_STATUSES and book.get(alert["id"])["acked_by"] is None


# -- a real browser ----------------------------------------------------------------------------------


@pytest.fixture
def running_dashboard(var, tmp_path):
    with dashboard(tmp_path / "dashboard.log") as url:
        yield url


def test_headless_chromium_renders_the_map_the_kpis_and_the_alert_queue(running_dashboard):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium() as browser:
        found = lambda css: browser.find_elements(By.CSS_SELECTOR, css)  # noqa: E731
        wait = WebDriverWait(browser, 60)
        browser.get(running_dashboard)
        wait.until(lambda _: len(found('[data-testid="stMetricValue"]')) >= 13)
        wait.until(lambda _: found('[data-testid="stDeckGlJsonChart"] canvas'))
        values = [element.text for element in found('[data-testid="stMetricValue"]')]
        assert values[0] == "6" and values[2] == "1", values  # in transit, predicted late
        browser.save_screenshot(str(SCREENSHOTS / "overview.png"))
        browser.get(f"{running_dashboard}/map")
        wait.until(lambda _: found('[data-testid="stDeckGlJsonChart"] canvas'))
        canvas = found('[data-testid="stDeckGlJsonChart"] canvas')[0]
        assert canvas.size["width"] > 500 and canvas.size["height"] > 300
        browser.save_screenshot(str(SCREENSHOTS / "map.png"))
        browser.get(f"{running_dashboard}/alerts")
        wait.until(lambda _: found('[data-testid="stDataFrame"]'))
        wait.until(lambda _: "delivery-at-risk" in browser.find_element(By.TAG_NAME, "body").text or found(
            '[data-testid="stDataFrame"] canvas'))  # fmt: skip
        severities = [element.text for element in found('[data-testid="stMetricLabel"]')]
        assert severities[:4] == ["critical", "major", "minor", "info"], severities
        browser.save_screenshot(str(SCREENSHOTS / "alerts.png"))
