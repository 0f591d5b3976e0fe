"""Doppler on the pages (AppTest): Annotate offers the OMERACT Doppler grade and the vascular
fraction on Doppler frames only, never preselected in a round; Review compares the Doppler
grades; Browse shows the vascular fraction; blinding hides another rater's Doppler grade."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.auth import Account
from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore

APP = str(REPO_ROOT / "streamlit_app.py")
RATER = "demo-rater"


@pytest.fixture(scope="module")
def doppler_demo(tmp_path_factory):
    """A two-patient demo: patient P00000 greyscale, P00001 scanned with power Doppler (its
    reference and simulated raters have Doppler grades)."""
    root = tmp_path_factory.mktemp("doppler-demo")
    env = {
        "SGUS_DATA_DIR": str(root),
        "SGUS_DB_URL": f"sqlite:///{root / 'sgus.db'}",
        "SGUS_APP_MODE": "demo",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
        with LabelStore(settings.db_url) as store:
            ensure_demo(store, settings, n_patients=2, doppler_patients=(1,))
            images = store.list_images(store.require_dataset("demo").id)
    env["doppler"] = ",".join(str(i.id) for i in images if i.meta.get("doppler"))
    env["grey"] = ",".join(str(i.id) for i in images if not i.meta.get("doppler"))
    return env


@pytest.fixture
def demo_env(doppler_demo, monkeypatch, tmp_path):
    """A fresh copy of the demo store for one test: ``(settings, doppler ids, grey ids)``."""
    import shutil

    source = doppler_demo["SGUS_DB_URL"].removeprefix("sqlite:///")
    shutil.copy(source, tmp_path / "sgus.db")
    monkeypatch.setenv("SGUS_DATA_DIR", doppler_demo["SGUS_DATA_DIR"])
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    monkeypatch.setenv("SGUS_APP_MODE", "demo")
    ids = [[int(i) for i in doppler_demo[k].split(",")] for k in ("doppler", "grey")]
    return load_settings(), ids[0], ids[1]


def _page(page: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _doppler_control(at: AppTest):
    found = [w for w in at.segmented_control if (w.key or "").startswith("ann_doppler_")]
    return found[0] if found else None


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_annotate_offers_the_doppler_grade_on_doppler_frames_only(demo_env):
    """A greyscale frame has no Doppler grade nor fraction; a Doppler frame has both, the grade
    unset and the fraction of the outline being edited."""
    _, doppler_ids, grey_ids = demo_env
    grey = _page("pages/annotate.py", ann_image_id=grey_ids[0])
    assert _doppler_control(grey) is None
    assert not any("vascular fraction" in c for c in _captions(grey))
    at = _page("pages/annotate.py", ann_image_id=doppler_ids[0])
    control = _doppler_control(at)
    assert control is not None and control.value is None
    assert control.label == "OMERACT Doppler grade"
    start = next(s for s in at.selectbox if s.label == "Start from")
    start.select(next(o for o in start.options if "by reference" in o)).run()
    assert any(
        c.startswith("Doppler: vascular fraction") and "% inside the gland" in c
        for c in _captions(at)
    )


def test_doppler_grades_saved_on_annotate_show_on_review(demo_env):
    """Grading two Doppler frames on Annotate stores the Doppler grades, and Review of the
    reference against this rater reports the Doppler agreement over those two frames."""
    settings, doppler_ids, _ = demo_env
    chosen = {}
    for image_id, grade in zip(doppler_ids[:2], (2, 3), strict=True):
        at = _page("pages/annotate.py", ann_image_id=image_id)
        _doppler_control(at).set_value(grade).run()
        at.button(key="ann_save").click().run()
        assert not at.exception, at.exception
        chosen[image_id] = grade
    with LabelStore(settings.db_url) as store:
        saved = {i: store.latest_grades(i)[RATER].doppler for i in chosen}
        audit = [e.details for e in store.audit_log() if e.entity == "grade"]
    assert saved == chosen
    assert {d.get("doppler") for d in audit[:2]} == {2, 3}
    at = _page("pages/review.py")
    at.selectbox(key="rev_a").select("rater reference").run()
    at.selectbox(key="rev_b").select(f"rater {RATER}").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Doppler frames graded by both"] == "2"
    assert "Doppler grade accuracy" in metrics
    assert any(m.value == "#### OMERACT Doppler (vascularity)" for m in at.markdown)


def test_review_shows_no_doppler_section_without_doppler_grades(demo_env):
    """Two sources that share no Doppler grade (a rater who graded greyscale frames only)
    get no Doppler section."""
    _, _, grey_ids = demo_env
    at = _page("pages/annotate.py", ann_image_id=grey_ids[0])
    at.segmented_control(
        key=next(w.key for w in at.segmented_control if (w.key or "").startswith("ann_devita_"))
    ).set_value(1).run()
    at.button(key="ann_save").click().run()
    at = _page("pages/review.py")
    at.selectbox(key="rev_a").select("rater reference").run()
    at.selectbox(key="rev_b").select(f"rater {RATER}").run()
    assert "Doppler frames graded by both" not in {m.label for m in at.metric}


def test_a_doppler_grade_is_not_carried_into_a_round(demo_env):
    """Graded outside any round, then opened in a round of the same frame: the Doppler grade
    starts unset there (nothing preselected in a blind or repeat reading)."""
    settings, doppler_ids, _ = demo_env
    with LabelStore(settings.db_url) as store:
        store.ensure_rater(RATER)
        store.save_grade(doppler_ids[0], RATER, devita=1, doppler=3)
    whole = _page("pages/annotate.py", ann_image_id=doppler_ids[0])
    assert _doppler_control(whole).value == 3  # her last grade of this queue
    with LabelStore(settings.db_url) as store:
        ds = store.require_dataset("demo")
        store.create_round("repeat", ds.id, doppler_ids[:1], [RATER], blind=True)
    at = _page("pages/annotate.py", ann_round="repeat")
    assert at.session_state["ann_image_id"] == doppler_ids[0]
    assert _doppler_control(at).value is None


def test_browse_detail_shows_the_vascular_fraction_of_a_doppler_frame(demo_env):
    """Browse's detail of a Doppler frame names the vascular fraction inside the reference
    outline and lists the Doppler grades; a greyscale frame shows neither."""
    _, doppler_ids, grey_ids = demo_env
    at = _page("pages/browse.py", browse_image_id=doppler_ids[0])
    assert any(
        c.startswith("Doppler: vascular fraction") and "(reference's outline)" in c
        for c in _captions(at)
    )
    grades = [d for d in at.dataframe if "Doppler" in getattr(d.value, "columns", ())]
    assert grades and grades[0].value["Doppler"].notna().all()
    grey = _page("pages/browse.py", browse_image_id=grey_ids[0])
    assert not any("vascular fraction" in c for c in _captions(grey))
    assert not [d for d in grey.dataframe if "Doppler" in getattr(d.value, "columns", ())]
    # the detail shows the flow in colour (the rater grades what she sees), the grey one grey
    from sgus_core.browse import image_detail
    from sgus_core.store import LabelStore

    settings = demo_env[0]
    with LabelStore(settings.db_url) as store:
        assert image_detail(store, doppler_ids[0]).pixels.ndim == 3
        assert image_detail(store, grey_ids[0]).pixels.ndim == 2


def test_blind_round_hides_another_raters_doppler_grade_on_browse(demo_env, monkeypatch):
    """Signed in as carol during her open blind round, Browse's detail of a Doppler frame lists
    no grade of dave (his Doppler grade 3 included); closing the round shows it."""
    settings, doppler_ids, _ = demo_env
    monkeypatch.setenv("SGUS_APP_MODE", "serve")
    with LabelStore(settings.db_url) as store:
        for name in ("carol", "dave"):
            store.ensure_rater(name)
        ds = store.require_dataset("demo")
        rnd = store.create_round("blind-d", ds.id, doppler_ids, ["carol", "dave"], blind=True)
        store.save_grade(doppler_ids[0], "dave", devita=0, doppler=3, round_id=rnd.id)
    state = {
        "account": Account("carol", "rater"),
        "last_seen": datetime.now(UTC),
        "rater": "carol",
        "browse_image_id": doppler_ids[0],
    }
    at = _page("pages/browse.py", **state)
    tables = [d.value for d in at.dataframe if "rater" in getattr(d.value, "columns", ())]
    assert all("dave" not in set(t["rater"]) for t in tables)
    with LabelStore(settings.db_url) as store:
        store.close_round("blind-d")
    at = _page("pages/browse.py", **state)
    grades = [d.value for d in at.dataframe if "Doppler" in getattr(d.value, "columns", ())]
    assert grades and 3 in set(grades[0].loc[grades[0]["rater"] == "dave", "Doppler"])
