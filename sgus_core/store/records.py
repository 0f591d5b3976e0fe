"""The values the labels store hands out and takes in (frozen dataclasses, no SQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Dataset:
    """A named collection of images rooted at a folder."""

    id: int
    name: str
    root_path: str
    created_at: datetime


@dataclass(frozen=True)
class Rater:
    """A person (or the synthetic "reference") whose labels the store keeps."""

    id: int
    name: str
    role: str
    disabled: bool


@dataclass(frozen=True)
class ImageRecord:
    """One frame in a dataset (a multi-frame file gives one record per frame)."""

    id: int
    dataset_id: int
    path: str
    content_hash: str
    frame_index: int
    width: int
    height: int
    patient: str | None
    gland: str | None
    side: str | None
    spacing_mm: float | None
    fov: tuple[int, int, int, int] | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short human label such as ``P0007 parotid R``."""
        parts = [self.patient or "?", self.gland or "", self.side or ""]
        text_ = " ".join(p for p in parts if p)
        return text_ if self.frame_index == 0 else f"{text_} #{self.frame_index}"


@dataclass(frozen=True)
class NewImage:
    """What an import knows about a frame before the store gives it an id."""

    path: str
    content_hash: str
    width: int
    height: int
    frame_index: int = 0
    patient: str | None = None
    gland: str | None = None
    side: str | None = None
    spacing_mm: float | None = None
    fov: tuple[int, int, int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskVersion:
    """One saved mask (PNG bytes) of one rater for one image."""

    id: int
    image_id: int
    rater: str
    source: str
    parent_id: int | None
    model_id: int | None
    round_id: int | None
    png: bytes
    area_px: int
    created_at: datetime
    stale_parent: bool = False
    """True when saved on a parent that was no longer the rater's newest version (the save is kept
    as a new version; the user should be told a newer one exists)."""


@dataclass(frozen=True)
class Grade:
    """One saved set of grades of one rater for one image."""

    id: int
    image_id: int
    rater: str
    devita: int | None
    omeract: int | None
    hocevar: tuple[int, ...] | None
    comment: str | None
    confidence: int | None
    round_id: int | None
    created_at: datetime
    doppler: int | None = None
    """OMERACT Doppler grade 0-3 (vascularity), given on Doppler frames; ``None`` otherwise."""


@dataclass(frozen=True)
class PredictionRecord:
    """One stored model prediction for one image."""

    id: int
    image_id: int
    model: str
    png: bytes
    area_px: int
    area_mm2: float | None
    grade: int | None
    grade_probabilities: tuple[float, ...] | None
    created_at: datetime


@dataclass(frozen=True)
class ModelRecord:
    """A registered model and its card."""

    id: int
    name: str
    task: str
    architecture: str
    path: str
    card: dict[str, Any]


@dataclass(frozen=True)
class StatusEvent:
    """One status change of (image, rater)."""

    id: int
    image_id: int
    rater: str
    status: str
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class ImageFilter:
    """What the Browse page (and scripts) select images by. ``None`` means "any".

    ``grade``, ``status`` and ``has_mask`` look at ``rater``'s labels when a rater is given, else
    at the latest label of anyone.
    """

    dataset_id: int | None = None
    patient: str | None = None
    gland: str | None = None
    side: str | None = None
    grade: int | None = None
    status: str | None = None
    rater: str | None = None
    has_mask: bool | None = None
    has_prediction: bool | None = None


@dataclass(frozen=True)
class BrowseRow:
    """One line of a Browse page: the image plus its current labels."""

    image: ImageRecord
    devita: int | None
    status: str | None
    mask_version_id: int | None
    prediction_id: int | None


@dataclass(frozen=True)
class StudyRound:
    """A study round: a set of images labelled by a set of raters under one protocol."""

    id: int
    name: str
    dataset_id: int
    blind: bool
    shuffled: bool
    repeat_of: int | None
    image_ids: tuple[int, ...]
    raters: tuple[str, ...]
    created_at: datetime
    closed_at: datetime | None = None
    """When an administrator closed the round (``None``: open). A closed blind round no longer
    hides other people's labels of its images from its raters."""

    @property
    def is_open(self) -> bool:
        """Whether the round still takes labels and, when blind, still hides others' labels."""
        return self.closed_at is None


@dataclass(frozen=True)
class Blinding:
    """What a blind reading hides from one reader, as the store's queries need it: on
    ``image_ids`` (the images of the open blind rounds she rates) she sees only her own labels
    saved in ``round_ids`` (those rounds) and no model prediction."""

    reader: str
    image_ids: frozenset[int]
    round_ids: frozenset[int]


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    details: dict[str, Any] | None


# ---------------------------------------------------------------- engine and migrations
