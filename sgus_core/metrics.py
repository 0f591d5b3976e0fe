"""Agreement statistics on arrays: masks (IoU, Dice, surface distances), grades (kappa family,
ROC), areas (ICC, Bland-Altman), and consensus labels. Pure, vectorised, no store, no UI.

Conventions: gland IoU = TP / (|A| + |B| - TP); Dice = 2 IoU / (1 + IoU). Two empty masks agree
perfectly (IoU 1, distances 0); one empty mask against a non-empty one has IoU 0 and infinite
distances. Grades are integers 0-3; missing grades are NaN (or -1) and are left out pairwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats

GRADES = (0, 1, 2, 3)


# ---------------------------------------------------------------- masks


@dataclass(frozen=True)
class MaskAgreement:
    """How two masks of one frame agree (distances in mm when spacing was given, else px)."""

    iou: float
    dice: float
    precision: float
    recall: float
    specificity: float
    accuracy: float
    hd95: float
    assd: float
    area_a_px: int
    area_b_px: int
    area_a_mm2: float | None
    area_b_mm2: float | None


def iou_from_counts(tp, fp, fn) -> np.ndarray:
    """IoU from true-positive, false-positive and false-negative pixel counts (1 where all are 0)."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    union = tp + fp + fn
    return np.where(union > 0, tp / np.where(union > 0, union, 1), 1.0)


def dice_from_iou(iou) -> np.ndarray:
    """Dice = 2 IoU / (1 + IoU)."""
    iou = np.asarray(iou, dtype=np.float64)
    return 2 * iou / (1 + iou)


def batch_iou_dice(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair IoU and Dice of mask stacks (N, H, W) (or single (H, W) masks)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    axes = tuple(range(a.ndim - 2, a.ndim))
    tp = np.count_nonzero(a & b, axis=axes)
    fp = np.count_nonzero(~a & b, axis=axes)
    fn = np.count_nonzero(a & ~b, axis=axes)
    iou = iou_from_counts(tp, fp, fn)
    return iou, dice_from_iou(iou)


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_distances(a: np.ndarray, b: np.ndarray, spacing_mm: float | None = None) -> np.ndarray:
    """Distances from every boundary pixel of each mask to the other's boundary (both ways)."""
    sa, sb = _surface(a), _surface(b)
    sampling = (spacing_mm, spacing_mm) if spacing_mm else None
    to_b = ndimage.distance_transform_edt(~sb, sampling=sampling)
    to_a = ndimage.distance_transform_edt(~sa, sampling=sampling)
    return np.concatenate([to_b[sa], to_a[sb]])


def mask_agreement(
    a: np.ndarray, b: np.ndarray, *, spacing_mm: float | None = None
) -> MaskAgreement:
    """Every per-frame figure of two bool (H, W) masks; ``a`` is the reference.

    Raises:
        ValueError: the masks differ in shape.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    tp = int(np.count_nonzero(a & b))
    fp = int(np.count_nonzero(~a & b))
    fn = int(np.count_nonzero(a & ~b))
    tn = a.size - tp - fp - fn
    iou = float(iou_from_counts(tp, fp, fn))
    if not a.any() and not b.any():
        hd95 = assd = 0.0
    elif not a.any() or not b.any():
        hd95 = assd = float("inf")
    else:
        d = surface_distances(a, b, spacing_mm)
        hd95, assd = float(np.percentile(d, 95)), float(d.mean())
    mm2 = spacing_mm**2 if spacing_mm else None
    return MaskAgreement(
        iou=iou,
        dice=float(dice_from_iou(iou)),
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        specificity=tn / (tn + fp) if tn + fp else 1.0,
        accuracy=(tp + tn) / a.size,
        hd95=hd95,
        assd=assd,
        area_a_px=tp + fn,
        area_b_px=tp + fp,
        area_a_mm2=None if mm2 is None else (tp + fn) * mm2,
        area_b_mm2=None if mm2 is None else (tp + fp) * mm2,
    )


# ---------------------------------------------------------------- grades


def _pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b) & (a >= 0) & (b >= 0)
    return a[keep].astype(int), b[keep].astype(int)


def confusion(a, b, labels: Sequence[int] = GRADES) -> np.ndarray:
    """(k, k) counts: rows are ``a``'s grade, columns ``b``'s."""
    a, b = _pairs(a, b)
    k = len(labels)
    index = {g: i for i, g in enumerate(labels)}
    out = np.zeros((k, k), dtype=np.int64)
    for x, y in zip(a, b, strict=True):
        out[index[x], index[y]] += 1
    return out


def accuracy(a, b) -> float:
    """Share of pairs with the same grade (NaN when there is no pair)."""
    a, b = _pairs(a, b)
    return float(np.mean(a == b)) if a.size else float("nan")


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with its confidence interval."""

    kappa: float
    ci_low: float
    ci_high: float
    n: int


def _kappa_from_confusion(matrix: np.ndarray, weights: str | None) -> float:
    k = matrix.shape[0]
    n = matrix.sum()
    if n == 0:
        return float("nan")
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(np.float64)
    elif weights == "linear":
        w = np.abs(i - j) / (k - 1)
    elif weights == "quadratic":
        w = ((i - j) / (k - 1)) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")
    observed = matrix / n
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    denominator = (w * expected).sum()
    if denominator == 0:
        return 1.0 if (w * observed).sum() == 0 else float("nan")
    return float(1 - (w * observed).sum() / denominator)


def cohen_kappa(
    a, b, *, weights: str | None = None, ci: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> KappaResult:
    """Cohen's kappa (unweighted, linear or quadratic weights) with a confidence interval.

    The interval is a percentile bootstrap over items (``n_boot`` resamples, seeded; 0 for no
    interval), for every weighting alike. Equals scikit-learn's ``cohen_kappa_score``.
    """
    a, b = _pairs(a, b)
    labels = GRADES if a.size == 0 else tuple(sorted(set(GRADES) | set(a) | set(b)))
    kappa = _kappa_from_confusion(confusion(a, b, labels), weights)
    if a.size < 2 or n_boot == 0:
        return KappaResult(kappa, float("nan"), float("nan"), int(a.size))
    rng = np.random.default_rng(seed)
    k = len(labels)
    index = {g: i for i, g in enumerate(labels)}
    codes = np.array([index[x] * k + index[y] for x, y in zip(a, b, strict=True)])
    draws = rng.integers(0, a.size, size=(n_boot, a.size))
    counts = np.apply_along_axis(np.bincount, 1, codes[draws], minlength=k * k)
    boots = np.array([_kappa_from_confusion(c.reshape(k, k), weights) for c in counts])
    boots = boots[np.isfinite(boots)]
    alpha = (1 - ci) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha]) if boots.size else (np.nan, np.nan)
    return KappaResult(kappa, float(low), float(high), int(a.size))


def light_kappa(ratings: np.ndarray, *, weights: str | None = None) -> float:
    """Light's kappa: the mean of Cohen's kappa over every pair of raters (columns)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    n_raters = ratings.shape[1]
    values = [
        cohen_kappa(ratings[:, i], ratings[:, j], weights=weights, n_boot=0).kappa
        for i in range(n_raters)
        for j in range(i + 1, n_raters)
    ]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def fleiss_kappa(ratings: np.ndarray, labels: Sequence[int] = GRADES) -> float:
    """Fleiss' kappa of items (rows) rated by the same number of raters (columns)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    ratings = ratings[np.all(np.isfinite(ratings), axis=1)]
    counts = np.stack([(ratings == g).sum(axis=1) for g in labels], axis=1).astype(np.float64)
    n = counts.sum(axis=1)[0]
    if counts.shape[0] == 0 or n < 2:
        return float("nan")
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


@dataclass(frozen=True)
class IccResult:
    """An intraclass correlation with its F-based confidence interval."""

    icc: float
    ci_low: float
    ci_high: float


def icc_2_1(values: np.ndarray, *, ci: float = 0.95) -> IccResult:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979).

    Args:
        values: (n_items, n_raters); items with a missing value are left out.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    # McGraw & Wong (1996) interval for ICC(A,1).
    a = k * icc / (n * (1 - icc))
    b = 1 + k * icc * (n - 1) / (n * (1 - icc))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    alpha = (1 - ci) / 2
    f_high = stats.f.ppf(1 - alpha, n - 1, v)
    f_low = stats.f.ppf(1 - alpha, v, n - 1)
    low = n * (msr - f_high * mse) / (f_high * (k * msc + (k * n - k - n) * mse) + n * msr)
    high = n * (f_low * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_low * msr)
    return IccResult(float(icc), float(low), float(high))


@dataclass(frozen=True)
class RocCurve:
    """One-vs-rest ROC of one grade (``auc`` None when the grade is absent or alone)."""

    grade: int
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float | None


def roc_per_grade(y_true, probabilities) -> list[RocCurve]:
    """One-vs-rest ROC curve and AUC per grade from (N, 4) model probabilities."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probabilities, dtype=np.float64)
    curves = []
    for g in GRADES:
        positive = y == g
        if positive.all() or not positive.any():
            curves.append(RocCurve(g, np.array([0.0, 1.0]), np.array([0.0, 1.0]), None))
            continue
        fpr, tpr, _ = roc_curve(positive, p[:, g])
        curves.append(RocCurve(g, fpr, tpr, float(roc_auc_score(positive, p[:, g]))))
    return curves


@dataclass(frozen=True)
class BlandAltman:
    """Bias and 95 % limits of agreement of paired measurements."""

    mean_diff: float
    sd: float
    loa_low: float
    loa_high: float
    means: np.ndarray
    diffs: np.ndarray
    n: int


def bland_altman(a, b) -> BlandAltman:
    """Bland-Altman of paired measurements (difference = b - a; limits = bias +- 1.96 SD)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diffs = b - a
    bias = float(diffs.mean()) if diffs.size else float("nan")
    sd = float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan")
    return BlandAltman(
        bias, sd, bias - 1.96 * sd, bias + 1.96 * sd, (a + b) / 2, diffs, int(diffs.size)
    )


# ---------------------------------------------------------------- consensus


def consensus_mask(masks: np.ndarray) -> np.ndarray:
    """Pixel majority of (R, H, W) masks; a tie (even R) counts as gland."""
    masks = np.asarray(masks, dtype=bool)
    return masks.sum(axis=0) * 2 >= masks.shape[0]


def consensus_grade(grades: np.ndarray) -> np.ndarray:
    """Median grade per item over raters (columns), NaN-aware, halves rounded up."""
    grades = np.asarray(grades, dtype=np.float64)
    with np.errstate(all="ignore"):
        median = np.nanmedian(grades, axis=1)
    return np.floor(median + 0.5)
