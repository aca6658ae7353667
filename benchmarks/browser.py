"""A real browser and a running dashboard, for the dashboard's browser benchmark and its Selenium
tests: Debian's headless Chromium through Selenium, a Streamlit app as a child process on a free
port (stopped afterwards), signing in, and knowing when a page has finished drawing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tower.broker import free_port

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,1300")  # fmt: skip
SIGN_IN_FORM = ('input[aria-label="User name"]', 'input[type="password"]',
                '[data-testid="stBaseButton-primaryFormSubmit"]')  # fmt: skip


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium WebDriver; quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which("chromium") and shutil.which("chromedriver"), "apt-get install -y chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@contextmanager
def streamlit_app(command: list[str], log: Path, env: dict[str, str], timeout_s: float = 120) -> Iterator[str]:
    """A Streamlit server (`tower dashboard`, or `streamlit run` of another file) on a free port, with
    the port's option appended; its base URL once its health endpoint answers; stopped afterwards."""
    port = free_port()
    option = "--port" if command[-1] == "dashboard" else "--server.port"
    with open(log, "ab") as output:
        process = subprocess.Popen([*command, option, str(port)], env={**os.environ, **env}, stdout=output,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def tower_dashboard() -> list[str]:
    return [sys.executable, "-m", "tower.cli", "dashboard"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def found(browser: object, css: str) -> list:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def finished(browser: object, last: str) -> bool:
    """The script has run (Streamlit's own run-state marker) and the page's last element is there."""
    from selenium.common.exceptions import WebDriverException

    try:
        state = found(browser, '[data-testid="stApp"]')
        return bool(state and state[0].get_attribute("data-test-script-state") == "notRunning" and found(browser, last))
    except WebDriverException:  # replaced while we looked
        return False


# Watched from inside the page, once per frame, with one WebDriver call (polling the page through
# WebDriver every few ms kept the browser under measurement busy answering). A map is drawn when
# deck.gl's canvas has had its first draw call (its canvas is sized well before: shaders are compiled,
# in software here, at that first draw) and the browser has shown two more frames (a WebGL frame is
# composited, and so waited for, at the next frame). WATCH_DRAWING, run in every document before its
# own scripts, marks a canvas at its first draw call.
WATCH_DRAWING = """for (const proto of [WebGLRenderingContext.prototype, WebGL2RenderingContext.prototype]) {
  for (const name of ['drawArrays', 'drawElements', 'drawArraysInstanced', 'drawElementsInstanced']) {
    const draw = proto[name];
    proto[name] = function (...args) {
      if (this.canvas && !this.canvas.dataset.drawn) this.canvas.dataset.drawn = String(performance.now());
      return draw.apply(this, args);
    };
  }
}"""
DRAWN = """const [heading, last, count, maps, timeoutMs, done] = arguments;
const began = performance.now();
const sized = c => c.clientWidth > 0 && Math.abs(c.width - c.clientWidth * devicePixelRatio) <= 2;
function drawn() {
  const title = document.querySelector('h1'), app = document.querySelector('[data-testid="stApp"]');
  const charts = [...document.querySelectorAll('[data-testid="stDeckGlJsonChart"]')];
  return title && title.innerText.trim() === heading && app
    && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelectorAll(last).length >= count && charts.length >= maps
    && charts.every(chart => [...chart.querySelectorAll('canvas')].every(sized)
                             && chart.querySelector('canvas#deckgl-overlay[data-drawn]'));
}
function look() {
  if (drawn()) requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
  else if (performance.now() - began > timeoutMs) done(false);
  else requestAnimationFrame(look);
}
look();"""


def watch_drawing(browser: object) -> None:
    """From the next document on, canvases are marked at their first WebGL draw call (wait_drawn)."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_DRAWING})


def wait_drawn(browser: object, heading: str, last: str, count: int = 1, maps: int = 0,
               timeout_s: float = 120) -> None:  # fmt: skip
    """Returns once the page titled `heading` has finished its script (Streamlit's run-state marker),
    shows at least `count` of its last element and `maps` maps, every map has drawn (watch_drawing
    called before the page was opened), and the browser has shown two more frames; TimeoutError if
    not within timeout_s."""
    browser.set_script_timeout(timeout_s + 5)
    if not browser.execute_async_script(DRAWN, heading, last, count, maps, timeout_s * 1000):
        raise TimeoutError(f"{heading}: not drawn within {timeout_s} s")


def sign_in(browser: object, name: str, password: str, timeout_s: float = 60) -> float:
    """Fill in and submit the sign-in form the page shows (drawn again as the page settles: retried);
    returns once signed in, with the time.perf_counter() of the submit's click."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, timeout_s)

    def ready() -> list | None:
        elements = [found(browser, css) for css in SIGN_IN_FORM]
        usable = all(e and e[0].is_displayed() and e[0].is_enabled() for e in elements)
        return [e[0] for e in elements] if usable else None

    clicked = []

    def submitted() -> bool:
        try:
            user, secret, submit = wait.until(lambda _: ready())
            user.send_keys(name)
            secret.send_keys(password)
            clicked.append(time.perf_counter())
            submit.click()
        except WebDriverException:
            return False
        return True

    wait.until(lambda _: submitted())
    wait.until(lambda _: not found(browser, 'input[type="password"]') and found(browser, '[data-testid="stSidebar"]'))
    return clicked[-1]


def open_signed_in(browser: object, url: str, name: str, password: str, timeout_s: float = 60) -> None:
    """Open a page by URL (a new session) and sign in; returns once the page has its title."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    sign_in(browser, name, password, timeout_s)
    WebDriverWait(browser, timeout_s).until(lambda _: found(browser, "h1"))


def click_page(browser: object, title: str) -> None:
    """Go to a page by its link in the sidebar (the same session: no new sign-in)."""

    def words(link: object) -> str:  # a link's icon is a ligature of its own name, on a line before them
        return link.text.strip().splitlines()[-1] if link.text.strip() else ""

    next(link for link in found(browser, '[data-testid="stSidebarNavLink"]') if words(link) == title).click()


def heading(browser: object) -> str:
    """The page's title as shown now ("" while it is being replaced)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return found(browser, "h1")[0].text
    except (IndexError, WebDriverException):
        return ""
