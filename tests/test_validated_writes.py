"""Labels cannot be poisoned through the core: a mask or prediction is kept only when it decodes,
is binary, fits its frame and its area is its pixel count; a rater sets only her own work's
statuses that do not judge it, and saves into a round only when she rates it. ``sgus check``
lists the rows written before these checks that fail them, and says how to supersede each."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, insert, select

from sgus_core.annotate.saving import START_EMPTY, save_annotation
from sgus_core.auth import RATER_STATUSES, REVIEW_STATUSES, Account, AccountStore
from sgus_core.check import check_store
from sgus_core.errors import PermissionDenied, StoreError
from sgus_core.imaging import decode_mask_png, encode_mask_png
from sgus_core.inference.dataset import predict_dataset
from sgus_core.store import LabelStore, NewImage
from sgus_core.store import schema as t
from sgus_core.store.base import utc_now
from sgus_core.transfer.backup import backup_store, restore_store

W, H = 6, 4  # the test frames' width and height


def _mask(area: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    mask = np.zeros(shape[0] * shape[1], bool)
    mask[:area] = True
    return mask.reshape(shape)


def _png(array: np.ndarray) -> bytes:
    """``array`` as a PNG exactly as given (grey uint8 values, or RGB), without binarising."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _declared(width: int, height: int) -> bytes:
    """A tiny 1-bit PNG whose header declares ``width`` x ``height`` px (a decompression bomb's
    shape: its pixels are never there)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _rows(store: LabelStore) -> dict[str, int]:
    """Row counts of every table of the store."""
    with store.engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in t.metadata.tables.items()
        }


@pytest.fixture
def labelled(store, tmp_path):
    """A dataset of three 6 x 4 px frames, raters ana and ben, viewer vic, admin boss, the model
    ``m``, and a round ``r1`` over the first two frames rated by ana alone."""
    ds = store.ensure_dataset("d", tmp_path)
    for name, role in (("ana", "rater"), ("ben", "rater"), ("vic", "viewer"), ("boss", "admin")):
        store.ensure_rater(name, role=role)
    ids = [
        store.add_image(ds.id, NewImage(path=f"f{i}.png", content_hash=f"h{i}", width=W, height=H))[
            0
        ]
        for i in range(3)
    ]
    store.register_model("m", task="segment", architecture="unet", path="m.keras", card={})
    rnd = store.create_round("r1", ds.id, ids[:2], ["ana"])
    return store, ds, ids, rnd


# ---------------------------------------------------------------- masks and predictions


BAD_MASKS = {
    "not a png": (b"not a png", 0, "not a PNG image"),
    # the signature, the header and two bytes of the pixel data
    "truncated": (encode_mask_png(_mask(3))[:43], 3, "not a readable PNG"),
    "negative area": (encode_mask_png(_mask(3)), -5, "area is given as -5 px but the mask has 3"),
    "area too big": (encode_mask_png(_mask(3)), 4, "area is given as 4 px but the mask has 3"),
    "wrong size": (encode_mask_png(_mask(3, (H + 1, W))), 3, "6 x 5 px but its frame is 6 x 4"),
    "grey levels": (_png(np.arange(24, dtype=np.uint8).reshape(H, W) * 10), 23, "not binary"),
    "0 and 128": (_png((_mask(3) * 128).astype(np.uint8)), 3, "not binary"),
    "colour": (_png(np.zeros((H, W, 3), np.uint8)), 0, "mode RGB"),
    "huge declared size": (_declared(9_000, 9_000), 0, "9000 x 9000 px but its frame"),
    "decompression bomb": (_declared(100_000, 100_000), 0, "DecompressionBombError"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_a_bad_mask_is_refused_with_one_line_and_nothing_is_written(labelled, case):
    """save_mask, save_labels and save_prediction refuse a mask that does not decode, is not
    binary, does not fit the frame or whose area is wrong; the message names the image and the
    fault on one line, and no row (label, grade or audit entry) is added."""
    store, _, ids, _ = labelled
    png, area, says = BAD_MASKS[case]
    before = _rows(store)
    with pytest.raises(StoreError, match=f"image {ids[2]}") as refused:
        store.save_mask(ids[2], "ana", png, area_px=area, source="manual")
    assert says in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(StoreError, match="not saved"):
        store.save_labels(ids[2], "ana", mask_png=png, area_px=area, source="manual", devita=2)
    with pytest.raises(StoreError, match=says):
        store.save_prediction(ids[2], "m", png, area_px=area)
    assert _rows(store) == before


def test_binary_masks_in_every_stored_form_are_kept(labelled):
    """A 1-bit PNG, a grey PNG of 0/255 and one of 0/1 with the frame's size and the right area
    are kept, and read back as the same mask."""
    store, _, ids, _ = labelled
    mask = _mask(5)
    for png in (
        encode_mask_png(mask),
        _png(mask.astype(np.uint8) * 255),
        _png(mask.astype(np.uint8)),
    ):
        kept = store.save_mask(ids[2], "ana", png, area_px=5, source="manual")
        assert np.array_equal(decode_mask_png(store.get_mask(kept.id).png), mask)
        store.save_prediction(ids[2], "m", png, area_px=5)
    empty = encode_mask_png(np.zeros((H, W), bool))
    assert store.save_mask(ids[2], "ana", empty, area_px=0, source="manual").area_px == 0
    assert len(store.mask_history(ids[2])) == 4


def test_a_mask_of_an_unknown_image_is_refused(labelled):
    """A mask or prediction for an image id that does not exist is a StoreError, not a crash."""
    store, *_ = labelled
    with pytest.raises(StoreError, match="No image with id 999"):
        store.save_mask(999, "ana", encode_mask_png(_mask(1)), area_px=1, source="manual")
    with pytest.raises(StoreError, match="No image with id 999"):
        store.save_prediction(999, "m", encode_mask_png(_mask(1)), area_px=1)


def test_an_annotation_of_the_wrong_size_saves_nothing(labelled):
    """The Annotate save (mask, grades, status) refuses a mask that does not fit the frame, before
    the grade or the status is written."""
    store, _, ids, _ = labelled
    ana = AccountStore(store, Account("ana", "rater"))
    before = _rows(store)
    with pytest.raises(StoreError, match="its frame is 6 x 4"):
        save_annotation(ana, ids[2], "ana", _mask(2, (H, W + 2)), start_kind=START_EMPTY,
                        parent_id=None, devita=1, omeract=None)  # fmt: skip
    assert _rows(store) == before
    saved = save_annotation(ana, ids[2], "ana", _mask(2), start_kind=START_EMPTY,
                            parent_id=None, devita=1, omeract=None)  # fmt: skip
    assert saved.mask is not None and saved.mask.area_px == 2


# ---------------------------------------------------------------- statuses by role


def test_a_rater_sets_only_statuses_that_do_not_judge_her_work(labelled):
    """A rater may mark her own work todo, in progress, done or flagged, but not accepted or
    rejected; an admin may accept or reject it; nothing is written by a refusal."""
    store, _, ids, _ = labelled
    ana = AccountStore(store, Account("ana", "rater"))
    for status in RATER_STATUSES:
        ana.set_status(ids[2], "ana", status, reason="blurred" if status == "flagged" else None)
    before = _rows(store)
    for status in ("accepted", "rejected"):
        with pytest.raises(PermissionDenied, match="Only an administrator"):
            ana.set_status(ids[2], "ana", status)
    with pytest.raises(PermissionDenied, match="only her own"):
        ana.set_status(ids[2], "ben", "done")
    with pytest.raises(PermissionDenied, match="view but not"):
        AccountStore(store, Account("vic", "viewer")).set_status(ids[2], "ana", "accepted")
    assert _rows(store) == before
    assert set(REVIEW_STATUSES) == {"accepted", "rejected"}
    boss = AccountStore(store, Account("boss", "admin"))
    boss.set_status(ids[2], "ana", "accepted")
    assert store.status_history(ids[2])[-1].status == "accepted"
    assert store.audit_log(limit=1)[0].actor == "boss"


# ---------------------------------------------------------------- round membership


def test_labels_go_into_a_round_only_for_its_raters_and_images(labelled):
    """A mask, grade or status with a round id is refused for a rater who is not in the round,
    and for an image that is not in it; the round's rater saves there as before."""
    store, _, ids, rnd = labelled
    ben = AccountStore(store, Account("ben", "rater"))
    ana = AccountStore(store, Account("ana", "rater"))
    png = encode_mask_png(_mask(2))
    before = _rows(store)
    with pytest.raises(PermissionDenied, match="ben is not a rater of the round 'r1'"):
        ben.save_mask(ids[0], "ben", png, area_px=2, source="manual", round_id=rnd.id)
    with pytest.raises(PermissionDenied, match="not a rater"):
        ben.save_grade(ids[0], "ben", devita=1, round_id=rnd.id)
    with pytest.raises(PermissionDenied, match="not a rater"):
        ben.set_status(ids[0], "ben", "done", round_id=rnd.id)
    with pytest.raises(PermissionDenied, match=f"Image {ids[2]} is not in the round"):
        ana.save_grade(ids[2], "ana", devita=1, round_id=rnd.id)
    with pytest.raises(StoreError, match="No study round with id 999"):
        ana.save_grade(ids[0], "ana", devita=1, round_id=999)
    with pytest.raises(PermissionDenied, match="not a rater"):  # an admin judges only members
        AccountStore(store, Account("boss", "admin")).set_status(
            ids[0], "ben", "accepted", round_id=rnd.id
        )
    assert _rows(store) == before
    ana.save_mask(ids[0], "ana", png, area_px=2, source="manual", round_id=rnd.id)
    ana.save_grade(ids[0], "ana", devita=1, round_id=rnd.id)
    ana.set_status(ids[0], "ana", "done", round_id=rnd.id)
    assert store.latest_statuses("ana", rnd.id) == {ids[0]: "done"}


def test_annotate_refuses_a_save_into_a_round_she_does_not_rate(labelled):
    """The Annotate save as a rater outside the round writes nothing."""
    store, _, ids, rnd = labelled
    ben = AccountStore(store, Account("ben", "rater"))
    before = _rows(store)
    with pytest.raises(PermissionDenied, match="not a rater"):
        save_annotation(ben, ids[0], "ben", _mask(2), start_kind=START_EMPTY, parent_id=None,
                        devita=1, omeract=None, round_id=rnd.id)  # fmt: skip
    assert _rows(store) == before


# ---------------------------------------------------------------- predictions by a person


def test_predictions_through_the_permission_layer(labelled, tmp_path):
    """A viewer's prediction is refused (predict_dataset refuses before loading or registering
    anything); a rater's is stored and audited under her name, not as "model"."""
    store, ds, ids, _ = labelled
    vic = AccountStore(store, Account("vic", "viewer"))
    png = encode_mask_png(_mask(2))
    before = _rows(store)
    with pytest.raises(PermissionDenied, match="view but not"):
        vic.save_prediction(ids[0], "m", png, area_px=2)
    with pytest.raises(PermissionDenied, match="view but not"):
        predict_dataset(store, ds.name, tmp_path / "no-models", writer=vic)
    assert _rows(store) == before
    AccountStore(store, Account("ana", "rater")).save_prediction(ids[0], "m", png, area_px=2)
    entry = store.audit_log(limit=1)[0]
    assert (entry.actor, entry.entity) == ("ana", "prediction")


# ---------------------------------------------------------------- sgus check


def _poison(store: LabelStore, ids: list[int], rnd_id: int) -> dict[str, int]:
    """Rows as the store took them before the checks: a mask that is not a PNG, a prediction of
    the wrong size, a mask whose area disagrees, and ana's self-acceptance; returns their ids."""
    with store.transaction() as conn:
        ana = conn.execute(select(t.raters.c.id).where(t.raters.c.name == "ana")).scalar_one()
        model = conn.execute(select(t.models.c.id).where(t.models.c.name == "m")).scalar_one()
        row = {"image_id": ids[0], "rater_id": ana, "source": "manual", "created_at": utc_now()}
        bad = conn.execute(insert(t.mask_versions).values(**row, png=b"x", area_px=-5))
        wrong_area = conn.execute(
            insert(t.mask_versions).values(
                **row | {"image_id": ids[1]}, png=encode_mask_png(_mask(3)), area_px=7
            )
        )
        pred = conn.execute(
            insert(t.predictions).values(
                image_id=ids[2],
                model_id=model,
                png=encode_mask_png(_mask(1, (H, W + 1))),
                area_px=1,
                created_at=utc_now(),
            )  # fmt: skip
        )
    accepted = store.set_status(ids[0], "ana", "accepted", round_id=rnd_id)  # no permission layer
    return {
        "mask": bad.inserted_primary_key[0],
        "area": wrong_area.inserted_primary_key[0],
        "prediction": pred.inserted_primary_key[0],
        "status": accepted.id,
    }


def test_check_lists_old_bad_rows_and_how_to_supersede_them(labelled, monkeypatch, capsys):
    """`sgus check` names every poisoned row with what is wrong and how to supersede it, exits 1,
    and writes nothing; once each is superseded by a new version it exits 0."""
    from sgus_cli.main import main

    store, _, ids, rnd = labelled
    good = store.save_mask(ids[2], "ana", encode_mask_png(_mask(2)), area_px=2, source="manual")
    AccountStore(store, Account("boss", "admin")).set_status(ids[1], "ana", "rejected")
    bad = _poison(store, ids, rnd.id)
    monkeypatch.setenv("SGUS_DB_URL", store.url)
    before = _rows(store)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert _rows(store) == before
    assert "checked 3 mask versions, 1 predictions and 2 status changes" in out
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(lines) == 4
    assert f"mask version {bad['mask']} of image {ids[0]} (f0.png), ana: it is not a PNG" in out
    assert f"mask version {bad['area']} of image {ids[1]}" in out and "has 3 px" in out
    assert f"prediction {bad['prediction']} of image {ids[2]}" in out and "7 x 4 px" in out
    assert f"status {bad['status']} of image {ids[0]}" in out and "ana (a rater)" in out
    assert all("supersede it" in line for line in lines)
    assert f"mask version {good.id}" not in out  # the good rows and boss's rejection are fine

    payload = main(["check", "--json"]), json.loads(capsys.readouterr().out)
    assert payload[0] == 1 and payload[1]["open"] == 4
    assert {p["table"] for p in payload[1]["problems"]} == {
        "mask_versions", "predictions", "status_events"
    }  # fmt: skip

    ana = AccountStore(store, Account("ana", "rater"))
    ana.save_mask(ids[0], "ana", encode_mask_png(_mask(1)), area_px=1, source="manual")
    ana.save_mask(ids[1], "ana", encode_mask_png(_mask(3)), area_px=3, source="manual")
    store.save_prediction(ids[2], "m", encode_mask_png(_mask(1)), area_px=1)
    ana.set_status(ids[0], "ana", "done", round_id=rnd.id)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.count("(already superseded by") == 4 and "nothing to do" in out


def test_check_of_a_clean_store_says_nothing_wrong(labelled, monkeypatch, capsys):
    """A store written through today's checks passes `sgus check` (exit 0)."""
    from sgus_cli.main import main

    store, _, ids, rnd = labelled
    ana = AccountStore(store, Account("ana", "rater"))
    ana.save_mask(ids[0], "ana", encode_mask_png(_mask(4)), area_px=4, source="manual",
                  round_id=rnd.id)  # fmt: skip
    AccountStore(store, Account("boss", "admin")).set_status(ids[0], "ana", "accepted")
    monkeypatch.setenv("SGUS_DB_URL", store.url)
    assert main(["check"]) == 0
    assert "nothing wrong" in capsys.readouterr().out
    assert check_store(store).ok


def test_restore_keeps_bad_rows_as_they_are_and_check_reports_them(labelled, tmp_path):
    """A backup holding rows written before the checks restores whole (bytes included), and
    `sgus check` on the restored store lists the same problems."""
    store, _, ids, rnd = labelled
    bad = _poison(store, ids, rnd.id)
    backup_store(store, tmp_path / "b.sgus.gz")
    with LabelStore(f"sqlite:///{tmp_path / 'restored.db'}") as fresh:
        restore_store(fresh, tmp_path / "b.sgus.gz")
        assert _rows(fresh) == _rows(store)
        assert fresh.get_mask(bad["mask"]).png == b"x"
        found = {(p.table, p.row_id) for p in check_store(fresh).problems}
        assert found == {(p.table, p.row_id) for p in check_store(store).problems}
        assert len(found) == 4
