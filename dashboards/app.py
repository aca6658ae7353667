"""The Streamlit control tower: `tower dashboard` runs this file. Every page needs a signed-in person
(dashboards/auth.py); pages live in views/ and read through data.py, the one data-access layer."""

from __future__ import annotations

import streamlit as st

from dashboards import auth, data, ui

st.set_page_config(page_title="Control Tower", page_icon=":material/hub:", layout="wide")
PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
    st.Page("views/map.py", title="Map", icon=":material/map:", url_path="map"),
    st.Page("views/shipment.py", title="Shipment", icon=":material/local_shipping:", url_path="shipment"),
    st.Page("views/warehouses.py", title="Warehouses", icon=":material/warehouse:", url_path="warehouses"),
    st.Page("views/equipment.py", title="Equipment", icon=":material/precision_manufacturing:", url_path="equipment"),
    st.Page("views/alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"),
]
signed_in = auth.person()
# The page asked for (and its query, e.g. a notification's /alerts?alert=...) is kept through the sign-in.
navigation = st.navigation(PAGES, position="sidebar" if signed_in else "hidden")
if signed_in is None:
    data.read_start_page_ahead(data.source(), ui.period_ms())
    with ui.errors_shown_briefly("Signing in"):
        auth.sign_in_form()
    st.stop()
auth.sign_out_button(signed_in)
ui.period_picker()
ui.zone_picker()
with ui.errors_shown_briefly("The page"):
    st.sidebar.caption(f"As of {ui.when(data.as_of(data.source()))} (newest event time)")
    navigation.run()
