"""Event-time helpers: epoch milliseconds, RFC 3339 text and human durations ("90s", "15m", "2h", "7d")."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def rfc3339(ts_ms: int) -> str:
    """UTC RFC 3339 with millisecond precision, e.g. 2026-11-22T10:00:00.250Z."""
    return from_ms(ts_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_duration_ms(text: str) -> int:
    """'15m' -> 900000. Raises ValueError naming the accepted forms."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration; use a number and a unit: 500ms, 90s, 15m, 2h, 7d, 1w")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


def parse_moment_ms(text: str, now: int | None = None) -> int:
    """A point in time from the command line: RFC 3339 (UTC if no offset), epoch seconds, or a duration ago."""
    text = text.strip()
    if _DURATION.match(text):
        return (now if now is not None else now_ms()) - parse_duration_ms(text)
    try:
        return to_ms(datetime.fromtimestamp(float(text), tz=UTC))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is not a time; use RFC 3339 (2026-11-22T08:00:00Z), epoch seconds, or an age like 2h"
        ) from None
    return to_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
