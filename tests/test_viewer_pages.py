"""A viewer writes nothing from any page: each page of the app, in serve mode as a signed-in
viewer, with every button on it clicked, leaves every table of the labels store as it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from sgus_core.auth import Account, add_user
from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore
from sgus_core.store import schema as t

APP = str(REPO_ROOT / "streamlit_app.py")
PAGES = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "pages").glob("*.py"))
PASSWORD = "correct horse battery"
MAX_CLICKS = 40


@pytest.fixture(scope="module")
def viewer_env(tmp_path_factory, tiny_segmenter_models):
    """A one-patient demo store (its labels, simulated raters and a study round) with a tiny
    untrained segmenter as the default model, and the viewer account ``vic``."""
    root = tmp_path_factory.mktemp("viewer")
    models, card = tiny_segmenter_models(root)
    env = {
        "SGUS_DATA_DIR": str(root),
        "SGUS_MODELS_DIR": str(models),
        "SGUS_DB_URL": f"sqlite:///{root / 'sgus.db'}",
        "SGUS_APP_MODE": "serve",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
        with LabelStore(settings.db_url) as store:
            ensure_demo(store, settings, n_patients=1)
            add_user(store, "vic", "viewer", PASSWORD)
            ds = store.require_dataset("demo")
            images = [i.id for i in store.list_images(ds.id)]
            store.create_round("round 1", ds.id, images, ["reference"], actor="admin")
    return env


@pytest.fixture
def as_viewer(viewer_env, monkeypatch):
    """The app's environment (serve mode) for one test; returns the store URL."""
    for key, value in viewer_env.items():
        monkeypatch.setenv(key, value)
    return viewer_env["SGUS_DB_URL"]


def _rows(url: str) -> dict[str, int]:
    """Row counts of every table of the labels store but the open sign-ins (signing in is the
    one thing a viewer's session records)."""
    with LabelStore(url) as store, store.engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in t.metadata.tables.items()
            if name != "sign_ins"
        }


def _viewer_session(page: str) -> AppTest:
    """A serve-mode session signed in as the viewer vic, on ``page``."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["account"] = Account("vic", "viewer")
    at.session_state["last_seen"] = datetime.now(UTC)
    at.session_state["rater"] = "vic"
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _click_everything(at: AppTest) -> list[str]:
    """Click every button the page shows (and those that clicking reveals), each once; returns
    their labels."""
    clicked: list[tuple[str, str | None]] = []
    for _ in range(MAX_CLICKS):
        pending = [b for b in at.button if (b.label, b.key) not in clicked]
        if not pending:
            break
        button = pending[0]
        clicked.append((button.label, button.key))
        button.click().run()
        assert not at.exception, (button.label, at.exception)
    return [label for label, _ in clicked]


def test_every_page_is_walked():
    """The walk covers every page of the app."""
    names = {p.split("/")[-1] for p in PAGES}
    expected = {"admin", "annotate", "browse", "patients", "predict", "review", "train"}
    assert {n.removesuffix(".py") for n in names} >= expected


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_a_viewer_writes_nothing_from_any_page(as_viewer, page):
    """Signed in as a viewer, every button of the page is clicked; no table of the store gains
    or loses a row (no label, prediction, round, model or audit entry)."""
    before = _rows(as_viewer)
    at = _viewer_session(page)
    _click_everything(at)
    assert _rows(as_viewer) == before


def test_predict_offers_a_viewer_no_button_to_store_predictions(as_viewer):
    """The Predict page shows a viewer why she cannot store the dataset's predictions, instead
    of the button; her one-frame prediction is shown as usual."""
    at = _viewer_session("pages/predict.py")
    assert "pred_all" not in [b.key for b in at.button]
    assert any("can view predictions but not store them" in i.value for i in at.info)
    assert any(m.label == "Gland area" for m in at.metric)
