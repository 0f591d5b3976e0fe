"""Patient totals of the SGUS scoring systems (de Vita, OMERACT, Hocevar).

Four major glands are scored per patient: parotid and submandibular, right and left. One image
shows one gland; a patient's total is taken over the four. The grade texts below are *summaries*
of the published definitions (docs/SGUS.md, "Scoring systems", marked *verify* there), not quotations:
show them to users as such (:data:`DEFINITIONS_NOTE`).

Positive flags are three-valued: ``True`` when the grades given already settle it (one gland of
OMERACT grade 2 makes the patient OMERACT-positive whatever the other glands show; de Vita and
Hocevar totals can only grow as glands are added), ``False`` when all four glands are graded and
the cut-off is not reached, ``None`` when it cannot be decided from the grades given.

SGUS supports a diagnosis of Sjögren's syndrome and never makes one: every result carries
:data:`CAVEAT`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from sgus_core.errors import ScoreError
from sgus_core.vocabulary import GLANDS, GRADES, HOCEVAR_ITEM_RANGES, SIDES

GLAND_COUNT = len(GLANDS) * len(SIDES)

DEFINITIONS_NOTE = (
    "Grade texts are summaries of the published definitions, not quotations; check the original "
    "papers (de Vita 1992, Jousse-Joulin 2019 OMERACT, Hocevar 2005) before relying on them."
)

DEVITA_REFERENCE = "de Vita et al. 1992: parenchymal inhomogeneity, 0-3 per gland, total 0-12"
DEVITA_GRADES: dict[int, str] = {
    0: "Homogeneous parenchyma.",
    1: "Mild inhomogeneity: small hypoechoic areas.",
    2: "Evident inhomogeneity: multiple hypoechoic areas.",
    3: "Gross inhomogeneity: large hypoechoic areas and/or fibrous bands.",
}
# Baldini 2015: a patient total >= 1 (sensitivity 66 %, specificity 98 %).
DEVITA_TOTAL_CUTOFF = 1
# Per gland, grades 0-1 read as normal and 2-3 as pathological.
DEVITA_PATHOLOGICAL_GRADE = 2

OMERACT_REFERENCE = "OMERACT 2019 (Jousse-Joulin et al.): grey-scale, 0-3 per gland"
OMERACT_GRADES: dict[int, str] = {
    0: "Normal parenchyma.",
    1: "Mild inhomogeneity without hypo- or anechoic areas.",
    2: "Moderate inhomogeneity with focal hypo- or anechoic areas.",
    3: (
        "Diffuse inhomogeneity with hypo- or anechoic areas over the whole gland, "
        "or a fibrous gland."
    ),
}
# Grade >= 2 in any gland makes the patient SGUS-positive.
OMERACT_POSITIVE_GRADE = 2

DOPPLER_REFERENCE = "OMERACT Doppler 2022: vascularity, 0-3 per gland (activity, not diagnosis)"
DOPPLER_GRADES: dict[int, str] = {
    0: "No vascular signal.",
    1: "Focal, dispersed vascular signals.",
    2: "Diffuse vascular signals in less than half of the gland.",
    3: "Diffuse vascular signals in more than half of the gland.",
}

HOCEVAR_REFERENCE = "Hocevar et al. 2005: five items per gland, total 0-48"


@dataclass(frozen=True)
class HocevarItem:
    """One item of the Hocevar score: its name and its inclusive range per gland."""

    name: str
    low: int
    high: int


HOCEVAR_ITEMS: tuple[HocevarItem, ...] = tuple(HocevarItem(*item) for item in HOCEVAR_ITEM_RANGES)
HOCEVAR_GLAND_MAX = sum(item.high for item in HOCEVAR_ITEMS)
HOCEVAR_TOTAL_MAX = HOCEVAR_GLAND_MAX * GLAND_COUNT
# Hocevar 2005: a total >= 17 (specificity 98.7 %, sensitivity 58.8 %).
HOCEVAR_TOTAL_CUTOFF = 17

CAVEAT = (
    "SGUS supports a diagnosis of Sjögren's syndrome; it does not make one. Scores and cut-offs "
    "are read together with the classification criteria, serology, salivary flow and biopsy."
)

_GLAND_LABELS = {"parotid": "PG", "submandibular": "SMG"}


def _grade(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ScoreError(f"{what} must be a whole number from 0 to 3, got {value!r}.")
    if int(value) not in GRADES:
        raise ScoreError(f"{what} must be from 0 to 3, got {int(value)}.")
    return int(value)


@dataclass(frozen=True)
class GlandScore:
    """The grades one rater gave one gland; any system may be left out (``None``).

    Attributes:
        gland: ``"parotid"`` or ``"submandibular"``.
        side: ``"R"`` or ``"L"``.
        devita: de Vita grade 0-3, or ``None``.
        omeract: OMERACT grade 0-3, or ``None``.
        hocevar: the five Hocevar items in :data:`HOCEVAR_ITEMS` order, or ``None``.

    Raises:
        ScoreError: an unknown gland or side, a grade outside 0-3, or a Hocevar item missing or
            outside its range (the message names the gland and the item).
    """

    gland: str
    side: str
    devita: int | None = None
    omeract: int | None = None
    hocevar: tuple[int, ...] | None = None  # five items, checked on creation

    def __post_init__(self) -> None:
        if self.gland not in GLANDS:
            raise ScoreError(f"gland must be one of {GLANDS}, got {self.gland!r}.")
        if self.side not in SIDES:
            raise ScoreError(f"side must be one of {SIDES}, got {self.side!r}.")
        object.__setattr__(self, "devita", _grade(self.devita, f"{self.label} de Vita grade"))
        object.__setattr__(self, "omeract", _grade(self.omeract, f"{self.label} OMERACT grade"))
        if self.hocevar is not None:
            object.__setattr__(self, "hocevar", self._checked_hocevar(self.hocevar))

    def _checked_hocevar(self, items: object) -> tuple[int, ...]:
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise ScoreError(f"{self.label} Hocevar items must be a sequence of 5 whole numbers.")
        if len(items) != len(HOCEVAR_ITEMS):
            raise ScoreError(
                f"{self.label} Hocevar score needs {len(HOCEVAR_ITEMS)} items "
                f"({', '.join(i.name for i in HOCEVAR_ITEMS)}), got {len(items)}."
            )
        checked = []
        for item, value in zip(HOCEVAR_ITEMS, items, strict=True):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ScoreError(f"{self.label} Hocevar {item.name!r} must be a whole number.")
            if not item.low <= int(value) <= item.high:
                raise ScoreError(
                    f"{self.label} Hocevar {item.name!r} must be from {item.low} to {item.high}, "
                    f"got {int(value)}."
                )
            checked.append(int(value))
        return tuple(checked)

    @property
    def label(self) -> str:
        """The gland's short name, e.g. ``"PG-R"`` or ``"SMG-L"``."""
        return f"{_GLAND_LABELS.get(self.gland, self.gland)}-{self.side}"

    @property
    def hocevar_sum(self) -> int | None:
        """This gland's Hocevar sum (0-12), or ``None`` when not scored."""
        return None if self.hocevar is None else sum(self.hocevar)


@dataclass(frozen=True)
class PatientTotals:
    """A patient's totals over the four glands (see the module notes on ``None`` flags).

    Attributes:
        glands_scored: how many glands have a :class:`GlandScore` (0-4).
        devita_total: sum of the four de Vita grades (0-12); ``None`` unless all four are graded.
        devita_graded: how many glands have a de Vita grade.
        devita_positive: total >= :data:`DEVITA_TOTAL_CUTOFF` (Baldini 2015).
        devita_pathological_glands: glands of de Vita grade 2-3 (per gland, 0-1 read as normal).
        omeract_max: the highest OMERACT grade over the graded glands; ``None`` if none graded.
        omeract_graded: how many glands have an OMERACT grade.
        omeract_positive: any gland of OMERACT grade >= :data:`OMERACT_POSITIVE_GRADE`.
        hocevar_total: Hocevar total (0-48); ``None`` unless all four glands have all items.
        hocevar_graded: how many glands have all Hocevar items.
        hocevar_positive: total >= :data:`HOCEVAR_TOTAL_CUTOFF`.
        caveat: :data:`CAVEAT`, to be shown with any of these.
    """

    glands_scored: int
    devita_total: int | None
    devita_graded: int
    devita_positive: bool | None
    devita_pathological_glands: int
    omeract_max: int | None
    omeract_graded: int
    omeract_positive: bool | None
    hocevar_total: int | None
    hocevar_graded: int
    hocevar_positive: bool | None
    caveat: str = CAVEAT


def _flag(partial: int, graded: int, cutoff: int) -> bool | None:
    """Three-valued ``total >= cutoff`` for a total that can only grow as glands are added."""
    if partial >= cutoff:
        return True
    return False if graded == GLAND_COUNT else None


def patient_totals(scores: Sequence[GlandScore]) -> PatientTotals:
    """Sum one rater's gland scores into the patient's totals and cut-off flags.

    Args:
        scores: at most one :class:`GlandScore` per (gland, side); glands may be missing.

    Returns:
        The :class:`PatientTotals`: totals only when all four glands are graded in that system,
        counts of graded glands, and three-valued positive flags.

    Raises:
        ScoreError: an entry is not a :class:`GlandScore`, or two entries score the same gland
            and side.
    """
    seen: dict[tuple[str, str], GlandScore] = {}
    for score in scores:
        if not isinstance(score, GlandScore):
            raise ScoreError(f"Expected GlandScore values, got {type(score).__name__}.")
        key = (score.gland, score.side)
        if key in seen:
            raise ScoreError(f"{score.label} is scored twice; give one score per gland and side.")
        seen[key] = score
    glands = list(seen.values())

    devita = [g.devita for g in glands if g.devita is not None]
    omeract = [g.omeract for g in glands if g.omeract is not None]
    hocevar = [g.hocevar_sum for g in glands if g.hocevar_sum is not None]
    return PatientTotals(
        glands_scored=len(glands),
        devita_total=sum(devita) if len(devita) == GLAND_COUNT else None,
        devita_graded=len(devita),
        devita_positive=_flag(sum(devita), len(devita), DEVITA_TOTAL_CUTOFF),
        devita_pathological_glands=sum(g >= DEVITA_PATHOLOGICAL_GRADE for g in devita),
        omeract_max=max(omeract) if omeract else None,
        omeract_graded=len(omeract),
        omeract_positive=_flag(
            int(any(g >= OMERACT_POSITIVE_GRADE for g in omeract)), len(omeract), 1
        ),
        hocevar_total=sum(hocevar) if len(hocevar) == GLAND_COUNT else None,
        hocevar_graded=len(hocevar),
        hocevar_positive=_flag(sum(hocevar), len(hocevar), HOCEVAR_TOTAL_CUTOFF),
    )
