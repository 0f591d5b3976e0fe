"""Cached handles shared by every page, and the shared sidebar (dataset, rater).

Caching lives here, at the UI edge: the core never imports streamlit. Session state holds ids and
choices, never image arrays.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import streamlit as st

from sgus_core.auth import (
    Account,
    AccountStore,
    authenticate,
    current_account,
    end_sign_in,
    open_sign_in,
    resume_sign_in,
    session_expired,
)
from sgus_core.demo import DEMO_NOTE
from sgus_core.errors import SgusError
from sgus_core.imaging import ThumbnailCache
from sgus_core.settings import Settings, load_settings
from sgus_core.store import Dataset, LabelStore
from sgus_core.study.visibility import ReaderStore
from sgus_ui.annotate_state import keep_widget_state
from sgus_ui.text import plain


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


DEMO_ACCOUNT = "demo-rater"


SIGNED_OUT_REASON = "signed_out_reason"
SIGN_IN_PARAM = "session"  # the address's ?session= token: a reload resumes the sign-in
SIGN_IN_TOKEN = "sign_in_token"
SIGN_IN_TOUCHED = "sign_in_touched"
SIGN_IN_TOUCH_EVERY = timedelta(minutes=5)  # how often a working tab tells the store it is alive
_SESSION_KEYS = ("account", "last_seen", "rater", SIGN_IN_TOKEN, SIGN_IN_TOUCHED)


def _start_session(account: Account, token: str) -> None:
    now = datetime.now(UTC)
    st.session_state.update(
        {"account": account, "last_seen": now, "rater": account.name, SIGN_IN_TOKEN: token,
         SIGN_IN_TOUCHED: now}
    )  # fmt: skip
    st.query_params[SIGN_IN_PARAM] = token


def sign_out(reason: str | None = None) -> None:
    """End this tab's sign-in (in the store too, so its address no longer resumes it)."""
    token = st.session_state.get(SIGN_IN_TOKEN) or st.query_params.get(SIGN_IN_PARAM)
    if token:
        end_sign_in(store(), token)
    for key in _SESSION_KEYS:
        st.session_state.pop(key, None)
    if SIGN_IN_PARAM in st.query_params:
        del st.query_params[SIGN_IN_PARAM]
    if reason:
        st.session_state[SIGNED_OUT_REASON] = reason


def _resumed() -> bool:
    """A new browser session (a reload, a new tab) whose address holds an open sign-in."""
    token = st.query_params.get(SIGN_IN_PARAM)
    if not token:
        return False
    account = resume_sign_in(store(), token)
    if account is None:
        sign_out("Your sign-in has ended (signed out, idle too long, or the account changed); "
                 "please sign in again.")  # fmt: skip
        return False
    _start_session(account, token)
    return True


def signed_in() -> bool:
    """Whether this session has a live account (always, in demo mode).

    In serve mode the account is read again from the store on every run: an expired session is
    signed out here, and so is one whose account was disabled or removed (the sign-in page then
    says so); a changed role replaces the session's at once. A new browser session (a reload)
    resumes the sign-in its address names; a working tab tells the store it is alive every few
    minutes, and is signed out when its sign-in was ended elsewhere (a password change).
    """
    if app_mode() == "demo":
        return True
    last_seen = st.session_state.get("last_seen")
    account = st.session_state.get("account")
    if account is None:
        return _resumed()
    if last_seen and not session_expired(last_seen):
        current = current_account(store(), account.name)
        if current is None:
            sign_out(f"You were signed out: the account {account.name} is disabled or no "
                     "longer exists.")  # fmt: skip
            return False
        st.session_state["account"] = current
        token = st.session_state.get(SIGN_IN_TOKEN)
        if token is None:  # a session from before sign-ins were kept: give it one
            _start_session(current, open_sign_in(store(), current))
            return True
        now = datetime.now(UTC)
        if now - st.session_state.get(SIGN_IN_TOUCHED, now) >= SIGN_IN_TOUCH_EVERY:
            if resume_sign_in(store(), token) is None:
                sign_out("You were signed out: your sign-in was ended elsewhere.")
                return False
            st.session_state[SIGN_IN_TOUCHED] = now
        if st.query_params.get(SIGN_IN_PARAM) != token:  # page switches drop the address's
            st.query_params[SIGN_IN_PARAM] = token
        return True
    sign_out("Your session was idle too long; please sign in again.")
    return False


def require_account() -> Account:
    """The signed-in account. In ``serve`` mode, shows the sign-in form and stops the page until
    someone signs in (sessions expire after a working day idle); in ``demo`` mode the demo rater
    (or the rater chosen in the sidebar) is signed in automatically."""
    keep_widget_state()  # every page asks for the account first: an unsaved edit outlives it
    labels_store = store()
    if app_mode() == "demo":
        if labels_store.get_rater(DEMO_ACCOUNT) is None:
            labels_store.ensure_rater(DEMO_ACCOUNT, role="admin", actor="demo")
        name = st.session_state.get("rater") or DEMO_ACCOUNT
        rater = labels_store.get_rater(name)
        if rater is None or rater.name == DEMO_ACCOUNT:  # the demo rater is ensured above
            return Account(DEMO_ACCOUNT, "admin")
        return Account(rater.name, rater.role)
    if not signed_in():  # the router shows only the sign-in page then; this guards direct calls
        st.warning("Please sign in.")
        st.stop()
    st.session_state["last_seen"] = datetime.now(UTC)
    return st.session_state["account"]


def sign_in_page() -> None:
    """The only page of a signed-out session in serve mode."""
    st.title("SGUS Studio")
    reason = st.session_state.pop(SIGNED_OUT_REASON, None)
    if reason:
        st.warning(reason)
    with st.form("sign_in", border=True):
        st.markdown("#### Sign in")
        name = st.text_input("Name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            account = authenticate(store(), name, password)
        except SgusError as exc:
            st.error(str(exc))
            return
        _start_session(account, open_sign_in(store(), account))
        st.rerun()


def reader_store() -> ReaderStore:
    """The store as the signed-in account may read it: the blinding of her open blind rounds
    applies to every read a page makes through it (see ``sgus_core.study.visibility``)."""
    return ReaderStore(store(), require_account().name)


def account_store() -> AccountStore:
    """The store as the signed-in account: every write is permission-checked in the core."""
    return AccountStore(store(), require_account())


def sidebar() -> None:
    """The shared sidebar: who is working, and on which dataset."""
    labels_store = store()
    account = require_account()
    datasets = labels_store.list_datasets()
    with st.sidebar:
        st.markdown("### SGUS Studio")
        if app_mode() == "demo":
            raters = [r.name for r in labels_store.list_raters() if not r.disabled]
            _remember_in_address("rater", READER_PARAM, raters, DEMO_ACCOUNT, "the rater")
            st.selectbox(
                "Working as",
                raters,
                key="rater",
                help="Demo mode: act as any rater. `sgus serve` requires each person to sign in.",
            )
        else:
            st.markdown(f"Signed in as **{plain(account.name)}** ({account.role})")
            if st.button("Sign out", key="sign_out"):
                sign_out()
                st.rerun()
        if not datasets:
            st.info("No dataset yet. Run `sgus demo` or `sgus import DIR`.")
            return
        names = [d.name for d in datasets]
        first = "demo" if "demo" in names else names[0]
        _remember_in_address("dataset", DATASET_PARAM, names, first, "the dataset")
        st.selectbox("Dataset", names, key="dataset")
        if st.session_state["dataset"] == "demo":
            st.caption(DEMO_NOTE)


READER_PARAM = "as"  # the address keeps the demo's reader and the dataset, so a reload keeps them
DATASET_PARAM = "dataset"


def app_link(**params: str | int) -> str:
    """A link into the app (``/?image=12``) that keeps this tab's sign-in, reader and dataset
    from the address, so that it opens signed in on the same dataset in a new tab too."""
    from urllib.parse import urlencode

    kept = {
        key: st.query_params[key]
        for key in (SIGN_IN_PARAM, READER_PARAM, DATASET_PARAM)
        if key in st.query_params
    }
    return "/?" + urlencode({**{k: str(v) for k, v in params.items()}, **kept})


def _remember_in_address(key: str, param: str, choices: list[str], default: str, what: str) -> None:
    """Keep the sidebar choice ``key`` valid and in the address (``?param=value``): a reload
    starts a new session, which takes the choice back from the address instead of resetting it.
    An address that names a choice this store does not have (a mistyped or old link) says so in
    the sidebar when it is opened, instead of switching without a word."""
    if st.session_state.get(key) not in choices:
        asked = st.query_params.get(param)
        st.session_state[key] = asked if asked in choices else default
        if asked is not None and asked not in choices:
            st.warning(
                f"The address asks for {what} “{plain(asked)}”, which is not here; showing "
                f"“{plain(default)}” instead."
            )
    if st.query_params.get(param) != st.session_state[key]:
        st.query_params[param] = st.session_state[key]


def _choose_dataset(names: list[str]) -> str | None:
    """Keep the session's dataset choice valid (default: the demo, else the first)."""
    if names and st.session_state.get("dataset") not in names:
        st.session_state["dataset"] = "demo" if "demo" in names else names[0]
    return st.session_state.get("dataset")


def current_dataset() -> Dataset | None:
    """The dataset chosen in the sidebar, or ``None`` when the store has none."""
    name = _choose_dataset([d.name for d in store().list_datasets()])
    return store().get_dataset(name) if name else None


def _dataset_default(task: str) -> str | None:
    """The model the Train page made the default of the sidebar's dataset, if any."""
    from sgus_core.inference.registry import dataset_default

    return dataset_default(settings().models_dir, st.session_state.get("dataset"), task)


@st.cache_resource(show_spinner="Loading the model...")
def _pipeline(models_dir: str, model: str | None, grader: str | None = None):
    from sgus_core.inference.registry import load_pipeline

    return load_pipeline(Path(models_dir), model, grader)


def pipeline(model: str | None = None):
    """``(segmenter, grader)`` for ``model`` (default: the dataset's own default, else
    models/default.json), shared by sessions; stops the page with a clear message when no model
    can be loaded."""
    try:
        return _pipeline(
            str(settings().models_dir),
            model or _dataset_default("segment"),
            _dataset_default("grade"),
        )
    except SgusError as exc:
        st.error(f"The model could not be loaded: {exc}")
        st.stop()
        raise


@st.cache_resource(show_spinner="Loading the prompted model...")
def _prompted(models_dir: str, model: str | None):
    from sgus_core.inference.registry import load_prompted

    try:
        return load_prompted(Path(models_dir), model)
    except SgusError:  # cached too: a folder without one is not searched again on every rerun
        return None


def prompted_segmenter(model: str | None = None):
    """The segmenter that answers box and click prompts (``model`` when it takes them, else the
    dataset's default segmenter when it does, else the global one), shared by sessions; None
    when the models folder has none, so pages simply do not offer prompts."""
    return _prompted(str(settings().models_dir), model or _dataset_default("segment"))


def model_names() -> list[str]:
    """Segmentation models available in the models folder, the default (the dataset's own,
    else the global one) first."""
    from sgus_core.inference.registry import models_default_first

    names = models_default_first(settings().models_dir, "segment")
    own = _dataset_default("segment")
    return sorted(names, key=lambda n: n != own) if own in names else names


def page_dataset() -> Dataset:
    """The chosen dataset for a page that needs one; with none, says how to add one and stops."""
    dataset = current_dataset()
    if dataset is None:
        st.info("The labels store has no dataset yet. Run `sgus demo` or `sgus import DIR` first.")
        st.stop()
    return dataset


def thumbnail_data_uri(image_id: int) -> str:
    """A ``data:`` URI of an image's thumbnail (with its latest outline), for image table cells."""
    import base64

    from sgus_core.browse import ensure_thumbnail
    from sgus_core.store import BrowseRow

    labels_store = store()
    image = labels_store.get_image(image_id)
    row = BrowseRow(image, None, None, None, None)
    try:
        data = ensure_thumbnail(labels_store, thumbnail_cache(), row).read_bytes()
    except SgusError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
