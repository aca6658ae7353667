"""Printing frames for people (table) and programs (csv, json) in the same shape everywhere."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd

from tower.store.frames import plain_value


def print_frame(frame: pd.DataFrame, fmt: str, empty_message: str) -> None:
    """json: an array of objects, ts as RFC 3339 UTC, missing (and non-finite) values left out."""
    if fmt == "json":
        print(json.dumps(records(frame), indent=None, separators=(",", ":"), allow_nan=False))
    elif fmt == "csv":
        sys.stdout.write(_with_text_times(frame).to_csv(index=False))
    elif frame.empty:
        print(empty_message, file=sys.stderr)
    else:
        print(_with_text_times(frame).to_string(index=False, na_rep=""))


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
