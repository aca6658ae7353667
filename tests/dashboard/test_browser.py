"""The running dashboard in headless Chromium, one `tower dashboard` on a copy of the seeded store
and one browser for the module: every page asks for a sign-in; the Overview's KPIs; the map fitted
to every shipment on the road with a plain-text tooltip where the shipment is drawn; the Shipment
page's tiles with full values and the replayed trail drawn on the basemap-less background; and an
operator acknowledging from the queue by clicking a row, seeing the new status and the audit trail
without a reload, while a viewer gets no button. Screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.book import AlertBook
from alerts.conditions import State
from alerts.evaluate import Change
from alerts.rules import load_rules
from dashboards.maps import FIT_WIDTH_PX
from tests.browser import SCREENSHOTS, chromium, dashboard, found, open_signed_in
from tests.dashboard.conftest import PAGES, PASSWORD, page
from tests.dashboard.test_pages import _decks, _points, _projected, in_view
from tower.contract import DeviceKind
from tower.domain import Severity

WAIT_S = 60


@pytest.fixture(scope="module")
def served(seeded, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("browser") / "var"
    shutil.copytree(seeded, folder)
    env = {"TOWER_STORE": f"sqlite:///{folder}/tower.db", "TOWER_DATA_DIR": str(folder)}
    with pytest.MonkeyPatch.context() as patch:  # AppTest here computes what the browser should get
        for name, value in env.items():
            patch.setenv(name, value)
        with dashboard(folder.parent / "dashboard.log", env) as url:
            yield url, folder


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as opened:
        yield opened


def _wait(browser, condition, what: str):  # noqa: ANN001, ANN202
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(lambda _: condition(), message=what)


def _body(browser) -> str:  # noqa: ANN001
    return found(browser, "body")[0].text


def test_every_page_asks_for_a_sign_in(served, browser):
    url, _ = served
    for name in PAGES:
        browser.get(f"{url}/{name}")
        _wait(browser, lambda: found(browser, 'input[type="password"]'), f"{name}: the sign-in form")
        assert not found(browser, '[data-testid="stMetric"], [data-testid="stDeckGlJsonChart"], '
                                  '[data-testid="stDataFrame"]'), name  # fmt: skip
        assert not found(browser, '[data-testid="stSidebarNav"]'), name


def test_overview_shows_the_kpis(served, browser):
    url, _ = served
    open_signed_in(browser, url, "viewer", PASSWORD)
    _wait(browser, lambda: len(found(browser, '[data-testid="stMetricValue"]')) >= 13, "the KPIs")
    _wait(browser, lambda: found(browser, '[data-testid="stDeckGlJsonChart"] canvas'), "the map")
    values = [element.text for element in found(browser, '[data-testid="stMetricValue"]')]
    assert values[0] == "6" and values[2] == "1", values  # in transit, predicted late
    assert "Signed in as viewer (viewer)" in _body(browser)
    browser.save_screenshot(str(SCREENSHOTS / "overview.png"))


def test_the_map_fits_every_shipment_on_the_road_and_its_tooltip_is_plain_text(served, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    url, _ = served
    open_signed_in(browser, f"{url}/map", "viewer", PASSWORD)
    _wait(browser, lambda: found(browser, '[data-testid="stDeckGlJsonChart"] canvas'), "the map")
    canvas = found(browser, '[data-testid="stDeckGlJsonChart"] canvas')[0]
    width, height = canvas.size["width"], canvas.size["height"]
    deck = _decks(page("map", role="viewer"))[0]  # what this browser got: the same store and zone (UTC)
    shipments = _points(deck, "shipment")
    assert width >= FIT_WIDTH_PX and len(shipments) == 6 and all(in_view(deck, width, height)), (width, height)
    at_risk = next(row for row in shipments if row["id"] == "SHP-ANT-LIE-02")
    x, y = _projected(deck["initialViewState"], *at_risk["position"], width, height)
    for dx, dy in ((0, 0), (2, 0), (0, 2), (-2, 0), (0, -2)):  # on the dot, give or take a pixel of rounding
        ActionChains(browser).move_to_element_with_offset(canvas, int(x - width / 2) + dx,
                                                          int(y - height / 2) + dy).perform()  # fmt: skip
        tooltip = [t for t in found(browser, ".deck-tooltip") if t.is_displayed() and t.text]
        if tooltip:
            break
    assert tooltip, "no tooltip where the shipment is drawn"
    text, html = tooltip[0].text, tooltip[0].get_attribute("innerHTML")
    assert text.startswith("SHP-ANT-LIE-02 · at risk") and "promised 2026-01-05" in text, text
    assert "<b>" not in html and "&lt;" not in html, html
    browser.save_screenshot(str(SCREENSHOTS / "map.png"))


def test_the_shipment_page_shows_full_values_and_draws_the_trail(served, browser):
    from PIL import Image

    url, _ = served
    open_signed_in(browser, f"{url}/shipment?shipment=SHP-ANT-LIE-02", "viewer", PASSWORD)
    _wait(browser, lambda: found(browser, '[data-testid="stDeckGlJsonChart"]'), "the replay")
    _wait(browser, lambda: found(browser, ".st-key-tile_promised p"), "the tiles")
    for key in ("promised", "arrival"):
        value = found(browser, f".st-key-tile_{key} strong")[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", value.text), value.text
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", value)
    replay = found(browser, '[data-testid="stDeckGlJsonChart"]')[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", replay)
    browser.save_screenshot(str(SCREENSHOTS / "shipment.png"))
    image = Image.open(io.BytesIO(replay.screenshot_as_png)).convert("RGB")
    pixels = list(image.get_flattened_data())
    at_risk = sum(1 for r, g, b in pixels if r > 220 and 120 < g < 200 and b < 60)  # the trail: amber
    assert 150 < at_risk < 0.2 * len(pixels), (at_risk, len(pixels))  # a line, not a block over the map


def test_an_operator_acknowledges_from_the_queue_and_sees_it_without_a_reload(served, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, folder = served
    book = AlertBook(folder / "alerts.db")
    first = next(a for a in book.alerts("open") if a["status"] == "firing")  # the queue's first row
    open_signed_in(browser, f"{url}/alerts", "operator", PASSWORD)
    _wait(browser, lambda: found(browser, '[data-testid="stDataFrame"] [data-testid="data-grid-canvas"]'), "queue")
    grid = found(browser, '[data-testid="stDataFrame"] [data-testid="data-grid-canvas"]')[0]
    top_left = (-grid.size["width"] / 2, -grid.size["height"] / 2)
    ActionChains(browser).move_to_element_with_offset(grid, int(top_left[0] + 18), int(top_left[1] + 35 + 17)).click(
    ).perform()  # the first row's selection box, under the 35 px header  # fmt: skip
    _wait(browser, lambda: found(browser, ".st-key-act_acknowledge button"), "the alert, opened by the click")
    assert f"on {first['entity']}" in _body(browser) and first["runbook"]["steps"][0] in _body(browser)
    found(browser, 'input[aria-label="Note for the audit trail"]')[0].send_keys("on my way")
    found(browser, ".st-key-act_acknowledge button")[0].click()
    _wait(browser, lambda: "Status: acknowledged by operator" in _body(browser), "the new status")
    trail = found(browser, '[data-testid="stTable"]')[0].find_elements(By.CSS_SELECTOR, "tr")[-1].text
    assert "acknowledged" in trail and "operator" in trail and "on my way" in trail, trail
    assert book.get(first["id"])["acked_by"] == "operator"
    notes = found(browser, 'input[aria-label="Note for the audit trail"]')  # the next action's: empty
    assert notes and notes[0].get_attribute("value") == "", notes[0].get_attribute("value")
    browser.save_screenshot(str(SCREENSHOTS / "alerts.png"))
    # the engine brings the detail of a firing alert up to date: the open alert shows it without a reload
    rule = load_rules("default").rules[0].model_copy(update={"id": first["rule"]})
    book.apply(Change(rule, first["entity"], first["device"], DeviceKind(first["kind"]), first["site"], State.FIRING,
                      Severity.of(first["severity"]), first["fired_ms"] + 300_000, first["value"],
                      "brought up to date: 42 min out of range", refresh=True), wall_ms=0)  # fmt: skip
    _wait(browser, lambda: "brought up to date: 42 min out of range" in _body(browser), "the refreshed detail")
    # a viewer, on the same page by the notification's link, is offered nothing to press
    other = next(a for a in book.alerts("all") if a["status"] == "pending")  # one an operator could acknowledge
    open_signed_in(browser, f"{url}/alerts?alert={other['id']}", "viewer", PASSWORD)
    _wait(browser, lambda: other["runbook"]["steps"][0] in _body(browser), "the alert from its link")
    assert "take the operator role" in _body(browser) and not found(browser, '[class*="st-key-act_"]')
    assert json.dumps(book.get(other["id"])) == json.dumps(other)
