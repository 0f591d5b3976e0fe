"""Patient-grouped k-fold cross-validation, the small-data protocol of ``sgus train``.

A clinic's labelled set is small (tens to a few hundred frames), so one train/validation/test
split leaves a handful of frames to judge by and the figure swings with the split. Below
:data:`SMALL_SET` frames ``sgus train`` therefore cross-validates: the patients are dealt into
``k`` folds (stratified by grade for graders, so that the rare grade 1 lands in several folds),
each fold is predicted by a model trained on the others, and the out-of-fold predictions give the
figures on the card; the model that is saved is then fitted on every frame.

Figures: quadratic-weighted kappa of the pooled out-of-fold grades with a 95 % interval from a
patient bootstrap (patients resampled with replacement, 1,000 times), per-grade recall, the
per-fold kappas, and the majority-class baseline (always answering the commonest grade of the
training folds: kappa 0 by definition, and its accuracy); segmenters: out-of-fold IoU with a
bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sgus_core.errors import ModelError
from sgus_core.vocabulary import N_GRADES

SMALL_SET = 300  # below this many frames, sgus train cross-validates
DEFAULT_FOLDS = 5
BOOTSTRAP = 1000


def fold_count(n_samples: int, n_patients: int, requested: int | None) -> int:
    """How many folds to use: ``requested`` (0 = no cross-validation), else
    :data:`DEFAULT_FOLDS` below :data:`SMALL_SET` frames and 0 above; never more than the
    patients."""
    if requested is not None:
        if requested == 0:
            return 0
        if requested < 2:
            raise ModelError(
                f"--folds must be 0 (no cross-validation) or at least 2, not {requested}"
            )
        if requested > n_patients:
            raise ModelError(
                f"{requested} folds need at least {requested} patients; the set has {n_patients}"
            )
        return requested
    if n_samples >= SMALL_SET:
        return 0
    return min(DEFAULT_FOLDS, n_patients) if n_patients >= 3 else 0


def grouped_folds(
    groups: Sequence[str], k: int, *, labels: Sequence[int] | None = None, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_index, test_index) pairs with no group (patient) in both parts.

    With ``labels`` the folds are stratified (scikit-learn's ``StratifiedGroupKFold``) so that
    each holds every grade, when every grade present has at least ``k`` frames; else
    ``GroupKFold`` over shuffled groups.

    Raises:
        ModelError: fewer groups than folds.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups_arr = np.asarray(groups)
    if len(set(groups_arr.tolist())) < k:
        raise ModelError(f"{k} folds need at least {k} patients; got {len(set(groups_arr))}")
    index = np.arange(len(groups_arr))
    if labels is not None:
        y = np.asarray(labels)
        counts = np.bincount(y, minlength=N_GRADES)
        if counts[counts > 0].min() >= k and len(np.unique(y)) > 1:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            return [(tr, te) for tr, te in splitter.split(index, y, groups_arr)]
    rng = np.random.default_rng(seed)
    names = np.unique(groups_arr)
    relabel = {g: int(i) for i, g in enumerate(rng.permutation(names))}
    coded = np.array([relabel[g] for g in groups_arr])
    return [(tr, te) for tr, te in GroupKFold(n_splits=k).split(index, groups=coded)]


def _patient_bootstrap(
    groups: np.ndarray, statistic, *, n: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float] | None:
    """95 % percentile interval of ``statistic(index)`` over patients resampled with
    replacement (None with fewer than 3 patients)."""
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 3:
        return None
    members = [np.flatnonzero(inverse == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(names), len(names))
        values.append(statistic(np.concatenate([members[i] for i in pick])))
    lo, hi = np.percentile(values, (2.5, 97.5))
    return float(lo), float(hi)


def grade_report(
    truth: Sequence[int] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    groups: Sequence[str],
    fold_of: Sequence[int] | np.ndarray,
    majority_of_fold: Sequence[int],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """The card's figures for out-of-fold grades (see the module docstring).

    Args:
        truth: reference grades 0-3.
        predicted: out-of-fold predicted grades.
        groups: each frame's patient.
        fold_of: each frame's fold (0..k-1).
        majority_of_fold: per fold, the commonest grade of its training part (the baseline).
    """
    from sgus_core.training.losses import grade_metrics, quadratic_kappa

    y = np.asarray(truth, dtype=np.int64)
    p = np.asarray(predicted, dtype=np.int64)
    folds = np.asarray(fold_of, dtype=np.int64)
    base = np.asarray([majority_of_fold[f] for f in folds], dtype=np.int64)
    report = grade_metrics(y, p)
    interval = _patient_bootstrap(
        np.asarray(groups), lambda i: quadratic_kappa(y[i], p[i]), seed=seed
    )
    per_fold = []
    for f in sorted(set(folds.tolist())):
        inside = folds == f
        per_fold.append(
            {
                "n": int(inside.sum()),
                "kappa_quadratic": quadratic_kappa(y[inside], p[inside]),
                "accuracy": float(np.mean(y[inside] == p[inside])),
                "baseline_accuracy": float(np.mean(y[inside] == base[inside])),
            }
        )
    baseline_accuracy = float(np.mean(y == base))
    beats_every_fold = all(
        f["kappa_quadratic"] > 0.0 and f["accuracy"] >= f["baseline_accuracy"] for f in per_fold
    )
    report |= {
        "kappa_ci95": None if interval is None else list(interval),
        "folds": per_fold,
        "baseline": {
            "rule": "always the commonest grade of the training folds",
            "accuracy": baseline_accuracy,
            "kappa_quadratic": 0.0,
        },
        "beats_baseline": bool(
            report["kappa_quadratic"] > 0.0
            and (interval is None or interval[0] > 0.0)
            and report["accuracy"] >= baseline_accuracy
        ),
        "beats_baseline_every_fold": bool(beats_every_fold),
    }
    return report


def iou_report(ious: Sequence[float], groups: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Out-of-fold segmentation figures: mean and median IoU, Dice, and a patient-bootstrap
    95 % interval of the mean IoU."""
    values = np.asarray(ious, dtype=np.float64)
    interval = _patient_bootstrap(np.asarray(groups), lambda i: float(values[i].mean()), seed=seed)
    return {
        "n": len(values),
        "iou_mean": float(values.mean()) if len(values) else None,
        "iou_median": float(np.median(values)) if len(values) else None,
        "dice_mean": float(np.mean(2 * values / (1 + values))) if len(values) else None,
        "iou_ci95": None if interval is None else list(interval),
    }


def majority_grade(grades: Sequence[int]) -> int:
    """The commonest grade (the lowest on a tie)."""
    counts = np.bincount(np.asarray(grades, dtype=np.int64), minlength=N_GRADES)
    return int(np.argmax(counts))
