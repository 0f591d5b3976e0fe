"""Exporting a dataset's labels (``sgus export``): csv, masks (a folder ``sgus import`` takes back
pixel for pixel and grade for grade) and COCO with exact masks."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sgus_core import imaging
from sgus_core.errors import StoreError
from sgus_core.imaging.privacy import BLANK_KEY, blank_by_default, frame_for_display
from sgus_core.store import Dataset, Grade, ImageRecord, LabelStore, MaskVersion
from sgus_core.transfer.importing import KNOWN_COLUMNS, Progress

EXPORT_FORMATS = ("csv", "masks", "coco")


def _export_name(image: ImageRecord, used: set[str]) -> str:
    """A unique file stem per image: the file's stem, plus the frame and id when needed."""
    stem = Path(image.path).stem
    if image.frame_index:
        stem = f"{stem}_f{image.frame_index:03d}"
    if stem in used:
        stem = f"{stem}_{image.id}"
    used.add(stem)
    return stem


def default_rater(store: LabelStore, dataset_id: int, rater: str | None) -> str:
    """``rater`` if given (must exist), else the only rater with labels in the dataset.

    Raises:
        StoreError: unknown rater, no labels, or several raters to choose from.
    """
    if rater is not None:
        if store.get_rater(rater) is None:
            raise StoreError(f"No rater named {rater!r}.")
        return rater
    with_labels = [
        r.name
        for r in store.list_raters()
        if store.latest_grades_for_dataset(dataset_id, r.name)
        or store.latest_masks_for_dataset(dataset_id, r.name)
    ]
    if len(with_labels) == 1:
        return with_labels[0]
    if not with_labels:
        raise StoreError("The dataset has no labels yet: nothing to export.")
    raise StoreError(
        f"Several raters have labels ({', '.join(with_labels)}); choose one with --rater."
    )


def export_zip(
    store: LabelStore, dataset: str, *, fmt: str = "masks", rater: str | None = None
) -> bytes:
    """:func:`export_dataset` as one ZIP file in memory (what the app offers for download).

    Raises:
        StoreError: as :func:`export_dataset`.
    """
    import io
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory(prefix="sgus-export-") as tmp:
        root = Path(tmp) / dataset
        export_dataset(store, dataset, root, fmt=fmt, rater=rater)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(root.parent).as_posix())
    return buffer.getvalue()


def export_dataset(
    store: LabelStore,
    dataset: str,
    out_dir: Path,
    *,
    fmt: str = "masks",
    rater: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write a dataset's latest labels of one rater to ``out_dir``; returns the main file written.

    Formats: ``masks`` (``images/``, ``masks/<stem>.png`` 0/255 and ``labels.csv`` in the import
    columns: re-importable as it is), ``csv`` (``labels.csv`` only, with mask areas), ``coco``
    (``annotations.json`` with exact uncompressed RLE masks and the grades as image attributes).

    Raises:
        StoreError: unknown dataset, rater or format.
    """
    if fmt not in EXPORT_FORMATS:
        raise StoreError(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    ds = store.require_dataset(dataset)
    rater = default_rater(store, ds.id, rater)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = store.list_images(ds.id)
    masks = store.latest_masks_for_dataset(ds.id, rater)
    grades = store.latest_grades_for_dataset(ds.id, rater)
    if fmt == "coco":
        return _export_coco(store, ds, images, masks, grades, rater, out_dir, progress)
    used: set[str] = set()
    paths = {image.path for image in images}
    rows = []
    for done, image in enumerate(images, start=1):
        stem = _export_name(image, used)
        row = {
            "image": image.path,
            "mask": "",
            "patient": image.patient or "",
            "gland": image.gland or "",
            "side": image.side or "",
            "devita": "",
            "omeract": "",
            "doppler": "",
            "rater": "",  # named only on rows with her labels
            "spacing_mm": "" if image.spacing_mm is None else repr(image.spacing_mm),
        }
        grade = grades.get(image.id)
        if grade is not None:
            row["devita"] = "" if grade.devita is None else str(grade.devita)
            row["omeract"] = "" if grade.omeract is None else str(grade.omeract)
            row["doppler"] = "" if grade.doppler is None else str(grade.doppler)
        version = masks.get(image.id)
        if grade is not None or version is not None:
            row["rater"] = rater
        if fmt == "csv":
            row["mask_area_px"] = "" if version is None else str(version.area_px)
            row["mask_version"] = "" if version is None else str(version.id)
        else:
            relative = _export_image(store, image, stem, out_dir, paths)
            if version is not None:
                mask = imaging.decode_mask_png(version.png)
                mask_path = out_dir / "masks" / f"{stem}.png"
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(mask_path), mask.astype(np.uint8) * 255):
                    raise StoreError(f"Cannot write {mask_path}.")
                row["mask"] = f"masks/{stem}.png"
            row["image"] = relative
        row.update(_grade_details(grade))
        row.update(image.meta.get("csv", {}))
        rows.append(row)
        if progress:
            progress(done, len(images))
    csv_path = out_dir / "labels.csv"
    columns = list(dict.fromkeys(k for row in rows for k in row)) or list(KNOWN_COLUMNS)
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return csv_path


_IMAGES = "images/"  # the export's frame folder


def _grade_details(grade: Grade | None) -> dict[str, str]:
    """The CSV's last label columns: Hocevar items (``;``-separated), confidence and comment
    (the import reads them back)."""
    if grade is None:
        return {"hocevar": "", "confidence": "", "comment": ""}
    return {
        "hocevar": ";".join(str(item) for item in grade.hocevar or ()),
        "confidence": "" if grade.confidence is None else str(grade.confidence),
        "comment": grade.comment or "",
    }


def _export_image(
    store: LabelStore, image: ImageRecord, stem: str, out_dir: Path, paths: set[str]
) -> str:
    """Put the frame under ``out_dir/images``; returns its path relative to ``out_dir``.

    A plain single-frame file is copied byte for byte (so a re-import recognises it by its hash),
    at its path in the dataset, less a leading ``images/`` that an earlier export gave it unless
    another of the dataset's ``paths`` is that shorter path (so exporting an imported export
    does not nest ``images/images/``); DICOM, multi-frame and blanked frames are written as PNG
    pixels only, so no personal DICOM tag or burned-in text leaves the store.
    """
    source = store.image_path(image)
    plain = not image.meta.get(BLANK_KEY) and not blank_by_default(image.meta)
    if plain and image.frame_index == 0 and image.meta.get("frames", 1) == 1:
        inner = image.path
        if inner.startswith(_IMAGES) and inner[len(_IMAGES) :] not in paths:
            inner = inner[len(_IMAGES) :]
        target = out_dir / _IMAGES / inner
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return f"{_IMAGES}{inner}"
    frame = imaging.read_frames(source)[image.frame_index]
    target = out_dir / _IMAGES / f"{stem}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), frame_for_display(frame.pixels, image.meta, image.fov)):
        raise StoreError(f"Cannot write {target}.")
    return f"{_IMAGES}{stem}.png"


def _rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE (column-major run lengths starting with a background run)."""
    flat = mask.astype(np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of the COCO uncompressed RLE written by the ``coco`` export (bool (H, W))."""
    height, width = rle["size"]
    values = np.zeros(len(rle["counts"]), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, rle["counts"])
    return flat.reshape((width, height)).T


def _export_coco(
    store: LabelStore,
    ds: Dataset,
    images: list[ImageRecord],
    masks: dict[int, MaskVersion],
    grades: dict[int, Grade],
    rater: str,
    out_dir: Path,
    progress: Progress | None,
) -> Path:
    coco: dict[str, Any] = {
        "info": {"description": f"SGUS Studio export of {ds.name}", "rater": rater},
        "categories": [{"id": 1, "name": "gland", "supercategory": "salivary gland"}],
        "images": [],
        "annotations": [],
    }
    for done, image in enumerate(images, start=1):
        grade = grades.get(image.id)
        coco["images"].append(
            {
                "id": image.id,
                "file_name": image.path,
                "frame_index": image.frame_index,
                "width": image.width,
                "height": image.height,
                "patient": image.patient,
                "gland": image.gland,
                "side": image.side,
                "spacing_mm": image.spacing_mm,
                "devita": grade.devita if grade else None,
                "omeract": grade.omeract if grade else None,
                "doppler": grade.doppler if grade else None,
                "hocevar": list(grade.hocevar) if grade and grade.hocevar else None,
                "confidence": grade.confidence if grade else None,
                "comment": grade.comment if grade else None,
            }
        )
        version = masks.get(image.id)
        if version is not None:
            mask = imaging.decode_mask_png(version.png)
            ys, xs = np.nonzero(mask)
            bbox = (
                [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
                if xs.size
                else [0, 0, 0, 0]
            )
            coco["annotations"].append(
                {
                    "id": version.id,
                    "image_id": image.id,
                    "category_id": 1,
                    "iscrowd": 1,  # COCO marks RLE segmentations as crowd regions
                    "segmentation": _rle(mask),
                    "area": int(mask.sum()),
                    "bbox": bbox,
                }
            )
        if progress:
            progress(done, len(images))
    path = out_dir / "annotations.json"
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path
