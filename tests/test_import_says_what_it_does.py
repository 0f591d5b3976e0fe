"""Import that says what it does: a later CSV updates metadata as an audited change, copies with
disagreeing rows are conflicts (not merged), concurrent imports of one folder store each grade
once, and ``--labels`` imports only the CSV's frames (reporting the others left out)."""

from __future__ import annotations

import csv
import shutil
import threading

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from sgus_core.store import LabelStore
from sgus_core.store import schema as t
from sgus_core.transfer import import_folder


def _folder(tmp_path, n: int = 3, name: str = "study"):
    folder = tmp_path / name
    (folder / "images").mkdir(parents=True)
    for i in range(n):
        pixels = np.full((32, 32), 20 * i + 10, np.uint8)
        pixels[4:12, 4 + i : 14 + i] = 200  # every frame its own bytes
        cv2.imwrite(str(folder / "images" / f"{i}.png"), pixels)
    return folder


def _csv(folder, rows, name: str = "labels.csv"):
    path = folder / name
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "patient", "gland", "side", "devita"])
        writer.writerows(rows)
    return path


def test_a_later_csv_updates_metadata_as_an_audited_change(store, tmp_path):
    """Patient, gland and side given anew by a second import are taken; the audit log holds the
    old values; an empty cell changes nothing; the report counts the updated images."""
    folder = _folder(tmp_path, 2)
    rows = [["images/0.png", "P1", "parotid", "R", "1"], ["images/1.png", "P2", "parotid", "L", ""]]
    import_folder(store, folder, labels_csv=_csv(folder, rows), dataset="s")
    fixed = [["images/0.png", "P9", "submandibular", "L", "1"], ["images/1.png", "", "", "", ""]]
    report = import_folder(store, folder, labels_csv=_csv(folder, fixed), dataset="s")
    assert report.metadata_updated == 1 and report.labels_saved == 0
    first, second = store.list_images(store.require_dataset("s").id)
    assert (first.patient, first.gland, first.side) == ("P9", "submandibular", "L")
    assert (second.patient, second.gland, second.side) == ("P2", "parotid", "L")
    (update,) = [e for e in store.audit_log() if e.action == "update" and e.entity == "image"]
    assert update.entity_id == first.id
    assert update.details["before"] == {"patient": "P1", "gland": "parotid", "side": "R"}
    assert update.details["after"] == {"patient": "P9", "gland": "submandibular", "side": "L"}


def test_copies_with_disagreeing_rows_are_a_conflict_not_merged(store, tmp_path):
    """Two files with identical bytes and different rows: the second is reported as a conflict
    and its grade is not saved onto the first one's image."""
    folder = _folder(tmp_path, 1)
    shutil.copy(folder / "images" / "0.png", folder / "images" / "copy.png")
    rows = [
        ["images/0.png", "P1", "parotid", "R", "1"],
        ["images/copy.png", "P2", "parotid", "R", "3"],
    ]
    report = import_folder(store, folder, labels_csv=_csv(folder, rows), dataset="s")
    assert report.imported == 1 and report.already_present == 1
    ((where, reason),) = report.conflicts
    assert "copy.png" in where and "same bytes as images/0.png" in reason
    assert "patient 'P2' vs 'P1'" in reason and "devita 3 vs 1" in reason
    (image,) = store.list_images(store.require_dataset("s").id)
    assert image.patient == "P1"
    assert [g.devita for g in store.grade_history(image.id)] == [1]


def test_an_agreeing_copy_is_just_already_present(store, tmp_path):
    """A copy whose row agrees with the stored image adds nothing and is no conflict."""
    folder = _folder(tmp_path, 1)
    shutil.copy(folder / "images" / "0.png", folder / "images" / "copy.png")
    rows = [
        ["images/0.png", "P1", "parotid", "R", "1"],
        ["images/copy.png", "P1", "parotid", "R", "1"],
    ]
    report = import_folder(store, folder, labels_csv=_csv(folder, rows), dataset="s")
    assert report.conflicts == [] and report.already_present == 1 and report.labels_saved == 1


def test_concurrent_imports_of_one_folder_store_each_grade_once(store, tmp_path):
    """Four imports of the same folder at once (each with its own connection pool, as four
    processes would) leave one grade row per image."""
    folder = _folder(tmp_path, 4)
    rows = [[f"images/{i}.png", f"P{i}", "parotid", "R", str(i % 4)] for i in range(4)]
    labels = _csv(folder, rows)
    import_folder(store, folder, dataset="s")  # frames first: the race is on the labels
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            with LabelStore(store.url) as own:
                start.wait()
                import_folder(own, folder, labels_csv=labels, dataset="s")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.grades)).scalar_one() == 4


@pytest.mark.parametrize("include_unlisted", [False, True])
def test_labels_import_takes_only_the_csvs_frames(store, tmp_path, include_unlisted):
    """Half a folder's frames in the CSV, other studies' masks beside them: only the CSV's
    frames come in, and the other frames are counted as left out; ``include_unlisted`` takes
    them too (without labels). The masks/ files are masks, never frames: counted apart."""
    folder = _folder(tmp_path, 4)
    (folder / "masks").mkdir()
    for i in range(4):
        mask = np.zeros((32, 32), np.uint8)
        mask[4:12, 4 + i : 14 + i] = 255
        cv2.imwrite(str(folder / "masks" / f"other_{i}.png"), mask)
    rows = [
        ["images/0.png", "P0", "parotid", "R", "1"],
        ["images/1.png", "P1", "parotid", "L", "2"],
    ]
    report = import_folder(
        store, folder, labels_csv=_csv(folder, rows), dataset="s", include_unlisted=include_unlisted
    )
    stored = store.list_images(store.require_dataset("s").id)
    assert report.mask_files == 4
    if include_unlisted:
        assert report.left_out == 0 and len(stored) == 4
    else:
        assert report.left_out == 2 and report.imported == 2
        assert sorted(i.path for i in stored) == ["images/0.png", "images/1.png"]
