"""The feature grader: texture features inside the gland (:mod:`sgus_core.inference.features`)
into a regularised multinomial logistic regression (scikit-learn).

Why this design for small sets: ~90 interpretable numbers per frame and one linear model have
far fewer degrees of freedom than a CNN, so tens of graded frames are enough to fit it. Class
imbalance (de Vita grade 1 is rare) is handled by ``class_weight="balanced"``; the L2 strength C
is chosen by an inner patient-grouped cross-validation on quadratic kappa; the probabilities are
calibrated by one temperature fitted on out-of-fold predictions (minimum log-loss). The fitted
model is stored as plain arrays in ``<name>.npz`` (no pickle), which the inference runtime
:class:`~sgus_core.inference.runtimes.FeatureGrader` evaluates with numpy alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgus_core.errors import ModelError
from sgus_core.inference.features import FEATURE_NAMES, N_FEATURES, grade_features
from sgus_core.inference.runtimes import FEATURE_DESIGN, feature_logits, grade_softmax
from sgus_core.training.data import Sample
from sgus_core.vocabulary import N_GRADES

DESIGN = FEATURE_DESIGN
C_GRID = (0.03, 0.1, 0.3, 1.0)
DEFAULT_C = 0.3


@dataclass(frozen=True)
class FeatureModel:
    """A fitted feature grader as arrays (what ``<name>.npz`` holds).

    Attributes:
        mean, scale: (F,) standardisation of the features.
        coef: (K, F) and intercept: (K,) of the logistic regression over the K grades present.
        classes: (K,) the grades the rows stand for.
        temperature: divides the logits before the softmax (calibration).
        c: the L2 strength chosen.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    temperature: float
    c: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, K) logits of (N, F) features."""
        return feature_logits(features, self.mean, self.scale, self.coef, self.intercept)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, 4) calibrated grade probabilities (0 for grades absent from training)."""
        return grade_softmax(self.logits(features) / self.temperature, self.classes)


def sample_features(samples: Sequence[Sample]) -> np.ndarray:
    """(N, F) features of samples, each inside its mask (the whole FOV when it has none)."""
    if not samples:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    return np.stack([grade_features(s.image, s.mask) for s in samples])


def _fit_once(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit((x - mean) / scale, y)
    return mean, scale, model


def _choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> float:
    """The C of :data:`C_GRID` with the best inner grouped-CV quadratic kappa (ties: smaller)."""
    from sgus_core.training.losses import quadratic_kappa
    from sgus_core.training.validation import grouped_folds

    k = min(3, len(set(groups.tolist())))
    if k < 2 or len(np.unique(y)) < 2:
        return DEFAULT_C
    try:
        folds = grouped_folds(groups.tolist(), k, labels=y.tolist(), seed=seed)
    except ModelError:
        return DEFAULT_C
    best, best_kappa = DEFAULT_C, -np.inf
    for c in C_GRID:
        predicted = np.zeros_like(y)
        for tr, te in folds:
            if len(np.unique(y[tr])) < 2:
                predicted[te] = y[tr][0]
                continue
            mean, scale, model = _fit_once(x[tr], y[tr], c)
            predicted[te] = model.predict((x[te] - mean) / scale)
        kappa = quadratic_kappa(y, predicted)
        if kappa > best_kappa + 1e-9:
            best, best_kappa = c, kappa
    return best


def fit_feature_model(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    *,
    seed: int = 0,
    temperature: float = 1.0,
) -> FeatureModel:
    """Fit the feature grader on (N, F) features and grades (C by inner grouped CV).

    Raises:
        ModelError: fewer than 2 frames, or a single grade (nothing to tell apart).
    """
    y = np.asarray(y, dtype=np.int64)
    if len(y) < 2 or len(np.unique(y)) < 2:
        raise ModelError("the feature grader needs graded frames of at least two different grades")
    x = np.asarray(x, dtype=np.float64)
    c = _choose_c(x, y, np.asarray(groups), seed)
    mean, scale, model = _fit_once(x, y, c)
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    classes = np.asarray(model.classes_, dtype=np.int64)
    if len(classes) == 2:  # binary: scikit-learn keeps one row; make it a two-row softmax
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return FeatureModel(mean, scale, coef, intercept, classes, float(temperature), float(c))


def fit_temperature(logits: np.ndarray, classes_of_row: np.ndarray, truth: np.ndarray) -> float:
    """The temperature (0.25-8) that minimises the log-loss of out-of-fold predictions.

    ``logits`` are (N, 4) with -inf for grades a fold's model did not know."""
    from scipy.optimize import minimize_scalar

    truth = np.asarray(truth, dtype=np.int64)

    def loss(t: float) -> float:
        z = logits / t
        z = z - np.max(z, axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(truth)), truth], 1e-9, 1.0))))

    if len(truth) < 4:
        return 1.0
    found = minimize_scalar(loss, bounds=(0.25, 8.0), method="bounded")
    return float(found.x)


def four_grade_logits(model: FeatureModel, features: np.ndarray) -> np.ndarray:
    """(N, 4) logits with -inf for grades the model was not trained on."""
    out = np.full((len(features), N_GRADES), -np.inf)
    out[:, model.classes] = model.logits(features)
    return out


def save_feature_model(model: FeatureModel, path: Path) -> Path:
    """Write the model's arrays to ``path`` (``.npz``, no pickled objects); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        tmp,
        mean=model.mean,
        scale=model.scale,
        coef=model.coef,
        intercept=model.intercept,
        classes=model.classes,
        temperature=np.array(model.temperature),
        c=np.array(model.c),
        feature_names=np.array(FEATURE_NAMES),
    )
    tmp.replace(path)
    return path
