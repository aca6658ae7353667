"""Map: every shipment coloured by status and the sites, fitted to what is shown; filtered to a few
shipments, their planned routes, travelled trails and their sites' geofences too. Selecting a
shipment shows its ETA against the promised time, why it has its status (its active alerts) and a
link to its page; selecting a site, its sensors."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import data, ui
from dashboards.maps import POINTS, SHIPMENT, SITE, TRAIL, legend
from dashboards.shipments import STATUS_COLOURS
from tower.domain import ON_THE_ROAD

HEIGHT = 560
st.title("Map")
src = data.source()
table = data.shipment_table(src)
filters = st.columns(4)
chosen = {
    "status": filters[0].multiselect("Status", list(STATUS_COLOURS), default=list(ON_THE_ROAD), key="f_status"),
    "lane": filters[1].multiselect("Lane", sorted(table["lane"].unique()), key="f_lane"),
    "customer": filters[2].multiselect("Customer", sorted(table["customer"].unique()), key="f_customer"),
    "cargo": filters[3].multiselect("Cargo", sorted(table["cargo"].unique()), key="f_cargo"),
}  # fmt: skip


def _selected(kind: str) -> str | None:
    """The id of the shipment or site selected on the map, if one of that kind is. The chart keeps a
    selection as an index into the layer's data and, when a refresh moves the data, hands back what is
    now at that index: the choice is kept here by id, and only a click elsewhere changes it."""
    selection = st.session_state.get("map", {}).get("selection", {})
    indices, objects = selection.get("indices", {}).get(POINTS, []), selection.get("objects", {}).get(POINTS, [])
    if not indices or not objects:
        st.session_state.pop("map_picked", None)
        return None
    picked = st.session_state.get("map_picked")
    if picked is None or picked["index"] != indices[0]:  # a click, not a refresh
        clicked = objects[0].get("kind")
        picked = {"index": indices[0], "kind": SHIPMENT if clicked == TRAIL else clicked, "id": objects[0].get("id")}
        st.session_state["map_picked"] = picked
    return picked["id"] if picked["kind"] == kind else None


def shipment_panel(shipment_id: str) -> None:
    everything = data.shipment_table(src)
    row = everything[everything["shipment"] == shipment_id].iloc[0]
    st.subheader(f"Shipment {shipment_id} · {row['status']}")
    st.caption(f"{row['origin']} → {row['destination']} ({row['customer']}) · lane {row['lane']} · {row['cargo']}")
    tiles = st.columns(3)
    ui.tile(tiles[0], "Promised", ui.when(row["promised_ms"]), "map_promised")
    if pd.notna(row["arrival_ms"]):
        ui.tile(tiles[1], "Arrived", ui.when(row["arrival_ms"]), "map_eta")
    else:
        late = row["late_by_min"]
        versus = "" if pd.isna(late) else (f", {late:.0f} min late" if late > 0 else
                                                           f", {-late:.0f} min early")  # fmt: skip
        ui.tile(tiles[1], "Predicted arrival", f"{ui.when(row['eta_ms'])}{versus}", "map_eta")
    ui.tile(tiles[2], "Progress", f"{row['progress_pct']:.0f}% · {row['remaining_km']:.0f} km left", "map_progress")
    reasons = data.active_alerts_of(src, shipment_id)
    if reasons.empty:
        st.caption("No active alerts: " + ("on time." if row["status"] == "on time" else f"{row['status']}."))
    else:
        st.markdown("**Why:** " + "; ".join(f"{r.severity} {r.rule}: {r.detail}" for r in reasons.itertuples()))
    st.page_link("views/shipment.py", label="Open shipment details", icon=":material/local_shipping:",
                 query_params={"shipment": shipment_id})  # fmt: skip


@ui.live_part
def live() -> None:
    shown = data.shipment_table(src)
    for column, values in chosen.items():
        if values:
            shown = shown[shown[column].isin(values)]
    picked = _selected(SHIPMENT)
    detail = len(shown) <= data.MAX_TRAILS
    trails = list(shown["shipment"]) if detail else []
    if picked and picked not in trails:
        trails.append(picked)
    counts = shown["status"].value_counts().to_dict()
    more = "" if detail else f" · filter to at most {data.MAX_TRAILS} shipments for their routes, trails and geofences"
    st.caption(f"{len(shown)} shipments shown: {legend(counts, detail)}{more}", unsafe_allow_html=True)
    st.pydeck_chart(data.network_map(src, shown, trails, ui.when, HEIGHT, detail), height=HEIGHT,
                    on_select="rerun", selection_mode="single-object", key="map")  # fmt: skip
    site = _selected(SITE)
    if picked:
        shipment_panel(picked)
    elif site:
        st.subheader(f"Site {site}")
        ui.table(data.site_sensors(src, site), "site_sensors")
        st.page_link("views/warehouses.py", label="Open the site", icon=":material/warehouse:",
                     query_params={"site": site})  # fmt: skip
    else:
        st.caption("Select a shipment or a site on the map for its details.")


live()
