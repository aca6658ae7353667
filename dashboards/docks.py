"""Dock doors: openings and minutes open per hour, from a sensor's raw door readings (an opening is
an edge, which means would blur). Pure: frames in, frames out (dashboards/data.py does the reading)."""

from __future__ import annotations

import pandas as pd

HOUR_MS, MINUTE_MS = 3_600_000, 60_000
COLUMNS = ["sensor", "hour_ms", "openings", "open_min"]


def openings_per_hour(sensor: str, readings: pd.DataFrame) -> pd.DataFrame:
    """One row per hour (hour_ms: its start, epoch ms) with the door's openings and minutes open;
    `readings`: ts_ms, dock_door_open, oldest first."""
    if readings.empty or "dock_door_open" not in readings:
        return pd.DataFrame(columns=COLUMNS)
    is_open = readings["dock_door_open"].fillna(False).astype(bool)
    spans = readings["ts_ms"].diff().shift(-1).fillna(0)
    return pd.DataFrame({
        "sensor": sensor, "hour_ms": readings["ts_ms"] // HOUR_MS * HOUR_MS,
        "openings": is_open & ~is_open.shift(fill_value=False), "open_min": spans.where(is_open, 0) / MINUTE_MS,
    }).groupby(["sensor", "hour_ms"], as_index=False).sum()  # fmt: skip
