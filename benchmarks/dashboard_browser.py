"""Dashboard benchmark in a real browser: headless Chromium against `tower dashboard` on the seeded
benchmark store (benchmarks/dashboard.py seeds it: 2,000 shipments on the road, 19 million readings).

A page's time runs from the navigation to the page's last element drawn, with Streamlit saying
its script has finished (the page's tables, charts and maps are in the document), every map's
first WebGL draw made and two more frames shown, so the map is on screen (benchmarks/browser.py
watches this from inside the page, once per frame):
- first load after a start: a fresh `tower dashboard` process, the browser opens it and signs in;
  from the click on the sign-in's submit to the Overview's last element (and, apart, from the
  navigation to the sign-in form); the median of three fresh processes;
- cold: from a click on the page's link in the sidebar to its last element, after a wait on
  another page (which shares no kept read with it) longer than the 5 s refresh: every read the
  page needs is stale, so it is shown as kept while it is read again behind (dashboards/kept.py);
- warm: the same click again right after (from the other page and back), within the refresh.
A first visit with nothing kept at all is the first load's case.
Baseline in the same run and browser: an empty two-page Streamlit app, a click on its other page.

Run: make bench   (or: python -m benchmarks.dashboard_browser)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.browser import chromium, click_page, sign_in, streamlit_app, tower_dashboard, wait_drawn, watch_drawing
from benchmarks.dashboard import PASSWORD, SEED_DIR, SHIPMENTS, USER, seed

REFRESH_S = 5  # dashboards/data.py's cache period (imported there, it would start Streamlit's caches here)

RUNS = 3
TIMEOUT_S = 120
# Each page's last element: what it draws last once its data is in.
LAST = {
    "overview": ".st-key-attention_csv",  # the table's download button, drawn after it
    "map": '[data-testid="stDeckGlJsonChart"] canvas',
    "shipment": '[data-testid="stDeckGlJsonChart"] canvas',  # the trail replay, at the bottom
    "warehouses": ".st-key-site_equipment_csv",
    "equipment": '[data-testid="stVegaLiteChart"] svg.marks',  # the chosen machine's three signals
    "alerts": ".st-key-alerts_csv",
}  # fmt: skip
COUNT = {"equipment": 3}  # how many of the last element a page draws
MAPS = {"overview": 1, "map": 1, "shipment": 1}  # how many maps a page draws
LINKS = {"overview": "Overview", "map": "Map", "shipment": "Shipment", "warehouses": "Warehouses",
         "equipment": "Equipment", "alerts": "Alerts"}  # fmt: skip
SIGN_IN_HEADING = "Control Tower"  # the sign-in form's page (dashboards/auth.py)
HEADINGS = {"overview": "Control Tower", "map": "Map", "shipment": "Shipment", "warehouses": "Warehouses",
            "equipment": "Equipment health", "alerts": "Alerts"}  # fmt: skip
EMPTY_APP = """import streamlit as st
pages = [st.Page(lambda: st.title("one"), title="One", url_path="one", default=True),
         st.Page(lambda: st.title("two"), title="Two", url_path="two")]
st.navigation(pages).run()
"""


def _drawn(browser, page: str) -> None:  # noqa: ANN001
    """Returns once the page is drawn (benchmarks/browser.py's finish line)."""
    wait_drawn(browser, HEADINGS[page], LAST[page], COUNT.get(page, 1), MAPS.get(page, 0), TIMEOUT_S)


def _submit_and_time(browser, page: str) -> float:  # noqa: ANN001
    """Sign in on the form the page shows; seconds from the submit's click to the page's last element
    (the first page of a session: the password check and a new session's first run are in it)."""
    clicked = sign_in(browser, USER, PASSWORD, TIMEOUT_S)
    _drawn(browser, page)
    return time.perf_counter() - clicked


def first_load(env: dict[str, str], log: Path) -> tuple[float, float]:
    """Fresh dashboard processes (RUNS): median seconds to the sign-in form, and from its submit to the
    Overview."""
    forms, firsts = [], []
    for _ in range(RUNS):
        with streamlit_app(tower_dashboard(), log, env) as url, chromium() as browser:
            watch_drawing(browser)
            began = time.perf_counter()
            browser.get(url)
            wait_drawn(browser, SIGN_IN_HEADING, 'input[type="password"]', timeout_s=TIMEOUT_S)
            forms.append(time.perf_counter() - began)
            firsts.append(_submit_and_time(browser, "overview"))
    return statistics.median(forms), statistics.median(firsts)


def pages(env: dict[str, str], log: Path) -> dict[str, tuple[float, float]]:
    """Per page: median cold and warm seconds, in one signed-in session."""
    results = {}
    with streamlit_app(tower_dashboard(), log, env) as url, chromium() as browser:
        watch_drawing(browser)
        browser.get(f"{url}/alerts")
        sign_in(browser, USER, PASSWORD, TIMEOUT_S)
        for page in LAST:
            cold, warm = [], []
            other = "alerts" if page != "alerts" else "equipment"  # a page that shares no cached read with it
            for _ in range(RUNS):
                _go(browser, other)
                time.sleep(REFRESH_S + 1)  # every cached read the page needs has expired
                cold.append(_go(browser, page))
                _go(browser, other)
                warm.append(_go(browser, page))  # within the cache period of the cold visit
            results[page] = (statistics.median(cold), statistics.median(warm))
    return results


def _go(browser, page: str) -> float:  # noqa: ANN001
    """Click the page's link in the sidebar; seconds until its last element is drawn."""
    began = time.perf_counter()
    click_page(browser, LINKS[page])
    _drawn(browser, page)
    return time.perf_counter() - began


def baseline(log: Path) -> tuple[float, float]:
    """An empty two-page app in the same browser: median seconds of a full load, and of a page click."""
    with tempfile.TemporaryDirectory() as folder:
        app = Path(folder) / "empty.py"
        app.write_text(EMPTY_APP)
        command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
                   "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1"]  # fmt: skip
        with streamlit_app(command, log, {}) as url, chromium() as browser:
            loads, clicks = [], []
            for _ in range(RUNS):
                began = time.perf_counter()
                browser.get(url)
                wait_drawn(browser, "one", "h1", timeout_s=TIMEOUT_S)
                loads.append(time.perf_counter() - began)
                click_page(browser, "Two")
                wait_drawn(browser, "two", "h1", timeout_s=TIMEOUT_S)
                began = time.perf_counter()
                click_page(browser, "One")
                wait_drawn(browser, "one", "h1", timeout_s=TIMEOUT_S)
                clicks.append(time.perf_counter() - began)
    return statistics.median(loads), statistics.median(clicks)


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    folder = SEED_DIR
    facts = seed(folder)
    env = {"TOWER_STORE": f"sqlite:///{folder}/tower.db", "TOWER_DATA_DIR": str(folder)}
    log = folder / "dashboard-bench.log"
    print(f"dashboard in headless Chromium on the seeded store: {facts['readings']:,} readings, {SHIPMENTS:,} "
          f"shipments on the road, {facts['alerts']} open alerts")  # fmt: skip
    empty_load, empty_click = baseline(log)
    form, first = first_load(env, log)
    results = pages(env, log)
    print(f"{'page':<12} {'cold (s)':>9} {'warm (s)':>9} {'target':>8} {'cold / empty page':>18}")
    for page, (cold, warm) in results.items():
        print(f"{page:<12} {cold:>9.2f} {warm:>9.2f} {'<= 1 s':>8} {cold / empty_click:>17.1f}x")
    print(f"baseline: an empty Streamlit page in the same browser: {empty_click * 1000:.0f} ms from a click, "
          f"{empty_load * 1000:.0f} ms for a full load")  # fmt: skip
    print(f"first load after a start: sign-in form in {form:.2f} s, then the Overview in {first:.2f} s "
          f"(target <= 2 s): {'OK' if first <= 2 else 'OVER'}")  # fmt: skip
    worst = max(max(cold, warm) for cold, warm in results.values())
    print(f"slowest page: {worst:.2f} s (target <= 1 s): {'OK' if worst <= 1.0 else 'OVER'}")


if __name__ == "__main__":
    main()
