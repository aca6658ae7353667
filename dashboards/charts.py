"""Altair charts the pages share: a series against its limits, and bands (ETA, allowed range).
Pure: frames in, charts out; colours left to the theme except where they mean something."""

from __future__ import annotations

import altair as alt
import pandas as pd

LIMIT_COLOUR = "#dc2828"
BAND_COLOUR = "#2e9e43"


def _time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(time=pd.to_datetime(frame["ts_ms"], unit="ms", utc=True))


def with_limits(frame: pd.DataFrame, field: str, title: str, limit: float | None = None,
                band: tuple[float | None, float | None] | None = None) -> alt.LayerChart:  # fmt: skip
    """`field` over time; `band` shaded (allowed or healthy range), `limit` as a red rule."""
    data = _time(frame.dropna(subset=[field]))
    base = alt.Chart(data).encode(x=alt.X("time:T", title=None))
    layers = []
    if band is not None and (band[0] is not None or band[1] is not None):
        low = band[0] if band[0] is not None else float(data[field].min() if not data.empty else 0)
        high = band[1] if band[1] is not None else float(data[field].max() if not data.empty else 0)
        layers.append(alt.Chart(pd.DataFrame({"low": [low], "high": [high]}))
                      .mark_rect(color=BAND_COLOUR, opacity=0.15).encode(y="low:Q", y2="high:Q"))  # fmt: skip
    layers.append(base.mark_line().encode(y=alt.Y(f"{field}:Q", title=title, scale=alt.Scale(zero=False)),
                                          tooltip=["time:T", alt.Tooltip(f"{field}:Q", format=".2f")]))  # fmt: skip
    if limit is not None:
        layers.append(alt.Chart(pd.DataFrame({"limit": [limit]})).mark_rule(color=LIMIT_COLOUR, strokeDash=[6, 3])
                      .encode(y="limit:Q"))  # fmt: skip
    return alt.layer(*layers).properties(height=220)


def eta_band(eta: pd.DataFrame, promised_ms: int) -> alt.LayerChart:
    """The predicted arrival over time with its optimistic..pessimistic band, and the promised time."""
    data = _time(eta).assign(
        early=pd.to_datetime(eta["eta_early_ms"], unit="ms", utc=True),
        central=pd.to_datetime(eta["eta_ms"], unit="ms", utc=True),
        late=pd.to_datetime(eta["eta_late_ms"], unit="ms", utc=True),
    )
    base = alt.Chart(data).encode(x=alt.X("time:T", title="predicted at"))
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("early:T", title="predicted arrival"), y2="late:T")
    line = base.mark_line().encode(y="central:T", tooltip=["time:T", "early:T", "central:T", "late:T"])
    promised = pd.DataFrame({"promised": [pd.to_datetime(promised_ms, unit="ms", utc=True)]})
    rule = alt.Chart(promised).mark_rule(color=LIMIT_COLOUR, strokeDash=[6, 3]).encode(y="promised:T")
    return alt.layer(band, line, rule).properties(height=240)
