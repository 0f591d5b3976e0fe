"""Cached handles shared by every page, and the shared sidebar (dataset, rater).

Caching lives here, at the UI edge: the core never imports streamlit. Session state holds ids and
choices, never image arrays.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
from sgus_core.imaging import ThumbnailCache

from sgus_core.errors import SgusError
from sgus_core.settings import Settings, load_settings
from sgus_core.store import Dataset, LabelStore


@st.cache_resource(show_spinner=False)
def _store_for(url: str) -> LabelStore:
    # One store (engine + connection pool) per URL, shared by every session: LabelStore is
    # thread-safe.
    return LabelStore(url)


def settings() -> Settings:
    """The process settings (``SGUS_*`` environment variables)."""
    return load_settings()


def store() -> LabelStore:
    """The labels store of this app; stops the page with a clear message if it cannot open."""
    url = settings().db_url
    try:
        return _store_for(url)
    except SgusError as exc:
        st.error(f"The labels store could not be opened: {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the script run


@st.cache_resource(show_spinner=False)
def _thumbnail_cache(root: str) -> ThumbnailCache:
    return ThumbnailCache(Path(root))


def thumbnail_cache() -> ThumbnailCache:
    """The on-disk thumbnail cache under the data folder."""
    return _thumbnail_cache(str(settings().thumbnail_dir))


def app_mode() -> str:
    """``demo`` (local, a demo rater signed in) or ``serve``; set by the ``sgus`` command."""
    return os.environ.get("SGUS_APP_MODE", "demo")


def sidebar() -> None:
    """The shared sidebar: choose the dataset and the rater you are working as."""
    labels_store = store()
    datasets = labels_store.list_datasets()
    with st.sidebar:
        st.markdown("### SGUS Studio")
        if not datasets:
            st.info("No dataset yet. Run `sgus demo` or `sgus import DIR`.")
            return
        names = [d.name for d in datasets]
        if st.session_state.get("dataset") not in names:
            st.session_state["dataset"] = "demo" if "demo" in names else names[0]
        st.selectbox("Dataset", names, key="dataset")
        raters = [r.name for r in labels_store.list_raters() if not r.disabled]
        if st.session_state.get("rater") not in raters:
            st.session_state["rater"] = raters[0] if raters else None
        if raters:
            st.selectbox("Working as", raters, key="rater", help="The rater whose labels you edit.")
        st.caption("Synthetic demo data: phantoms, not patients." if "demo" in names else "")


def current_dataset() -> Dataset | None:
    """The dataset chosen in the sidebar, or ``None`` when the store has none."""
    name = st.session_state.get("dataset")
    return store().get_dataset(name) if name else None
