"""``sgus evaluate``: a model's stored predictions against reference labels over a dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from sgus_core import imaging
from sgus_core.errors import StoreError
from sgus_core.store import LabelStore
from sgus_core.transfer import DEFAULT_IMPORT_RATER, default_rater

PREFERRED_REFERENCES = ("reference", DEFAULT_IMPORT_RATER)


def reference_rater(store: LabelStore, dataset_id: int, rater: str | None) -> str:
    """The reference labels' rater: the one given, else ``reference`` or ``imported`` when they
    have labels, else the only rater with labels."""
    if rater:
        return default_rater(store, dataset_id, rater)
    for name in PREFERRED_REFERENCES:
        if store.get_rater(name) and store.latest_grades_for_dataset(dataset_id, name):
            return name
    return default_rater(store, dataset_id, None)


def evaluate_dataset(
    store: LabelStore,
    dataset: str,
    model: str,
    *,
    reference: str | None = None,
    predicted_grades: dict[int, tuple[int, list[float]]] | None = None,
    grader: str | None = None,
) -> dict[str, Any]:
    """IoU and Dice per image and mean; grade accuracy, quadratic kappa, one-vs-rest AUC per grade.

    Returns the docs/CLI.md ``--json`` object. Images without a prediction of ``model`` are left
    out. ``predicted_grades`` (``{image_id: (grade, probabilities)}``, from ``inference.dataset.
    grade_dataset``) replace the stored predictions' grades: how a grader named ``grader`` is
    evaluated.

    Raises:
        StoreError: unknown dataset or rater, or no image with both a prediction and labels.
    """
    from sgus_core import metrics

    ds = store.require_dataset(dataset)
    rater = reference_rater(store, ds.id, reference)
    masks = store.latest_masks_for_dataset(ds.id, rater)
    grades = store.latest_grades_for_dataset(ds.id, rater)
    rows = []
    for image in store.list_images(ds.id):
        pred = store.latest_prediction(image.id, model)
        if pred is None or (image.id not in masks and image.id not in grades):
            continue
        row: dict[str, Any] = {"image_id": image.id, "image": image.path, "iou": None, "dice": None}
        if image.id in masks:
            truth = imaging.decode_mask_png(masks[image.id].png)
            agreement = metrics.mask_agreement(truth, imaging.decode_mask_png(pred.png))
            row["iou"], row["dice"] = float(agreement.iou), float(agreement.dice)
        grade = grades.get(image.id)
        row["grade_reference"] = grade.devita if grade else None
        row["grade_predicted"] = pred.grade
        row["probabilities"] = list(pred.grade_probabilities or [])
        if predicted_grades is not None:
            grade_predicted, probabilities = predicted_grades.get(image.id, (None, []))
            row["grade_predicted"], row["probabilities"] = grade_predicted, list(probabilities)
        rows.append(row)
    if not rows:
        raise StoreError(
            f"No image of {dataset!r} has both a prediction of {model!r} and labels of {rater}."
        )
    ious = [r["iou"] for r in rows if r["iou"] is not None]
    dices = [r["dice"] for r in rows if r["dice"] is not None]
    graded = [
        r for r in rows if r["grade_reference"] is not None and r["grade_predicted"] is not None
    ]
    truth_g = np.array([r["grade_reference"] for r in graded], dtype=int)
    pred_g = np.array([r["grade_predicted"] for r in graded], dtype=int)
    with_probs = [r for r in graded if len(r["probabilities"]) == 4]
    aucs: list[float | None] = [None] * 4
    if with_probs:
        curves = metrics.roc_per_grade(
            np.array([r["grade_reference"] for r in with_probs]),
            np.array([r["probabilities"] for r in with_probs], dtype=float),
        )
        aucs = [None if c.auc is None else float(c.auc) for c in curves]
    return {
        "n": len(rows),
        "model": model,
        "grader": grader,
        "reference": rater,
        "iou_mean": float(np.mean(ious)) if ious else None,
        "dice_mean": float(np.mean(dices)) if dices else None,
        "grade_accuracy": float(metrics.accuracy(truth_g, pred_g)) if len(graded) else None,
        "kappa_quadratic": float(metrics.cohen_kappa(truth_g, pred_g, weights="quadratic").kappa)
        if len(graded)
        else None,
        "auc_per_grade": aucs,
        "per_image": rows,
    }
