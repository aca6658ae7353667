"""Warehouses: per site, the conditions its sensors report (temperature against setpoint, humidity),
dock door activity, and the health of the equipment there. Opened with `/warehouses?site=<id>`."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, data, ui

st.title("Warehouses")
src = data.source()
master = data.master(src)
sites = data.monitored_sites(src)
if not sites:
    st.info("No sites with sensors or machines yet: sites come from the network file (tower network load), and "
            "sensors master data does not know appear here once they report.")  # fmt: skip
    st.stop()
wanted = st.query_params.get("site")
site = st.selectbox("Site", sites, index=sites.index(wanted) if wanted in sites else 0, key="site_id",
                    format_func=lambda s: master.site_names.get(s, s) or data.NO_SITE)  # fmt: skip
st.query_params["site"] = site


@ui.live_part
def live() -> None:
    period = ui.period_ms()
    sensors = data.site_sensors(src, site)
    st.subheader("Conditions")
    ui.table(sensors, "conditions")
    for sensor in sensors.to_dict("records"):
        frame = data.series(src, sensor["sensor"], ("temp_c", "humidity_pct"), period)
        left, right = st.columns(2)
        band = (
            (sensor["min_c"], sensor["max_c"]) if sensor["min_c"] is not None or sensor["max_c"] is not None else None
        )
        left.altair_chart(
            charts.with_limits(frame, "temp_c", f"{sensor['zone']} °C", ui.zone(), band=band), width="stretch"
        )
        right.altair_chart(
            charts.with_limits(frame, "humidity_pct", f"{sensor['zone']} humidity %", ui.zone()), width="stretch"
        )
    st.subheader("Dock doors")
    doors = data.dock_activity(src, site, period)
    if not doors.empty:
        st.altair_chart(charts.openings(doors, ui.zone()), width="stretch")
        ui.table(doors, "dock_doors")
    else:
        st.caption("No dock door openings in the period.")
    st.subheader("Equipment")
    machines = data.equipment_health(src)
    ui.table(machines[machines["site"] == site], "site_equipment")


live()
