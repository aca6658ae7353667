"""A real browser for the dashboard tests: Debian's headless Chromium through Selenium, `tower
dashboard` as a child process on a free port (stopped with its Streamlit child afterwards), and
opening a page signed in (every page asks for it; each navigation by URL is a new session)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO, wait_until
from tower.broker import free_port

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,1300")  # fmt: skip
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield browser
    finally:
        browser.quit()


@contextmanager
def dashboard(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`tower dashboard` on a free port with the environment given; its base URL."""
    import os

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tower.cli", "dashboard", "--port", str(port)], cwd=REPO,
                               env={**os.environ, **(env or {})}, stdout=open(log, "wb"),  # noqa: SIM115
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_until(lambda: b"You can now view" in log.read_bytes() or process.poll() is not None, 60, "dashboard")
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def found(browser: object, css: str) -> list:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def open_signed_in(browser: object, url: str, name: str, password: str, timeout_s: float = 60) -> None:
    """Open a page by URL and sign in on the form it shows first; returns once the page has its title."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, timeout_s)
    browser.get(url)
    form = ('input[aria-label="User name"]', 'input[type="password"]', '[data-testid="stBaseButton-primaryFormSubmit"]')

    def ready() -> list | None:
        elements = [found(browser, css) for css in form]
        usable = all(e and e[0].is_displayed() and e[0].is_enabled() for e in elements)
        return [e[0] for e in elements] if usable else None

    def submitted() -> bool:  # the form may be drawn twice as the page settles: type again into the new one
        try:
            user, secret, submit = wait.until(lambda _: ready())
            user.clear()
            user.send_keys(name)
            secret.clear()
            secret.send_keys(password)
            submit.click()
        except WebDriverException:
            return False
        return True

    wait.until(lambda _: submitted())
    wait.until(lambda _: not found(browser, 'input[type="password"]') and found(browser, '[data-testid="stSidebar"]'))
    wait.until(lambda _: found(browser, "h1"))
