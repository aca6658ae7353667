"""The dashboard's tests share one seeded store: 9 h 15 min of the default scenario played through
decoding into SQLite and through the default rules into an alert book (simulators/backfill.py),
with a dashboard user per role. Each test gets a private copy and the settings pointing at it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from alerts.book import AlertBook
from alerts.rules import load_rules
from dashboards.users import add_user
from simulators.backfill import backfill
from simulators.engine import Simulation
from tests.conftest import REPO
from tower.masterdata.store import MasterStore
from tower.scenario import load_scenario
from tower.store.sqlite import SqliteStore
from tower.timeutil import parse_moment_ms

START = "2026-01-05T00:00:00Z"
SEEDED_MS = int(9.25 * 3_600_000)
PAGES = ["overview", "map", "shipment", "warehouses", "equipment", "alerts"]
PASSWORD = "a long test password"  # of each test user, who is named after their role
ROLES = ("viewer", "operator", "admin")


@pytest.fixture(scope="session")
def simulation() -> Simulation:
    return Simulation(load_scenario("default"), 1, parse_moment_ms(START), SEEDED_MS)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, simulation) -> Path:
    folder = tmp_path_factory.mktemp("seeded")
    store = SqliteStore(folder / "tower.db")
    stored = backfill(simulation, store, load_rules("default"), AlertBook(folder / "alerts.db"),
                      MasterStore(folder / "master.db"))  # fmt: skip
    store.close()
    assert stored > 30_000
    for role in ROLES:
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


def app_test() -> AppTest:
    return AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=60)


def sign_in(app: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(password)
    return app.button(key="sign_in_submit").click().run()


def page(name: str, role: str = "operator", **query: str) -> AppTest:
    """A page under AppTest, signed in with that role, opened with that query."""
    app = app_test()
    app.run()
    sign_in(app, role)
    for key, value in query.items():
        app.query_params[key] = value
    return app.switch_page(f"views/{name}.py").run()
