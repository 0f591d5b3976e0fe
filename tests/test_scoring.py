"""Patient totals of de Vita, OMERACT and Hocevar scores, and their validation."""

from __future__ import annotations

import pytest

from sgus_core.study.scoring import (
    CAVEAT,
    DEVITA_GRADES,
    HOCEVAR_GLAND_MAX,
    HOCEVAR_ITEMS,
    HOCEVAR_TOTAL_MAX,
    OMERACT_GRADES,
    GlandScore,
    patient_totals,
)

FOUR = [("parotid", "R"), ("parotid", "L"), ("submandibular", "R"), ("submandibular", "L")]


def _four(**grades_per_gland) -> list[GlandScore]:
    """Four glands; each keyword maps to a list of four values in FOUR order."""
    return [
        GlandScore(gland, side, **{k: v[i] for k, v in grades_per_gland.items()})
        for i, (gland, side) in enumerate(FOUR)
    ]


def test_grade_texts_cover_grades_zero_to_three():
    """De Vita and OMERACT each define grades 0, 1, 2 and 3."""
    assert sorted(DEVITA_GRADES) == sorted(OMERACT_GRADES) == [0, 1, 2, 3]


def test_hocevar_items_sum_to_twelve_per_gland_and_48_per_patient():
    """The five Hocevar items reach 12 per gland and 48 over four glands."""
    assert len(HOCEVAR_ITEMS) == 5
    assert (HOCEVAR_GLAND_MAX, HOCEVAR_TOTAL_MAX) == (12, 48)


def test_devita_total_sums_four_glands():
    """The de Vita total is the sum of the four gland grades."""
    totals = patient_totals(_four(devita=[0, 1, 2, 3]))
    assert (totals.devita_total, totals.devita_graded) == (6, 4)
    assert totals.devita_positive is True
    assert totals.devita_pathological_glands == 2


def test_devita_total_is_none_when_a_gland_is_missing():
    """Without all four grades there is no total, and the count of graded glands says why."""
    scores = _four(devita=[0, 0, None, 0])
    totals = patient_totals(scores)
    assert (totals.devita_total, totals.devita_graded) == (None, 3)
    assert patient_totals(scores[:2]).devita_graded == 2


def test_devita_negative_only_when_all_four_are_zero():
    """A total of 0 over four glands is negative; zeros on fewer glands cannot decide."""
    assert patient_totals(_four(devita=[0, 0, 0, 0])).devita_positive is False
    assert patient_totals(_four(devita=[0, 0, 0, None])).devita_positive is None


def test_devita_positive_as_soon_as_a_graded_gland_reaches_the_cutoff():
    """One gland of grade 1 already makes the total >= 1, even with other glands missing."""
    assert patient_totals(_four(devita=[None, 1, None, None])).devita_positive is True


def test_omeract_reports_the_highest_gland_grade():
    """The OMERACT patient value is the maximum over the graded glands."""
    totals = patient_totals(_four(omeract=[1, 0, 3, None]))
    assert (totals.omeract_max, totals.omeract_graded) == (3, 3)
    assert patient_totals([]).omeract_max is None


def test_omeract_positive_when_any_gland_reaches_grade_two():
    """A single gland of grade 2 makes the patient OMERACT-positive."""
    assert patient_totals(_four(omeract=[0, 2, None, None])).omeract_positive is True


def test_omeract_negative_needs_four_glands_below_two():
    """All four glands below grade 2 is negative; fewer glands below 2 cannot decide."""
    assert patient_totals(_four(omeract=[1, 1, 0, 1])).omeract_positive is False
    assert patient_totals(_four(omeract=[1, 1, 0, None])).omeract_positive is None


def test_hocevar_total_sums_all_items_of_four_glands():
    """The Hocevar total adds the five items over four glands, up to 48."""
    items = (1, 3, 3, 3, 2)
    totals = patient_totals(_four(hocevar=[items] * 4))
    assert (totals.hocevar_total, totals.hocevar_graded) == (48, 4)


def test_hocevar_cutoff_is_seventeen():
    """A total of 17 is positive and 16 is negative."""
    low = (0, 1, 1, 1, 1)  # 4 per gland
    assert patient_totals(_four(hocevar=[low, low, low, low])).hocevar_positive is False
    five = (1, 1, 1, 1, 1)
    result = patient_totals(_four(hocevar=[five, low, low, low]))
    assert (result.hocevar_total, result.hocevar_positive) == (17, True)


def test_hocevar_total_is_none_when_a_gland_is_unscored():
    """Three scored glands give no total; the flag is known only if they already reach 17."""
    full = (1, 3, 3, 3, 2)
    partial = patient_totals(_four(hocevar=[full, (0, 0, 0, 0, 0), None, None]))
    assert (partial.hocevar_total, partial.hocevar_graded, partial.hocevar_positive) == (
        None,
        2,
        None,
    )
    assert patient_totals(_four(hocevar=[full, full, None, None])).hocevar_positive is True


def test_every_result_carries_the_caveat():
    """Totals come with the reminder that SGUS supports but does not make a diagnosis."""
    assert patient_totals([]).caveat == CAVEAT
    assert "does not make" in CAVEAT


def test_gland_label_is_the_short_name():
    """Glands are labelled PG-R, SMG-L and so on."""
    assert GlandScore("submandibular", "L").label == "SMG-L"


@pytest.mark.parametrize("field", ["devita", "omeract"])
@pytest.mark.parametrize("value", [4, -1, 2.0, True, "2"])
def test_grade_outside_zero_to_three_is_refused(field, value):
    """A grade that is not a whole number from 0 to 3 raises ValueError naming the gland."""
    with pytest.raises(ValueError, match="PG-R"):
        GlandScore("parotid", "R", **{field: value})


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ((2, 0, 0, 0, 0), "echogenicity"),
        ((0, 0, 0, 0, 3), "border"),
        ((0, 4, 0, 0, 0), "Inhomogeneity"),
        ((0, 0, -1, 0, 0), "Hypoechoic"),
        ((0, 0, 0, 0), "5 items"),
        ((0, 0, 0, 0, 0.5), "whole number"),
    ],
)
def test_hocevar_item_outside_its_range_is_refused(items, message):
    """A Hocevar item outside its range, or a wrong item count, raises ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        GlandScore("parotid", "L", hocevar=items)


def test_hocevar_items_are_stored_as_a_tuple():
    """Hocevar items given as a list are kept as an immutable tuple."""
    assert GlandScore("parotid", "L", hocevar=[0, 1, 2, 3, 2]).hocevar == (0, 1, 2, 3, 2)


@pytest.mark.parametrize(("gland", "side"), [("sublingual", "R"), ("parotid", "left")])
def test_unknown_gland_or_side_is_refused(gland, side):
    """Only parotid/submandibular and R/L are glands of the score."""
    with pytest.raises(ValueError, match="must be one of"):
        GlandScore(gland, side)


def test_duplicate_gland_is_refused():
    """Two scores for the same gland and side raise ValueError."""
    with pytest.raises(ValueError, match="PG-R is scored twice"):
        patient_totals([GlandScore("parotid", "R", devita=1), GlandScore("parotid", "R")])


def test_non_score_entries_are_refused():
    """patient_totals takes GlandScore values only."""
    with pytest.raises(ValueError, match="GlandScore"):
        patient_totals([("parotid", "R", 1)])  # type: ignore[list-item]
