"""Losses and metrics of training: BCE + soft Dice and IoU for segmenters; class weights,
quadratic kappa and per-grade figures for graders."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from sgus_core.inference.processing import THRESHOLD
from sgus_core.vocabulary import N_GRADES

CLASS_WEIGHT_RANGE = (0.2, 10.0)


@keras.saving.register_keras_serializable(package="sgus")
def bce_dice_loss(y_true, y_pred):
    """Per-sample binary cross-entropy (pixel mean) + (1 - soft Dice); shapes (N, H, W, 1)."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
    intersection = ops.sum(y_true * y_pred, axis=(1, 2, 3))
    total = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
    dice = (2.0 * intersection + 1.0) / (total + 1.0)
    return bce + (1.0 - dice)


@keras.saving.register_keras_serializable(package="sgus")
def iou(y_true, y_pred):
    """Per-sample IoU of the 0.5-thresholded prediction (1 when both are empty); shape (N,)."""
    t = ops.cast(y_true > 0.5, "float32")
    p = ops.cast(y_pred > THRESHOLD, "float32")
    inter = ops.sum(t * p, axis=(1, 2, 3))
    union = ops.sum(t, axis=(1, 2, 3)) + ops.sum(p, axis=(1, 2, 3)) - inter
    return ops.where(union > 0, inter / ops.maximum(union, 1.0), 1.0)


def iou_per_image(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """IoU per image of bool stacks (N, H, W); 1.0 where both masks are empty. Returns (N,)."""
    if len(truth) == 0:
        return np.zeros(0)
    t = truth.reshape(len(truth), -1).astype(bool)
    p = predicted.reshape(len(predicted), -1).astype(bool)
    inter = (t & p).sum(axis=1)
    union = (t | p).sum(axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def quadratic_kappa(truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(truth) == 0 or len(set(truth.tolist()) | set(predicted.tolist())) < 2:
        return 0.0  # undefined with a single class: count it as no agreement beyond chance
    value = cohen_kappa_score(truth, predicted, weights="quadratic", labels=list(range(N_GRADES)))
    return float(value) if np.isfinite(value) else 0.0


def class_weights(grades: np.ndarray) -> np.ndarray:
    """Per-grade weights ``n / (k * n_grade)`` over the grades present, clipped, mean 1 per sample.

    Args:
        grades: (N,) int grades 0..3 of the training samples.

    Returns:
        (4,) float32 weights; grades absent from ``grades`` get 0.
    """
    counts = np.bincount(grades, minlength=N_GRADES).astype(np.float64)
    present = counts > 0
    weights = np.zeros(N_GRADES)
    weights[present] = len(grades) / (present.sum() * counts[present])
    weights[present] = np.clip(weights[present], *CLASS_WEIGHT_RANGE)
    weights /= (weights[grades]).mean()
    return weights.astype(np.float32)


def grade_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(N_GRADES))
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return {
        "n": len(truth),
        "accuracy": float(np.mean(truth == predicted)) if len(truth) else float("nan"),
        "kappa_quadratic": quadratic_kappa(truth, predicted),
        "precision_per_grade": [float(v) for v in precision],
        "recall_per_grade": [float(v) for v in recall],
        "support_per_grade": [int(v) for v in support],
        "confusion": confusion_matrix(truth, predicted, labels=labels).tolist(),
    }
