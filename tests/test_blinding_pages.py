"""Blinding on every page: signed in as carol (serve mode) while her blind round ``blind-2`` is
open, no page shows dave's outlines, grades or comment on the round's frames, nor the model's
outline or grade there; the Study admin audit log lists none of them. Closing the round lifts it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.auth import Account, add_user
from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore

APP = str(REPO_ROOT / "streamlit_app.py")
PASSWORD = "correct horse battery"
SECRET = "dave-secret-comment"
PROBE_ELEMENTS = (
    "markdown", "caption", "info", "warning", "success", "error", "metric", "subheader",
    "text", "table", "dataframe", "selectbox", "multiselect", "radio", "checkbox", "json",
)  # fmt: skip


@pytest.fixture(scope="module")
def blind_env(tmp_path_factory, tiny_segmenter_models):
    """A one-patient demo store with a tiny segmenter, raters carol and dave, and blind round
    ``blind-2`` (every frame) in which dave outlined, graded 3 and commented each frame; the
    model's prediction (grade 2) is stored for every frame."""
    root = tmp_path_factory.mktemp("blind")
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
            for name in ("carol", "dave"):
                add_user(store, name, "rater", PASSWORD)
            add_user(store, "boss", "admin", PASSWORD)
            ds = store.require_dataset("demo")
            images = [i.id for i in store.list_images(ds.id)]
            rnd = store.create_round("blind-2", ds.id, images, ["carol", "dave"], blind=True)
            store.register_model("tiny", task="segment", architecture="unet",
                                 path=str(models / "tiny.keras"), card=card)  # fmt: skip
            for image_id in images:
                ref = store.latest_masks(image_id)["reference"]
                store.save_mask(image_id, "dave", ref.png, area_px=ref.area_px, source="manual",
                                round_id=rnd.id)  # fmt: skip
                store.save_grade(image_id, "dave", devita=3, comment=SECRET, round_id=rnd.id)
                store.save_prediction(image_id, "tiny", ref.png, area_px=ref.area_px, grade=2,
                                      grade_probabilities=[0.1, 0.1, 0.7, 0.1])  # fmt: skip
    env["image_ids"] = ",".join(str(i) for i in images)
    return env


@pytest.fixture
def as_carol(blind_env, monkeypatch):
    """The app's environment for one test; returns the frame ids of the round."""
    for key, value in blind_env.items():
        if key.startswith("SGUS_"):
            monkeypatch.setenv(key, value)
    return [int(i) for i in blind_env["image_ids"].split(",")]


def _session(page: str, name: str = "carol", role: str = "rater", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["account"] = Account(name, role)
    at.session_state["last_seen"] = datetime.now(UTC)
    at.session_state["rater"] = name
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _page_text(at: AppTest) -> str:
    """Everything the page shows as text: labels, values, options and table cells."""
    parts: list[str] = []
    for kind in PROBE_ELEMENTS:
        for element in at.get(kind):
            for attr in ("label", "value", "options", "body"):
                value = getattr(element, attr, None)
                if isinstance(value, pd.DataFrame | pd.Series):
                    value = value.to_string()
                elif hasattr(value, "data") and isinstance(value.data, pd.DataFrame):
                    value = value.data.to_string()
                if value is not None:
                    parts.append(str(value))
            proto = getattr(element, "proto", None)
            if proto is not None:
                parts.append(str(proto))
    return "\n".join(parts)


def test_browse_detail_shows_carol_only_her_own_labels(as_carol):
    """Browse -> Open on a round frame: no outline of dave or the model, no grade or comment."""
    at = _session("pages/browse.py", browse_image_id=as_carol[0])
    assert SECRET not in _page_text(at)
    outlines = [m for m in at.multiselect if m.label == "Outlines"]
    assert all(o == "carol" for m in outlines for o in m.options)


def test_review_offers_neither_dave_nor_the_model_as_a_source(as_carol):
    """Review read as carol: dave and the model have no label she may see, so neither is a
    source to compare."""
    at = _session("pages/review.py")
    options = [o for s in at.selectbox for o in s.options]
    assert not any("dave" in o or "tiny" in o for o in options)
    assert SECRET not in _page_text(at)


def test_patients_shows_no_grade_of_dave(as_carol):
    """Patients, grades of dave, read as carol: no gland shows a grade, and those of her open
    blind round say they are hidden (not that dave never graded them)."""
    at = _session("pages/patients.py", pt_rater="dave")
    assert at.selectbox(key="pt_rater").value == "dave"
    assert [m.value for m in at.metric if m.label == "de Vita"] == []
    assert any('hidden from you while the blind round "blind-2"' in c.value for c in at.caption)
    assert SECRET not in _page_text(at)


def test_predict_refuses_to_show_the_model_on_a_blind_frame(as_carol):
    """Predict on a round frame says why the model stays hidden and shows no grade or area."""
    at = _session("pages/predict.py")
    assert any("open blind round 'blind-2'" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label in ("Gland area", "Predicted de Vita grade")]


def test_study_admin_audit_log_lists_none_of_daves_saves(as_carol):
    """The audit log read as carol holds no save by dave and no prediction of a round frame."""
    at = _session("pages/admin.py")
    (table,) = [d for d in at.dataframe if "who" in d.value.columns]
    rows = table.value
    assert "dave" not in set(rows["who"])
    assert "prediction" not in set(rows["what"])
    assert SECRET not in _page_text(at)


def test_annotate_whole_dataset_queue_offers_no_model_or_other_version(as_carol):
    """Annotate, whole-dataset queue, on a round frame: start from an empty mask only."""
    at = _session("pages/annotate.py", ann_round="(whole dataset)")
    (start,) = [s for s in at.selectbox if s.label == "Start from"]
    assert not any("model" in o or "dave" in o for o in start.options)
    assert SECRET not in _page_text(at)


def test_an_administrator_outside_the_round_sees_everything(as_carol):
    """The rule binds the round's raters, not the page: an admin sees dave and the model."""
    at = _session("pages/browse.py", name="boss", role="admin", browse_image_id=as_carol[0])
    assert SECRET in _page_text(at)
    (outlines,) = [m for m in at.multiselect if m.label == "Outlines"]
    assert {"dave", "model tiny"} <= set(outlines.options)


def test_browse_says_why_a_blind_round_leaves_the_grid_empty(as_carol):
    """Filtering by the reference's grade finds nothing on the round's frames (hidden from
    carol): the page says the blind round hides them and how to see the frames; the grid
    itself says which frames' labels are hidden."""
    at = _session("pages/browse.py")
    assert any(r"blind round blind\-2" in c.value for c in at.caption)
    at.selectbox(key="f_grade").select(3).run()
    hint = " ".join(i.value for i in at.info)
    assert r"blind round blind\-2" in hint and "Labels of" in hint
    at.selectbox(key="f_grade").select("any").run()
    assert not at.info
    assert [b for b in at.button if b.label == "Open"]
