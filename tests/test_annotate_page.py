"""The Annotate page through AppTest, with the canvas result injected through session state."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sgus_core import imaging
from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore

APP = str(REPO_ROOT / "streamlit_app.py")
RATER = "demo-rater"


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame."""A one-patient demo dataset the app reads through SGUS_* variables."""
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.monkeypatch.setenv("SGUS_APP_MODE", "demo")
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.settings = load_settings()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.with LabelStore(settings.db_url) as store:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    ensure_demo(store, settings, n_patients=1)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.return settings


def _rect(left, top, width, height, colour="#00dc78"):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame."""A Fabric 7 rectangle as the canvas reports it (origin at its top-left corner)."""
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.return {
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    "type": "Rect", "left": left, "top": top, "width": width, "height": height,
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    "originX": "left", "originY": "top", "fill": "rgba(0, 220, 120, 0.3)",
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    "stroke": colour, "strokeWidth": 0, "scaleX": 1, "scaleY": 1, "angle": 0,
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.}  # fmt: skip


def _annotate(drawing=None) -> AppTest:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at = AppTest.from_file(APP, default_timeout=60)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.if drawing is not None:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    at.session_state["ann_canvas_json"] = drawing
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.switch_page("pages/annotate.py").run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert not at.exception, at.exception
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.return at


def _start_empty(at: AppTest) -> AppTest:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.start = next(s for s in at.selectbox if s.label == "Start from")
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.return start.select("empty").run()


def test_drawn_and_erased_strokes_are_saved_as_a_new_version(demo_env):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame."""A rectangle drawn in add mode minus one drawn in erase mode is what gets saved."""
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at = _annotate()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame._start_empty(at)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.session_state["ann_canvas_json"] = {
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    "objects": [_rect(100, 100, 200, 80), _rect(100, 100, 100, 80, colour="#ff3c3c")]
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.}
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.toggle(key="ann_zoom").set_value(False).run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.segmented_control(key=next(k for k in _keys(at) if k.startswith("ann_devita_"))).set_value(
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    2
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.).run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.button(key="ann_save").click().run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert not at.exception
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert any("Saved mask version" in s.value for s in at.success)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.with LabelStore(demo_env.db_url) as store:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    image_id = at.session_state["ann_image_id"]
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    version = store.latest_masks(image_id)[RATER]
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    mask = imaging.decode_mask_png(version.png)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    grade = store.latest_grades(image_id)[RATER]
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert version.source == "manual" and grade.devita == 2
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.ys, xs = np.nonzero(mask)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert mask.sum() > 0
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.# The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.scale = mask.shape[1] / 760
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert xs.min() >= 200 * scale - 2 and xs.max() <= 300 * scale + 2
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert ys.min() >= 100 * scale - 2 and ys.max() <= 180 * scale + 2


def _keys(at: AppTest):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.return [w.key for w in at.segmented_control if w.key]


def test_second_save_records_its_parent(demo_env):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame."""Saving twice gives two versions, the second pointing at the first."""
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at = _annotate()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame._start_empty(at)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.session_state["ann_canvas_json"] = {"objects": [_rect(50, 50, 60, 40)]}
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.button(key="ann_save").click().run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.session_state["ann_canvas_json"] = {"objects": [_rect(300, 60, 60, 40)]}
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.button(key="ann_save").click().run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.with LabelStore(demo_env.db_url) as store:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    history = store.mask_history(at.session_state["ann_image_id"], RATER)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert len(history) == 2 and history[1].parent_id == history[0].id


def test_next_moves_along_the_queue(demo_env):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame."""Next shows the following image of the queue."""
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at = _annotate()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.first = at.session_state["ann_image_id"]
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.button(key="ann_next").click().run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert at.session_state["ann_image_id"] != first
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert any("2 of 4" in m.value for m in at.markdown)


def test_a_viewer_cannot_annotate(demo_env):
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame."""A viewer account sees a message instead of the canvas."""
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.with LabelStore(demo_env.db_url) as store:
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.    store.ensure_rater("vic", role="viewer")
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at = AppTest.from_file(APP, default_timeout=60)
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.session_state["rater"] = "vic"
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.at.switch_page("pages/annotate.py").run()
 The right half of the rectangle survives: the canvas is 760 px wide over the whole frame.assert any("view but not annotate" in w.value for w in at.warning)
