"""Overview, the start page: the network's key figures against the previous period, the map of
shipments on the road, and the shipments that need someone now."""

from __future__ import annotations

import streamlit as st

from dashboards import data, ui
from dashboards.maps import legend
from dashboards.shipments import most_urgent_first
from tower.domain import ON_THE_ROAD

HEIGHT = 420
st.title("Control Tower")
src = data.source()


@ui.live_part
def live() -> None:
    ui.kpi_tiles(data.overview(src, ui.period_ms()))
    table = data.shipment_table(src)
    on_road = table[table["status"].isin(ON_THE_ROAD)]
    st.caption(f"On the road: {legend(on_road['status'].value_counts().to_dict(), detail=False)}",
               unsafe_allow_html=True)  # fmt: skip
    st.pydeck_chart(data.network_map(src, on_road, [], ui.when, HEIGHT, detail=False), height=HEIGHT,
                    key="overview_map")  # fmt: skip
    st.subheader("Needs attention")
    attention = most_urgent_first(on_road[on_road["status"] != "on time"])
    if attention.empty:
        st.success("Every shipment on the road is on time and in range.")
        return
    ui.table(attention[["shipment", "status", "lane", "customer", "cargo", "promised_ms", "eta_ms", "late_by_min",
                        "temp_c", "open_alerts", "worst"]], "attention")  # fmt: skip


live()
