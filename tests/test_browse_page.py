"""The Browse page through Streamlit's AppTest, from the entrypoint."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.browse import RATER_COLOURS, outline_colours, rater_colour
from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore
from sgus_core.study.rounds import create_repeat_round

APP = str(REPO_ROOT / "streamlit_app.py")


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    """A data folder with a two-patient demo dataset; the app reads it through SGUS_* variables."""
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    settings = load_settings()
    with LabelStore(settings.db_url) as store:
        ensure_demo(store, settings, n_patients=2)
    return settings


def _browse(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    return at


def test_browse_shows_a_grid_of_the_demo_dataset(demo_env):
    """The default page lists the eight demo frames with a thumbnail and an Open button each."""
    at = _browse()
    assert not at.exception
    assert at.title[0].value == "Browse"
    assert any("**8 images**" in m.value for m in at.markdown)
    assert len(at.get("image")) == 8
    assert len([b for b in at.button if b.label == "Open"]) == 8
    assert (demo_env.thumbnail_dir).is_dir()


def test_filters_narrow_the_grid(demo_env):
    """Choosing gland and side leaves one image per patient."""
    at = _browse()
    at.selectbox(key="f_gland").select("parotid").run()
    at.selectbox(key="f_side").select("R").run()
    assert any("**2 images**" in m.value for m in at.markdown)
    assert len([b for b in at.button if b.label == "Open"]) == 2


def test_a_filter_with_no_match_says_so(demo_env):
    """A filter that matches nothing shows a message instead of an empty grid."""
    at = _browse()
    at.selectbox(key="f_status").select("rejected").run()
    assert any("No image matches" in i.value for i in at.info)


def test_a_link_to_a_dataset_that_is_not_there_says_so(demo_env):
    """A mistyped or old link (``?dataset=nosuch``) opens the demo with a warning naming both;
    a link to a dataset that exists opens it without one."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = "nosuch"
    at.run()
    assert not at.exception
    assert at.selectbox(key="dataset").value == "demo"
    assert any("“nosuch”" in w.value and "“demo”" in w.value for w in at.sidebar.warning)
    plain = AppTest.from_file(APP, default_timeout=60)
    plain.query_params["dataset"] = "demo"
    plain.run()
    assert not any("address asks" in w.value for w in plain.sidebar.warning)


def test_open_shows_the_detail_view_with_reference_outline(demo_env):
    """Open shows the full frame, the reference rater's outline and the grade history."""
    at = _browse()
    next(b for b in at.button if b.label == "Open").click().run()
    assert not at.exception
    assert at.button(key="browse_back")
    assert "reference" in at.multiselect[0].value
    assert any("Grades" in m.value for m in at.markdown)
    at.button(key="browse_back").click().run()
    assert at.title[0].value == "Browse"


def test_grade_and_mask_times_show_in_the_readers_time_zone(demo_env):
    """The store keeps UTC; a reader in Tokyo sees the history in Japan time, one without a
    reported zone in UTC, each marked with its zone."""
    for zone, mark in (("Asia/Tokyo", "JST"), (None, "UTC")):
        at = AppTest.from_file(APP, default_timeout=60)
        if zone:
            at.context = {"timezone": zone}
        at.run()
        next(b for b in at.button if b.label == "Open").click().run()
        assert not at.exception, at.exception
        timed = [d.value["when"] for d in at.dataframe if "when" in d.value]
        assert len(timed) == 2  # the grades and the history of masks and status
        for when in timed:
            assert len(when) and all(w.endswith(f" {mark}") for w in when), list(when)


def test_outline_legend_names_colours_that_stay_with_the_rater(demo_env):
    """The legend names each outline's colour (no hex codes), and a rater keeps her colour when
    a rater whose name sorts before hers is added (colours follow the rater, not the list)."""

    def legend() -> dict[str, str]:
        at = _browse()
        next(b for b in at.button if b.label == "Open").click().run()
        table = next(d.value for d in at.dataframe if "outline" in d.value.columns)
        assert not any(str(c).startswith("#") for c in table["colour"])
        return dict(zip(table["outline"], table["colour"], strict=True))

    before = legend()
    assert before["reference"] in {name for name, _ in RATER_COLOURS}
    with LabelStore(demo_env.db_url) as store:
        store.ensure_rater("aaron")
    assert legend() == before


def test_image_detail_shows_hocevar_items_and_confidence(demo_env):
    """The grades table shows a grade's Hocevar items (with their sum) and its confidence, and
    the history leaves the area empty on status rows (it read "None")."""
    with LabelStore(demo_env.db_url) as store:
        for image in store.list_images(store.list_datasets()[0].id):
            store.save_grade(image.id, "reference", devita=2, hocevar=[1, 2, 0, 3, 1], confidence=4)
            store.set_status(image.id, "reference", "done")
    at = _browse()
    next(b for b in at.button if b.label == "Open").click().run()
    assert not at.exception, at.exception
    grades = next(d.value for d in at.dataframe if "Hocevar items" in d.value.columns)
    assert (grades["Hocevar items"].iloc[0], grades["confidence"].iloc[0]) == (
        "1 2 0 3 1 (sum 7)",
        "4 of 5",
    )
    history = next(d.value for d in at.dataframe if "what" in d.value.columns)
    status_rows = history[history["what"].str.startswith("status")]
    assert len(status_rows) and set(status_rows["area px"]) == {""}


def test_outlines_drawn_together_do_not_share_a_colour():
    """With more raters than colours, two outlines on one image still get a colour each: the
    eighth rater's id cycles onto the first's colour, so on an image both outlined she takes
    the next free one (and alone she keeps her own)."""
    first, eighth = 1, len(RATER_COLOURS) + 1
    assert rater_colour(first) == rater_colour(eighth)
    colours = outline_colours({"ana": first, "zoe": eighth, "ben": 2})
    assert colours["ana"] == rater_colour(first) and colours["ben"] == rater_colour(2)
    assert colours["zoe"] == RATER_COLOURS[2]  # the next colour neither ana nor ben has
    assert outline_colours({"zoe": eighth}) == {"zoe": rater_colour(eighth)}


def test_empty_store_explains_what_to_do(tmp_path, monkeypatch):
    """With no dataset the page tells the user how to add one."""
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    at = _browse()
    assert not at.exception
    assert any("sgus demo" in i.value for i in at.info)


def test_serve_mode_asks_for_sign_in_before_any_page(demo_env, monkeypatch):
    """In serve mode nothing but the sign-in form shows until a valid password is given."""
    from sgus_core.auth import add_user

    monkeypatch.setenv("SGUS_APP_MODE", "serve")
    with LabelStore(demo_env.db_url) as labels:
        add_user(labels, "ana", "rater", "a long enough password")
    at = _browse()
    assert not at.title or at.title[0].value != "Browse"
    at.text_input(key="sign_in_name").input("ana")
    at.text_input(key="sign_in_password").input("wrong password here")
    at.button[0].click().run()
    assert any("Wrong name or password" in e.value for e in at.error)
    at.text_input(key="sign_in_password").input("a long enough password")
    at.button[0].click().run()
    assert at.title[0].value == "Browse"
    assert any("Signed in as **ana**" in m.value for m in at.sidebar.markdown)


def test_admin_creates_a_blind_round_from_the_page(demo_env):
    """The demo admin creates a blind, shuffled round and sees it listed."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/admin.py").run()
    assert not at.exception
    at.text_input(key="round_name_0").input("round 1")
    at.multiselect(key="round_raters").set_value(["reference"])
    at.button[0].click().run()
    assert not at.exception
    with LabelStore(demo_env.db_url) as labels:
        created = labels.get_round("round 1")
    assert created is not None and created.blind and len(created.image_ids) == 8
    # the page confirms it (the message used to vanish in the rerun) and empties the name
    assert any("Round 'round 1' created: 8 images, 1 rater." in m.value for m in at.success)
    # under a new key: the browser kept the typed name when only the old key's state was dropped
    assert [t.value for t in at.text_input if t.label == "Name"][0] == ""


def test_the_dataset_exports_from_the_page_as_a_zip(demo_env):
    """Export on Browse: the reference rater's labels as a ZIP that holds what `sgus export`
    writes (labels.csv with eight rows, the masks)."""
    import io
    import zipfile

    from sgus_core.transfer import export_zip

    at = _browse()
    at.selectbox(key="browse_export_rater").select("reference").run()
    at.button(key="browse_export_go").click().run()
    assert not at.exception, at.exception
    (download,) = at.get("download_button")
    assert "demo_reference_masks.zip" in download.proto.label
    with LabelStore(demo_env.db_url) as store:
        data = export_zip(store, "demo", rater="reference")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "demo/labels.csv" in names
    assert sum(n.startswith("demo/masks/") for n in names) == 8


def test_a_reload_keeps_who_is_working_and_the_dataset(demo_env):
    """The demo's reader and the dataset live in the address: a reload (a new session with the
    same address) comes back as the same reader on the same dataset, not as the demo rater; an
    address naming nobody of this store falls back to the demo rater."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["rater"] = "reference"  # as chosen in the sidebar
    at.run()
    assert at.query_params["as"] == "reference" and at.query_params["dataset"] == "demo"
    reloaded = AppTest.from_file(APP, default_timeout=60)
    reloaded.query_params.update({"as": "reference", "dataset": "demo"})
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.sidebar.selectbox(key="rater").value == "reference"
    assert reloaded.session_state["dataset"] == "demo"
    stranger = AppTest.from_file(APP, default_timeout=60)
    stranger.query_params["as"] = "nobody-of-this-store"
    stranger.run()
    assert stranger.sidebar.selectbox(key="rater").value == "demo-rater"


def test_counts_read_in_the_right_number():
    """One image, not "1 images"."""
    from sgus_ui.text import count

    assert (count(1, "image"), count(0, "image"), count(3, "outline")) == (
        "1 image",
        "0 images",
        "3 outlines",
    )


def test_patients_says_an_omeract_maximum_is_over_the_glands_graded_so_far(demo_env):
    """Two of four glands graded: the OMERACT maximum says it is of those two, and whether any
    gland is OMERACT 2-3 is still open (not a plain "no")."""
    with LabelStore(demo_env.db_url) as store:
        images = [i for i in store.list_images(store.list_datasets()[0].id) if i.patient]
        patient = images[0].patient
        mine = [i for i in images if i.patient == patient][:2]
        store.ensure_rater("newcomer")
        for image, omeract in zip(mine, (1, 0), strict=True):
            store.save_grade(image.id, "newcomer", devita=1, omeract=omeract)
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/patients.py").run()
    at.selectbox(key="pt_patient").select(patient).run()
    at.selectbox(key="pt_rater").select("newcomer").run()
    assert not at.exception, at.exception
    assert next(m for m in at.metric if m.label == "OMERACT max (0-3)").value == "1"
    assert any("over the 2 of 4 glands graded so far" in c.value for c in at.caption)
    flag = next(m for m in at.metric if m.label == "Any gland OMERACT ≥ 2")
    assert flag.value == "open"


def test_patients_totals_one_reading_of_a_repeat_round(demo_env):
    """A rater who graded a patient in a round and again in its repeat has two readings: the
    page totals the newest by default and one round's when chosen (before, the two mixed)."""
    with LabelStore(demo_env.db_url) as store:
        ds = store.list_datasets()[0]
        images = [i for i in store.list_images(ds.id) if i.patient]
        patient = images[0].patient
        glands = [i for i in images if i.patient == patient]
        store.ensure_rater("newcomer")
        first = store.create_round("first", ds.id, [i.id for i in glands], ["newcomer"])
        again = create_repeat_round(store, first, "newcomer", "first (repeat)", actor="admin")
        for image in glands:
            store.save_grade(image.id, "newcomer", devita=1, round_id=first.id)
        store.save_grade(glands[0].id, "newcomer", devita=3, round_id=again.id)
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/patients.py").run()
    at.selectbox(key="pt_patient").select(patient).run()
    at.selectbox(key="pt_rater").select("newcomer").run()
    assert not at.exception, at.exception

    def de_vita_total() -> str:
        return next(m for m in at.metric if m.label == "de Vita total (0-12)").value

    assert de_vita_total() == str(3 + 1 * (len(glands) - 1))  # the newest: mixed readings
    at.selectbox(key="pt_reading_newcomer").select("round first").run()
    assert de_vita_total() == str(len(glands))
    at.selectbox(key="pt_reading_newcomer").select("round first (repeat)").run()
    assert de_vita_total() == "incomplete"  # one gland re-read so far


def test_an_address_with_a_bad_image_number_says_so(demo_env):
    """``?image=abc`` names no image: the grid comes with a line saying so, not silently."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["image"] = "abc"
    at.run()
    assert not at.exception, at.exception
    assert any("no image number" in w.value for w in at.warning)
    assert any(b.label == "Open" for b in at.button)
