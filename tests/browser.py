"""A real browser for the dashboard tests: Debian's headless Chromium through Selenium, and `tower
dashboard` as a child process on a free port (stopped with its Streamlit child afterwards)."""

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
