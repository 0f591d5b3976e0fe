"""Agreement statistics on arrays: masks (IoU, Dice, surface distances), grades (kappa family,
ROC), areas (ICC, Bland-Altman), and consensus labels. Pure, vectorised, no store, no UI.

Conventions (the Review page, the report and ``sgus evaluate`` all rely on them):

* Masks are bool arrays, ``(H, W)`` or stacks ``(N, H, W)``; anything non-zero is gland.
  ``a`` is the reference (ground truth), ``b`` the candidate (prediction or second rater).
* Gland IoU = TP / (|A| + |B| - TP) = TP / (TP + FP + FN); Dice = 2 IoU / (1 + IoU).
* Two empty masks agree perfectly: IoU = Dice = 1, precision = recall = 1, distances 0.
  One empty mask against a non-empty one: IoU = Dice = 0 and infinite surface distances
  (``inf``, not NaN, so that sorting and "worst case" views put these frames last; use
  ``np.isfinite`` before averaging). Any other ratio with a zero denominator is NaN.
* Distances are in mm when ``spacing_mm`` is given (one number for square pixels, or
  ``(row_mm, col_mm)``), else in pixels.
* Grades are integers (default labels 0-3). Missing grades are NaN or negative (-1) and are left
  out pairwise; a finite grade that is not one of the labels raises :class:`ScoreError`.
* Invalid option values (an unknown ``weights``, ``ci`` outside (0, 1)) are programming errors
  and raise ``ValueError`` naming the choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage, stats

from sgus_core.errors import MaskError, ScoreError
from sgus_core.vocabulary import GRADES

WEIGHTS = (None, "linear", "quadratic")
# Bland-Altman limits of agreement: bias +- 1.96 SD covers 95 % of differences (normal).
LOA_Z = 1.96
# Images per block when counting pixels of a stack: keeps the temporaries around 4 MB
# (cache-friendly) whatever N is.
_COUNT_BLOCK_PIXELS = 1 << 22

Spacing = float | tuple[float, float] | None


# ---------------------------------------------------------------- masks


@dataclass(frozen=True)
class MaskAgreement:
    """How two masks of one frame agree.

    Distances (``hausdorff``, ``hd95``, ``assd``) are in mm when spacing was given, else px;
    ``area_*_mm2`` are None without spacing. See the module docstring for empty masks.
    """

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
    hausdorff: float = float("nan")
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def sensitivity(self) -> float:
        """Recall under its clinical name."""
        return self.recall


def _as_mask_pair(
    a: ArrayLike, b: ArrayLike, *, ndims: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a).astype(bool, copy=False)
    b = np.asarray(b).astype(bool, copy=False)
    if a.shape != b.shape:
        raise MaskError(f"The two masks differ in size: {a.shape} vs {b.shape}.")
    if a.ndim not in ndims:
        raise MaskError(
            f"Expected masks of {' or '.join(f'{n} dimensions' for n in ndims)}, "
            f"got shape {a.shape}."
        )
    return a, b


def _count_true_rows(x: np.ndarray) -> np.ndarray:
    """True pixels per row of a bool (N, P) array, 8 pixels per machine word."""
    n, p = x.shape
    words = -(-p // 8)
    out = np.empty(n, dtype=np.int64)
    step = max(1, _COUNT_BLOCK_PIXELS // max(p, 1))
    for start in range(0, n, step):
        block = x[start : start + step]
        if p % 8 or not block.flags.c_contiguous:
            padded = np.zeros((block.shape[0], words * 8), dtype=bool)
            padded[:, :p] = block
            block = padded
        # A numpy bool is one byte holding 0 or 1, so the set bits of a 64-bit word are the
        # True pixels among its 8 bytes: popcount counts 8 pixels in one operation.
        out[start : start + step] = np.bitwise_count(block.view(np.uint64)).sum(
            axis=1, dtype=np.int64
        )
    return out


def pixel_counts(
    a: ArrayLike, b: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN and TN pixel counts of mask pairs, ``a`` being the reference.

    Args:
        a: reference masks, bool-like, (H, W) or (N, H, W).
        b: candidate masks of the same shape.

    Returns:
        ``(tp, fp, fn, tn)``: int64 arrays of shape (N,), or 0-d arrays for a single pair.
        These are what a store keeps per image to aggregate later without the masks.

    Raises:
        MaskError: the shapes differ or are not 2-D / 3-D.
    """
    a, b = _as_mask_pair(a, b, ndims=(2, 3))
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    n, h, w = a.shape
    flat_a, flat_b = a.reshape(n, h * w), b.reshape(n, h * w)
    area_a = _count_true_rows(flat_a)
    area_b = _count_true_rows(flat_b)
    tp = np.empty(n, dtype=np.int64)
    step = max(1, _COUNT_BLOCK_PIXELS // max(h * w, 1))
    for start in range(0, n, step):
        tp[start : start + step] = _count_true_rows(
            flat_a[start : start + step] & flat_b[start : start + step]
        )
    fp, fn = area_b - tp, area_a - tp
    tn = h * w - tp - fp - fn
    if single:
        return tp[0], fp[0], fn[0], tn[0]
    return tp, fp, fn, tn


def iou_from_counts(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> np.ndarray:
    """IoU from pixel counts: TP / (TP + FP + FN), 1.0 where all three are 0 (both empty).

    Element-wise, so per-image counts give per-image IoU; pass sums (``tp.sum()``, ...) for the
    pooled IoU of a whole set, which weights large glands more than the mean of per-image IoU.

    Args:
        tp, fp, fn: non-negative counts, scalars or arrays broadcastable together.

    Returns:
        float64 array of the broadcast shape (0-d for scalars), values in [0, 1].

    Raises:
        MaskError: a count is negative.
    """
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    if (tp < 0).any() or (fp < 0).any() or (fn < 0).any():
        raise MaskError("Pixel counts must be non-negative.")
    union = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, 1.0)


def dice_from_iou(iou: ArrayLike) -> np.ndarray:
    """Dice = 2 IoU / (1 + IoU), element-wise (float64, same shape as ``iou``)."""
    iou = np.asarray(iou, dtype=np.float64)
    return 2 * iou / (1 + iou)


def dice_from_counts(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> np.ndarray:
    """Dice = 2 TP / (2 TP + FP + FN), 1.0 where all counts are 0; see :func:`iou_from_counts`."""
    return dice_from_iou(iou_from_counts(tp, fp, fn))


def batch_iou_dice(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair IoU and Dice of mask stacks.

    Args:
        a: reference masks, bool-like, (N, H, W) (or a single (H, W) pair).
        b: candidate masks of the same shape.

    Returns:
        ``(iou, dice)``: float64 arrays of shape (N,) (0-d for a single pair); 1.0 for two empty
        masks.

    Raises:
        MaskError: the shapes differ or are not 2-D / 3-D.
    """
    tp, fp, fn, _ = pixel_counts(a, b)
    iou = iou_from_counts(tp, fp, fn)
    return iou, dice_from_iou(iou)


def _sampling(spacing_mm: Spacing) -> tuple[float, float] | None:
    if spacing_mm is None:
        return None
    sizes = np.asarray(spacing_mm, dtype=np.float64)
    if sizes.ndim == 0:
        row = col = float(sizes)
    else:
        row, col = (float(s) for s in sizes)
    if not (row > 0 and col > 0):
        raise MaskError(f"Pixel spacing must be positive, got {spacing_mm!r} mm.")
    return row, col


def _surface(mask: np.ndarray) -> np.ndarray:
    # Pixels of the mask with a 4-neighbour outside it (the frame's edge counts as outside).
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_distances(a: ArrayLike, b: ArrayLike, spacing_mm: Spacing = None) -> np.ndarray:
    """Distances from each boundary pixel of each mask to the nearest boundary pixel of the other.

    Boundary pixels are mask pixels with a 4-neighbour outside the mask; distances are Euclidean
    between pixel centres (``scipy.ndimage.distance_transform_edt``).

    Args:
        a, b: bool-like (H, W) masks, both non-empty.
        spacing_mm: pixel size (one number, or ``(row_mm, col_mm)``); None for pixels.

    Returns:
        float64 (|S(a)| + |S(b)|,): a's boundary to b's, then b's boundary to a's.

    Raises:
        MaskError: shapes differ, masks not 2-D, a mask empty, or spacing not positive.
    """
    a, b = _as_mask_pair(a, b, ndims=(2,))
    if not a.any() or not b.any():
        raise MaskError("Surface distances need two non-empty masks.")
    sampling = _sampling(spacing_mm)
    # Every boundary pixel lies in the bounding box of the union, so distances computed inside
    # that box are exact; the crop only saves time on large frames with small glands.
    rows = np.flatnonzero((a | b).any(axis=1))
    cols = np.flatnonzero((a | b).any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    sa, sb = _surface(a)[box], _surface(b)[box]
    to_b = ndimage.distance_transform_edt(~sb, sampling=sampling)
    to_a = ndimage.distance_transform_edt(~sa, sampling=sampling)
    return np.concatenate([to_b[sa], to_a[sb]]).astype(np.float64)


def _ratio(num: int, den: int, both_empty: bool) -> float:
    if den:
        return num / den
    return 1.0 if both_empty else float("nan")


def mask_agreement(a: ArrayLike, b: ArrayLike, *, spacing_mm: Spacing = None) -> MaskAgreement:
    """Every per-frame figure of two masks of one frame; ``a`` is the reference.

    HD95 is the 95th percentile of the pooled boundary distances of both directions (MedPy's
    ``hd95``); ASSD is their mean, i.e. the sum of both directions' distances over the number of
    boundary pixels of both masks (Heimann et al. 2009); ``hausdorff`` is their maximum.

    Args:
        a: reference mask, bool-like (H, W).
        b: candidate mask, same shape.
        spacing_mm: pixel size (one number, or ``(row_mm, col_mm)``) for mm and mm2 figures.

    Returns:
        A :class:`MaskAgreement`; empty-mask conventions are in the module docstring.

    Raises:
        MaskError: the masks differ in shape or are not 2-D, or spacing is not positive.
    """
    a, b = _as_mask_pair(a, b, ndims=(2,))
    sampling = _sampling(spacing_mm)
    tp, fp, fn, tn = (int(v) for v in pixel_counts(a, b))
    any_a, any_b = tp + fn > 0, tp + fp > 0
    both_empty = not any_a and not any_b
    if both_empty:
        hd = hd95 = assd = 0.0
    elif not any_a or not any_b:
        hd = hd95 = assd = float("inf")
    else:
        d = surface_distances(a, b, sampling)
        hd, hd95, assd = float(d.max()), float(np.percentile(d, 95)), float(d.mean())
    iou = float(iou_from_counts(tp, fp, fn))
    mm2 = None if sampling is None else sampling[0] * sampling[1]
    return MaskAgreement(
        iou=iou,
        dice=float(dice_from_iou(iou)),
        precision=_ratio(tp, tp + fp, both_empty),
        recall=_ratio(tp, tp + fn, both_empty),
        specificity=_ratio(tn, tn + fp, both_empty),
        accuracy=(tp + tn) / a.size if a.size else float("nan"),
        hd95=hd95,
        assd=assd,
        area_a_px=tp + fn,
        area_b_px=tp + fp,
        area_a_mm2=None if mm2 is None else (tp + fn) * mm2,
        area_b_mm2=None if mm2 is None else (tp + fp) * mm2,
        hausdorff=hd,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
    )


# ---------------------------------------------------------------- grades


def _grade_codes(values: ArrayLike, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(index into labels, present?) for each value; NaN and negatives are missing."""
    x = np.asarray(values, dtype=np.float64)
    present = np.isfinite(x) & (x >= 0)
    given = x[present]
    if given.size and not np.all(given == np.round(given)):
        raise ScoreError(f"Grades must be whole numbers; got {given[given != np.round(given)][0]}.")
    order = np.asarray(labels, dtype=np.float64)
    idx = np.searchsorted(order, np.where(present, x, order[0]))
    idx = np.clip(idx, 0, len(order) - 1)
    bad = present & (order[idx] != np.where(present, x, order[0]))
    if bad.any():
        raise ScoreError(
            f"Grade {x[bad][0]:g} is outside the allowed grades {tuple(int(v) for v in labels)}."
        )
    return idx, present


def _paired_codes(
    a: ArrayLike, b: ArrayLike, labels: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    labels = _check_labels(labels)
    ia, pa = _grade_codes(a, labels)
    ib, pb = _grade_codes(b, labels)
    if ia.shape != ib.shape:
        raise ScoreError(f"The two grade lists differ in length: {ia.shape} vs {ib.shape}.")
    keep = pa & pb
    return ia[keep], ib[keep]


def _check_labels(labels: Sequence[int]) -> tuple[int, ...]:
    labels = tuple(int(v) for v in labels)
    if len(labels) < 2 or list(labels) != sorted(set(labels)):
        raise ValueError(f"labels must be at least two increasing integers, got {labels}.")
    return labels


def confusion(a: ArrayLike, b: ArrayLike, labels: Sequence[int] = GRADES) -> np.ndarray:
    """Confusion matrix of paired grades (pairs with a missing grade are left out).

    Args:
        a: grades of the reference, shape (N,); NaN or negative for missing.
        b: grades of the other source, shape (N,).
        labels: the allowed grades, increasing.

    Returns:
        int64 (k, k) counts, k = len(labels): rows are ``a``'s grade, columns ``b``'s
        (scikit-learn's ``confusion_matrix`` layout).

    Raises:
        ScoreError: a grade is not one of ``labels`` or not whole, or the lengths differ.
    """
    ia, ib = _paired_codes(a, b, labels)
    k = len(labels)
    return np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(np.int64)


def accuracy(a: ArrayLike, b: ArrayLike, labels: Sequence[int] = GRADES) -> float:
    """Share of complete pairs with the same grade; NaN when there is no complete pair.

    Raises:
        ScoreError: as :func:`confusion`.
    """
    ia, ib = _paired_codes(a, b, labels)
    return float(np.mean(ia == ib)) if ia.size else float("nan")


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with its confidence interval.

    ``method`` says how the interval was made: "asymptotic" (unweighted, Fleiss-Cohen-Everitt
    standard error), "bootstrap" (weighted), or "none". ``se`` is the asymptotic standard error,
    or the standard deviation of the bootstrap kappas.
    """

    kappa: float
    ci_low: float
    ci_high: float
    n: int
    se: float = float("nan")
    method: str = "none"


def _disagreement_weights(labels: Sequence[int], weights: str | None) -> np.ndarray:
    values = np.asarray(labels, dtype=np.float64)
    distance = np.abs(values[:, None] - values[None, :]) / (values[-1] - values[0])
    if weights is None:
        return (distance > 0).astype(np.float64)
    if weights == "linear":
        return distance
    if weights == "quadratic":
        return distance**2
    raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}.")


def _kappa_batch(tables: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Kappa of each (k, k) table in a (B, k, k) stack (vectorised)."""
    tables = tables.astype(np.float64)
    n = tables.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = tables / n[:, None, None]
        expected = observed.sum(axis=2)[:, :, None] * observed.sum(axis=1)[:, None, :]
        d_obs = (w * observed).sum(axis=(1, 2))
        d_exp = (w * expected).sum(axis=(1, 2))
        kappa = 1 - d_obs / d_exp
    # Expected disagreement 0 means both raters used one and the same grade throughout: they
    # then agree on every item, and we call that perfect agreement rather than undefined.
    kappa = np.where((d_exp == 0) & (d_obs == 0), 1.0, kappa)
    return np.where(n > 0, kappa, np.nan)


def kappa_from_confusion(
    matrix: ArrayLike, weights: str | None = None, labels: Sequence[int] | None = None
) -> float:
    """Cohen's kappa of a (k, k) confusion matrix (so stored counts can be aggregated).

    Args:
        matrix: (k, k) counts, rows one rater, columns the other.
        weights: None (unweighted), "linear" or "quadratic" disagreement weights.
        labels: the grade of each row; weights use grade distances. Default ``0..k-1``.

    Returns:
        kappa as a float; NaN for an empty matrix; 1.0 when both raters used one same grade.

    Raises:
        ValueError: ``weights`` unknown or the matrix not square / labels of the wrong length.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square, got shape {m.shape}.")
    labels = _check_labels(range(m.shape[0]) if labels is None else labels)
    if len(labels) != m.shape[0]:
        raise ValueError(f"{len(labels)} labels for a {m.shape[0]}x{m.shape[0]} matrix.")
    return float(_kappa_batch(m[None], _disagreement_weights(labels, weights))[0])


def _kappa_se_fleiss_cohen_everitt(table: np.ndarray, kappa: float) -> float:
    """Large-sample standard error of unweighted kappa (Fleiss, Cohen & Everitt 1969)."""
    n = table.sum()
    p = table / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    p_e = float(row @ col)
    if p_e >= 1:
        return 0.0
    diag = np.diag(p)
    term_a = (diag * (1 - (row + col) * (1 - kappa)) ** 2).sum()
    # Off-diagonal cell (i, j) is weighted by (column margin of i + row margin of j) squared.
    off = p * (col[:, None] + row[None, :]) ** 2
    np.fill_diagonal(off, 0.0)
    term_b = (1 - kappa) ** 2 * off.sum()
    term_c = (kappa - p_e * (1 - kappa)) ** 2
    var = (term_a + term_b - term_c) / ((1 - p_e) ** 2 * n)
    return float(np.sqrt(max(var, 0.0)))


def _check_ci(ci: float) -> None:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be a level between 0 and 1 (e.g. 0.95), not {ci!r}.")


def cohen_kappa(
    a: ArrayLike,
    b: ArrayLike,
    weights: str | None = None,
    ci: float = 0.95,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    labels: Sequence[int] = GRADES,
) -> KappaResult:
    """Cohen's kappa of two raters' grades, unweighted or weighted, with a confidence interval.

    The kappa equals scikit-learn's ``cohen_kappa_score(a, b, labels=labels, weights=weights)``;
    weights use grade distances over ``labels`` (so an unused grade still counts as a step).

    Interval:
      * unweighted: kappa +- z * SE with the asymptotic (non-null) standard error of Fleiss,
        Cohen & Everitt (1969), as statsmodels' ``cohens_kappa``; clipped to [-1, 1];
      * linear / quadratic: percentile bootstrap over items, ``n_boot`` resamples from a seeded
        generator. Resampling N items with replacement only changes the confusion table, so it
        is drawn directly as a multinomial over its cells (exactly the same distribution, and
        O(n_boot * k^2) whatever N is). ``n_boot=0`` gives no interval (NaN bounds).
    With fewer than two complete pairs the bounds are NaN.

    Args:
        a, b: grades, shape (N,); NaN or negative for missing (left out pairwise).
        weights: None, "linear" or "quadratic".
        ci: confidence level.
        n_boot: bootstrap resamples for the weighted interval.
        seed: seed of the bootstrap generator (same inputs, same interval).
        labels: the allowed grades, increasing.

    Returns:
        :class:`KappaResult` with ``n`` the number of complete pairs (kappa NaN when 0).

    Raises:
        ScoreError: a grade outside ``labels`` or not whole, or the lengths differ.
        ValueError: ``weights`` unknown or ``ci`` not in (0, 1).
    """
    _check_ci(ci)
    labels = _check_labels(labels)
    w = _disagreement_weights(labels, weights)
    table = confusion(a, b, labels)
    n = int(table.sum())
    kappa = float(_kappa_batch(table[None], w)[0])
    if n < 2:
        return KappaResult(kappa, float("nan"), float("nan"), n)
    alpha = (1 - ci) / 2
    if weights is None:
        se = _kappa_se_fleiss_cohen_everitt(table.astype(np.float64), kappa)
        z = float(stats.norm.ppf(1 - alpha))
        low, high = max(-1.0, kappa - z * se), min(1.0, kappa + z * se)
        return KappaResult(kappa, low, high, n, se, "asymptotic")
    if n_boot <= 0:
        return KappaResult(kappa, float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    k = len(labels)
    draws = rng.multinomial(n, table.ravel() / n, size=n_boot).reshape(n_boot, k, k)
    boots = _kappa_batch(draws, w)
    boots = boots[np.isfinite(boots)]
    if not boots.size:
        return KappaResult(kappa, float("nan"), float("nan"), n)
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return KappaResult(kappa, float(low), float(high), n, float(boots.std(ddof=1)), "bootstrap")


def _ratings_matrix(ratings: ArrayLike) -> np.ndarray:
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2:
        raise ScoreError(f"Ratings must be a table of items x raters, got shape {x.shape}.")
    return np.where(x >= 0, x, np.nan)  # negatives mean missing, as for pairs


def light_kappa(
    ratings: ArrayLike, *, weights: str | None = None, labels: Sequence[int] = GRADES
) -> float:
    """Light's kappa: the mean of Cohen's kappa over every pair of raters.

    Each pair uses the items both graded (NaN or negative = missing); a pair with no common item,
    or whose kappa is undefined, is left out of the mean.

    Args:
        ratings: (n_items, n_raters) grades.
        weights: None, "linear" or "quadratic", applied to every pair.
        labels: the allowed grades.

    Returns:
        The mean pairwise kappa; NaN when no pair has a kappa.

    Raises:
        ScoreError: ratings not 2-D, or a grade outside ``labels``.
        ValueError: ``weights`` unknown.
    """
    x = _ratings_matrix(ratings)
    n_raters = x.shape[1]
    values = [
        cohen_kappa(x[:, i], x[:, j], weights, labels=labels, n_boot=0).kappa
        for i in range(n_raters)
        for j in range(i + 1, n_raters)
    ]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def fleiss_kappa(ratings: ArrayLike, labels: Sequence[int] = GRADES) -> float:
    """Fleiss' kappa for items each graded by the same number of raters (Fleiss 1971).

    Items with any missing grade are left out (the statistic needs the same number of ratings per
    item); raters need not be the same people across items. Equals statsmodels'
    ``fleiss_kappa(aggregate_raters(ratings)[0])``.

    Args:
        ratings: (n_items, n_raters) grades, NaN or negative for missing.
        labels: the allowed grades.

    Returns:
        kappa; NaN with no complete item or fewer than two raters; 1.0 when every rating is the
        same grade.

    Raises:
        ScoreError: ratings not 2-D, or a grade outside ``labels``.
    """
    x = _ratings_matrix(ratings)
    x = x[np.all(np.isfinite(x), axis=1)]
    labels = _check_labels(labels)
    n_items, n_raters = x.shape
    if n_items == 0 or n_raters < 2:
        return float("nan")
    codes, _ = _grade_codes(x, labels)
    k = len(labels)
    counts = np.zeros((n_items, k))
    np.add.at(counts, (np.repeat(np.arange(n_items), n_raters), codes.ravel()), 1)
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts**2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


@dataclass(frozen=True)
class IccResult:
    """An intraclass correlation with its F-based confidence interval; ``n`` items used."""

    icc: float
    ci_low: float
    ci_high: float
    n: int = 0


def icc_2_1(values: ArrayLike, *, ci: float = 0.95) -> IccResult:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979).

    ICC = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n) from the two-way ANOVA without
    replication (rows = items, columns = raters). The interval is the F-based one with
    Satterthwaite degrees of freedom (Shrout & Fleiss 1979, eq. for ICC(2,1); McGraw & Wong 1996
    ICC(A,1)), the same as R ``psych::ICC`` and pingouin.

    Args:
        values: (n_items, n_raters) measurements; items with a missing value are left out.
        ci: confidence level.

    Returns:
        :class:`IccResult`; all NaN with fewer than two items or raters, or no variance at all.
        The bounds are NaN when the interval is undefined (e.g. perfect agreement).

    Raises:
        ScoreError: ``values`` is not a 2-D table.
        ValueError: ``ci`` not in (0, 1).
    """
    _check_ci(ci)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ScoreError(f"ICC needs a table of items x raters, got shape {x.shape}.")
    x = x[np.all(np.isfinite(x), axis=1)]
    n, k = x.shape
    nan = float("nan")
    if n < 2 or k < 2:
        return IccResult(nan, nan, nan, n)
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = max(((x - grand) ** 2).sum() - ss_rows - ss_cols, 0.0)
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        a = k * icc / (n * (1 - icc))
        b = 1 + k * icc * (n - 1) / (n * (1 - icc))
        v = (a * msc + b * mse) ** 2 / (
            (a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1))
        )
        alpha = (1 - ci) / 2
        f_high = stats.f.ppf(1 - alpha, n - 1, v)
        f_low = stats.f.ppf(1 - alpha, v, n - 1)
        low = n * (msr - f_high * mse) / (f_high * (k * msc + (k * n - k - n) * mse) + n * msr)
        high = n * (f_low * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_low * msr)
    icc_f, low_f, high_f = (float(v) if np.isfinite(v) else nan for v in (icc, low, high))
    return IccResult(icc_f, low_f, high_f, n)


@dataclass(frozen=True, eq=False)
class RocCurve:
    """One-vs-rest ROC of one grade; ``auc`` is None when the grade is absent or alone."""

    grade: int
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float | None
    n_positive: int = 0


def roc_per_grade(
    y_true: ArrayLike, probabilities: ArrayLike, labels: Sequence[int] = GRADES
) -> list[RocCurve]:
    """One-vs-rest ROC curve and AUC per grade from model probabilities.

    Items with a missing true grade (NaN or negative) or a non-finite probability are left out.
    A grade that no remaining item has (or that every item has) gets the chance diagonal and
    ``auc=None``: its AUC is undefined, not 0.5.

    Args:
        y_true: true grades, shape (N,).
        probabilities: (N, k) probabilities (or scores), column j for ``labels[j]``.
        labels: the grades, increasing.

    Returns:
        One :class:`RocCurve` per label, in label order (fpr, tpr as scikit-learn's
        ``roc_curve``).

    Raises:
        ScoreError: shapes disagree, or a true grade is outside ``labels``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = _check_labels(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    codes, present = _grade_codes(y_true, labels)
    if p.ndim != 2 or p.shape != (codes.shape[0], len(labels)):
        raise ScoreError(
            f"Expected probabilities of shape ({codes.shape[0]}, {len(labels)}), got {p.shape}."
        )
    keep = present & np.all(np.isfinite(p), axis=1)
    codes, p = codes[keep], p[keep]
    curves = []
    for j, grade in enumerate(labels):
        positive = codes == j
        n_pos = int(positive.sum())
        if n_pos == 0 or n_pos == positive.size:
            curves.append(RocCurve(grade, np.array([0.0, 1.0]), np.array([0.0, 1.0]), None, n_pos))
            continue
        fpr, tpr, _ = roc_curve(positive, p[:, j])
        curves.append(RocCurve(grade, fpr, tpr, float(roc_auc_score(positive, p[:, j])), n_pos))
    return curves


@dataclass(frozen=True, eq=False)
class BlandAltman:
    """Bias and 95 % limits of agreement of paired measurements (difference = b - a)."""

    mean_diff: float
    sd: float
    loa_low: float
    loa_high: float
    means: np.ndarray
    diffs: np.ndarray
    n: int

    @property
    def bias(self) -> float:
        """The mean difference under its Bland-Altman name."""
        return self.mean_diff


def bland_altman(a: ArrayLike, b: ArrayLike) -> BlandAltman:
    """Bland-Altman analysis of paired measurements (Bland & Altman 1986).

    Differences are ``b - a``; bias is their mean, SD their sample standard deviation
    (ddof = 1), limits of agreement bias +- 1.96 SD. Pairs with a non-finite value are left out.

    Args:
        a, b: paired measurements, shape (N,).

    Returns:
        :class:`BlandAltman` with ``means`` = (a + b) / 2 and ``diffs`` of the complete pairs;
        bias NaN with no pair, SD and limits NaN with fewer than two.

    Raises:
        ScoreError: the two inputs differ in length.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ScoreError(f"Paired measurements differ in length: {a.size} vs {b.size}.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diffs = b - a
    bias = float(diffs.mean()) if diffs.size else float("nan")
    sd = float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan")
    return BlandAltman(
        bias, sd, bias - LOA_Z * sd, bias + LOA_Z * sd, (a + b) / 2, diffs, int(diffs.size)
    )


# ---------------------------------------------------------------- consensus


def consensus_mask(masks: ArrayLike) -> np.ndarray:
    """Pixel-wise majority of several raters' masks of one frame.

    A tie (an even number of raters, half of them marking the pixel) counts as gland: with two
    raters the consensus is their union, so no gland tissue a rater marked is dropped.

    Args:
        masks: (R, H, W) bool-like, R >= 1.

    Returns:
        bool (H, W).

    Raises:
        MaskError: not a stack of 2-D masks, or R = 0.
    """
    masks = np.asarray(masks).astype(bool, copy=False)
    if masks.ndim != 3 or masks.shape[0] == 0:
        raise MaskError(
            f"Consensus needs a stack of masks (R, H, W) with R >= 1, not {masks.shape}."
        )
    return masks.sum(axis=0, dtype=np.int64) * 2 >= masks.shape[0]


def consensus_grade(grades: ArrayLike) -> np.ndarray:
    """Median grade per item over raters, ignoring missing grades (NaN or negative).

    A median halfway between two grades (an even number of raters split evenly) is rounded up
    to the more severe grade, so a disagreement is not resolved towards "normal".

    Args:
        grades: (n_items, n_raters) grades.

    Returns:
        float64 (n_items,) whole grades; NaN for an item nobody graded.

    Raises:
        ScoreError: ``grades`` is not a 2-D table.
    """
    x = _ratings_matrix(grades)
    out = np.full(x.shape[0], np.nan)
    graded = np.isfinite(x).any(axis=1)
    if graded.any():
        out[graded] = np.floor(np.nanmedian(x[graded], axis=1) + 0.5)
    return out
