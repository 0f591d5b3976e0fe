"""Importing frames and labels (``sgus import``): idempotent by content hash, and a bad CSV row
never stops the good ones: it is skipped with its reason."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgus_core import imaging
from sgus_core.errors import ImportRowError, SgusError
from sgus_core.imaging.privacy import BLANK_KEY, blank_by_default
from sgus_core.settings import DEFAULT_MAX_PIXELS
from sgus_core.store import ImageRecord, LabelStore, NewImage
from sgus_core.store.validation import same_mask
from sgus_core.vocabulary import CONFIDENCES, GLANDS, HOCEVAR_ITEM_RANGES, SIDES

KNOWN_COLUMNS = (
    "image",
    "mask",
    "patient",
    "gland",
    "side",
    "devita",
    "omeract",
    "doppler",
    "rater",
    "spacing_mm",
    "hocevar",
    "confidence",
    "comment",
)
DEFAULT_IMPORT_RATER = "imported"
_GLAND_ALIASES = {
    "parotid": "parotid",
    "pg": "parotid",
    "submandibular": "submandibular",
    "smg": "submandibular",
}
_SIDE_ALIASES = {"l": "L", "left": "L", "r": "R", "right": "R"}

Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    """What an import did: counts plus every skipped item with its reason."""

    dataset: str
    imported: int = 0
    already_present: int = 0
    labels_saved: int = 0
    metadata_updated: int = 0
    left_out: int = 0
    """Image files under the folder that the labels CSV does not name (not imported)."""
    mask_files: int = 0
    """Image files in a ``masks`` folder that no CSV row names as a frame: masks (as
    ``sgus export`` and ``sgus phantoms`` write them), never imported as frames."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    """Files with the same bytes as an image already stored but a CSV row that disagrees with
    it: reported, never merged."""

    def summary(self) -> str:
        """The one-line summary the CLI prints (``imported N, skipped M, already present K``)."""
        return (
            f"imported {self.imported}, skipped {len(self.skipped)}, "
            f"already present {self.already_present}"
        )


@dataclass(frozen=True)
class _LabelRow:
    """A validated CSV row."""

    line: int
    image: Path
    mask: Path | None
    patient: str | None
    gland: str | None
    side: str | None
    devita: int | None
    omeract: int | None
    rater: str
    spacing_mm: float | None
    meta: dict[str, str]
    doppler: int | None = None
    """OMERACT Doppler grade (the optional ``doppler`` column; older CSVs have none)."""
    hocevar: tuple[int, ...] | None = None
    confidence: int | None = None
    comment: str | None = None

    @property
    def has_grades(self) -> bool:
        """Whether the row gives a grade, Hocevar items or a comment (something to save)."""
        given = (self.devita, self.omeract, self.doppler, self.hocevar, self.comment)
        return any(value is not None for value in given)


def _inside(root: Path, relative: str, what: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse absolute paths and paths that escape it."""
    if not relative:
        raise ImportRowError(f"the {what} column is empty")
    if "\x00" in relative:
        raise ImportRowError(f"{what} path {relative!r} contains a NUL character")
    if Path(relative).is_absolute():
        raise ImportRowError(
            f"{what} path {relative!r} is absolute; give it relative to the folder"
        )
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        raise ImportRowError(f"{what} path {relative!r} points outside the import folder")
    if not resolved.is_file():
        raise ImportRowError(f"{what} file {relative!r} does not exist")
    return resolved


def _grade(value: str, name: str) -> int | None:
    value = value.strip()
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ImportRowError(f"{name} {value!r} is not a grade (0, 1, 2 or 3)") from None
    if number not in (0, 1, 2, 3):
        raise ImportRowError(f"{name} {value!r} is not a grade (0, 1, 2 or 3)")
    return int(number)


def _whole(value: str, name: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ImportRowError(f"{name} {value!r} is not a whole number") from None
    if not number.is_integer():
        raise ImportRowError(f"{name} {value!r} is not a whole number")
    return int(number)


def _hocevar(value: str) -> tuple[int, ...] | None:
    """The ``hocevar`` cell: the five item scores separated by ``;`` (as the export writes
    them), commas or spaces."""
    parts = [p for p in value.replace(",", ";").replace(" ", ";").split(";") if p]
    if not parts:
        return None
    if len(parts) != len(HOCEVAR_ITEM_RANGES):
        raise ImportRowError(
            f"hocevar {value!r} has {len(parts)} items; give {len(HOCEVAR_ITEM_RANGES)} "
            "separated by ';'"
        )
    items = tuple(_whole(part, "hocevar item") for part in parts)
    for (name, low, high), item in zip(HOCEVAR_ITEM_RANGES, items, strict=True):
        if not low <= item <= high:
            raise ImportRowError(f"hocevar item {name!r} is {item}, not {low}-{high}")
    return items


def _confidence(value: str) -> int | None:
    if not value:
        return None
    number = _whole(value, "confidence")
    if number not in CONFIDENCES:
        raise ImportRowError(f"confidence {value!r} is not 1-5")
    return number


def _parse_row(root: Path, line: int, row: dict[str | None, Any], default_rater: str) -> _LabelRow:
    if None in row:  # csv.DictReader puts surplus cells under the key None
        raise ImportRowError(f"{len(row[None])} more cells than the header has columns")
    cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
    image = _inside(root, cells.get("image", ""), "image")
    mask = _inside(root, cells["mask"], "mask") if cells.get("mask") else None
    gland = cells.get("gland", "").lower() or None
    if gland is not None:
        if gland not in _GLAND_ALIASES:
            raise ImportRowError(f"gland {cells['gland']!r} is not one of {', '.join(GLANDS)}")
        gland = _GLAND_ALIASES[gland]
    side = cells.get("side", "").lower() or None
    if side is not None:
        if side not in _SIDE_ALIASES:
            raise ImportRowError(f"side {cells['side']!r} is not one of {', '.join(SIDES)}")
        side = _SIDE_ALIASES[side]
    spacing = None
    if cells.get("spacing_mm"):
        try:
            spacing = float(cells["spacing_mm"])
        except ValueError:
            raise ImportRowError(f"spacing_mm {cells['spacing_mm']!r} is not a number") from None
        if not (0 < spacing < 10):
            raise ImportRowError(f"spacing_mm {spacing} is outside 0-10 mm per pixel")
    return _LabelRow(
        line=line,
        image=image,
        mask=mask,
        patient=cells.get("patient") or None,
        gland=gland,
        side=side,
        devita=_grade(cells.get("devita", ""), "devita"),
        omeract=_grade(cells.get("omeract", ""), "omeract"),
        rater=cells.get("rater") or default_rater,
        spacing_mm=spacing,
        meta={k: v for k, v in cells.items() if k not in KNOWN_COLUMNS and v},
        doppler=_grade(cells.get("doppler", ""), "doppler"),
        hocevar=_hocevar(cells.get("hocevar", "")),
        confidence=_confidence(cells.get("confidence", "")),
        comment=cells.get("comment") or None,
    )


def read_labels_csv(
    root: Path, csv_path: Path, default_rater: str
) -> tuple[dict[Path, _LabelRow], list[tuple[str, str]]]:
    """Validate a labels CSV; returns the good rows by image path and the bad ones with reasons.

    Raises:
        ImportRowError: the file cannot be read at all or has no ``image`` column.
    """
    try:
        handle = csv_path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ImportRowError(f"Cannot read the labels CSV {csv_path}: {exc.strerror}") from exc
    good: dict[Path, _LabelRow] = {}
    bad: list[tuple[str, str]] = []
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if "image" not in header:
                raise ImportRowError(f"{csv_path.name} has no 'image' column (header: {header})")
            for row in reader:
                line = reader.line_num
                try:
                    parsed = _parse_row(root, line, row, default_rater)
                except ImportRowError as exc:
                    bad.append((f"{csv_path.name} line {line}", str(exc)))
                    continue
                if parsed.image in good:
                    bad.append(
                        (f"{csv_path.name} line {line}", "image listed twice; first row kept")
                    )
                    continue
                good[parsed.image] = parsed
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportRowError(f"{csv_path.name} is not a readable CSV: {exc}") from exc
    return good, bad


MASKS_FOLDER = "masks"


def _in_masks_folder(relative: Path) -> bool:
    return any(part.lower() == MASKS_FOLDER for part in relative.parts[:-1])


def import_folder(
    store: LabelStore,
    folder: Path,
    *,
    labels_csv: Path | None = None,
    dataset: str | None = None,
    rater: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    blank_outside_fov: bool | None = None,
    include_unlisted: bool = False,
    actor: str = "import",
    progress: Progress | None = None,
) -> ImportReport:
    """Add the frames under ``folder`` (and the labels of ``labels_csv``) to a dataset.

    Without a CSV every frame under the folder is imported; with one, only the frames it names
    (the other image files are counted in ``left_out``), unless ``include_unlisted``. Files in
    a ``masks`` folder are masks, not frames, unless a CSV row names one as its image (counted
    in ``mask_files``).

    Labels of an image already present are saved again only when they differ from that rater's
    latest ones (atomically, so concurrent imports of one folder save them once), and so is its
    metadata (patient, gland, side, spacing: updated in place, the old values kept in the audit
    log); importing the same folder twice changes nothing. A file with the same bytes as an
    image stored under another path, whose CSV row disagrees with that image's labels or
    metadata, is a conflict: reported, not merged. ``blank_outside_fov`` blanks burned-in text
    outside the field of view (default: for DICOM frames only; see ``privacy``).

    Raises:
        SgusError: the folder does not exist or the CSV cannot be read at all.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise SgusError(f"{folder} is not a folder.")
    report = ImportReport(dataset=dataset or folder.name)
    rows: dict[Path, _LabelRow] = {}
    if labels_csv is not None:
        rows, bad = read_labels_csv(folder, Path(labels_csv), rater or DEFAULT_IMPORT_RATER)
        report.skipped.extend(bad)
    masks = {r.mask for r in rows.values() if r.mask is not None}
    if labels_csv is not None:
        masks.add(Path(labels_csv).resolve())
    files = []
    for path in imaging.iter_image_files(folder):
        resolved = path.resolve()
        if not resolved.is_relative_to(folder):  # a link that leads out of the folder
            report.skipped.append(
                (
                    str(path.relative_to(folder)),
                    "is a link to a file outside the folder; not imported",
                )
            )
        elif resolved in masks:
            continue
        elif resolved not in rows and _in_masks_folder(path.relative_to(folder)):
            report.mask_files += 1
        elif labels_csv is None or include_unlisted or resolved in rows:
            files.append(path)
        else:
            report.left_out += 1
    listed = {p.resolve() for p in files}
    files += [p for p in rows if p not in listed]  # named by the CSV but not an image by name
    ds = store.ensure_dataset(report.dataset, folder, actor=actor)
    for done, path in enumerate(files, start=1):
        label = rows.get(path.resolve())
        try:
            _import_file(
                store, ds.id, folder, path, label, report, max_pixels, blank_outside_fov, actor
            )
        except SgusError as exc:
            where = f"{label and f'line {label.line}: ' or ''}{path.relative_to(folder)}"
            report.skipped.append((where, str(exc)))
        if progress:
            progress(done, len(files))
    return report


def _import_file(
    store: LabelStore,
    dataset_id: int,
    folder: Path,
    path: Path,
    label: _LabelRow | None,
    report: ImportReport,
    max_pixels: int,
    blank: bool | None,
    actor: str,
) -> None:
    frames = imaging.read_frames(path, max_pixels=max_pixels)
    digest = imaging.file_hash(path)
    relative = path.relative_to(folder).as_posix()
    if label is not None and label.mask is not None and len(frames) > 1:
        raise ImportRowError("a mask was given for a multi-frame file; give one file per frame")
    mask_png = area = None
    if label is not None and label.mask is not None:
        mask = imaging.read_mask_file(label.mask, frames[0].pixels.shape)
        mask_png, area = imaging.encode_mask_png(mask), int(mask.sum())
    new = [
        NewImage(
            path=relative,
            content_hash=digest,
            frame_index=f.frame_index,
            width=f.pixels.shape[1],
            height=f.pixels.shape[0],
            patient=label.patient if label else None,
            gland=label.gland if label else None,
            side=label.side if label else None,
            spacing_mm=(label.spacing_mm if label and label.spacing_mm else None) or f.spacing_mm,
            fov=f.fov.as_tuple(),
            meta={
                **f.metadata,
                "frames": len(frames),
                **({"csv": label.meta} if label and label.meta else {}),
                BLANK_KEY: blank_by_default(f.metadata) if blank is None else blank,
            },
        )
        for f in frames
    ]
    results = store.add_images(dataset_id, new, actor=actor)
    report.imported += sum(created for _, created in results)
    report.already_present += sum(not created for _, created in results)
    if label is None:
        return
    for image_id, created in results:
        if not created:
            existing = store.get_image(image_id)
            if existing.path != relative:
                disagreement = _disagreement(store, existing, label, mask_png)
                if disagreement:
                    report.conflicts.append(
                        (
                            f"line {label.line}: {relative}",
                            f"has the same bytes as {existing.path} (image {image_id}) but its "
                            f"CSV row differs ({disagreement}); not merged. Correct the row "
                            "of the wrong file, or remove the copy, and import again",
                        )
                    )
                continue
            if store.update_image_metadata(image_id, _metadata(label), actor=actor):
                report.metadata_updated += 1
        if mask_png is None and not label.has_grades:
            continue
        store.ensure_rater(label.rater, actor=actor)
        saved_mask, saved_grade = store.save_labels(
            image_id,
            label.rater,
            mask_png=mask_png,
            area_px=area or 0,
            source="imported",
            devita=label.devita,
            omeract=label.omeract,
            doppler=label.doppler,
            hocevar=label.hocevar,
            comment=label.comment,
            confidence=label.confidence,
            actor=actor,
            skip_unchanged=True,
        )
        if saved_mask is not None or saved_grade is not None:
            report.labels_saved += 1


def _metadata(label: _LabelRow) -> dict[str, Any]:
    """The image metadata a CSV row gives (its empty cells give none)."""
    given = {
        "patient": label.patient,
        "gland": label.gland,
        "side": label.side,
        "spacing_mm": label.spacing_mm,
    }
    return {k: v for k, v in given.items() if v is not None}


def _disagreement(
    store: LabelStore, image: ImageRecord, label: _LabelRow, mask_png: bytes | None
) -> str:
    """How a CSV row disagrees with an image stored from another file of the same bytes: its
    metadata or the row's rater's latest labels ("" when it agrees)."""
    found = [
        f"{k} {v!r} vs {getattr(image, k)!r}"
        for k, v in _metadata(label).items()
        if getattr(image, k) != v
    ]
    grade = store.latest_grades(image.id).get(label.rater)
    for name, value in (
        ("devita", label.devita), ("omeract", label.omeract), ("doppler", label.doppler)
    ):  # fmt: skip
        stored = getattr(grade, name) if grade is not None else None
        if value is not None and stored != value:
            found.append(f"{name} {value} vs {stored if stored is not None else 'none'}")
    if mask_png is not None:
        mask = store.latest_masks(image.id).get(label.rater)
        if mask is None or not same_mask(mask.png, mask_png):
            found.append("another mask")
    return "; ".join(found)
