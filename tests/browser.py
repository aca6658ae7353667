"""A real browser for the dashboard tests: Debian's headless Chromium through Selenium, `tower
dashboard` as a child process on a free port (stopped with its Streamlit child afterwards), and
opening a page signed in (every page asks for it; each navigation by URL is a new session). The
helpers are the dashboard benchmark's (benchmarks/browser.py), so both drive the browser alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.browser import chromium as _chromium
from benchmarks.browser import click_page, found, open_signed_in, streamlit_app, tower_dashboard
from tests.conftest import REPO

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
__all__ = ["SCREENSHOTS", "chromium", "click_page", "dashboard", "found", "open_signed_in"]


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium WebDriver (screenshots go to SCREENSHOTS); quit afterwards."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with _chromium() as browser:
        yield browser


@contextmanager
def dashboard(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`tower dashboard` on a free port with the environment given; its base URL."""
    with streamlit_app(tower_dashboard(), log, env or {}) as url:
        yield url
