"""The Predict page through AppTest, with a tiny model written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.settings import REPO_ROOT
from sgus_core.store import LabelStore

APP = str(REPO_ROOT / "streamlit_app.py")


@pytest.fixture
def env(one_patient_demo):
    """A one-patient demo store and a models folder holding a tiny untrained U-Net."""
    return one_patient_demo


def test_predict_page_shows_outline_heat_map_and_contour(env, monkeypatch):
    """A dataset frame gets its overlay, probability heat map, area and contour table."""
    import streamlit

    names: set[str] = set()
    offer = streamlit.download_button

    def recorded(*args, **kwargs):  # the file name a browser saves a download under
        names.add(kwargs["file_name"])
        return offer(*args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recorded)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/predict.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Predict"
    assert len(at.get("image")) == 1
    assert any("Contour" in m.value for m in at.markdown)
    # The demo CSV gives each frame's pixel spacing: the area in mm² is shown as in Browse.
    assert any(m.label == "Gland area" and m.value.endswith("mm²") for m in at.metric)
    # The downloads are named after the frame's file, not one "mask.png" for every frame.
    stem = Path(at.selectbox(key="pred_image").value.path).stem
    assert names == {f"{stem}_contour.txt", f"{stem}_mask.png"}
    # The heat map keeps its own scale (Streamlit's theme would recolour 0 pink), 0 is black,
    # and it is sent at most 400 cells wide.
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert at.get("plotly_chart")[0].proto.theme == ""
    # Black, and not one of the colours #000001-#000029 Streamlit's frontend repaints as theme
    # placeholders (inferno's own #000004 showed as violet).
    assert heat["layout"]["coloraxis"]["colorscale"][0][1] == "#000000"
    z = heat["data"][0]["z"]  # a typed array: {"dtype", "bdata", "shape": "rows, columns"}
    assert int(z["shape"].split(",")[1]) <= 400


def test_predicting_the_whole_dataset_stores_predictions(env):
    """The whole-dataset button stores one prediction per frame."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/predict.py").run()
    at.button(key="pred_all").click().run()
    assert not at.exception, at.exception
    assert any("4 frames predicted" in s.value for s in at.success)
    with LabelStore(env.db_url) as store:
        ds = store.require_dataset("demo")
        assert all(store.latest_prediction(i.id, "tiny") for i in store.list_images(ds.id))


def test_a_dataset_default_made_on_the_train_page_comes_first(env):
    """A model made the default of this dataset (Train page) is what Predict offers first."""
    import shutil

    from sgus_core.inference.registry import set_dataset_default

    models = env.models_dir
    shutil.copy(models / "tiny.keras", models / "tiny2.keras")
    card = json.loads((models / "tiny.json").read_text()) | {"name": "tiny2"}
    (models / "tiny2.json").write_text(json.dumps(card))
    set_dataset_default(models, "demo", "segment", "tiny2")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/predict.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="pred_model").value == "tiny2"
    assert json.loads((models / "default.json").read_text())["segment"] == "tiny"
