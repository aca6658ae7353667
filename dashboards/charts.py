"""Altair charts the pages share: a series against its limits, and bands (ETA, allowed range).
Pure: frames in, charts out; colours left to the theme except where they mean something.

Times are drawn in the zone the person chose (dashboards/ui.py): the chart gets wall-clock times of
that zone without an offset, which Vega shows as they are, so a chart and a tile never disagree
whatever the browser's own zone; the axis title names the zone.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd

CHART_POINTS = 240  # a chart draws at most this many points: Vega in the browser works per point
LIMIT_COLOUR = "#dc2828"
BAND_COLOUR = "#2e9e43"
TIME_FORMAT = "%d %b %H:%M"  # a date on every label: a chart may cross midnight


def local(ms: pd.Series, zone: ZoneInfo) -> pd.Series:
    """Epoch ms as wall-clock times in the zone, without an offset (for Vega, see the docstring)."""
    return pd.to_datetime(ms, unit="ms", utc=True).dt.tz_convert(zone).dt.tz_localize(None)


def thinned(frame: pd.DataFrame, points: int = CHART_POINTS) -> pd.DataFrame:
    """At most `points` rows: the means of the numeric columns over equal spans of ts_ms."""
    if len(frame) <= points:
        return frame
    first, last = frame["ts_ms"].min(), frame["ts_ms"].max()
    span = (last - first) // points + 1
    return frame.groupby((frame["ts_ms"] - first) // span).mean(numeric_only=True).reset_index(drop=True)


def _zone_name(zone: ZoneInfo, ms: pd.Series) -> str:
    return pd.Timestamp(int(ms.iloc[-1]) if len(ms) else 0, unit="ms", tz="UTC").tz_convert(zone).strftime("%Z")


def _time_axis(title: str) -> alt.Axis:
    return alt.Axis(title=title, format=TIME_FORMAT, labelOverlap=True)


def with_limits(frame: pd.DataFrame, field: str, title: str, zone: ZoneInfo, limit: float | None = None,
                band: tuple[float | None, float | None] | None = None) -> alt.LayerChart:  # fmt: skip
    """`field` over time; `band` shaded (allowed or healthy range), `limit` as a red rule."""
    data = thinned(frame.dropna(subset=[field])[["ts_ms", field]])
    data = data.assign(time=local(data["ts_ms"], zone))
    base = alt.Chart(data).encode(x=alt.X("time:T", axis=_time_axis(f"time ({_zone_name(zone, data['ts_ms'])})")))
    layers = []
    if band is not None and (band[0] is not None or band[1] is not None):
        low = band[0] if band[0] is not None else float(data[field].min() if not data.empty else 0)
        high = band[1] if band[1] is not None else float(data[field].max() if not data.empty else 0)
        layers.append(alt.Chart(pd.DataFrame({"low": [low], "high": [high]}))
                      .mark_rect(color=BAND_COLOUR, opacity=0.15).encode(y="low:Q", y2="high:Q"))  # fmt: skip
    layers.append(base.mark_line().encode(y=alt.Y(f"{field}:Q", title=title, scale=alt.Scale(zero=False)),
                                          tooltip=[alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"),
                                                   alt.Tooltip(f"{field}:Q", format=".2f")]))  # fmt: skip
    if limit is not None:
        layers.append(alt.Chart(pd.DataFrame({"limit": [limit]})).mark_rule(color=LIMIT_COLOUR, strokeDash=[6, 3])
                      .encode(y="limit:Q"))  # fmt: skip
    return alt.layer(*layers).properties(height=220)


def eta_band(eta: pd.DataFrame, promised_ms: int, zone: ZoneInfo) -> alt.LayerChart:
    """The predicted arrival over time with its optimistic..pessimistic band, and the promised time."""
    eta = thinned(eta)
    data = pd.DataFrame({"time": local(eta["ts_ms"], zone), "early": local(eta["eta_early_ms"], zone),
                         "central": local(eta["eta_ms"], zone), "late": local(eta["eta_late_ms"], zone)})  # fmt: skip
    named = _zone_name(zone, eta["ts_ms"])
    base = alt.Chart(data).encode(x=alt.X("time:T", axis=_time_axis(f"predicted at ({named})")))
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("early:T", axis=_time_axis(f"predicted arrival ({named})")),
                                               y2="late:T")  # fmt: skip
    tip = [alt.Tooltip(f"{name}:T", format="%Y-%m-%d %H:%M") for name in ("time", "early", "central", "late")]
    line = base.mark_line().encode(y="central:T", tooltip=tip)
    promised = pd.DataFrame({"promised": local(pd.Series([promised_ms]), zone)})
    rule = alt.Chart(promised).mark_rule(color=LIMIT_COLOUR, strokeDash=[6, 3]).encode(y="promised:T")
    return alt.layer(band, line, rule).properties(height=240)


def openings(doors: pd.DataFrame, zone: ZoneInfo) -> alt.Chart:
    """Dock door openings per hour (hour_ms, the hour's start) and sensor, stacked."""
    data = doors.assign(hour=local(doors["hour_ms"], zone))
    axis = _time_axis(f"hour ({_zone_name(zone, doors['hour_ms'])})")
    return (alt.Chart(data).mark_bar().encode(x=alt.X("hour:T", axis=axis, timeUnit="yearmonthdatehours"),
                                              y=alt.Y("openings:Q", title="openings"), color="sensor:N",
                                              tooltip=["sensor", alt.Tooltip("hour:T", format="%Y-%m-%d %H:%M"),
                                                       "openings", alt.Tooltip("open_min:Q", format=".0f")])
            .properties(height=200))  # fmt: skip
