"""Agreement statistics, each checked against scikit-learn, statsmodels, SciPy or hand values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import directed_hausdorff
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, jaccard_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from sgus_core import metrics

RNG = np.random.default_rng(3)
A = RNG.integers(0, 4, 200)
B = np.clip(A + RNG.choice([-1, 0, 0, 0, 1], 200), 0, 3)


def test_iou_and_dice_match_scikit_learn():
    """Per-mask IoU and Dice equal sklearn's Jaccard and F1 on the flattened pixels."""
    a = RNG.random((5, 30, 40)) > 0.5
    b = RNG.random((5, 30, 40)) > 0.4
    iou, dice = metrics.batch_iou_dice(a, b)
    for i in range(5):
        assert iou[i] == pytest.approx(jaccard_score(a[i].ravel(), b[i].ravel()))
        assert dice[i] == pytest.approx(f1_score(a[i].ravel(), b[i].ravel()))


def test_mask_agreement_on_hand_counted_squares():
    """Two offset squares give the hand-counted IoU, precision, recall and areas in mm2."""
    a = np.zeros((20, 20), bool)
    b = np.zeros((20, 20), bool)
    a[2:12, 2:12] = True  # 100 px
    b[7:17, 2:12] = True  # 100 px, 50 shared
    m = metrics.mask_agreement(a, b, spacing_mm=0.1)
    assert m.iou == pytest.approx(50 / 150)
    assert m.precision == m.recall == pytest.approx(0.5)
    assert m.specificity == pytest.approx((400 - 150) / (400 - 100))
    assert m.area_a_mm2 == pytest.approx(1.0)


def test_hausdorff_95_of_a_uniform_shift_equals_the_hausdorff_distance():
    """For a square shifted by 5 px every boundary distance is at most 5: HD95 matches SciPy's HD."""
    a = np.zeros((40, 40), bool)
    b = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b[10:20, 15:25] = True
    pa, pb = np.argwhere(metrics._surface(a)), np.argwhere(metrics._surface(b))
    hd = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
    m = metrics.mask_agreement(a, b)
    assert m.hd95 == pytest.approx(hd) and 0 < m.assd <= hd
    assert metrics.mask_agreement(a, b, spacing_mm=0.5).hd95 == pytest.approx(hd * 0.5)


def test_empty_masks_follow_the_documented_conventions():
    """Both empty: perfect agreement; one empty: IoU 0 and infinite distance."""
    empty = np.zeros((5, 5), bool)
    full = np.ones((5, 5), bool)
    assert metrics.mask_agreement(empty, empty).iou == 1.0
    one = metrics.mask_agreement(empty, full)
    assert one.iou == 0.0 and one.hd95 == float("inf")


@given(
    arrays(bool, (8, 8)),
    arrays(bool, (8, 8)),
)
def test_dice_is_a_function_of_iou_and_both_are_symmetric(a, b):
    """Dice = 2 IoU / (1 + IoU), both in [0, 1] and symmetric in their arguments."""
    iou, dice = metrics.batch_iou_dice(a, b)
    iou2, _ = metrics.batch_iou_dice(b, a)
    assert 0 <= iou <= 1 and iou == pytest.approx(iou2)
    assert dice == pytest.approx(2 * iou / (1 + iou))


def test_confusion_and_accuracy_match_scikit_learn():
    """The confusion matrix and accuracy equal sklearn's."""
    assert np.array_equal(metrics.confusion(A, B), confusion_matrix(A, B, labels=[0, 1, 2, 3]))
    assert metrics.accuracy(A, B) == pytest.approx(np.mean(A == B))


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_scikit_learn_with_an_interval_around_it(weights):
    """Unweighted, linear and quadratic kappa equal sklearn; the CI brackets the estimate."""
    result = metrics.cohen_kappa(A, B, weights=weights)
    assert result.kappa == pytest.approx(cohen_kappa_score(A, B, weights=weights))
    assert result.ci_low < result.kappa < result.ci_high and result.n == 200


def test_missing_grades_are_left_out_pairwise():
    """NaN grades drop only their pair."""
    a = np.array([0, 1, 2, np.nan, 3])
    b = np.array([0, 1, np.nan, 2, 3])
    assert metrics.cohen_kappa(a, b, n_boot=0).n == 3
    assert metrics.accuracy(a, b) == 1.0


def test_fleiss_kappa_matches_statsmodels():
    """Fleiss' kappa over five raters equals statsmodels'."""
    ratings = np.stack(
        [np.clip(A + RNG.choice([-1, 0, 0, 1], 200), 0, 3) for _ in range(5)], axis=1
    )
    table, _ = aggregate_raters(ratings, n_cat=4)
    assert metrics.fleiss_kappa(ratings) == pytest.approx(sm_fleiss(table))


def test_light_kappa_is_the_mean_of_pairwise_kappas():
    """Light's kappa equals the mean of sklearn's pairwise kappas."""
    c = np.clip(B + RNG.choice([-1, 0, 1], 200), 0, 3)
    ratings = np.stack([A, B, c], axis=1)
    expected = np.mean([cohen_kappa_score(x, y) for x, y in ((A, B), (A, c), (B, c))])
    assert metrics.light_kappa(ratings) == pytest.approx(expected)


def test_icc_2_1_on_the_shrout_fleiss_example():
    """ICC(2,1) of Shrout & Fleiss's 6 targets x 4 judges is 0.29."""
    table = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    )
    result = metrics.icc_2_1(table)
    assert result.icc == pytest.approx(0.29, abs=0.005)
    assert result.ci_low < result.icc < result.ci_high


def test_roc_per_grade_matches_scikit_learn():
    """One-vs-rest AUC per grade equals sklearn's; an absent grade has no AUC."""
    from sklearn.metrics import roc_auc_score

    probs = RNG.dirichlet(np.ones(4), 200)
    probs[np.arange(200), A] += 0.5
    curves = metrics.roc_per_grade(A, probs)
    for g in range(4):
        assert curves[g].auc == pytest.approx(roc_auc_score(g == A, probs[:, g]))
    assert metrics.roc_per_grade(np.zeros(10, int), probs[:10])[0].auc is None


def test_bland_altman_by_hand():
    """Bias and limits of agreement from hand-computed differences."""
    result = metrics.bland_altman([10, 20, 30, 40], [12, 19, 33, 42])
    diffs = np.array([2, -1, 3, 2])
    assert result.mean_diff == pytest.approx(1.5)
    assert result.sd == pytest.approx(diffs.std(ddof=1))
    assert result.loa_high == pytest.approx(1.5 + 1.96 * diffs.std(ddof=1))


def test_consensus_mask_and_grade():
    """Majority of three masks; median grade with missing values ignored."""
    masks = np.array([[[1, 0, 1]], [[1, 0, 0]], [[0, 0, 1]]], bool)
    assert metrics.consensus_mask(masks).tolist() == [[True, False, True]]
    grades = np.array([[0, 1, 1], [2, 3, np.nan], [3, 3, 3]])
    assert metrics.consensus_grade(grades).tolist() == [1, 3, 3]


@given(st.lists(st.integers(0, 3), min_size=3, max_size=30))
def test_kappa_of_a_rater_with_herself_is_one_or_undefined(grades):
    """A rater agrees perfectly with herself (kappa 1, also when she uses a single grade)."""
    assert metrics.cohen_kappa(grades, grades, n_boot=0).kappa == pytest.approx(1.0)
