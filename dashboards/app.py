"""The Streamlit control tower: `tower dashboard` runs this file. Pages live in views/; every page
reads through data.py, the one cached data-access layer."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Control Tower", page_icon=":material/hub:", layout="wide")
navigation = st.navigation([st.Page("views/alerts.py", title="Alerts", icon=":material/notifications:",
                                    url_path="alerts", default=True)])  # fmt: skip
navigation.run()
