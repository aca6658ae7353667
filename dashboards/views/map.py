"""Map: every shipment coloured by status on its planned route, travelled trails, sites with their
geofences and equipment health. Selecting a shipment or a site shows it below, with a link to its page."""

from __future__ import annotations

import streamlit as st

from dashboards import data, ui
from dashboards.maps import SHIPMENTS, SITES, legend
from dashboards.shipments import STATUS_COLOURS
from tower.domain import ON_THE_ROAD

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
st.caption(f"{legend()} · grey: planned routes · blue: travelled trails (the selected shipment, or all shown when "
           "few) · sites coloured by their equipment's worst health", unsafe_allow_html=True)  # fmt: skip


def _selected(layer: str) -> dict | None:
    picked = st.session_state.get("map", {}).get("selection", {}).get("objects", {}).get(layer, [])
    return picked[0] if picked else None


@ui.live_part
def live() -> None:
    shown = data.shipment_table(src)
    for column, values in chosen.items():
        if values:
            shown = shown[shown[column].isin(values)]
    picked = _selected(SHIPMENTS)
    trails = list(shown["shipment"]) if len(shown) <= data.MAX_TRAILS else []
    if picked and picked["shipment"] not in trails:
        trails.append(picked["shipment"])
    st.caption(f"{len(shown)} shipments shown")
    st.pydeck_chart(data.network_map(src, shown, trails), height=560, on_select="rerun",
                    selection_mode="single-object", key="map")  # fmt: skip
    site = _selected(SITES)
    if picked:
        st.subheader(f"Shipment {picked['shipment']}")
        everything = data.shipment_table(src)
        ui.table(everything[everything["shipment"] == picked["shipment"]], "selected_shipment")
        st.page_link("views/shipment.py", label="Open shipment details", icon=":material/local_shipping:",
                     query_params={"shipment": picked["shipment"]})  # fmt: skip
    elif site:
        st.subheader(f"Site {site['site']}")
        st.dataframe(data.site_sensors(src, site["site"]), hide_index=True, width="stretch")
        st.page_link("views/warehouses.py", label="Open the site", icon=":material/warehouse:",
                     query_params={"site": site["site"]})  # fmt: skip
    else:
        st.caption("Select a shipment or a site on the map for its details.")


live()
