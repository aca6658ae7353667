"""The dashboard for an operator who has connected devices and nothing else: no network file, no
shipment plans. Trackers, warehouse sensors and machines report (6 h of the default scenario's
devices, decoded as the collector does, with every plan left out), the alert engine's rules run
on them as devices of their own, and every page shows what it can instead of a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from alerts.backtest import replay
from alerts.book import AlertBook
from alerts.rules import load_rules
from benchmarks.browser import finished, heading
from dashboards import data
from dashboards.maps import POINTS, TRACKER
from dashboards.users import add_user
from simulators.backfill import decoded
from simulators.engine import Simulation
from tests.browser import SCREENSHOTS, chromium, click_page, dashboard, open_signed_in
from tests.conftest import REPO
from tower.masterdata.store import MasterStore
from tower.scenario import load_scenario
from tower.store import Batch
from tower.store.sqlite import SqliteStore
from tower.timeutil import parse_moment_ms

PAGES = ["overview", "map", "shipment", "warehouses", "equipment", "alerts"]
PASSWORD = "a long test password"
TITLES = [
    ("Overview", "Control Tower"),
    ("Map", "Map"),
    ("Shipment", "Shipment"),
    ("Warehouses", "Warehouses"),
    ("Equipment", "Equipment health"),
    ("Alerts", "Alerts"),
]  # each page's link in the sidebar, and title


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("devices-only")
    simulation = Simulation(load_scenario("default"), 2, parse_moment_ms("2026-01-05T06:00:00Z"), 6 * 3_600_000)
    store = SqliteStore(folder / "tower.db")
    readings = []
    for publish_ms, batch in decoded(simulation):  # plans are left out: the tower has no master data
        store.write(Batch(readings=batch.readings, dead_letters=batch.dead_letters, statuses=batch.statuses))
        readings += [(publish_ms, reading) for reading in batch.readings]
    store.close()
    replay(load_rules("default"), readings, MasterStore(folder / "master.db"), simulation.end_ms,
           AlertBook(folder / "alerts.db"))  # fmt: skip
    add_user(folder / "dashboard-users.yaml", "viewer", "viewer", PASSWORD, "")
    return folder


@pytest.fixture
def var(seeded, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "var"
    shutil.copytree(seeded, folder)
    monkeypatch.setenv("TOWER_STORE", f"sqlite:///{folder}/tower.db")
    monkeypatch.setenv("TOWER_DATA_DIR", str(folder))
    return folder


def test_devices_without_plans_are_on_the_map_and_in_the_lists(var):
    src = data.source()
    assert data.shipment_table(src).empty and not data.master(src).plans
    trackers = data.unplanned_trackers(src)
    on_the_road_now = {d.device_id for d in SqliteStore(var / "tower.db").devices() if d.kind == "shipment"}
    assert len(trackers) == len(on_the_road_now) > 10
    machines = data.equipment_health(src)
    assert len(machines) == 40 and (machines["type"] == "unknown to master data").all()
    assert data.monitored_sites(src) == [""] and len(data.site_sensors(src, "")) == 12
    figures = {kpi.label: kpi.value for kpi in data.overview(src, 6 * 3_600_000)}
    assert figures["In transit"] == 0 and figures["Devices online"] > 50


@pytest.mark.parametrize("name", PAGES)
def test_every_page_shows_what_it_can(var, name):
    app = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=60)
    app.run()
    app.text_input(key="sign_in_name").input("viewer")
    app.text_input(key="sign_in_password").input(PASSWORD)
    app.button(key="sign_in_submit").click().run()
    app = app.switch_page(f"views/{name}.py").run()
    assert not app.exception, [e.message for e in app.exception]
    assert not [e.value for e in app.error], [e.value for e in app.error]
    if name in ("overview", "map"):
        deck = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
        dots = next(layer for layer in deck["layers"] if layer["id"] == POINTS)["data"]
        assert len([dot for dot in dots if dot["kind"] == TRACKER]) > 10  # trackers with no plan


def test_headless_chromium_shows_kpis_and_a_map_of_the_devices_and_no_error(var, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with dashboard(tmp_path / "dashboard.log") as url, chromium() as browser:
        found = lambda css: browser.find_elements(By.CSS_SELECTOR, css)  # noqa: E731
        wait = WebDriverWait(browser, 60)
        open_signed_in(browser, url, "viewer", PASSWORD)
        wait.until(lambda _: len(found('[data-testid="stMetricValue"]')) >= 13)
        wait.until(lambda _: found('[data-testid="stDeckGlJsonChart"] canvas'))
        browser.save_screenshot(str(SCREENSHOTS / "overview-devices-only.png"))
        for page, (link, title) in zip(PAGES, TITLES, strict=True):
            click_page(browser, link)  # in the signed-in session
            wait.until(lambda _, title=title: finished(browser, "h1") and heading(browser) == title)
            wait.until(lambda _: not found('[data-testid="stSkeleton"], [data-testid="stStatusWidget"]'))
            browser.save_screenshot(str(SCREENSHOTS / f"{page}-devices-only.png"))
            body = browser.find_element(By.TAG_NAME, "body").text
            assert not found('[data-testid="stException"]') and "could not be shown" not in body, (page, body[:500])
