"""The labels store: migrations, append-only history, browsing queries."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import inspect

from sgus_core.errors import StoreError
from sgus_core.imaging import encode_mask_png
from sgus_core.store import ImageFilter, LabelStore, NewImage, current_revision, head_revision
from sgus_core.store.schema import metadata


def _image(n: int, **kw) -> NewImage:
    base = dict(path=f"f{n}.png", content_hash=f"hash{n}", width=40, height=30)
    base.update(kw)
    return NewImage(**base)


def _mask(area: int) -> bytes:
    """A real 1-bit mask PNG of an ``_image`` frame (40 x 30 px) whose first ``area`` pixels are
    set."""
    mask = np.zeros(30 * 40, bool)
    mask[:area] = True
    return encode_mask_png(mask.reshape(30, 40))


def test_migration_from_empty_gives_the_schema(tmp_path):
    """Migrating an empty database yields every table of the schema at the head revision."""
    labels = LabelStore(f"sqlite:///{tmp_path / 'fresh.db'}")
    tables = set(inspect(labels.engine).get_table_names())
    assert set(metadata.tables) <= tables
    assert current_revision(labels.engine) == head_revision()
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in inspect(labels.engine).get_columns(name)}
        assert columns == set(table.columns.keys()), name
    labels.close()


def test_sqlite_store_uses_wal(sqlite_store):
    """The default SQLite store runs in write-ahead-log mode."""
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_reopening_does_not_migrate_twice(tmp_path):
    """Opening an existing store keeps its data and revision."""
    url = f"sqlite:///{tmp_path / 'again.db'}"
    with LabelStore(url) as first:
        first.ensure_dataset("d", tmp_path)
    with LabelStore(url) as second:
        assert [d.name for d in second.list_datasets()] == ["d"]


def test_same_content_hash_is_not_added_twice(store, tmp_path):
    """Adding a frame with a known content hash returns the existing image."""
    ds = store.ensure_dataset("d", tmp_path)
    first = store.add_image(ds.id, _image(1))
    again = store.add_image(ds.id, _image(1, path="copy.png"))
    assert first == (first[0], True)
    assert again == (first[0], False)
    assert len(store.list_images(ds.id)) == 1


def test_image_round_trip_keeps_every_field(store, tmp_path):
    """An image's patient, gland, side, spacing, field of view and metadata come back as stored."""
    ds = store.ensure_dataset("d", tmp_path)
    image_id, _ = store.add_image(
        ds.id,
        _image(
            1,
            patient="P1",
            gland="parotid",
            side="R",
            spacing_mm=0.08,
            fov=(10, 20, 30, 5),
            meta={"scanner": "x"},
        ),
    )
    image = store.get_image(image_id)
    assert (image.patient, image.gland, image.side) == ("P1", "parotid", "R")
    assert image.spacing_mm == pytest.approx(0.08)
    assert image.fov == (10, 20, 30, 5)
    assert image.meta == {"scanner": "x"}
    assert image.label == "P1 parotid R"


def test_mask_versions_are_appended_never_overwritten(store, tmp_path):
    """Saving a mask twice keeps both versions, linked by parent."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image(1))
    one, two = _mask(1), _mask(2)
    v1 = store.save_mask(image_id, "ana", one, area_px=1, source="manual")
    v2 = store.save_mask(image_id, "ana", two, area_px=2, source="manual", parent_id=v1.id)
    history = store.mask_history(image_id)
    assert [(m.png, m.parent_id) for m in history] == [(one, None), (two, v1.id)]
    assert store.latest_masks(image_id)["ana"].id == v2.id
    assert store.get_mask(v1.id).png == one


def test_mask_parent_must_belong_to_the_same_image(store, tmp_path):
    """A parent version of another image is refused."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    a, _ = store.add_image(ds.id, _image(1))
    b, _ = store.add_image(ds.id, _image(2))
    v = store.save_mask(a, "ana", _mask(1), area_px=1, source="manual")
    with pytest.raises(StoreError, match="not a version"):
        store.save_mask(b, "ana", _mask(1), area_px=1, source="manual", parent_id=v.id)


def test_grades_keep_history_and_validate(store, tmp_path):
    """Grades are appended; out-of-range grades are refused with a clear message."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image(1))
    store.save_grade(image_id, "ana", devita=1, omeract=1)
    store.save_grade(
        image_id, "ana", devita=2, omeract=2, hocevar=[1, 2, 2, 1, 1], comment="re-read"
    )
    assert [g.devita for g in store.grade_history(image_id)] == [1, 2]
    latest = store.latest_grades(image_id)["ana"]
    assert latest.hocevar == (1, 2, 2, 1, 1)
    assert latest.comment == "re-read"
    with pytest.raises(StoreError, match="0, 1, 2 or 3"):
        store.save_grade(image_id, "ana", devita=4)
    with pytest.raises(StoreError, match="Hocevar needs 5 items, not 4"):
        store.save_grade(image_id, "ana", devita=2, hocevar=[1, 2, 2, 1])
    with pytest.raises(StoreError, match="'Clarity of the gland border' must be 0-2, not 3"):
        store.save_grade(image_id, "ana", devita=2, hocevar=[1, 2, 2, 1, 3])
    with pytest.raises(StoreError, match="Confidence must be 1-5, not 0"):
        store.save_grade(image_id, "ana", devita=2, confidence=0)
    assert len(store.grade_history(image_id)) == 2


def test_every_write_is_audited(store, tmp_path):
    """Each write appends an audit entry naming who did it."""
    ds = store.ensure_dataset("d", tmp_path, actor="admin")
    store.ensure_rater("ana", actor="admin")
    image_id, _ = store.add_image(ds.id, _image(1), actor="importer")
    store.save_grade(image_id, "ana", devita=0)
    store.set_status(image_id, "ana", "flagged", reason="blurred")
    actions = [(e.actor, e.action, e.entity) for e in reversed(store.audit_log())]
    assert actions == [
        ("admin", "create", "dataset"),
        ("admin", "create", "rater"),
        ("importer", "create", "image"),
        ("ana", "save", "grade"),
        ("ana", "set", "status"),
    ]


def test_flagging_needs_a_reason(store, tmp_path):
    """A flag without a reason is refused; unknown statuses too."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image(1))
    with pytest.raises(StoreError, match="why"):
        store.set_status(image_id, "ana", "flagged")
    with pytest.raises(StoreError, match="Unknown status"):
        store.set_status(image_id, "ana", "lost")


def test_predictions_need_a_registered_model(store, tmp_path):
    """Predictions are stored against a registered model and read back newest first."""
    ds = store.ensure_dataset("d", tmp_path)
    image_id, _ = store.add_image(ds.id, _image(1))
    with pytest.raises(StoreError, match="not registered"):
        store.save_prediction(image_id, "unet", _mask(3), area_px=3)
    store.register_model("unet", task="segment", architecture="unet", path="m.keras", card={"a": 1})
    store.save_prediction(
        image_id, "unet", _mask(3), area_px=3, grade=2, grade_probabilities=[0, 0, 1, 0]
    )
    pred = store.latest_prediction(image_id)
    assert (pred.model, pred.area_px, pred.grade) == ("unet", 3, 2)
    assert pred.grade_probabilities == (0, 0, 1, 0)
    with pytest.raises(StoreError, match="already registered"):
        store.register_model("unet", task="segment", architecture="fcn8s", path="x", card={})


def test_browse_filters_by_latest_labels(store, tmp_path):
    """Browse filters use each image's latest grade, status and mask of the chosen rater."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    store.ensure_rater("ben")
    ids = [
        store.add_image(ds.id, _image(i, patient=f"P{i // 4}", gland="parotid", side="LR"[i % 2]))[
            0
        ]
        for i in range(8)
    ]
    store.save_grade(ids[0], "ana", devita=1)
    store.save_grade(ids[0], "ana", devita=3)  # supersedes grade 1
    store.save_grade(ids[1], "ben", devita=1)
    store.save_mask(ids[2], "ana", _mask(1), area_px=1, source="manual")
    store.set_status(ids[3], "ana", "done")
    rows, total = store.browse(ImageFilter(dataset_id=ds.id, grade=3))
    assert total == 1 and rows[0].image.id == ids[0]
    _, total = store.browse(ImageFilter(dataset_id=ds.id, grade=1))
    assert total == 1  # ben's grade 1; ana's was superseded
    _, total = store.browse(ImageFilter(dataset_id=ds.id, grade=1, rater="ana"))
    assert total == 0
    rows, total = store.browse(ImageFilter(dataset_id=ds.id, has_mask=True))
    assert [r.image.id for r in rows] == [ids[2]]
    _, total = store.browse(ImageFilter(dataset_id=ds.id, status="todo", rater="ana"))
    assert total == 7
    rows, total = store.browse(ImageFilter(dataset_id=ds.id, side="R", patient="P1"))
    assert total == 2
    rows, _ = store.browse(ImageFilter(dataset_id=ds.id), sort="added", descending=True, limit=3)
    assert [r.image.id for r in rows] == ids[::-1][:3]


def test_browse_rejects_unknown_sort(store, tmp_path):
    """An unknown sort key is refused with the valid choices."""
    with pytest.raises(StoreError, match="patient"):
        store.browse(ImageFilter(), sort="colour")


def test_unknown_dataset_names_the_existing_ones(store, tmp_path):
    """Asking for a missing dataset lists those that exist."""
    store.ensure_dataset("clinic-a", tmp_path)
    with pytest.raises(StoreError, match="clinic-a"):
        store.require_dataset("clinic-b")


def test_bad_url_gives_a_store_error():
    """An unusable store URL is reported as a StoreError, not a raw driver exception."""
    with pytest.raises(StoreError, match="Cannot open"):
        LabelStore("nosuchdriver://x/y")


# ---------------------------------------------------------------- OMERACT Doppler grades


def _pg_database(admin_url: str):
    """A fresh, empty PostgreSQL database URL and a function that drops it."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"sgus_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def test_doppler_grade_round_trips_and_is_audited(store, tmp_path):
    """A Doppler grade is saved with the others, comes back in history and the latest grades,
    is enough on its own to save, and the audit row names it."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image(1))
    store.save_grade(image_id, "ana", devita=1, omeract=2, doppler=3)
    only = store.save_grade(image_id, "ana", doppler=2)
    assert (only.devita, only.omeract, only.doppler) == (None, None, 2)
    history = store.grade_history(image_id, "ana")
    assert [g.doppler for g in history] == [3, 2]
    assert store.latest_grades_for_dataset(ds.id, "ana")[image_id].doppler == 2
    audit = [e for e in store.audit_log() if e.entity == "grade"]
    assert audit[0].details["doppler"] == 2


def test_doppler_grade_outside_0_3_is_refused(store, tmp_path):
    """A Doppler grade of 4 is refused with a message naming the scale; nothing is written."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image(1))
    with pytest.raises(StoreError, match="OMERACT Doppler grade must be 0, 1, 2 or 3"):
        store.save_grade(image_id, "ana", devita=1, doppler=4)
    with pytest.raises(StoreError, match="OMERACT Doppler"):
        store.save_labels(image_id, "ana", doppler=-1)
    assert store.grade_history(image_id) == []


def test_import_without_doppler_keeps_the_stored_doppler_grade(store, tmp_path):
    """Saving the same de Vita and OMERACT grades again without a Doppler grade (a CSV without
    the column) is nothing new: the newest grade keeps its Doppler grade."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image(1))
    store.save_labels(image_id, "ana", devita=1, omeract=1, doppler=2)
    _, again = store.save_labels(image_id, "ana", devita=1, omeract=1, skip_unchanged=True)
    assert again is None
    _, changed = store.save_labels(
        image_id, "ana", devita=1, omeract=1, doppler=3, skip_unchanged=True
    )
    assert changed is not None and changed.doppler == 3


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_store_at_0005_migrates_to_the_doppler_column(engine, tmp_path):
    """A store written before Doppler grades (revision 0005) migrates on opening: its grades
    are kept, with no Doppler grade, and new grades take one."""
    import os

    from alembic import command
    from sqlalchemy import create_engine, text

    from sgus_core.store.engine import _alembic_config

    if engine == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'old.db'}", lambda: None
    elif os.environ.get("SGUS_TEST_PG_URL"):
        url, drop = _pg_database(os.environ["SGUS_TEST_PG_URL"])
    else:
        pytest.skip("needs the test PostgreSQL (SGUS_TEST_PG_URL)")
    try:
        old = create_engine(url)
        cfg = _alembic_config()
        with old.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005")
            assert "doppler" not in {c["name"] for c in inspect(conn).get_columns("grades")}
            now = "2026-01-01 00:00:00+00:00"
            conn.execute(text("INSERT INTO datasets (id, name, root_path, created_at) "
                              "VALUES (1, 'd', '/x', :t)"), {"t": now})  # fmt: skip
            conn.execute(text("INSERT INTO raters (id, name, created_at) VALUES (1, 'ana', :t)"),
                         {"t": now})  # fmt: skip
            conn.execute(text("INSERT INTO images (id, dataset_id, path, content_hash, frame_index,"
                              " width, height, created_at) VALUES (1, 1, 'a.png', 'h', 0, 40, 30, :t)"),
                         {"t": now})  # fmt: skip
            conn.execute(text("INSERT INTO grades (id, image_id, rater_id, devita, omeract,"
                              " created_at) VALUES (1, 1, 1, 2, 1, :t)"), {"t": now})  # fmt: skip
        old.dispose()
        with LabelStore(url) as labels:
            assert current_revision(labels.engine) == head_revision() == "0006"
            (kept,) = labels.grade_history(1)
            assert (kept.devita, kept.omeract, kept.doppler) == (2, 1, None)
            if engine == "postgres":  # ids inserted by hand: move the sequence past them
                with labels.engine.begin() as conn:
                    conn.execute(text("SELECT setval('grades_id_seq', 10)"))
            assert labels.save_grade(1, "ana", doppler=1).doppler == 1
    finally:
        drop()
