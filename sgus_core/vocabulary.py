"""The words SGUS Studio shares across the core, the pages and the command line.

One place for the glands, sides, grades, statuses, roles and label sources, so that a page, the
store and the generator never disagree about what a valid value is (see ``docs/SGUS.md``).
"""

from __future__ import annotations

GLANDS: tuple[str, ...] = ("parotid", "submandibular")
"""The two gland types scanned on each side."""

SIDES: tuple[str, ...] = ("L", "R")
"""Left and right, as stored and as the import CSV writes them."""

PATIENT_GLANDS: tuple[tuple[str, str], ...] = (
    ("parotid", "R"),
    ("parotid", "L"),
    ("submandibular", "R"),
    ("submandibular", "L"),
)
"""A patient's four glands in the order clinicians read them (PG-R, PG-L, SMG-R, SMG-L)."""

GRADES: tuple[int, ...] = (0, 1, 2, 3)
"""Every scoring system here (de Vita, OMERACT, OMERACT Doppler) grades a gland 0-3."""

N_GRADES = len(GRADES)

CONFIDENCES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""A rater's optional confidence in her grades, 1 (a guess) to 5 (certain)."""

HOCEVAR_ITEM_RANGES: tuple[tuple[str, int, int], ...] = (
    ("Parenchymal echogenicity", 0, 1),
    ("Inhomogeneity", 0, 3),
    ("Hypoechoic areas", 0, 3),
    ("Hyperechoic reflections", 0, 3),
    ("Clarity of the gland border", 0, 2),
)
"""The five Hocevar items of one gland (Hocevar et al. 2005) with their inclusive ranges, in the
order they are stored."""

GRADE_TARGETS: tuple[str, ...] = ("devita", "omeract")
"""Grades a grader can be trained to predict."""

STATUSES: tuple[str, ...] = ("todo", "in progress", "done", "flagged", "accepted", "rejected")
"""A frame's review status for one rater."""

OPEN_STATUSES: tuple[str, ...] = ("todo", "in progress", "flagged")
"""Statuses that keep a frame in a rater's queue."""

ROLES: tuple[str, ...] = ("admin", "rater", "viewer")
"""Account roles: admins manage studies and accounts, raters save their own labels, viewers read."""

MASK_SOURCES: tuple[str, ...] = ("imported", "manual", "model", "model-edited", "model-prompted")
"""Where a saved mask version came from."""

SOURCE_KINDS: tuple[str, ...] = ("rater", "model", "round", "consensus")
"""Kinds of label source the Review page compares."""
