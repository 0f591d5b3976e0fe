"""SGUS Studio: the router. Builds the navigation and the shared sidebar, nothing else."""

import streamlit as st

from sgus_ui.state import sidebar

st.set_page_config(page_title="SGUS Studio", page_icon=":material/ecg:", layout="wide")

pages = [
    st.Page("pages/browse.py", title="Browse", icon=":material/grid_view:", default=True),
]
navigation = st.navigation(pages)
sidebar()
navigation.run()
