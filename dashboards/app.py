"""The Streamlit control tower: `tower dashboard` runs this file. Pages live in views/; every page
reads through data.py, the one cached data-access layer."""

from __future__ import annotations

import streamlit as st

from dashboards import data, ui
from tower.timeutil import rfc3339

st.set_page_config(page_title="Control Tower", page_icon=":material/hub:", layout="wide")
PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
    st.Page("views/map.py", title="Map", icon=":material/map:", url_path="map"),
    st.Page("views/shipment.py", title="Shipment", icon=":material/local_shipping:", url_path="shipment"),
    st.Page("views/warehouses.py", title="Warehouses", icon=":material/warehouse:", url_path="warehouses"),
    st.Page("views/equipment.py", title="Equipment", icon=":material/precision_manufacturing:", url_path="equipment"),
    st.Page("views/alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"),
]
navigation = st.navigation(PAGES)
ui.period_picker()
with ui.errors_shown_briefly("The page"):
    st.sidebar.caption(f"As of {rfc3339(data.as_of(data.source()))[:16].replace('T', ' ')} UTC (newest event time)")
    navigation.run()
