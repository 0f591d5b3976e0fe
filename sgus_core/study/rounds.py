"""Study rounds, rater queues and blinding.

Blinding is enforced in the core, not in a page: in a blind round :func:`visible_labels` returns
only the asking rater's own labels *of that round* and no model prediction, whatever the caller
asks for; every other read follows the rule of :mod:`sgus_core.study.visibility`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sgus_core.errors import PermissionDenied, StoreError
from sgus_core.store import (
    Grade,
    ImageRecord,
    LabelStore,
    MaskVersion,
    PredictionRecord,
    StudyRound,
)
from sgus_core.study.visibility import reader_view
from sgus_core.vocabulary import OPEN_STATUSES

QUEUE_ORDERS = ("round", "uncertainty")


@dataclass(frozen=True)
class QueueItem:
    """One image of a rater's queue with its status in the round."""

    image_id: int
    status: str
    position: int


def _order_seed(round_id: int, rater: str) -> int:
    digest = hashlib.sha256(f"{round_id}:{rater}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def round_order(study_round: StudyRound, rater: str) -> list[int]:
    """The order in which ``rater`` sees the round's images.

    Shuffled rounds use a permutation seeded by (round, rater): stable across sessions, different
    per rater and per round (so a repeat round presents the same images in another order).
    """
    ids = list(study_round.image_ids)
    if not study_round.shuffled:
        return ids
    rng = np.random.default_rng(_order_seed(study_round.id, rater))
    return [ids[i] for i in rng.permutation(len(ids))]


def require_member(study_round: StudyRound, rater: str, image_id: int | None = None) -> None:
    """Raise :class:`PermissionDenied` unless ``rater`` (and ``image_id``) belong to the round."""
    if rater not in study_round.raters:
        raise PermissionDenied(f"{rater} is not a rater of round {study_round.name!r}.")
    if image_id is not None and image_id not in study_round.image_ids:
        raise PermissionDenied(f"Image {image_id} is not part of round {study_round.name!r}.")


def rater_queue(
    store: LabelStore,
    study_round: StudyRound,
    rater: str,
    *,
    include_done: bool = False,
    order: str = "round",
    uncertainty: dict[int, float] | None = None,
) -> list[QueueItem]:
    """The rater's queue in a round: images still to do (todo, in progress, flagged) first.

    ``order="uncertainty"`` puts the images the model is least sure about first; ``uncertainty``
    maps image id to a score (higher = less sure), e.g. from :func:`prediction_uncertainty`.
    Blind rounds refuse that order (it would reveal the model).

    Raises:
        PermissionDenied: the rater is not in the round, or uncertainty order in a blind round.
        StoreError: unknown order.
    """
    require_member(study_round, rater)
    if order not in QUEUE_ORDERS:
        raise StoreError(f"Unknown queue order {order!r}; use one of {', '.join(QUEUE_ORDERS)}.")
    ids = round_order(study_round, rater)
    if order == "uncertainty":
        if study_round.blind:
            raise PermissionDenied("A blind round cannot be ordered by the model's uncertainty.")
        scores = uncertainty or {}
        ids.sort(key=lambda i: -scores.get(i, -1.0))
    statuses = store.latest_statuses(rater, study_round.id)
    items = [QueueItem(i, statuses.get(i, "todo"), pos) for pos, i in enumerate(ids)]
    if include_done:
        return items
    return [item for item in items if item.status in OPEN_STATUSES]


def sample_round_images(images: Sequence[ImageRecord], limit: int, seed: int) -> list[int]:
    """Up to ``limit`` image ids drawn at random (reproducibly from ``seed``) and spread over
    the patients: the patients are shuffled, then one image of each in turn (each patient's
    images shuffled too), so a round is not the first frames imported nor one patient's.
    Images without a patient id count as one patient each."""
    rng = np.random.default_rng(seed)
    by_patient: dict[str, list[int]] = {}
    for image in images:
        by_patient.setdefault(image.patient or f"#{image.id}", []).append(image.id)
    patients = sorted(by_patient)
    stacks = [
        [by_patient[p][i] for i in rng.permutation(len(by_patient[p]))]
        for p in (patients[i] for i in rng.permutation(len(patients)))
    ]
    chosen: list[int] = []
    while len(chosen) < limit and any(stacks):
        for stack in stacks:
            if stack and len(chosen) < limit:
                chosen.append(stack.pop(0))
    return sorted(chosen)


def prediction_uncertainty(prediction: PredictionRecord | None) -> float:
    """How unsure a prediction's grade is: 1 - max probability (0 when sure, 0.75 at most)."""
    if prediction is None or not prediction.grade_probabilities:
        return 0.0
    return 1.0 - max(prediction.grade_probabilities)


def create_repeat_round(
    store: LabelStore, parent: StudyRound, rater: str, name: str, *, actor: str = "system"
) -> StudyRound:
    """A repeat of ``parent`` for one rater: the same images, shuffled anew (intra-observer)."""
    require_member(parent, rater)
    return store.create_round(
        name,
        parent.dataset_id,
        list(parent.image_ids),
        [rater],
        blind=parent.blind,
        shuffled=True,
        repeat_of=parent.id,
        actor=actor,
    )


@dataclass(frozen=True)
class VisibleLabels:
    """The labels of one image that a rater may see in a round."""

    masks: list[MaskVersion]
    grades: list[Grade]
    prediction: PredictionRecord | None


def visible_labels(
    store: LabelStore, study_round: StudyRound | None, rater: str, image_id: int
) -> VisibleLabels:
    """What ``rater`` may see of an image while working on it: in a blind round only her own
    labels *of that round* and no prediction; in an open round the others' labels and the model
    but of her own only those of this round (a repeat round must not show her first reading);
    in the whole dataset what the blinding rule of :mod:`sgus_core.study.visibility` lets her
    read.

    Raises:
        PermissionDenied: the rater or the image is not part of the round.
    """
    if study_round is not None:
        require_member(study_round, rater, image_id)
    if study_round is None or not study_round.blind:
        view = reader_view(store, rater)
        masks, grades = view.mask_history(image_id), view.grade_history(image_id)
        if study_round is not None:  # her own earlier readings would bias this one
            masks = [m for m in masks if m.rater != rater or m.round_id == study_round.id]
            grades = [g for g in grades if g.rater != rater or g.round_id == study_round.id]
        return VisibleLabels(masks, grades, view.latest_prediction(image_id))
    return VisibleLabels(
        masks=[m for m in store.mask_history(image_id, rater) if m.round_id == study_round.id],
        grades=[g for g in store.grade_history(image_id, rater) if g.round_id == study_round.id],
        prediction=None,
    )
