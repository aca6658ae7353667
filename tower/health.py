"""Heartbeats for container healthchecks: a working service touches its file; `tower health` reads it.

"Process exists" is what Docker knows already; a heartbeat means "working": the collector beats
once a second while connected to the broker with a healthy writer, the alert engine on each tick
while connected. The dashboard answers Streamlit's own /_stcore/health instead.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

STALE_AFTER_S = 30.0


def beat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def heartbeat_problem(path: Path, service: str) -> str | None:
    """None if the service beat within STALE_AFTER_S, else what is wrong."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"{service} has not reported working yet ({path} missing)"
    if age > STALE_AFTER_S:
        return f"{service} last reported working {age:.0f} s ago (connected to the broker?)"
    return None


def http_problem(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except OSError as error:
        return f"{url}: {error}"
