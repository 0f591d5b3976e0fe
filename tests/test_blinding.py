"""Blinding is a property of the core: a rater inside an open blind round sees, on that round's
images, only her own labels of the round, whichever read she (or a page, or a command) uses.

The scene is the one the trust probe reported: blind round ``blind-2`` for carol and dave; dave
outlines, grades and comments in it; the model has predictions; carol reads.
"""

from __future__ import annotations

import numpy as np
import pytest

from sgus_core.auth import Account, AccountStore
from sgus_core.browse import image_detail, patient_glands
from sgus_core.errors import PermissionDenied
from sgus_core.imaging import encode_mask_png
from sgus_core.review.comparisons import Source, available_sources, compare
from sgus_core.store import ImageFilter, NewImage
from sgus_core.study.rounds import visible_labels
from sgus_core.study.visibility import ReaderStore, reader_view, require_visible
from sgus_core.transfer import export_dataset

SECRET = "dave thinks grade three"
SIDE = 32


def _mask(x0: int) -> tuple[bytes, int]:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[8:20, x0 : x0 + 10] = True
    return encode_mask_png(mask), int(mask.sum())


@pytest.fixture
def scene(store, tmp_path):
    """Six frames of one patient on disk; blind round ``blind-2`` (carol, dave) over the first
    three; dave's mask, grade and comment in it, his labels outside it on frame 4; the model's
    predictions of every frame; carol's own grade in the round on frame 1 and one outside any
    round on frame 0."""
    import cv2

    ds = store.ensure_dataset("d", tmp_path)
    for name in ("carol", "dave", "erin"):
        store.ensure_rater(name)
    ids = []
    glands = [("parotid", "R"), ("parotid", "L"), ("submandibular", "R")] * 2
    for i, (gland, side) in enumerate(glands):
        pixels = np.full((SIDE, SIDE), 40 + 20 * i, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), pixels)
        image = NewImage(
            path=f"{i}.png", content_hash=f"h{i}", width=SIDE, height=SIDE,
            patient="P1", gland=gland, side=side,
        )  # fmt: skip
        ids.append(store.add_image(ds.id, image)[0])
    rnd = store.create_round("blind-2", ds.id, ids[:3], ["carol", "dave"], blind=True)
    store.register_model("m", task="segment", architecture="unet", path="m.keras", card={})
    for image_id in ids:
        png, area = _mask(12)
        store.save_prediction(image_id, "m", png, area_px=area, grade=2,
                              grade_probabilities=[0.1, 0.2, 0.6, 0.1])  # fmt: skip
    for image_id in ids[:3]:
        png, area = _mask(4)
        store.save_mask(image_id, "dave", png, area_px=area, source="manual", round_id=rnd.id)
        store.save_grade(image_id, "dave", devita=3, comment=SECRET, round_id=rnd.id)
        store.set_status(image_id, "dave", "done", round_id=rnd.id)
    png, area = _mask(4)
    store.save_mask(ids[4], "dave", png, area_px=area, source="manual")
    store.save_grade(ids[4], "dave", devita=3)
    store.save_grade(ids[1], "carol", devita=1, round_id=rnd.id)
    store.save_grade(ids[0], "carol", devita=2)  # outside the round: hidden in it too
    return store, ds, ids, rnd


def test_image_detail_shows_carol_neither_dave_nor_the_model(scene):
    """Browse's detail of a blind-round frame, read as carol: no outline, grade, comment or
    status of dave, no model outline; her own grade of the round is there."""
    store, _, ids, _ = scene
    carol = ReaderStore(store, "carol")
    detail = image_detail(carol, ids[1])
    assert [o.label for o in detail.overlays] == []
    assert [(g.rater, g.devita) for g in detail.grades] == [("carol", 1)]
    assert all(g.comment != SECRET for g in detail.grades)
    assert detail.statuses == []
    outside = image_detail(carol, ids[4])  # not in the round: everything shows
    assert {o.label for o in outside.overlays} == {"dave", "model m"}


def test_carols_own_label_outside_the_round_is_hidden_in_it(scene):
    """Her grade saved outside the round does not show on the round's frame (it would bias
    her reading in the round)."""
    store, _, ids, _ = scene
    assert ReaderStore(store, "carol").grade_history(ids[0]) == []


def test_predictions_and_versions_are_hidden_on_blind_frames(scene):
    """No prediction, no version list of dave, and a direct fetch of his mask is refused."""
    store, _, ids, _ = scene
    carol = ReaderStore(store, "carol")
    assert carol.latest_prediction(ids[0]) is None
    assert carol.latest_prediction(ids[4]) is not None
    assert carol.mask_history(ids[0], "dave") == []
    assert carol.latest_masks(ids[0]) == {}
    dave_version = store.mask_history(ids[0], "dave")[0].id
    with pytest.raises(PermissionDenied):
        carol.get_mask(dave_version)
    with pytest.raises(PermissionDenied, match="blind round 'blind-2'"):
        require_visible(carol, ids[0])
    require_visible(carol, ids[4])


def test_review_compares_dave_with_the_model_only_outside_the_round(scene):
    """Review read as carol: dave vs the model covers only frames outside the blind round;
    outside any view the comparison covers all four."""
    store, ds, ids, _ = scene
    dave, model = Source("rater", "dave"), Source("model", "m")
    assert compare(store, ds.id, dave, model).summary["n"] == 4
    seen = compare(ReaderStore(store, "carol"), ds.id, dave, model)
    assert seen.per_image["image_id"].tolist() == [ids[4]]


def test_patients_view_hides_daves_grades(scene):
    """The patient view of dave's grades read as carol holds none of the round's frames."""
    store, ds, ids, _ = scene
    glands = patient_glands(ReaderStore(store, "carol"), ds.id, "P1", "dave")
    graded = {g.image.id for g in glands if g.grade is not None}
    assert graded.isdisjoint(ids[:3])
    assert {g.image.id for g in patient_glands(store, ds.id, "P1", "dave") if g.grade} & set(
        ids[:3]
    )


def test_audit_log_leaves_out_daves_and_the_models_entries_on_blind_frames(scene):
    """The audit log read as carol names no save of dave or the model on the round's frames;
    her own saves and everything else stay."""
    store, _, ids, _ = scene
    hidden = set(ids[:3])
    entries = ReaderStore(store, "carol").audit_log(limit=1000)
    about = [e for e in entries if (e.details or {}).get("image_id") in hidden]
    assert about and all((e.details or {}).get("rater") == "carol" for e in about)
    assert any(e.entity == "round" for e in entries)
    assert len(store.audit_log(limit=1000)) > len(entries)


def test_whole_dataset_queue_offers_no_model_and_no_other_version(scene):
    """Annotate's whole-dataset queue (no round chosen) on a blind frame: no prediction and no
    version of dave to start from."""
    store, _, ids, _ = scene
    seen = visible_labels(store, None, "carol", ids[0])
    assert seen.prediction is None
    assert seen.masks == [] and seen.grades == []


def test_browse_rows_and_filters_ignore_hidden_labels(scene):
    """The grid read as carol: dave's grade neither shows on a blind frame nor selects it;
    her own grade there does."""
    store, ds, ids, _ = scene
    carol = ReaderStore(store, "carol")
    rows, _ = carol.browse(ImageFilter(dataset_id=ds.id), limit=100)
    by_id = {r.image.id: r for r in rows}
    assert by_id[ids[0]].devita is None and by_id[ids[0]].prediction_id is None
    assert by_id[ids[0]].mask_version_id is None and by_id[ids[0]].status is None
    assert by_id[ids[1]].devita == 1
    assert by_id[ids[4]].devita == 3 and by_id[ids[4]].prediction_id is not None
    threes, total = carol.browse(ImageFilter(dataset_id=ds.id, grade=3), limit=100)
    assert [r.image.id for r in threes] == [ids[4]] and total == 1
    daves, _ = carol.browse(ImageFilter(dataset_id=ds.id, rater="dave", has_mask=True))
    assert [r.image.id for r in daves] == [ids[4]]
    unblinded, _ = store.browse(ImageFilter(dataset_id=ds.id, grade=3), limit=100)
    assert {r.image.id for r in unblinded} == {ids[2], ids[4]}  # dave's grade is the newest


def test_export_as_carol_leaves_out_daves_blind_labels(scene, tmp_path):
    """``sgus export --as carol``'s core: dave's labels exported as carol sees them hold only
    the frame outside the round."""
    import csv

    store, _, ids, _ = scene
    out = export_dataset(reader_view(store, "carol"), "d", tmp_path / "x", fmt="csv", rater="dave")
    with out.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["devita"]]
    assert [r["image"] for r in rows] == ["4.png"]
    assert available_sources(ReaderStore(store, "carol"), scene[1].id)


def test_the_rule_is_symmetric_and_spares_non_members(scene):
    """Dave does not see carol's round grade; erin (not in the round) sees everything."""
    store, _, ids, _ = scene
    assert ReaderStore(store, "dave").grade_history(ids[1], "carol") == []
    erin = ReaderStore(store, "erin")
    assert {g.rater for g in erin.grade_history(ids[1])} == {"dave", "carol"}
    assert erin.latest_prediction(ids[0]) is not None


def test_closing_the_round_lifts_the_blinding_and_stops_saves(scene):
    """An administrator closes the round: carol then sees dave and the model; no one saves
    into the closed round; a rater cannot close it."""
    store, _, ids, rnd = scene
    png, area = _mask(4)
    with pytest.raises(PermissionDenied, match="administrator"):
        AccountStore(store, Account("carol", "rater")).close_round("blind-2")
    closed = AccountStore(store, Account("admin", "admin")).close_round("blind-2")
    assert not closed.is_open
    carol = ReaderStore(store, "carol")
    assert {o.label for o in image_detail(carol, ids[0]).overlays} == {"dave", "model m"}
    with pytest.raises(PermissionDenied, match="closed"):
        AccountStore(store, Account("carol", "rater")).save_mask(
            ids[0], "carol", png, area_px=area, source="manual", round_id=rnd.id
        )


def test_daves_doppler_grade_is_hidden_like_his_other_grades(scene, tmp_path):
    """Dave's OMERACT Doppler grade on a blind-round frame reaches carol by no read: not in the
    detail view, his history, a Review comparison or an export as carol; outside the round it
    shows."""
    import csv

    store, ds, ids, rnd = scene
    store.save_grade(ids[2], "dave", devita=3, doppler=3, round_id=rnd.id)
    store.save_grade(ids[4], "dave", devita=3, doppler=2)
    store.save_grade(ids[2], "carol", doppler=1, round_id=rnd.id)
    store.save_grade(ids[4], "carol", doppler=2)
    carol = ReaderStore(store, "carol")
    assert [(g.rater, g.doppler) for g in image_detail(carol, ids[2]).grades] == [("carol", 1)]
    assert carol.grade_history(ids[2], "dave") == []
    dave, her = Source("rater", "dave"), Source("rater", "carol")
    assert compare(store, ds.id, dave, her).summary["doppler_n"] == 2
    seen = compare(carol, ds.id, dave, her)
    assert seen.per_image.dropna(subset=["doppler_a"])["image_id"].tolist() == [ids[4]]
    export_dataset(carol, ds.name, tmp_path / "out", fmt="csv", rater="dave")
    with (tmp_path / "out" / "labels.csv").open(newline="") as handle:
        rows = {r["image"]: r["doppler"] for r in csv.DictReader(handle)}
    assert rows["2.png"] == "" and rows["4.png"] == "2"
