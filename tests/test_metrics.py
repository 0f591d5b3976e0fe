"""Agreement statistics, each checked against scikit-learn, statsmodels, SciPy or hand values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import directed_hausdorff
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    roc_auc_score,
    roc_curve,
)
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from sgus_core import metrics
from sgus_core.errors import MaskError, ScoreError

RNG = np.random.default_rng(3)
A = RNG.integers(0, 4, 200)
B = np.clip(A + RNG.choice([-1, 0, 0, 0, 1], 200), 0, 3)

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def _square(size: int, rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[rows, cols] = True
    return mask


def _outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixel coordinates by hand: mask pixels with a 4-neighbour outside the mask."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return np.argwhere(mask & ~inner).astype(float)


# ---------------------------------------------------------------- masks


def test_batch_iou_and_dice_match_scikit_learn():
    """Per-mask IoU and Dice equal sklearn's Jaccard and F1 on the flattened pixels."""
    a = RNG.random((5, 30, 40)) > 0.5
    b = RNG.random((5, 30, 40)) > 0.4
    iou, dice = metrics.batch_iou_dice(a, b)
    assert iou.shape == dice.shape == (5,)
    for i in range(5):
        assert iou[i] == pytest.approx(jaccard_score(a[i].ravel(), b[i].ravel()))
        assert dice[i] == pytest.approx(f1_score(a[i].ravel(), b[i].ravel()))


def test_batch_iou_handles_sizes_that_are_not_a_multiple_of_eight():
    """Odd frame sizes and non-contiguous stacks count the same as a plain count_nonzero."""
    a = RNG.random((7, 13, 11)) > 0.5
    b = (RNG.random((7, 11, 13)) > 0.3).transpose(0, 2, 1)  # not C-contiguous
    tp, fp, fn, tn = metrics.pixel_counts(a, b)
    assert tp.tolist() == np.count_nonzero(a & b, axis=(1, 2)).tolist()
    assert fp.tolist() == np.count_nonzero(~a & b, axis=(1, 2)).tolist()
    assert fn.tolist() == np.count_nonzero(a & ~b, axis=(1, 2)).tolist()
    assert (tp + fp + fn + tn).tolist() == [13 * 11] * 7


def test_gland_iou_is_tp_over_union_of_areas_by_hand():
    """Two offset 10x10 squares sharing 50 px: IoU = 50 / (100 + 100 - 50), Dice = 0.5."""
    a = _square(20, slice(2, 12), slice(2, 12))
    b = _square(20, slice(7, 17), slice(2, 12))
    iou, dice = metrics.batch_iou_dice(a, b)
    assert float(iou) == pytest.approx(50 / 150)
    assert float(dice) == pytest.approx(0.5)


def test_iou_from_counts_aggregates_without_masks():
    """Stored per-image counts give the same IoU and Dice as the masks themselves."""
    a = RNG.random((6, 16, 16)) > 0.5
    b = RNG.random((6, 16, 16)) > 0.5
    tp, fp, fn, _ = metrics.pixel_counts(a, b)
    iou, dice = metrics.batch_iou_dice(a, b)
    assert np.allclose(metrics.iou_from_counts(tp, fp, fn), iou)
    assert np.allclose(metrics.dice_from_counts(tp, fp, fn), dice)
    pooled = metrics.iou_from_counts(tp.sum(), fp.sum(), fn.sum())
    assert pooled == pytest.approx(jaccard_score(a.ravel(), b.ravel()))


def test_negative_counts_are_refused():
    """A negative pixel count is a MaskError."""
    with pytest.raises(MaskError):
        metrics.iou_from_counts(-1, 0, 0)


def test_mask_agreement_on_hand_counted_squares():
    """Offset squares give the hand-counted confusion figures and areas in mm2."""
    a = _square(20, slice(2, 12), slice(2, 12))  # 100 px
    b = _square(20, slice(7, 17), slice(2, 12))  # 100 px, 50 shared
    m = metrics.mask_agreement(a, b, spacing_mm=0.1)
    assert (m.tp, m.fp, m.fn, m.tn) == (50, 50, 50, 250)
    assert m.iou == pytest.approx(50 / 150) and m.dice == pytest.approx(0.5)
    assert m.precision == m.recall == m.sensitivity == pytest.approx(0.5)
    assert m.specificity == pytest.approx(250 / 300)
    assert m.accuracy == pytest.approx(300 / 400)
    assert m.area_a_px == m.area_b_px == 100
    assert m.area_a_mm2 == pytest.approx(1.0) and m.area_b_mm2 == pytest.approx(1.0)


def test_mask_agreement_figures_match_scikit_learn_on_random_masks():
    """Precision, recall, specificity and accuracy equal sklearn's on random pixels."""
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    a = RNG.random((25, 30)) > 0.6
    b = RNG.random((25, 30)) > 0.5
    m = metrics.mask_agreement(a, b)
    assert m.precision == pytest.approx(precision_score(a.ravel(), b.ravel()))
    assert m.recall == pytest.approx(recall_score(a.ravel(), b.ravel()))
    assert m.specificity == pytest.approx(recall_score(~a.ravel(), ~b.ravel()))
    assert m.accuracy == pytest.approx(accuracy_score(a.ravel(), b.ravel()))


def test_hausdorff_95_equals_scipy_hausdorff_when_the_max_dominates():
    """A square shifted by 5 px: >5 % of boundary distances are the maximum, so HD95 = HD."""
    a = _square(40, slice(10, 20), slice(10, 20))
    b = _square(40, slice(10, 20), slice(15, 25))
    pa, pb = _outline(a), _outline(b)
    hd = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
    m = metrics.mask_agreement(a, b)
    assert hd == pytest.approx(5.0)
    assert m.hd95 == pytest.approx(hd) and m.hausdorff == pytest.approx(hd)
    assert metrics.mask_agreement(a, b, spacing_mm=0.5).hd95 == pytest.approx(hd * 0.5)


def test_hausdorff_matches_scipy_on_irregular_blobs():
    """The full Hausdorff distance of two random blobs equals SciPy's on their outlines."""
    a = RNG.random((30, 30)) > 0.3
    b = RNG.random((30, 30)) > 0.3
    pa, pb = _outline(a), _outline(b)
    hd = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
    assert metrics.mask_agreement(a, b).hausdorff == pytest.approx(hd)


def test_assd_is_the_pooled_mean_of_both_directions_by_hand():
    """ASSD = (sum of a->b distances + sum of b->a distances) / (|S(a)| + |S(b)|), by brute force."""
    a = _square(30, slice(5, 15), slice(5, 15))
    b = _square(30, slice(8, 20), slice(6, 22))
    pa, pb = _outline(a), _outline(b)
    d = np.linalg.norm(pa[:, None] - pb[None], axis=2)
    pooled = np.concatenate([d.min(axis=1), d.min(axis=0)])
    m = metrics.mask_agreement(a, b, spacing_mm=(0.2, 0.2))
    assert m.assd == pytest.approx(pooled.mean() * 0.2)
    assert m.hd95 == pytest.approx(np.percentile(pooled, 95) * 0.2)


def test_anisotropic_spacing_scales_rows_and_columns_separately():
    """A purely horizontal 5 px shift with 0.3 mm columns gives HD = 1.5 mm and mm2 = px * 0.06."""
    a = _square(40, slice(10, 20), slice(10, 20))
    b = _square(40, slice(10, 20), slice(15, 25))
    m = metrics.mask_agreement(a, b, spacing_mm=(0.2, 0.3))
    assert m.hausdorff == pytest.approx(1.5)
    assert m.area_a_mm2 == pytest.approx(100 * 0.06)


def test_two_empty_masks_agree_perfectly():
    """Both empty: IoU, Dice, precision and recall 1; distances 0."""
    empty = np.zeros((5, 5), bool)
    m = metrics.mask_agreement(empty, empty)
    assert m.iou == m.dice == m.precision == m.recall == 1.0
    assert m.hd95 == m.assd == m.hausdorff == 0.0


def test_one_empty_mask_has_iou_zero_and_infinite_distances():
    """One empty: IoU 0, distances inf, precision undefined (NaN) when nothing is predicted."""
    empty = np.zeros((5, 5), bool)
    full = np.ones((5, 5), bool)
    m = metrics.mask_agreement(full, empty)
    assert m.iou == m.dice == m.recall == 0.0
    assert m.hd95 == m.assd == float("inf") and np.isnan(m.precision)


def test_mask_shapes_that_differ_raise_a_mask_error():
    """Masks of different sizes are refused with a MaskError."""
    with pytest.raises(MaskError):
        metrics.mask_agreement(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(MaskError):
        metrics.batch_iou_dice(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))


@settings(max_examples=60, deadline=None)
@given(arrays(bool, (3, 8, 9)), arrays(bool, (3, 8, 9)))
def test_dice_is_a_function_of_iou_and_both_are_symmetric(a, b):
    """Dice = 2 IoU / (1 + IoU), both in [0, 1] and symmetric in their arguments."""
    iou, dice = metrics.batch_iou_dice(a, b)
    iou2, dice2 = metrics.batch_iou_dice(b, a)
    assert np.all((iou >= 0) & (iou <= 1) & (dice >= 0) & (dice <= 1))
    assert np.allclose(iou, iou2) and np.allclose(dice, dice2)
    assert np.allclose(dice, 2 * iou / (1 + iou))
    assert np.all(dice >= iou)


# ---------------------------------------------------------------- grades


def test_confusion_and_accuracy_match_scikit_learn():
    """The confusion matrix and accuracy equal sklearn's."""
    assert np.array_equal(metrics.confusion(A, B), confusion_matrix(A, B, labels=[0, 1, 2, 3]))
    assert metrics.accuracy(A, B) == pytest.approx(np.mean(A == B))


def test_grades_outside_the_labels_raise_a_score_error():
    """A grade of 4 on a 0-3 scale, or a fractional grade, is a ScoreError."""
    with pytest.raises(ScoreError):
        metrics.confusion([0, 4], [0, 1])
    with pytest.raises(ScoreError):
        metrics.cohen_kappa([0, 1.5], [0, 1])


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_scikit_learn(weights):
    """Unweighted, linear and quadratic kappa equal sklearn's cohen_kappa_score."""
    result = metrics.cohen_kappa(A, B, weights=weights)
    assert result.kappa == pytest.approx(cohen_kappa_score(A, B, weights=weights))
    assert result.n == 200


def test_weighted_kappa_keeps_an_unused_grade_as_a_step():
    """With grade 2 unused, weights still see 1 -> 3 as two steps (sklearn with labels=0..3)."""
    a = np.array([0, 1, 3, 3, 0, 1, 3, 0])
    b = np.array([0, 3, 3, 1, 1, 1, 3, 0])
    got = metrics.cohen_kappa(a, b, "linear").kappa
    assert got == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights="linear"))


def test_unweighted_kappa_interval_is_the_fleiss_cohen_everitt_one():
    """The unweighted SE and 95 % CI equal statsmodels' asymptotic cohens_kappa results."""
    reference = sm_cohens_kappa(confusion_matrix(A, B, labels=[0, 1, 2, 3]))
    result = metrics.cohen_kappa(A, B)
    assert result.method == "asymptotic"
    assert result.se == pytest.approx(reference.std_kappa)
    assert result.ci_low == pytest.approx(reference.kappa_low)
    assert result.ci_high == pytest.approx(reference.kappa_upp)


def test_weighted_kappa_bootstrap_interval_is_close_to_the_asymptotic_one():
    """The quadratic bootstrap CI brackets kappa and lies near statsmodels' asymptotic CI."""
    table = confusion_matrix(A, B, labels=[0, 1, 2, 3])
    reference = sm_cohens_kappa(table, wt="quadratic")
    result = metrics.cohen_kappa(A, B, "quadratic")
    assert result.method == "bootstrap"
    assert result.ci_low < result.kappa < result.ci_high
    assert result.ci_low == pytest.approx(reference.kappa_low, abs=0.02)
    assert result.ci_high == pytest.approx(reference.kappa_upp, abs=0.02)


def test_bootstrap_interval_is_reproducible_with_its_seed():
    """The same seed gives the same weighted interval."""
    first = metrics.cohen_kappa(A, B, "linear", seed=7)
    second = metrics.cohen_kappa(A, B, "linear", seed=7)
    assert (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)


def test_kappa_from_confusion_equals_kappa_from_grades():
    """A stored confusion matrix gives the same weighted kappa as the grades."""
    table = metrics.confusion(A, B)
    assert metrics.kappa_from_confusion(table, "quadratic") == pytest.approx(
        metrics.cohen_kappa(A, B, "quadratic").kappa
    )


def test_missing_grades_are_left_out_pairwise():
    """NaN (or -1) grades drop only their own pair."""
    a = np.array([0, 1, 2, np.nan, 3, -1])
    b = np.array([0, 1, np.nan, 2, 3, 2])
    assert metrics.cohen_kappa(a, b).n == 3
    assert metrics.accuracy(a, b) == 1.0
    assert metrics.confusion(a, b).sum() == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=3, max_size=30))
def test_kappa_of_a_rater_with_herself_is_one(grades):
    """A rater agrees perfectly with herself (kappa 1, also when she uses a single grade)."""
    assert metrics.cohen_kappa(grades, grades).kappa == pytest.approx(1.0)


def test_fleiss_kappa_matches_statsmodels():
    """Fleiss' kappa over five raters equals statsmodels'."""
    ratings = np.stack(
        [np.clip(A + RNG.choice([-1, 0, 0, 1], 200), 0, 3) for _ in range(5)], axis=1
    )
    table, _ = aggregate_raters(ratings, n_cat=4)
    assert metrics.fleiss_kappa(ratings) == pytest.approx(sm_fleiss(table))


def test_fleiss_kappa_leaves_out_incomplete_items():
    """An item with a missing grade is dropped, as if it had never been rated."""
    ratings = np.stack([A, B, np.clip(A + 1, 0, 3)], axis=1).astype(float)
    with_gap = np.vstack([ratings, [[1, np.nan, 2]]])
    assert metrics.fleiss_kappa(with_gap) == pytest.approx(metrics.fleiss_kappa(ratings))


def test_light_kappa_is_the_mean_of_pairwise_kappas_with_missing_values():
    """Light's kappa equals the mean of sklearn's pairwise kappas over commonly graded items."""
    c = np.clip(B + RNG.choice([-1, 0, 1], 200), 0, 3).astype(float)
    c[:20] = np.nan
    ratings = np.stack([A, B, c], axis=1)
    expected = np.mean(
        [
            cohen_kappa_score(A, B),
            cohen_kappa_score(A[20:], c[20:].astype(int)),
            cohen_kappa_score(B[20:], c[20:].astype(int)),
        ]
    )
    assert metrics.light_kappa(ratings) == pytest.approx(expected)


# ---------------------------------------------------------------- ICC, ROC, Bland-Altman


def test_icc_2_1_on_the_shrout_fleiss_example():
    """ICC(2,1) of Shrout & Fleiss's 6 targets x 4 judges is 0.29 (from their mean squares)."""
    # Published mean squares: BMS 11.24, JMS 32.49, EMS 1.02 (n = 6, k = 4).
    by_hand = (11.24 - 1.02) / (11.24 + 3 * 1.02 + 4 * (32.49 - 1.02) / 6)
    result = metrics.icc_2_1(SHROUT_FLEISS)
    assert by_hand == pytest.approx(0.29, abs=0.005)
    assert result.icc == pytest.approx(by_hand, abs=0.002) and result.n == 6


def test_icc_2_1_interval_on_the_shrout_fleiss_example():
    """The F-based 95 % interval is about 0.019 to 0.76 (R psych::ICC on the same table)."""
    result = metrics.icc_2_1(SHROUT_FLEISS)
    assert result.ci_low == pytest.approx(0.019, abs=0.002)
    assert result.ci_high == pytest.approx(0.76, abs=0.005)


def test_icc_is_nan_with_a_single_item():
    """With one complete item there is no between-item variance: ICC and bounds are NaN."""
    result = metrics.icc_2_1([[1.0, 2.0], [3.0, np.nan]])
    assert np.isnan(result.icc) and np.isnan(result.ci_low) and result.n == 1


def test_roc_per_grade_matches_scikit_learn():
    """One-vs-rest ROC curves and AUC per grade equal sklearn's."""
    probs = RNG.dirichlet(np.ones(4), 200)
    probs[np.arange(200), A] += 0.5
    curves = metrics.roc_per_grade(A, probs)
    for g in range(4):
        positive = np.equal(A, g)
        fpr, tpr, _ = roc_curve(positive, probs[:, g])
        assert curves[g].grade == g
        assert curves[g].auc == pytest.approx(roc_auc_score(positive, probs[:, g]))
        assert np.allclose(curves[g].fpr, fpr) and np.allclose(curves[g].tpr, tpr)


def test_roc_of_an_absent_grade_has_no_auc():
    """A grade no item has gets auc None, not 0.5."""
    y = np.array([0, 0, 1, 1, 3])
    probs = RNG.dirichlet(np.ones(4), 5)
    curves = metrics.roc_per_grade(y, probs)
    assert curves[2].auc is None and curves[2].n_positive == 0
    assert curves[0].auc is not None


def test_bland_altman_by_hand():
    """Bias, SD and limits of agreement from hand-computed differences b - a."""
    result = metrics.bland_altman([10, 20, 30, 40, np.nan], [12, 19, 33, 42, 5])
    # diffs 2, -1, 3, 2: mean 1.5; squared deviations 0.25 + 6.25 + 2.25 + 0.25 = 9; SD = sqrt(3).
    sd = np.sqrt(9 / 3)
    assert result.n == 4 and result.bias == pytest.approx(1.5)
    assert result.sd == pytest.approx(sd)
    assert result.loa_low == pytest.approx(1.5 - 1.96 * sd)
    assert result.loa_high == pytest.approx(1.5 + 1.96 * sd)
    assert result.means.tolist() == [11, 19.5, 31.5, 41]


# ---------------------------------------------------------------- consensus


def test_consensus_mask_is_the_pixel_majority():
    """Of three masks, a pixel marked by two is gland and one marked by one is not."""
    masks = np.array([[[1, 0, 1, 1]], [[1, 0, 0, 0]], [[0, 0, 1, 0]]], bool)
    assert metrics.consensus_mask(masks).tolist() == [[True, False, True, False]]


def test_consensus_mask_of_two_raters_is_their_union():
    """A tie (one of two raters) counts as gland."""
    masks = np.array([[[1, 0, 0]], [[0, 1, 0]]], bool)
    assert metrics.consensus_mask(masks).tolist() == [[True, True, False]]


def test_consensus_grade_is_the_nan_aware_median_rounded_up():
    """Median ignoring missing grades; a half (1.5) rounds up to 2; nobody graded -> NaN."""
    grades = np.array([[0, 1, 1], [2, 3, np.nan], [1, 2, np.nan], [np.nan, np.nan, np.nan]])
    result = metrics.consensus_grade(grades)
    assert result[:3].tolist() == [1, 3, 2] and np.isnan(result[3])
