"""Shipment detail: found by shipment id, order or customer reference; status, the timeline from
departure to delivery, the predicted arrival with its band against the promised time (frozen at
delivery), the cargo temperature against its allowed range and the excursion budget used, and the
trail replayed with a time slider. Opened with `/shipment?shipment=<id>`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, data, shipments, ui
from dashboards.maps import NEUTRAL, ROUTE, SHIPMENT, TRAIL, Deck, dot, fit, layer, route_dots, sampled
from dashboards.shipments import STATUS_COLOURS

REPLAY_HEIGHT = 380
LISTED = 100  # the picker lists at most this many of what Find matches, most urgent first (each a label sent)
REPLAY_STEPS = 240  # the replay's slider has about this many times over the planned trip (each a label)
st.title("Shipment")
src = data.source()
table = data.shipment_table(src)
if table.empty:
    st.info("No shipments yet: they come from the operator's TMS (MQTT plans, `tower shipments import`, the API).")
    st.stop()
plans = data.master(src).plans
wanted = st.query_params.get("shipment")
search, pick = st.columns([1, 2])
needle = search.text_input("Find", key="shipment_search", placeholder="shipment id, order or customer reference")
found = shipments.most_urgent_first(table)
if needle:
    words = needle.strip().lower()
    found = found[[words in " ".join([s, o, c, *plans[s].shipment.references.values()]).lower()
                   for s, o, c in zip(found["shipment"], found["order"], found["customer"], strict=True)]]  # fmt: skip
matches = len(found)
ids = list(found["shipment"].iloc[:LISTED])
if wanted in set(table["shipment"]) and wanted not in ids and not needle:
    ids.insert(0, wanted)
if not ids:
    st.warning(f"No shipment matches '{needle}'.")
    st.stop()
labels = {row.shipment: f"{row.shipment} · {row.customer} · {row.order or 'no order'} · {row.status}"
          for row in table[table["shipment"].isin(ids)].itertuples(index=False)}  # fmt: skip
chosen = pick.selectbox("Shipment", ids, index=ids.index(wanted) if wanted in ids else 0, key="shipment_id",
                        format_func=labels.get)  # fmt: skip
if matches > LISTED:
    pick.caption(f"{LISTED} of {matches} listed, the most urgent first: Find narrows them.")
st.query_params["shipment"] = chosen


@ui.live_part
def live() -> None:
    detail = data.shipment_detail(src, chosen)
    plan, row = detail.plan, detail.row
    colour = "#{:02x}{:02x}{:02x}".format(*STATUS_COLOURS[row["status"]])
    st.markdown(f"### {chosen} · <span style='color:{colour}'>{row['status']}</span>", unsafe_allow_html=True)
    references = " · ".join(f"{k} {v}" for k, v in plan.shipment.references.items())
    st.caption(f"{plan.origin.label} → {plan.destination.label} · {row['customer']} · order {row['order'] or '–'}"
               f" · lane {plan.lane} · {plan.cargo}" + (f" · {references}" if references else ""))  # fmt: skip
    arrived = pd.notna(row["arrival_ms"])
    tiles = st.columns(4)
    ui.tile(tiles[0], "Promised", ui.when(plan.promised_ms), "promised")
    if arrived:
        ui.tile(tiles[1], "Arrived", ui.when(row["arrival_ms"]), "arrival")
    else:
        ui.tile(tiles[1], "Predicted arrival", ui.when(row["eta_ms"]), "arrival",
                help="the delay rule's central estimate; the chart shows its band")  # fmt: skip
    ui.tile(tiles[2], "Progress", f"{row['progress_pct']:.0f}% · {row['remaining_km']:.0f} km left", "progress")
    worst = f" (worst {row['worst']})" if isinstance(row["worst"], str) and row["worst"] else ""  # NaN: none open
    ui.tile(tiles[3], "Open alerts", f"{row['open_alerts']}{worst}", "open_alerts")

    eta = detail.eta.iloc[-1] if detail.eta is not None and not detail.eta.empty else None
    left, right = st.columns(2)
    with left:
        st.subheader("Predicted arrival")
        if eta is None:
            st.caption("No positions since departure yet.")
        else:
            frozen = " Frozen at delivery." if arrived else ""
            st.caption(f"Band {ui.when(eta['eta_early_ms'])} to {ui.when(eta['eta_late_ms'])}: between the plan's "
                       "speed from then and the recent pace for twice as long; dashed: the promised time."
                       + frozen)  # fmt: skip
            st.altair_chart(charts.eta_band(detail.eta, plan.promised_ms, ui.zone()), width="stretch")
    with right:
        st.subheader("Cargo temperature")
        cargo = plan.cargo_type
        if detail.budget_min is not None:
            used = detail.excursion_min / detail.budget_min
            st.progress(min(1.0, used), text=f"Excursion budget used: {detail.excursion_min:.0f} of "
                                             f"{detail.budget_min:.0f} min" + (" in transit (frozen at delivery)"
                                                                              if arrived else ""))  # fmt: skip
        st.altair_chart(charts.with_limits(detail.track, "temp_c", "°C", ui.zone(), band=(cargo.min_c, cargo.max_c)),
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
    times = shipments.replay_times([int(ts) for ts in track["ts_ms"]], detail.plan, REPLAY_STEPS)
    at = st.select_slider("Time", times, value=times[-1], key=f"replay_at_{chosen}", format_func=ui.when)
    upto = track[track["ts_ms"] <= at]
    path = [[round(lon, 5), round(lat, 5)] for lat, lon in zip(upto["lat"], upto["lon"], strict=True)]
    here = upto.iloc[-1]
    colour = list(STATUS_COLOURS[detail.row["status"]])
    route = route_dots(detail.plan.route)
    dots = [dot(ROUTE, detail.plan.lane, spot, [*NEUTRAL, 150], 2, "planned route") for spot in route]
    dots += [dot(TRAIL, chosen, spot, [*colour, 200], 3, "travelled") for spot in sampled(path)]
    dots.append(dot(SHIPMENT, chosen, [float(here["lon"]), float(here["lat"])], [*colour, 255], 7,
                    f"{chosen} at {ui.when(at)}", [255, 255, 255, 255], 2))  # fmt: skip
    view = fit([tuple(spot) for spot in route + path], REPLAY_HEIGHT)
    st.pydeck_chart(Deck(layers=[layer(dots)], initial_view_state=view, tooltip={"text": "{tip}"},
                             map_style=None), height=REPLAY_HEIGHT, key="replay_map")  # fmt: skip
    shown = [f"{here[name]:.{digits}f} {unit}" for name, digits, unit in (("speed_kmh", 0, "km/h"), ("temp_c", 1, "°C"))
             if pd.notna(here[name])]  # fmt: skip
    st.caption(f"At {ui.when(at)}: {', '.join(shown) or 'position only'}")


live()
