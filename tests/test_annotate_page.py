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
    """A one-patient demo dataset the app reads through SGUS_* variables."""
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    monkeypatch.setenv("SGUS_APP_MODE", "demo")
    settings = load_settings()
    with LabelStore(settings.db_url) as store:
        ensure_demo(store, settings, n_patients=1)
    return settings


def _rect(left, top, width, height, colour="#00dc78"):
    """A Fabric 7 rectangle as the canvas reports it (origin at its top-left corner)."""
    return {
        "type": "Rect", "left": left, "top": top, "width": width, "height": height,
        "originX": "left", "originY": "top", "fill": "rgba(0, 220, 120, 0.3)",
        "stroke": colour, "strokeWidth": 0, "scaleX": 1, "scaleY": 1, "angle": 0,
    }  # fmt: skip


def _annotate(drawing=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if drawing is not None:
        at.session_state["ann_canvas_json"] = drawing
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    return at


def _start_empty(at: AppTest) -> AppTest:
    start = next(s for s in at.selectbox if s.label == "Start from")
    return start.select("empty").run()


def test_strokes_stay_where_they_were_drawn_when_the_zoom_changes(demo_env):
    """A rectangle drawn on the zoomed canvas is drawn into the mask where it was drawn when
    the zoom is switched off (the canvas changes scale); before, the unzoomed canvas read the
    same stroke at its own scale and the outline jumped and changed size."""
    at = _annotate()
    _start_empty(at)
    assert at.toggle(key="ann_zoom").value  # the demo frames have a field of view
    at.session_state["ann_canvas_json"] = {"objects": [_rect(100, 100, 200, 80)]}
    at.run()
    zoomed = _area_px(at)
    at.toggle(key="ann_zoom").set_value(False).run()
    assert not at.exception, at.exception
    assert zoomed > 1000 and abs(_area_px(at) - zoomed) <= 0.02 * zoomed
    assert at.button(key="ann_undo").disabled is False  # the stroke is one step of the history


def _area_px(at: AppTest) -> int:
    caption = next(c.value for c in at.caption if c.value.startswith("Gland area"))
    return int(caption.split()[2])


def test_drawn_and_erased_strokes_are_saved_as_a_new_version(demo_env):
    """A rectangle drawn in add mode minus one drawn in erase mode is what gets saved."""
    at = _annotate()
    _start_empty(at)
    at.toggle(key="ann_zoom").set_value(False).run()
    at.session_state["ann_canvas_json"] = {
        "objects": [_rect(100, 100, 200, 80), _rect(100, 100, 100, 80, colour="#ff3c3c")]
    }
    at.segmented_control(key=next(k for k in _keys(at) if k.startswith("ann_devita_"))).set_value(
        2
    ).run()
    at.button(key="ann_save").click().run()
    assert not at.exception
    assert any("Saved mask version" in s.value for s in at.success)
    with LabelStore(demo_env.db_url) as store:
        image_id = at.session_state["ann_image_id"]
        version = store.latest_masks(image_id)[RATER]
        mask = imaging.decode_mask_png(version.png)
        grade = store.latest_grades(image_id)[RATER]
    assert version.source == "manual" and grade.devita == 2
    ys, xs = np.nonzero(mask)
    assert mask.sum() > 0
    # The right half of the rectangle survives: the canvas is 620 px wide over the whole frame.
    scale = mask.shape[1] / 620
    assert xs.min() >= 200 * scale - 2 and xs.max() <= 300 * scale + 2
    assert ys.min() >= 100 * scale - 2 and ys.max() <= 180 * scale + 2


def _keys(at: AppTest):
    return [w.key for w in at.segmented_control if w.key]


def test_second_save_records_its_parent(demo_env):
    """Saving twice gives two versions, the second pointing at the first."""
    at = _annotate()
    _start_empty(at)
    at.session_state["ann_canvas_json"] = {"objects": [_rect(50, 50, 60, 40)]}
    at.run()
    at.button(key="ann_save").click().run()
    at.session_state["ann_canvas_json"] = {"objects": [_rect(300, 60, 60, 40)]}
    at.run()
    at.button(key="ann_save").click().run()
    with LabelStore(demo_env.db_url) as store:
        history = store.mask_history(at.session_state["ann_image_id"], RATER)
    assert len(history) == 2 and history[1].parent_id == history[0].id


def test_next_moves_along_the_queue(demo_env):
    """Next shows the following image of the queue."""
    at = _annotate()
    first = at.session_state["ann_image_id"]
    at.button(key="ann_next").click().run()
    assert at.session_state["ann_image_id"] != first
    assert any("2 of 4" in m.value for m in at.markdown)


def test_a_viewer_cannot_annotate(demo_env):
    """A viewer account sees a message instead of the canvas."""
    with LabelStore(demo_env.db_url) as store:
        store.ensure_rater("vic", role="viewer")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["rater"] = "vic"
    at.switch_page("pages/annotate.py").run()
    assert any("view but not annotate" in w.value for w in at.warning)


def test_grade_shortcut_buttons_set_the_grade(demo_env):
    """The shortcut button for de Vita 3 selects grade 3 and shows its definition."""
    at = _annotate()
    image_id = at.session_state["ann_image_id"]
    key = f"ann_devita_{image_id}_0_{RATER}"  # this rater's reading, outside any round
    at.button(key=f"{key}_key3").click().run()
    assert at.session_state[key] == 3
    assert any("de Vita 3:" in c.value for c in at.caption)


def test_clearing_a_saved_grade_says_save_keeps_it(demo_env):
    """The rater's saved grade comes back chosen; a click clears it, and the page says that Save
    keeps the earlier grade rather than leaving her to find the old one in the history."""
    at = _annotate()
    image_id = at.session_state["ann_image_id"]
    with LabelStore(demo_env.db_url) as store:
        store.save_grade(image_id, RATER, devita=2)
    at = _annotate()
    key = f"ann_devita_{image_id}_0_{RATER}"
    assert at.session_state[key] == 2
    assert not any("Save keeps that earlier grade" in c.value for c in at.caption)
    at.segmented_control(key=key).set_value(None).run()
    assert any("saved de Vita 2 before: Save keeps that earlier" in c.value for c in at.caption)


def test_saving_unchanged_grades_again_adds_no_row_and_confidence_waits_to_be_chosen(demo_env):
    """Save pressed twice on the same grades keeps one grade row; a confidence nobody chose is
    stored as none (it was 4, the slider's default), and once chosen it is kept and comes back."""
    at = _annotate()
    image_id = at.session_state["ann_image_id"]
    key = f"ann_devita_{image_id}_0_{RATER}"
    at.segmented_control(key=key).set_value(1).run()
    at.button(key="ann_save").click().run()
    at.button(key="ann_save").click().run()
    assert not at.exception, at.exception
    with LabelStore(demo_env.db_url) as store:
        (grade,) = store.grade_history(image_id, RATER)
    assert grade.devita == 1 and grade.confidence is None
    at.segmented_control(key=f"ann_conf_{image_id}_0_{RATER}").set_value(5).run()
    at.button(key="ann_save").click().run()
    with LabelStore(demo_env.db_url) as store:
        assert [g.confidence for g in store.grade_history(image_id, RATER)] == [None, 5]
    assert _annotate().session_state[f"ann_conf_{image_id}_0_{RATER}"] == 5


def test_reopened_frame_keeps_its_hocevar_items_and_comment_on_save(demo_env):
    """A frame graded with Hocevar items and a comment opens with them filled in, so Save on
    it (a new de Vita grade) keeps them; before, both came back empty and the save dropped
    them from the rater's latest grade."""
    at = _annotate()
    image_id = at.session_state["ann_image_id"]
    with LabelStore(demo_env.db_url) as store:
        store.save_grade(
            image_id, RATER, devita=1, hocevar=[1, 2, 0, 3, 1], comment="capsule unclear"
        )
    at = _annotate()
    suffix = f"{image_id}_0_{RATER}"
    assert at.toggle(key=f"ann_hoc_on_{suffix}").value
    assert [at.slider(key=f"ann_hoc_{i}_{suffix}").value for i in range(5)] == [1, 2, 0, 3, 1]
    assert at.text_area(key=f"ann_comment_{suffix}").value == "capsule unclear"
    at.button(key="ann_save").click().run()  # unchanged: no second row
    at.segmented_control(key=f"ann_devita_{suffix}").set_value(2).run()
    at.button(key="ann_save").click().run()
    assert not at.exception, at.exception
    with LabelStore(demo_env.db_url) as store:
        history = store.grade_history(image_id, RATER)
    assert [(g.devita, g.hocevar, g.comment) for g in history] == [
        (1, (1, 2, 0, 3, 1), "capsule unclear"),
        (2, (1, 2, 0, 3, 1), "capsule unclear"),
    ]


def test_browse_opens_the_image_it_shows_in_annotate(demo_env):
    """Browse's "Annotate this image" opens that frame in Annotate (not the queue's first), and
    an address naming a frame outside the queue says so and keeps the queue."""
    with LabelStore(demo_env.db_url) as store:
        last = store.list_images(store.list_datasets()[0].id)[-1].id
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["browse_image_id"] = last
    at.run()
    at.button(key="browse_annotate").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Annotate" and at.session_state["ann_image_id"] == last
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["image"] = "999999"
    at.switch_page("pages/annotate.py").run()
    assert any("Image 999999 is not in this queue" in i.value for i in at.info)
