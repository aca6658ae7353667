"""Printing frames for people (table) and programs (csv, json) in the same shape everywhere.

Text that devices control (topics, payloads, reasons quoting them) may hold terminal escape
sequences; table and CSV output show control characters escaped (\\x1b), JSON escapes them itself.
"""

from __future__ import annotations

import json
import math
import re
import sys

import pandas as pd

from tower.store.frames import plain_value

# C0 and C1 controls, and the invisible format characters that reorder or hide text (bidi overrides)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """The text with control and invisible format characters written as escapes, safe for a terminal."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def print_frame(frame: pd.DataFrame, fmt: str, empty_message: str) -> None:
    """json: an array of objects, ts as RFC 3339 UTC, missing (and non-finite) values left out."""
    if fmt == "json":
        print(json.dumps(records(frame), indent=None, separators=(",", ":"), allow_nan=False))
    elif fmt == "csv":
        sys.stdout.write(_printable_text(_with_text_times(frame)).to_csv(index=False))
    elif frame.empty:
        print(empty_message, file=sys.stderr)
    else:
        shown = _printable_text(_with_text_times(frame))
        print(shown.astype(object).where(shown.notna(), "").to_string(index=False))  # None, NaN, NaT: blank


def _printable_text(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = [printable(v) if isinstance(v, str) else v for v in frame[column]]
    return frame


def records(frame: pd.DataFrame) -> list[dict]:
    rows = []
    for row in _with_text_times(frame).to_dict(orient="records"):
        rows.append({key: plain_value(value) for key, value in row.items() if not _missing(value)})
    return rows


def _with_text_times(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = (
                frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(r"(\.\d{3})\d{3}Z$", r"\1Z", regex=True)
            )
    return frame


def _missing(value: object) -> bool:
    # Infinity is not JSON; a store may hold it from before extra fields were checked.
    return value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value))
