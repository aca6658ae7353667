"""Equipment health: every machine ranked by risk (health score, projected time to a limit, open
alerts), and for the chosen one its vibration, bearing temperature and motor current against
healthy ranges and limits, with the projected time to each limit. Opened with `/equipment?equipment=<id>`."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, data, health, ui

st.title("Equipment health")
src = data.source()
master = data.master(src)
ranked = list(data.equipment_health(src)["equipment"])
if not ranked:
    st.info("No equipment yet: machines come from the network file (tower network load) and appear once they report.")
    st.stop()
wanted = st.query_params.get("equipment")
machine = st.selectbox("Machine", ranked, index=ranked.index(wanted) if wanted in ranked else 0, key="machine_id")
st.query_params["equipment"] = machine


@ui.live_part
def live() -> None:
    period = ui.period_ms()
    st.subheader("Ranked by risk")
    st.caption("Health 100 = every signal in its healthy range, 0 = at a limit or in fault; open alerts cap it. "
               "hours_to_limit: an open trend alert's projection (blank: none open); below, the chosen "
               "machine's own projection for each signal.")  # fmt: skip
    ui.table(data.equipment_health(src), "equipment_health")
    group = master.machines.get(machine)
    where = f"{group.type} at {master.site_names.get(group.site, group.site)}" if group else "not in master data"
    st.subheader(f"{machine} · {where}")
    frame = data.series(src, machine, tuple(health.SIGNALS), period)
    projections = data.projections(src, machine, period)
    limits = data.machine_limits(src, machine)
    healthy = group.healthy.ranges() if group else {}
    columns = st.columns(len(health.SIGNALS))
    for column, (name, title) in zip(columns, health.SIGNALS.items(), strict=True):
        hours, words = projections[name]
        limit = limits.get(name)
        shown = "–" if hours is None else ("beyond horizon" if hours > 24 * 30 else f"{hours:.0f} h")
        column.metric(f"{title}: to limit", shown if limit is not None else "no limit", help=words, border=True)
        band = (healthy[name].min, healthy[name].max) if name in healthy else None
        column.altair_chart(charts.with_limits(frame, name, title, ui.zone(), limit=limit, band=band), width="stretch")


live()
