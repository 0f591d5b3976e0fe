"""SGUS Studio: the router. Builds the navigation and the shared sidebar, nothing else."""

from pathlib import Path

import streamlit as st

# The Live page's WebRTC stack (pylibsrtp) crashes the process when it is first imported after
# TensorFlow (loaded by the Train page or a Keras-runtime model); imported first, both work.
import streamlit_webrtc  # noqa: F401

from sgus_ui.state import sidebar, sign_in_page, signed_in

# A local icon: a Material or emoji icon would be fetched from a font host (fails offline).
ICON = str(Path(__file__).parent / "sgus_ui" / "icon.png")
st.set_page_config(page_title="SGUS Studio", page_icon=ICON, layout="wide")

if not signed_in():  # serve mode: nothing but the sign-in form until someone signs in
    st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:")]).run()
    st.stop()

# Served at the root; its own pathname (reserved, never served) is not "browse", the alias's.
browse = st.Page(
    "pages/browse.py", title="Browse", icon=":material/grid_view:", default=True, url_path="home"
)


def browse_alias() -> None:
    """``/browse`` (Browse is the root page ``/``, but people type its name) goes to Browse,
    keeping the address's query (``?image=``, ``?dataset=``) instead of "Page not found"."""
    st.switch_page(browse, query_params=st.query_params.to_dict())


pages = [
    browse,
    st.Page(browse_alias, title="Browse", url_path="browse", visibility="hidden"),
    st.Page("pages/predict.py", title="Predict", icon=":material/model_training:"),
    st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
    st.Page("pages/annotate.py", title="Annotate", icon=":material/draw:"),
    st.Page("pages/review.py", title="Review", icon=":material/analytics:"),
    st.Page("pages/patients.py", title="Patients", icon=":material/person:"),
    st.Page("pages/train.py", title="Train", icon=":material/school:"),
    st.Page("pages/admin.py", title="Study admin", icon=":material/admin_panel_settings:"),
]
navigation = st.navigation(pages)
sidebar()
navigation.run()
