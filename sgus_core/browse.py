"""What the Browse page shows, assembled from the store and the image files (no UI here)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sgus_core import imaging
from sgus_core.errors import ImageReadError
from sgus_core.imaging.frame import Frame
from sgus_core.imaging.privacy import frame_for_display
from sgus_core.settings import DEFAULT_MAX_PIXELS
from sgus_core.store import (
    BrowseRow,
    Grade,
    ImageFilter,
    ImageRecord,
    LabelStore,
    MaskVersion,
    StatusEvent,
)

THUMBNAIL_SIDE = 256
PREDICTION_COLOUR = (255, 64, 64)
PREDICTION_COLOUR_NAME = "red"
# Colour-blind-safe palette (Okabe-Ito) for raters' outlines, with the names the legend shows.
RATER_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("orange", (230, 159, 0)),
    ("sky blue", (86, 180, 233)),
    ("green", (0, 158, 115)),
    ("yellow", (240, 228, 66)),
    ("blue", (0, 114, 178)),
    ("white", (255, 255, 255)),  # not Okabe-Ito's vermilion: too close to the model's red
    ("pink", (204, 121, 167)),
)


def rater_colour(rater_id: int) -> tuple[str, tuple[int, int, int]]:
    """The outline colour (name, RGB) of a rater: by the rater's id, so it is the same in every
    session and does not move when a rater is added (cycling through the palette)."""
    return RATER_COLOURS[(rater_id - 1) % len(RATER_COLOURS)]


def outline_colours(rater_ids: dict[str, int]) -> dict[str, tuple[str, tuple[int, int, int]]]:
    """The colours of the outlines drawn together on one image: each rater's own
    (:func:`rater_colour`) unless one drawn before took it (with more raters than colours two
    ids share one), then the next free one of the palette."""
    out: dict[str, tuple[str, tuple[int, int, int]]] = {}
    for name, rater_id in sorted(rater_ids.items(), key=lambda item: item[1]):
        start = (rater_id - 1) % len(RATER_COLOURS)
        taken = {colour for colour, _ in out.values()}
        free = [RATER_COLOURS[(start + k) % len(RATER_COLOURS)] for k in range(len(RATER_COLOURS))]
        out[name] = next((c for c in free if c[0] not in taken), free[0])
    return out


def load_frame(
    store: LabelStore, image: ImageRecord, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Frame:
    """Read the stored image's frame from disk, blanked outside its field of view where the
    import asked for it (personal data in burned-in text).

    Raises:
        ImageReadError: the file is gone, changed or unreadable.
    """
    path = store.image_path(image)
    if not path.is_file():
        raise ImageReadError(f"The file of this image is missing: {path}")
    frames = imaging.read_frames(path, max_pixels=max_pixels)
    if image.frame_index >= len(frames):
        raise ImageReadError(f"{path} no longer has frame {image.frame_index}.")
    frame = frames[image.frame_index]
    pixels = frame_for_display(frame.pixels, image.meta, image.fov)
    return frame if pixels is frame.pixels else replace(frame, pixels=pixels)


def thumbnail_key(row: BrowseRow) -> str:
    """Cache key of a row's thumbnail: changes when the image or its latest mask changes."""
    image = row.image
    return (
        f"{image.content_hash[:24]}_{image.frame_index}_{row.mask_version_id or 0}_{THUMBNAIL_SIDE}"
    )


def ensure_thumbnail(store: LabelStore, cache: imaging.ThumbnailCache, row: BrowseRow) -> Path:
    """The on-disk thumbnail of a Browse row (latest mask outline drawn), built on first use."""

    def build() -> bytes:
        frame = load_frame(store, row.image)
        mask = None
        if row.mask_version_id is not None:
            mask = imaging.decode_mask_png(store.get_mask(row.mask_version_id).png)
        return imaging.make_thumbnail(frame.pixels, mask, max_side=THUMBNAIL_SIDE)

    return cache.get_or_create(thumbnail_key(row), build)


@dataclass(frozen=True)
class Overlay:
    """One outline in the detail view."""

    label: str
    mask: np.ndarray
    colour_name: str
    colour: tuple[int, int, int]
    version_id: int | None
    area_px: int


@dataclass(frozen=True)
class ImageDetail:
    """Everything the detail view shows of one image."""

    image: ImageRecord
    pixels: np.ndarray
    """What is shown: (H, W) grey, or (H, W, 3) RGB with a Doppler frame's flow in colour."""
    overlays: list[Overlay]
    grades: list[Grade]
    masks: list[MaskVersion]
    statuses: list[StatusEvent]
    doppler_signal: np.ndarray | None = None
    """Where the frame's Doppler signal is ((H, W) bool); ``None`` for a greyscale frame."""

    def vascular_captions(self, shown: list[str]) -> list[str]:
        """For a Doppler frame, the vascular fraction inside each shown outline (``"Doppler:
        vascular fraction 12.3 % inside the gland (ana's outline)"``); nothing otherwise."""
        out = []
        for overlay in self.overlays:
            text = imaging.vascular_caption(self.doppler_signal, overlay.mask)
            if text is not None and overlay.label in shown:
                out.append(f"{text} ({overlay.label}'s outline)")
        return out

    def area_mm2(self, area_px: int) -> float | None:
        """Area in mm2 from the image's pixel spacing (None when unknown)."""
        if self.image.spacing_mm is None:
            return None
        return area_px * self.image.spacing_mm**2


def image_detail(store: LabelStore, image_id: int) -> ImageDetail:
    """Load an image with each rater's latest mask, the latest prediction and the history (as
    ``store`` lets its reader see them: a :class:`~sgus_core.study.visibility.ReaderStore`
    applies the blinding of open blind rounds)."""
    image = store.get_image(image_id)
    frame = load_frame(store, image)
    masks = store.mask_history(image_id)
    latest: dict[str, MaskVersion] = {m.rater: m for m in masks}
    ids = {r.name: r.id for r in store.list_raters()}
    colours = outline_colours({name: ids[name] for name in latest})
    overlays = [
        Overlay(
            label=name,
            mask=imaging.decode_mask_png(version.png),
            colour_name=colours[name][0],
            colour=colours[name][1],
            version_id=version.id,
            area_px=version.area_px,
        )
        for name, version in sorted(latest.items())
    ]
    prediction = store.latest_prediction(image_id)
    if prediction is not None:
        overlays.append(
            Overlay(
                label=f"model {prediction.model}",
                mask=imaging.decode_mask_png(prediction.png),
                colour_name=PREDICTION_COLOUR_NAME,
                colour=PREDICTION_COLOUR,
                version_id=None,
                area_px=prediction.area_px,
            )
        )
    return ImageDetail(
        image=image,
        pixels=frame.shown(),
        overlays=overlays,
        grades=store.grade_history(image_id),
        masks=masks,
        statuses=store.status_history(image_id),
        doppler_signal=frame.doppler_signal,
    )


@dataclass(frozen=True)
class PatientGland:
    """One gland image of a patient with one rater's latest grade."""

    image: ImageRecord
    grade: Grade | None


ANY_READING = "any"  # patient_glands' reading: the newest grade from any round or none


def patient_glands(
    store: LabelStore,
    dataset_id: int,
    patient: str,
    rater: str,
    reading: int | None | str = ANY_READING,
) -> list[PatientGland]:
    """A patient's gland images (parotid R/L, submandibular R/L order) with ``rater``'s latest
    grades: of one reading (``reading``: a round's id, or None for grades saved outside any
    round), or the newest of any (:data:`ANY_READING`; a repeat round's second reading then
    mixes with the first).

    When a gland has several frames, the one with the newest grade of ``rater`` represents it.
    """
    rows, _ = store.browse(ImageFilter(dataset_id=dataset_id, patient=patient), limit=1000)
    order: dict[tuple[str | None, str | None], int] = {
        ("parotid", "R"): 0,
        ("parotid", "L"): 1,
        ("submandibular", "R"): 2,
        ("submandibular", "L"): 3,
    }
    best: dict[tuple[str | None, str | None], PatientGland] = {}
    for row in rows:
        history = store.grade_history(row.image.id, rater)
        if reading != ANY_READING:
            history = [g for g in history if g.round_id == reading]
        grade = history[-1] if history else None
        key = (row.image.gland, row.image.side)
        current = best.get(key)
        if current is None or (grade and (current.grade is None or grade.id > current.grade.id)):
            best[key] = PatientGland(row.image, grade)
    return sorted(best.values(), key=lambda g: order.get((g.image.gland, g.image.side), 9))


def label_counts(store: LabelStore, dataset: str) -> dict[str, tuple[int, int]]:
    """``{rater: (outlined frames, graded frames)}`` of the raters with labels in a dataset
    (what the Train page offers to learn from)."""
    ds = store.require_dataset(dataset)
    counts = {}
    for rater in store.list_raters():
        masks = len(store.latest_masks_for_dataset(ds.id, rater.name))
        grades = len(store.latest_grades_for_dataset(ds.id, rater.name))
        if masks or grades:
            counts[rater.name] = (masks, grades)
    return counts
