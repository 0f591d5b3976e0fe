"""A reading that cannot be biased or lost (Annotate through AppTest): nothing preselected from
another round, from outside a round or from another rater; an unsaved edit survives a visit to
another page; a save confirms what it saved and what remains, and keeps the reader's place."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore

APP = str(REPO_ROOT / "streamlit_app.py")
RATER = "demo-rater"
OTHER = "simulated-rater-A"


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    """A one-patient demo dataset (4 frames) with the demo rater and a round r1 of her."""
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    monkeypatch.setenv("SGUS_APP_MODE", "demo")
    settings = load_settings()
    with LabelStore(settings.db_url) as store:
        ensure_demo(store, settings, n_patients=1)
        store.ensure_rater(RATER, role="admin")
        ds = store.require_dataset("demo")
        ids = [i.id for i in store.list_images(ds.id)]
        store.create_round("r1", ds.id, ids, [RATER])
    return settings


def _annotate(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    return at


def _control(at: AppTest, scale: str):
    return next(s for s in at.segmented_control if s.label == f"{scale} grade")


def _start(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Start from")


def _rect(left, top, width, height):
    return {
        "type": "Rect", "left": left, "top": top, "width": width, "height": height,
        "originX": "left", "originY": "top", "fill": "rgba(0, 220, 120, 0.3)",
        "stroke": "#00dc78", "strokeWidth": 0, "scaleX": 1, "scaleY": 1, "angle": 0,
    }  # fmt: skip


def _area_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Gland area"))


def test_a_repeat_round_preselects_nothing_of_the_first_reading(demo_env):
    """De Vita 3 / OMERACT 1 and an outline saved in r1: the repeat round shows no grade chosen
    and offers no version of r1 to start from."""
    with LabelStore(demo_env.db_url) as store:
        r1 = store.get_round("r1")
        image_id = r1.image_ids[0]
        ref = store.latest_masks(image_id)["reference"]
        store.save_mask(image_id, RATER, ref.png, area_px=ref.area_px, source="manual",
                        round_id=r1.id)  # fmt: skip
        store.save_grade(image_id, RATER, devita=3, omeract=1, round_id=r1.id)
        store.create_round("r1 (repeat)", r1.dataset_id, list(r1.image_ids), [RATER],
                           shuffled=True, repeat_of=r1.id)  # fmt: skip
    at = _annotate(ann_round="r1 (repeat)", ann_image_id=image_id)
    assert _control(at, "de Vita").value is None and _control(at, "OMERACT").value is None
    assert not any("my latest" in o for o in _start(at).options)
    back = _annotate(ann_round="r1", ann_image_id=image_id)  # in r1 itself they are her start
    assert _control(back, "de Vita").value == 3


def test_a_blind_round_preselects_no_grade_given_outside_it(demo_env):
    """OMERACT 1 given outside any round is not preselected inside a blind round."""
    with LabelStore(demo_env.db_url) as store:
        ds = store.require_dataset("demo")
        image_id = store.list_images(ds.id)[0].id
        store.save_grade(image_id, RATER, devita=2, omeract=1)
        store.create_round("blind", ds.id, [image_id], [RATER], blind=True)
    at = _annotate(ann_round="blind", ann_image_id=image_id)
    assert _control(at, "de Vita").value is None and _control(at, "OMERACT").value is None


def test_switching_working_as_does_not_carry_grades_over(demo_env):
    """The demo rater picks de Vita 2; working as simulated rater A instead, the form shows
    A's own stored grade, not 2."""
    at = _annotate()
    image_id = at.session_state["ann_image_id"]
    _control(at, "de Vita").set_value(2).run()
    at.session_state["rater"] = OTHER
    at.run()
    assert not at.exception, at.exception
    with LabelStore(demo_env.db_url) as store:
        grade = store.latest_grades(image_id).get(OTHER)
    theirs = next(g for g in [grade] if g is not None and g.round_id is None)
    assert _control(at, "de Vita").value == theirs.devita


def test_an_unsaved_edit_survives_a_page_switch(demo_env):
    """Start from empty, the rectangle tool, a rectangle drawn: after Browse and back, the start,
    the tool, the area and the unsaved state are all as they were."""
    at = _annotate()
    _start(at).select("empty").run()
    at.selectbox(key="ann_tool").select("rect").run()
    at.session_state["ann_canvas_json"] = {"objects": [_rect(100, 100, 120, 60)]}
    at.run()
    before = _area_caption(at)
    assert "unsaved edits" in before and not before.startswith("Gland area 0 px")
    at.switch_page("pages/browse.py").run()
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    assert _start(at).value == "empty"
    assert at.selectbox(key="ann_tool").value == "rect"
    assert {"freehand", "rectangle"} <= set(at.selectbox(key="ann_tool").options)  # in words
    assert _area_caption(at) == before
    assert not at.button(key="ann_undo").disabled


def test_a_save_in_a_round_confirms_and_keeps_the_place(demo_env):
    """Saving the second frame of a four-frame round names it and what remains, and shows the
    frame that followed it (not the first of the queue)."""
    at = _annotate(ann_round="r1")
    at.button(key="ann_next").click().run()
    queue_before = at.session_state["ann_image_id"]
    with LabelStore(demo_env.db_url) as store:
        r1 = store.get_round("r1")
        label = store.get_image(queue_before).label
    _control(at, "de Vita").set_value(1).run()
    at.button(key="ann_save").click().run()
    assert not at.exception, at.exception
    (message,) = [t.value for t in at.toast if t.value.startswith("Saved ")]
    assert label in message and "de Vita 1" in message
    assert '3 of 4 to do in the round "r1"' in message
    shown = at.session_state["ann_image_id"]
    assert shown != queue_before and shown in r1.image_ids
    assert any("2 of 3 in the queue" in m.value for m in at.markdown)


def test_save_and_next_outside_rounds_moves_on_with_the_pen_back_on_add(demo_env):
    """Save & next (whole dataset) saves and shows the next frame; the eraser is not carried
    to it; the done count grows."""
    at = _annotate()
    first = at.session_state["ann_image_id"]
    at.segmented_control(key="ann_mode").set_value("erase").run()
    _control(at, "de Vita").set_value(0).run()
    at.button(key="ann_save_next").click().run()
    assert not at.exception, at.exception
    assert at.session_state["ann_image_id"] != first
    assert at.segmented_control(key="ann_mode").value == "add"
    assert any("1 done · 3 to do" in c.value for c in at.caption)


def test_a_caliper_measures_in_mm_and_leaves_the_mask_alone(demo_env):
    """The caliper tool's line shows its length in mm (the demo frames know their spacing);
    the mask stays empty."""
    from sgus_core.annotate.prompting import CALIPER_COLOUR

    at = _annotate()
    _start(at).select("empty").run()
    at.toggle(key="ann_zoom").set_value(False).run()
    line = {
        "type": "Line", "left": 100, "top": 100, "width": 300, "height": 0,
        "x1": -150, "y1": 0, "x2": 150, "y2": 0, "originX": "left", "originY": "top",
        "stroke": CALIPER_COLOUR, "strokeWidth": 2, "scaleX": 1, "scaleY": 1, "angle": 0,
    }  # fmt: skip
    at.session_state["ann_canvas_json"] = {"objects": [line]}
    at.run()
    assert not at.exception, at.exception
    assert _area_caption(at).startswith("Gland area 0 px")
    (caliper,) = [c.value for c in at.caption if c.value.startswith("Calipers: ")]
    with LabelStore(demo_env.db_url) as store:
        image = store.get_image(at.session_state["ann_image_id"])
    expected = 300 * image.width / 620 * image.spacing_mm  # 300 canvas px over a 620 px canvas
    assert caliper == f"Calipers: {expected:.1f} mm"


@pytest.mark.parametrize("start", ["empty", "another version"])
def test_saving_grades_alone_stores_no_outline_the_reader_did_not_draw(demo_env, start):
    """Save with an untouched start (empty, or another rater's outline) keeps the grades and
    the status only: no empty outline, and no copy of someone else's outline under her name
    (it would read as perfect agreement)."""
    at = _annotate()
    choice = next(o for o in _start(at).options if o.startswith(start))
    _start(at).select(choice).run()
    _control(at, "de Vita").set_value(2).run()
    at.button(key="ann_save").click().run()
    assert not at.exception, at.exception
    with LabelStore(demo_env.db_url) as store:
        image_id = at.session_state["ann_image_id"]
        assert RATER not in store.latest_masks(image_id)
        assert [g.devita for g in store.grade_history(image_id) if g.rater == RATER] == [2]
