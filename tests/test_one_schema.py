"""One schema, both engines: text too long for its column or holding a NUL character is refused
alike on SQLite and PostgreSQL (with a message, before it reaches the engine); an import skips
such rows and keeps the good ones; backups from either engine restore into either, including a
SQLite backup written before the rules held."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from sqlalchemy import create_engine, text

from sgus_core.errors import StoreError
from sgus_core.store import LabelStore, NewImage
from sgus_core.transfer import import_folder
from sgus_core.transfer.backup import backup_store, restore_store

LONG = "P" * 300
AT_LIMIT = "Ü" * 200


def _image(path: str, patient: str | None = "P1") -> NewImage:
    return NewImage(path=path, content_hash=f"h-{path}", width=32, height=32, patient=patient)


def test_too_long_or_nul_text_is_refused_with_a_message(store, tmp_path):
    """A 300-character patient id, a NUL in a patient id or a comment, a 201-character round
    name: each refused with a StoreError naming the field; nothing is written."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(ds.id, _image("ok.png", AT_LIMIT))
    before = store.counts()
    with pytest.raises(StoreError, match="patient id has 300 characters"):
        store.add_image(ds.id, _image("long.png", LONG))
    with pytest.raises(StoreError, match="patient id contains a NUL"):
        store.add_image(ds.id, _image("nul.png", "P\x001"))
    with pytest.raises(StoreError, match="comment contains a NUL"):
        store.save_grade(image_id, "ana", devita=1, comment="fine\x00")
    with pytest.raises(StoreError, match="round name has 201"):
        store.create_round("r" * 201, ds.id, [image_id], ["ana"])
    assert store.counts() == before
    assert store.get_image(image_id).patient == AT_LIMIT


def _frames(folder, n: int) -> None:
    (folder / "images").mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / "images" / f"{i}.png"), np.full((32, 32), 10 * i + 5, np.uint8))


def test_import_skips_the_bad_rows_and_keeps_the_good_ones(store, tmp_path):
    """An import whose CSV has a 300-character patient and a NUL byte in another row stores the
    good rows and reports the two others with their reasons (no traceback, on both engines)."""
    folder = tmp_path / "study"
    _frames(folder, 3)
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "patient", "devita"])
        writer.writerow(["images/0.png", LONG, "1"])
        writer.writerow(["images/1.png", "P\x002", "2"])
        writer.writerow(["images/2.png", "P3", "3"])
    report = import_folder(store, folder, labels_csv=folder / "labels.csv", dataset="s")
    assert report.imported == 1 and report.labels_saved == 1
    reasons = " ".join(reason for _, reason in report.skipped)
    assert "300 characters" in reasons and "NUL" in reasons
    (image,) = store.list_images(store.require_dataset("s").id)
    assert image.patient == "P3"


def _legacy_sqlite_backup(tmp_path) -> tuple[str, int]:
    """A SQLite backup holding what SQLite once took: a 300-character patient id and a comment
    with a NUL byte (written past the column checks, as older releases did)."""
    with LabelStore(f"sqlite:///{tmp_path / 'legacy.db'}") as old:
        ds = old.ensure_dataset("d", tmp_path)
        old.ensure_rater("ana")
        image_id, _ = old.add_image(ds.id, _image("a.png"))
        grade = old.save_grade(image_id, "ana", devita=2, comment="ok")
        with old.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE images SET patient = ? WHERE id = ?", (LONG, image_id))
            conn.exec_driver_sql("UPDATE grades SET comment = ? WHERE id = ?", ("a\x00b", grade.id))
        backup_store(old, tmp_path / "legacy.sgus.gz")
    return str(tmp_path / "legacy.sgus.gz"), image_id


def test_a_legacy_sqlite_backup_restores_into_either_engine(store, tmp_path):
    """The values are made to fit (cut to 200 characters with an ellipsis; NUL -> U+FFFD) and
    each change is an audit entry holding the original value."""
    backup, image_id = _legacy_sqlite_backup(tmp_path)
    restore_store(store, backup)
    patient = store.get_image(image_id).patient
    assert len(patient) == 200 and patient.endswith("\u2026")
    assert store.latest_grades(image_id)["ana"].comment == "a\ufffdb"
    fits = [e for e in store.audit_log(limit=50) if e.action == "fit"]
    originals = {e.details["column"]: e.details["original"] for e in fits}
    assert originals == {"patient": LONG, "comment": "a\x00b"}


@contextmanager
def _postgres_store() -> Iterator[LabelStore]:
    admin_url = os.environ["SGUS_TEST_PG_URL"]
    name = f"sgus_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with LabelStore(admin_url.rsplit("/", 1)[0] + f"/{name}") as labels:
            yield labels
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


@contextmanager
def _sqlite_store(tmp_path) -> Iterator[LabelStore]:
    with LabelStore(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}") as labels:
        yield labels


@pytest.mark.skipif(not os.environ.get("SGUS_TEST_PG_URL"), reason="needs the test PostgreSQL")
@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_backups_cross_engines_both_ways(tmp_path, direction):
    """A store holding values at the limits (200 non-ASCII characters, a comment with tabs and
    emoji) backed up on one engine restores row for row into the other."""
    source, target = direction.split("->")
    opener = {"sqlite": lambda: _sqlite_store(tmp_path), "postgres": _postgres_store}
    with opener[source]() as first:
        ds = first.ensure_dataset("d", tmp_path)
        first.ensure_rater("ana")
        image_id, _ = first.add_image(ds.id, _image("a.png", AT_LIMIT))
        first.save_grade(image_id, "ana", devita=3, comment="tab\there 🩺")
        counts = backup_store(first, tmp_path / "x.sgus.gz")
    with opener[target]() as second:
        assert restore_store(second, tmp_path / "x.sgus.gz") == counts
        assert second.get_image(image_id).patient == AT_LIMIT
        assert second.latest_grades(image_id)["ana"].comment == "tab\there 🩺"
        assert not [e for e in second.audit_log() if e.action == "fit"]
