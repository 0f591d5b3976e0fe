"""``sgus check``: the stored rows that fail the checks every new write now gets.

Read-only. It lists mask versions and predictions whose PNG does not decode, is not binary, does
not fit its frame or whose area disagrees with its pixels, and status changes that judge a rater's
work (:data:`~sgus_core.auth.REVIEW_STATUSES`) set by someone who is not an administrator. Nothing
is ever deleted from the store: a bad row is superseded by a newer one (a new mask version of the
same rater, a new prediction of the same model, a new status of the same rater and round), and
each problem says how. A problem that a newer row already supersedes is listed but needs nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sgus_core.auth import RATER_STATUSES, REVIEW_STATUSES
from sgus_core.store import LabelStore
from sgus_core.store.validation import (
    StatusSetter,
    StoredMaskProblem,
    judging_status_events,
    stored_mask_problems,
)

_KIND = {"mask_versions": "mask version", "predictions": "prediction", "status_events": "status"}


@dataclass(frozen=True)
class Problem:
    """One stored row that fails a check, and how to supersede it."""

    table: str  # "mask_versions", "predictions" or "status_events"
    row_id: int
    image_id: int
    image: str  # the image's path in its dataset
    owner: str  # the rater whose work it is, or the model
    problem: str
    fix: str
    superseded_by: int | None = None  # a newer row that already replaces it: nothing to do

    @property
    def open(self) -> bool:
        """Whether the row is still the current one (nothing newer supersedes it yet)."""
        return self.superseded_by is None

    def line(self) -> str:
        """The problem on one line, as ``sgus check`` prints it."""
        kind = _KIND[self.table]
        head = f"{kind} {self.row_id} of image {self.image_id} ({self.image}), {self.owner}: "
        if self.superseded_by is not None:
            return f"{head}{self.problem} (already superseded by {kind} {self.superseded_by})"
        return f"{head}{self.problem}; {self.fix}"


@dataclass(frozen=True)
class CheckReport:
    """What ``sgus check`` read and found."""

    mask_versions: int
    predictions: int
    status_events: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def open_problems(self) -> list[Problem]:
        """The problems no newer row supersedes yet."""
        return [p for p in self.problems if p.open]

    @property
    def ok(self) -> bool:
        """Whether nothing needs doing (every failing row, if any, is already superseded)."""
        return not self.open_problems

    def as_json(self) -> dict[str, Any]:
        """The report as ``sgus check --json`` prints it."""
        return {
            "checked": {
                "mask_versions": self.mask_versions,
                "predictions": self.predictions,
                "status_events": self.status_events,
            },
            "problems": [asdict(p) | {"open": p.open} for p in self.problems],
            "open": len(self.open_problems),
        }


def _mask_fix(found: StoredMaskProblem) -> str:
    if found.table == "mask_versions":
        return (
            f"supersede it: save a new mask version of image {found.image_id} as {found.owner} "
            "(on the Annotate page, starting from another version or from empty); the newest "
            "version is the one used"
        )
    return (
        f"supersede it: store a new prediction of image {found.image_id} with {found.owner} (the "
        f"newest is the one used), e.g. `predict_dataset(store, DATASET, models_dir, "
        f"model={found.owner!r}, only_missing=False)` from sgus_core.inference.dataset"
    )


def _status_problem(event: StatusSetter) -> str | None:
    if event.actor_role == "admin":
        return None
    if event.actor is None:
        who = "someone the audit log does not name"
    elif event.actor_role is None:
        who = f"{event.actor} (not an account)"
    else:
        who = f"{event.actor} (a {event.actor_role})"
    return f"marked {event.status!r} by {who}; only an administrator may set it"


def _status_fix(event: StatusSetter) -> str:
    where = f" in round {event.round_id}" if event.round_id is not None else ""
    return (
        f"supersede it: an administrator sets {event.rater}'s status of image {event.image_id}"
        f"{where} again ({' or '.join(REVIEW_STATUSES)}), or {event.rater} sets one she may set "
        f"({', '.join(RATER_STATUSES)})"
    )


def check_store(store: LabelStore) -> CheckReport:
    """Read every stored mask version, prediction and judging status change and report those
    that fail the checks new writes get (see the module docstring). Writes nothing."""
    masks = stored_mask_problems(store)
    total_statuses, judged = judging_status_events(store, REVIEW_STATUSES)
    paths: dict[int, str] = {}

    def path(image_id: int) -> str:
        if image_id not in paths:
            paths[image_id] = store.get_image(image_id).path
        return paths[image_id]

    problems = [
        Problem(
            f.table,
            f.row_id,
            f.image_id,
            path(f.image_id),
            f.owner,
            f.problem,
            _mask_fix(f),
            f.superseded_by,
        )
        for f in masks.problems
    ]
    for event in judged:
        problem = _status_problem(event)
        if problem is not None:
            problems.append(
                Problem(
                    "status_events",
                    event.row_id,
                    event.image_id,
                    path(event.image_id),
                    event.rater,
                    problem,
                    _status_fix(event),
                    event.superseded_by,
                )
            )
    return CheckReport(masks.mask_versions, masks.predictions, total_statuses, problems)
