"""Shipment detail: status, the timeline from departure to delivery, the predicted arrival with its
band against the promised time, the cargo temperature against its allowed range and the excursion
budget used, and the trail replayed with a time slider. Opened with `/shipment?shipment=<id>`."""

from __future__ import annotations

import pandas as pd
import pydeck as pdk
import streamlit as st

from dashboards import charts, data, ui
from dashboards.shipments import STATUS_COLOURS
from tower.timeutil import rfc3339

st.title("Shipment")
src = data.source()
table = data.shipment_table(src)
if table.empty:
    st.info("No shipments yet: they come from the operator's TMS (MQTT plans, `tower shipments import`, the API).")
    st.stop()
ids = list(table.sort_values(["status", "promised_ms"])["shipment"])
wanted = st.query_params.get("shipment")
chosen = st.selectbox("Shipment", ids, index=ids.index(wanted) if wanted in ids else 0, key="shipment_id")
st.query_params["shipment"] = chosen


def _clock(ms: float | None) -> str:
    return "–" if ms is None or pd.isna(ms) else rfc3339(int(ms))[:16].replace("T", " ")


@ui.live_part
def live() -> None:
    detail = data.shipment_detail(src, chosen)
    plan, row = detail.plan, detail.row
    colour = "#{:02x}{:02x}{:02x}".format(*STATUS_COLOURS[row["status"]])
    st.markdown(f"### {chosen} · <span style='color:{colour}'>{row['status']}</span>", unsafe_allow_html=True)
    st.caption(f"{plan.origin.id} → {plan.destination.id} ({row['customer']}) · lane {plan.lane} · {plan.cargo}")
    eta = detail.eta.iloc[-1] if detail.eta is not None and not detail.eta.empty else None
    tiles = st.columns(4)
    tiles[0].metric("Promised", _clock(plan.promised_ms), border=True)
    arrived = pd.notna(row["arrival_ms"])
    predicted = row["eta_ms"]
    tiles[1].metric("Arrived" if arrived else "Predicted arrival", _clock(row["arrival_ms"] if arrived else predicted),
                    border=True)  # fmt: skip
    tiles[2].metric("Progress", f"{row['progress_pct']:.0f}% · {row['remaining_km']:.0f} km left", border=True)
    tiles[3].metric("Open alerts", row["open_alerts"], border=True)

    left, right = st.columns(2)
    with left:
        st.subheader("Predicted arrival")
        if eta is None:
            st.caption("No positions since departure yet.")
        else:
            st.caption(f"Band {_clock(eta['eta_early_ms'])} to {_clock(eta['eta_late_ms'])}: between the plan's speed "
                       "from now and the recent pace for twice as long; dashed: the promised time.")  # fmt: skip
            st.altair_chart(charts.eta_band(detail.eta, plan.promised_ms), width="stretch")
    with right:
        st.subheader("Cargo temperature")
        cargo = plan.cargo_type
        if detail.budget_min is not None:
            used = detail.excursion_min / detail.budget_min
            st.progress(min(1.0, used), text=f"Excursion budget used: {detail.excursion_min:.0f} of "
                                             f"{detail.budget_min:.0f} min")  # fmt: skip
        st.altair_chart(charts.with_limits(detail.track, "temp_c", "°C", band=(cargo.min_c, cargo.max_c)),
                        width="stretch")  # fmt: skip

    st.subheader("Timeline")
    ui.table(detail.timeline, "timeline")
    replay(detail)


def replay(detail: data.ShipmentDetail) -> None:
    st.subheader("Trail replay")
    track = detail.track.dropna(subset=["lat", "lon"])
    track = track[track["ts_ms"] >= detail.plan.departure_ms]
    if len(track) < 2:
        st.caption("Not enough positions to replay.")
        return
    times = [pd.Timestamp(ts, unit="ms", tz="UTC").to_pydatetime() for ts in track["ts_ms"]]
    at = st.select_slider("Time", times, value=times[-1], key="replay_at", format_func=lambda t: t.strftime("%H:%M"))
    upto = track[track["ts_ms"] <= pd.Timestamp(at).value // 1_000_000]
    path = [[round(lon, 5), round(lat, 5)] for lat, lon in zip(upto["lat"], upto["lon"], strict=True)]
    here = upto.iloc[-1]
    layers = [
        pdk.Layer("PathLayer", data=[{"path": [[lon, lat] for lat, lon in detail.plan.route.points]}],
                  get_path="path", get_color=[128, 128, 128, 140], width_min_pixels=2),
        pdk.Layer("PathLayer", data=[{"path": path}], get_path="path", get_color=[30, 136, 229], width_min_pixels=3),
        pdk.Layer("ScatterplotLayer", data=[{"position": [here["lon"], here["lat"]]}], get_position="position",
                  get_fill_color=[*STATUS_COLOURS[detail.row["status"]], 255], get_radius=7, radius_units="pixels"),
    ]  # fmt: skip
    view = pdk.ViewState(latitude=float(track["lat"].mean()), longitude=float(track["lon"].mean()), zoom=8)
    st.pydeck_chart(pdk.Deck(layers=layers, initial_view_state=view, map_style=None), height=380, key="replay_map")
    shown = [f"{here[name]:.{digits}f} {unit}" for name, digits, unit in (("speed_kmh", 0, "km/h"), ("temp_c", 1, "°C"))
             if pd.notna(here[name])]  # fmt: skip
    st.caption(f"At {at:%H:%M} UTC: {', '.join(shown) or 'position only'}")


live()
