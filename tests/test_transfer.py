"""Import and export: idempotent imports, bad rows skipped with reasons, exact round trips."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from sgus_cli.main import main
from sgus_core import imaging
from sgus_core.synthesis.phantom import write_dataset
from sgus_core.transfer import export_dataset, import_folder, rle_decode


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory):
    """Two phantom patients (8 frames) written with masks and a labels CSV."""
    folder = tmp_path_factory.mktemp("frames")
    write_dataset(folder, 2, 7_000)
    return folder


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_import_stores_frames_masks_and_grades(store, phantom_folder):
    """Every frame, mask and grade of the CSV ends up in the store."""
    report = import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv")
    assert (report.imported, report.skipped, report.already_present) == (8, [], 0)
    ds = store.require_dataset(phantom_folder.name)
    images = store.list_images(ds.id)
    assert {(i.gland, i.side) for i in images} == {
        ("parotid", "L"), ("parotid", "R"), ("submandibular", "L"), ("submandibular", "R")
    }  # fmt: skip
    assert all(i.fov is not None and i.spacing_mm for i in images)
    masks = store.latest_masks_for_dataset(ds.id, "imported")
    grades = store.latest_grades_for_dataset(ds.id, "imported")
    assert len(masks) == len(grades) == 8


def test_import_twice_adds_nothing(store, phantom_folder):
    """Re-importing the same folder finds every frame already present and saves no label."""
    import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv")
    before = store.counts()
    again = import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv")
    assert (again.imported, again.already_present, again.labels_saved) == (0, 8, 0)
    assert store.counts()["mask_versions"] == before["mask_versions"]


def test_bad_rows_are_skipped_with_reasons_and_good_rows_imported(store, tmp_path, phantom_folder):
    """Invalid grades, sides, escaping paths, missing files and wrong-size masks are each reported."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    rows = _rows(phantom_folder / "labels.csv")
    for row in rows:
        for key in ("image", "mask"):
            target = folder / row[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((phantom_folder / row[key]).read_bytes())
    cv2.imwrite(str(folder / "masks" / "small.png"), np.zeros((5, 5), np.uint8))
    rows[0]["devita"] = "5"
    rows[1]["side"] = "middle"
    rows[2]["image"] = "../outside.png"
    rows[3]["image"] = "images/missing.png"
    rows[4]["mask"] = "masks/small.png"
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) + ["centre"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "centre": "Nis"})
    report = import_folder(store, folder, labels_csv=folder / "labels.csv")
    reasons = " | ".join(reason for _, reason in report.skipped)
    assert "not a grade" in reasons
    assert "side 'middle'" in reasons
    assert "outside the import folder" in reasons
    assert "does not exist" in reasons
    assert "5 x 5" in reasons or "(5, 5)" in reasons or "5x5" in reasons
    ds = store.require_dataset("mixed")
    assert len(store.latest_grades_for_dataset(ds.id, "imported")) == 3  # rows 5-7 plus none else
    assert any(i.meta.get("csv", {}).get("centre") == "Nis" for i in store.list_images(ds.id))


def test_masks_export_then_import_reproduces_every_pixel_and_grade(store, phantom_folder, tmp_path):
    """Exporting masks and importing the export gives identical masks and grades."""
    import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv", dataset="a")
    out = tmp_path / "export"
    export_dataset(store, "a", out, fmt="masks")
    # The exported CSV names its rater, which wins over --rater (docs/CLI.md).
    report = import_folder(store, out, labels_csv=out / "labels.csv", dataset="b", rater="other")
    assert report.imported == 8 and report.skipped == []
    # exporting the imported export again keeps the frames' paths (no images/images/...)
    export_dataset(store, "b", tmp_path / "again", fmt="masks")
    assert sorted(r["image"] for r in _rows(tmp_path / "again" / "labels.csv")) == sorted(
        r["image"] for r in _rows(out / "labels.csv")
    )
    a, b = store.require_dataset("a"), store.require_dataset("b")
    by_hash = {i.content_hash: i.id for i in store.list_images(b.id)}
    masks_a = store.latest_masks_for_dataset(a.id, "imported")
    masks_b = store.latest_masks_for_dataset(b.id, "imported")
    grades_a = store.latest_grades_for_dataset(a.id, "imported")
    grades_b = store.latest_grades_for_dataset(b.id, "imported")
    for image in store.list_images(a.id):
        other = by_hash[image.content_hash]
        assert np.array_equal(
            imaging.decode_mask_png(masks_a[image.id].png),
            imaging.decode_mask_png(masks_b[other].png),
        )
        assert (grades_a[image.id].devita, grades_a[image.id].omeract) == (
            grades_b[other].devita,
            grades_b[other].omeract,
        )


def test_hocevar_items_confidence_and_comment_survive_export_and_import(
    store, phantom_folder, tmp_path
):
    """A rater's Hocevar items, confidence and comment (with a comma, quotes and a line break)
    come back from an exported CSV; importing it twice saves them once."""
    import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv", dataset="a")
    a = store.require_dataset("a")
    first = store.list_images(a.id)[0]
    comment = 'border unclear, "lobulated"\nre-read next week'
    store.save_grade(
        first.id, "imported", devita=2, omeract=1, hocevar=[1, 2, 3, 0, 2], comment=comment,
        confidence=4,
    )  # fmt: skip
    out = tmp_path / "export"
    export_dataset(store, "a", out, fmt="masks")
    row = next(r for r in _rows(out / "labels.csv") if r["hocevar"])
    assert (row["hocevar"], row["confidence"], row["comment"]) == ("1;2;3;0;2", "4", comment)
    import_folder(store, out, labels_csv=out / "labels.csv", dataset="b")
    again = import_folder(store, out, labels_csv=out / "labels.csv", dataset="b")
    assert again.labels_saved == 0
    b = store.require_dataset("b")
    twin = next(i for i in store.list_images(b.id) if i.content_hash == first.content_hash)
    history = store.grade_history(twin.id, "imported")
    assert len(history) == 1
    got = history[0]
    assert (got.devita, got.omeract, got.hocevar, got.confidence, got.comment) == (
        2, 1, (1, 2, 3, 0, 2), 4, comment
    )  # fmt: skip
    assert "hocevar" not in twin.meta.get("csv", {})  # read as labels, not kept as metadata
    coco = json.loads(export_dataset(store, "a", tmp_path / "coco", fmt="coco").read_text())
    shown = next(i for i in coco["images"] if i["id"] == first.id)
    assert (shown["hocevar"], shown["confidence"], shown["comment"]) == (
        [1, 2, 3, 0, 2],
        4,
        comment,
    )


def test_a_csv_without_the_optional_columns_keeps_what_they_held(store, phantom_folder, tmp_path):
    """A re-import that changes a de Vita grade, from a CSV without the Doppler, Hocevar and
    comment columns, keeps the Doppler grade, the items and the comment saved before (its new
    row would otherwise have dropped them from the rater's latest grade); the confidence, given
    for the old grades, is not carried over."""
    import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv", dataset="c")
    ds = store.require_dataset("c")
    first = store.list_images(ds.id)[0]
    before = store.latest_grades_for_dataset(ds.id, "imported")[first.id]
    store.save_grade(
        first.id, "imported", devita=before.devita, omeract=before.omeract, doppler=2,
        hocevar=[1, 1, 1, 1, 1], comment="seen twice", confidence=3,
    )  # fmt: skip
    rows = _rows(phantom_folder / "labels.csv")
    changed = (before.devita + 1) % 4
    for row in rows:
        if (phantom_folder / row["image"]).read_bytes() == store.image_path(first).read_bytes():
            row["devita"] = str(changed)
    csv_path = tmp_path / "again.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[c for c in rows[0] if c != "doppler"])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != "doppler"} for row in rows)
    report = import_folder(store, phantom_folder, labels_csv=csv_path, dataset="c")
    assert report.labels_saved == 1
    latest = store.latest_grades_for_dataset(ds.id, "imported")[first.id]
    assert (latest.devita, latest.doppler, latest.hocevar, latest.comment, latest.confidence) == (
        changed, 2, (1, 1, 1, 1, 1), "seen twice", None
    )  # fmt: skip


def test_masks_in_a_masks_folder_are_never_imported_as_frames(
    store, phantom_folder, tmp_path, monkeypatch, capsys
):
    """Without a CSV the folder's masks/ files are left out and counted, not imported as eight
    more 'frames'."""
    report = import_folder(store, phantom_folder, dataset="no-csv")
    assert (report.imported, report.mask_files) == (8, 8)
    assert not any("masks" in i.path for i in store.list_images(store.require_dataset("no-csv").id))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["import", str(phantom_folder), "--dataset", "no-csv"]) == 0
    out = capsys.readouterr().out
    assert "imported 8," in out and "left out 8 files in masks/ folders: masks, not frames" in out


def test_bad_hocevar_items_and_confidence_are_skipped_with_reasons(store, phantom_folder, tmp_path):
    """Hocevar cells with the wrong count or an item out of its range, and a confidence outside
    1-5, skip their row with a reason that names the problem."""
    folder = tmp_path / "details"
    rows = _rows(phantom_folder / "labels.csv")[:4]
    for row in rows:
        for key in ("image", "mask"):
            target = folder / row[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((phantom_folder / row[key]).read_bytes())
    cells = [("1;2", ""), ("2;2;2;2;2", ""), ("", "7"), ("1 3 3 3 2", "5")]
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "hocevar", "confidence"])
        writer.writeheader()
        for row, (hocevar, confidence) in zip(rows, cells, strict=True):
            writer.writerow({**row, "hocevar": hocevar, "confidence": confidence})
    report = import_folder(store, folder, labels_csv=folder / "labels.csv")
    reasons = [reason for _, reason in report.skipped]
    assert len(reasons) == 3
    assert "has 2 items; give 5" in reasons[0]
    assert "'Parenchymal echogenicity' is 2, not 0-1" in reasons[1]
    assert "confidence '7' is not 1-5" in reasons[2]
    ds = store.require_dataset("details")
    (kept,) = store.latest_grades_for_dataset(ds.id, "imported").values()
    assert (kept.hocevar, kept.confidence) == ((1, 3, 3, 3, 2), 5)


def test_masks_export_matches_the_original_mask_files(store, phantom_folder, tmp_path):
    """Exported 0/255 mask files equal the mask files that were imported."""
    import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv", dataset="a")
    out = tmp_path / "export"
    export_dataset(store, "a", out, fmt="masks")
    for row in _rows(out / "labels.csv"):
        exported = cv2.imread(str(out / row["mask"]), cv2.IMREAD_UNCHANGED)
        original = cv2.imread(
            str(phantom_folder / "masks" / (out / row["mask"]).name), cv2.IMREAD_UNCHANGED
        )
        assert set(np.unique(exported)) <= {0, 255}
        assert np.array_equal(exported > 0, original > 0)


def test_coco_export_holds_exact_masks_and_grades(store, phantom_folder, tmp_path):
    """The COCO export's RLE decodes to the stored mask and carries the grades."""
    import_folder(store, phantom_folder, labels_csv=phantom_folder / "labels.csv", dataset="a")
    path = export_dataset(store, "a", tmp_path / "coco", fmt="coco")
    coco = json.loads(path.read_text())
    ds = store.require_dataset("a")
    masks = store.latest_masks_for_dataset(ds.id, "imported")
    grades = store.latest_grades_for_dataset(ds.id, "imported")
    assert len(coco["annotations"]) == 8
    for ann in coco["annotations"]:
        stored = imaging.decode_mask_png(masks[ann["image_id"]].png)
        assert np.array_equal(rle_decode(ann["segmentation"]), stored)
        assert ann["area"] == int(stored.sum())
    for image in coco["images"]:
        assert image["devita"] == grades[image["id"]].devita


def test_cli_import_and_export_print_the_contract_lines(
    tmp_path, phantom_folder, monkeypatch, capsys
):
    """`sgus import` prints the counts line and `sgus export` writes the masks folder."""
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert (
        main(
            [
                "import",
                str(phantom_folder),
                "--labels",
                str(phantom_folder / "labels.csv"),
                "--dataset",
                "c",
            ]
        )
        == 0
    )
    assert "imported 8, skipped 0, already present 0" in capsys.readouterr().out
    assert (
        main(["export", "--dataset", "c", "--out", str(tmp_path / "o"), "--format", "masks"]) == 0
    )
    assert len(list((tmp_path / "o" / "masks").glob("*.png"))) == 8
    assert main(["export", "--dataset", "nope", "--out", str(tmp_path / "o")]) == 1
    assert "No dataset named 'nope'" in capsys.readouterr().err
