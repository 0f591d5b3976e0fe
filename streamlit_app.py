"""SGUS Studio: the router. Builds the navigation and the shared sidebar, nothing else."""

import streamlit as st

from sgus_ui.state import sidebar, signed_in

st.set_page_config(page_title="SGUS Studio", page_icon=":material/ecg:", layout="wide")

pages = [
    st.Page("pages/browse.py", title="Browse", icon=":material/grid_view:", default=True),
    st.Page("pages/annotate.py", title="Annotate", icon=":material/draw:"),
    st.Page("pages/patients.py", title="Patients", icon=":material/person:"),
    st.Page("pages/admin.py", title="Study admin", icon=":material/admin_panel_settings:"),
]
# The menu stays hidden until someone has signed in (serve mode); sidebar() shows the sign-in
# form and stops the run when needed.
navigation = st.navigation(pages, position="sidebar" if signed_in() else "hidden")
sidebar()
navigation.run()
