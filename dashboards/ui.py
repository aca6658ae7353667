"""What every page shows the same way: the period and time zone pickers' choices, times as full
date-times with their zone, KPI and value tiles, tables with CSV export, live parts, and errors as a
short message instead of a traceback. Pages call these instead of repeating the widgets."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import pandas as pd
import streamlit as st

from dashboards.data import DAY_MS, HOUR, REFRESH_S
from dashboards.kpis import Kpi

log = logging.getLogger("tower.dashboard")

PERIODS = {"1 hour": HOUR, "6 hours": 6 * HOUR, "24 hours": DAY_MS, "7 days": 7 * DAY_MS}
DEFAULT_PERIOD = "24 hours"


def period_picker() -> None:
    """In the sidebar of every page (app.py); its choice survives page switches."""
    st.sidebar.selectbox("Period", list(PERIODS), index=list(PERIODS).index(DEFAULT_PERIOD), key="period",
                         help="charts and KPIs cover this period, compared with the one before")  # fmt: skip


def period_ms() -> int:
    return PERIODS[st.session_state.get("period", DEFAULT_PERIOD)]


@lru_cache(maxsize=1)
def _zones() -> list[str]:
    return ["UTC", *sorted(zone for zone in available_timezones() if "/" in zone and not zone.startswith("Etc/"))]


def browser_zone() -> str:
    """The browser's time zone (UTC when the browser does not say, as under AppTest)."""
    zone = st.context.timezone
    return zone if zone in _zones() else "UTC"


def zone_picker() -> None:
    """In the sidebar of every page: one time zone for every time shown, the browser's by default."""
    zones, default = _zones(), browser_zone()
    st.sidebar.selectbox("Time zone", zones, index=zones.index(default), key="zone",
                         help=f"every time on every page is shown in this zone; your browser's: {default}")  # fmt: skip


def zone() -> ZoneInfo:
    return ZoneInfo(st.session_state.get("zone") or browser_zone())  # ZoneInfo caches its instances


def when(ms: float | None, with_seconds: bool = False) -> str:
    """An epoch-ms time as a full date-time in the chosen zone, e.g. 2026-11-22 08:15 CET; – if unknown.
    (datetime, not pandas: a map's tooltips format thousands of times per refresh.)"""
    if ms is None or pd.isna(ms):
        return "–"
    moment = datetime.fromtimestamp(int(ms) / 1000, zone())
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if with_seconds else "%Y-%m-%d %H:%M %Z")


def with_times(frame: pd.DataFrame) -> pd.DataFrame:
    """*_ms columns (epoch ms) shown as full date-times in the chosen zone, under the name without _ms."""
    times = {c: c.removesuffix("_ms") for c in frame.columns if c.endswith("_ms")}
    shown = frame.assign(**{c: [when(ms) for ms in frame[c]] for c in times})
    return shown.rename(columns=times)


def tile(column: object, label: str, value: str, key: str, help: str | None = None) -> None:
    """A bordered tile whose value wraps instead of being cut off (st.metric truncates long values)."""
    with column.container(border=True, key=f"tile_{key}"):
        st.caption(label, help=help)
        st.markdown(f"**{value}**")


def table(frame: pd.DataFrame, name: str, **options: object) -> object:
    """A table with its CSV download; returns the dataframe element (its selection, if asked)."""
    shown = with_times(frame)
    element = st.dataframe(shown, hide_index=True, width="stretch", key=f"{name}_table", **options)
    st.download_button("Download CSV", shown.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{name}_csv",
                       icon=":material/download:")  # fmt: skip
    return element


def _number(value: float, sign: str = "") -> str:
    return f"{value:{sign},.0f}" if float(value).is_integer() else f"{value:{sign},.1f}"


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "s" and value >= 120:  # a lag of hours or days reads better in those units
        minutes = value / 60
        return f"{minutes:.0f} min" if minutes < 120 else (f"{minutes / 60:.1f} h" if minutes < 2880 else
                                                            f"{minutes / 1440:.0f} d")  # fmt: skip
    return f"{_number(value)}%" if unit == "%" else f"{_number(value)} {unit}".strip()


def kpi_tiles(kpis: list[Kpi], per_row: int = 4) -> None:
    colour = {"up": "normal", "down": "inverse", "off": "off"}
    for start in range(0, len(kpis), per_row):
        for column, kpi in zip(st.columns(per_row), kpis[start : start + per_row], strict=False):
            delta = f"{_number(kpi.delta, '+')} vs previous period" if kpi.delta else None  # unchanged: no arrow
            column.metric(kpi.label, _shown(kpi.value, kpi.unit), delta, delta_color=colour[kpi.good],
                          help=kpi.help, border=True)  # fmt: skip


@contextmanager
def errors_shown_briefly(what: str) -> Iterator[None]:
    """An unexpected error in `what` becomes one short message on the page (what failed, on what);
    the traceback goes to the dashboard's log, never to the visitor. Streamlit's own control flow
    (rerun, stop) is not an Exception and passes through."""
    try:
        yield
    except Exception as error:
        log.exception("dashboard: %s failed", what)
        st.error(f"{what} could not be shown: {type(error).__name__} {str(error)[:160]}. The dashboard's log has "
                 "the details.", icon=":material/error:")  # fmt: skip


def live_part(function: Callable[[], None]) -> Callable[[], None]:
    """A part of a page that refreshes itself every REFRESH_S, its errors shown briefly."""

    @st.fragment(run_every=REFRESH_S)
    @functools.wraps(function)
    def refreshed() -> None:
        with errors_shown_briefly("This part of the page"):
            function()

    return refreshed
