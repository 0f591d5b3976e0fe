"""Backup and restore: a portable round trip that refuses to mix with existing labels."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from sgus_core.errors import StoreError
from sgus_core.imaging import encode_mask_png
from sgus_core.store import LabelStore, NewImage
from sgus_core.transfer.backup import backup_store, restore_store


def _mask(area: int) -> bytes:
    """A real mask PNG of the 4 x 4 px frame of ``_fill`` with its first ``area`` pixels set."""
    mask = np.zeros(16, bool)
    mask[:area] = True
    return encode_mask_png(mask.reshape(4, 4))


MASK_1, MASK_2 = _mask(3), _mask(4)


def _fill(store, tmp_path):
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(
        ds.id, NewImage(path="a.png", content_hash="h", width=4, height=4, meta={"k": "ü"})
    )
    v1 = store.save_mask(image_id, "ana", MASK_1, area_px=3, source="manual")
    store.save_mask(image_id, "ana", MASK_2, area_px=4, source="manual", parent_id=v1.id)
    store.save_grade(image_id, "ana", devita=2, omeract=2, hocevar=[1, 2, 3, 1, 0])
    store.create_round("r", ds.id, [image_id], ["ana"], blind=True)
    return image_id


def test_backup_then_restore_gives_the_same_store(store, tmp_path):
    """Every row, bytes and timestamps included, comes back in a fresh store."""
    image_id = _fill(store, tmp_path)
    counts = backup_store(store, tmp_path / "b.sgus.gz")
    with LabelStore(f"sqlite:///{tmp_path / 'restored.db'}") as fresh:
        assert restore_store(fresh, tmp_path / "b.sgus.gz") == counts
        assert fresh.counts() == store.counts()
        assert [m.png for m in fresh.mask_history(image_id)] == [MASK_1, MASK_2]
        assert fresh.mask_history(image_id)[1].parent_id == fresh.mask_history(image_id)[0].id
        assert fresh.latest_grades(image_id)["ana"].hocevar == (1, 2, 3, 1, 0)
        assert fresh.get_image(image_id).meta == {"k": "ü"}
        assert fresh.get_round("r").blind
        assert (
            fresh.grade_history(image_id)[0].created_at
            == store.grade_history(image_id)[0].created_at
        )
        fresh.save_grade(image_id, "ana", devita=3)  # ids continue after the restored ones


def test_restore_refuses_a_store_that_has_labels(store, tmp_path):
    """Restoring over existing data is refused and changes nothing."""
    _fill(store, tmp_path)
    backup_store(store, tmp_path / "b.gz")
    before = store.counts()
    with pytest.raises(StoreError, match="not empty"):
        restore_store(store, tmp_path / "b.gz")
    assert store.counts() == before


def test_restore_refuses_files_that_are_not_backups(sqlite_store, tmp_path):
    """A random file and a truncated backup are reported, and nothing is restored."""
    (tmp_path / "x.gz").write_bytes(b"not a backup")
    with pytest.raises(StoreError, match="not a readable SGUS backup"):
        restore_store(sqlite_store, tmp_path / "x.gz")
    with gzip.open(tmp_path / "y.gz", "wt") as handle:
        handle.write('{"format": "other"}\n')
    with pytest.raises(StoreError, match="not an SGUS backup"):
        restore_store(sqlite_store, tmp_path / "y.gz")
    assert not any(sqlite_store.counts().values())
