"""The one visibility rule of blind reading, applied to every read.

A person who rates an **open blind round** sees, on that round's images, only her own labels
saved in her blind rounds: no other rater's masks, grades, comments or statuses, no model
prediction, and no audit entry that names them. Everything else she reads as usual. Closing the
round (an administrator's act) lifts the rule for its images.

The rule lives in :class:`ReaderStore`, the labels store as one reader sees it: the same engine
and the same interface as :class:`~sgus_core.store.LabelStore`, its reads filtered. Pages read
through one (``sgus_ui.state.reader_store``), the command line with ``--as NAME``, so Browse,
Review, Patients, Predict, Annotate, the audit log, exports and reports all apply the same rule
whatever function they call. Writes are untouched (they go through
:class:`~sgus_core.auth.AccountStore`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, TypeVar

from sgus_core.errors import PermissionDenied
from sgus_core.store import (
    AuditEntry,
    Blinding,
    BrowseRow,
    Grade,
    ImageFilter,
    LabelStore,
    MaskVersion,
    PredictionRecord,
    StatusEvent,
    StudyRound,
)

_Label = TypeVar("_Label", MaskVersion, Grade)
_LABEL_ENTITIES = ("mask", "grade", "status")


def blinding_for(store: LabelStore, reader: str) -> Blinding:
    """What the open blind rounds that ``reader`` rates hide from her."""
    rounds = [r for r in store.list_rounds() if r.blind and r.is_open and reader in r.raters]
    return Blinding(
        reader=reader,
        image_ids=frozenset(i for r in rounds for i in r.image_ids),
        round_ids=frozenset(r.id for r in rounds),
    )


class ReaderStore(LabelStore):
    """The labels store as ``reader`` may read it (see the module's rule).

    It shares the engine of ``store``; build one per page run or command (the open blind rounds
    are looked up once, on first use).
    """

    def __init__(self, store: LabelStore, reader: str) -> None:
        # No super().__init__: this is a view over an open store, not a second connection pool.
        shared = {k: v for k, v in vars(store).items() if k not in ("reader", "blinding")}
        self.__dict__.update(shared)
        self.reader = reader

    @cached_property
    def blinding(self) -> Blinding:
        """What this reader's open blind rounds hide from her."""
        return blinding_for(self, self.reader)

    def hides(self, image_id: int) -> bool:
        """Whether other people's labels and the model's prediction of an image are hidden."""
        return image_id in self.blinding.image_ids

    def blind_round_of(self, image_id: int) -> StudyRound | None:
        """The open blind round (of this reader) that hides an image, or ``None``."""
        if not self.hides(image_id):
            return None
        for round_id in sorted(self.blinding.round_ids):
            found = self.get_round(round_id)
            if found is not None and image_id in found.image_ids:
                return found
        return None

    def _own(self, label: MaskVersion | Grade) -> bool:
        return label.rater == self.reader and label.round_id in self.blinding.round_ids

    def _visible(self, labels: list[_Label], image_id: int) -> list[_Label]:
        return labels if not self.hides(image_id) else [x for x in labels if self._own(x)]

    def _visible_latest(
        self, latest: dict[int, _Label], rater: str, history: Any
    ) -> dict[int, _Label]:
        """A dataset's ``{image: newest label of rater}`` with the hidden images' entries
        replaced by the reader's newest own label there (or dropped)."""
        out = dict(latest)
        for image_id in self.blinding.image_ids & out.keys():
            own = [x for x in history(image_id, rater) if self._own(x)]
            if own:
                out[image_id] = own[-1]
            else:
                del out[image_id]
        return out

    # ------------------------------------------------------------ masks and grades

    def mask_history(self, image_id: int, rater: str | None = None) -> list[MaskVersion]:
        """:meth:`LabelStore.mask_history` as this reader may see it."""
        return self._visible(super().mask_history(image_id, rater), image_id)

    def get_mask(self, version_id: int) -> MaskVersion:
        """:meth:`LabelStore.get_mask`; a version the blinding hides is refused.

        Raises:
            PermissionDenied: the version is another person's label on a hidden image.
        """
        version = super().get_mask(version_id)
        if self.hides(version.image_id) and not self._own(version):
            raise PermissionDenied("That outline is hidden while your blind round is open.")
        return version

    def latest_masks_for_dataset(self, dataset_id: int, rater: str) -> dict[int, MaskVersion]:
        """:meth:`LabelStore.latest_masks_for_dataset` as this reader may see it."""
        latest = super().latest_masks_for_dataset(dataset_id, rater)
        return self._visible_latest(latest, rater, super().mask_history)

    def grade_history(self, image_id: int, rater: str | None = None) -> list[Grade]:
        """:meth:`LabelStore.grade_history` as this reader may see it."""
        return self._visible(super().grade_history(image_id, rater), image_id)

    def latest_grades_for_dataset(self, dataset_id: int, rater: str) -> dict[int, Grade]:
        """:meth:`LabelStore.latest_grades_for_dataset` as this reader may see it."""
        latest = super().latest_grades_for_dataset(dataset_id, rater)
        return self._visible_latest(latest, rater, super().grade_history)

    # ------------------------------------------------------------ statuses, predictions, pages

    def status_history(self, image_id: int) -> list[StatusEvent]:
        """:meth:`LabelStore.status_history`; on a hidden image only the reader's own."""
        events = super().status_history(image_id)
        if not self.hides(image_id):
            return events
        return [e for e in events if e.rater == self.reader]

    def latest_statuses(self, rater: str, round_id: int | None) -> dict[int, str]:
        """:meth:`LabelStore.latest_statuses`; another rater's, on hidden images, are left out."""
        statuses = super().latest_statuses(rater, round_id)
        if rater == self.reader:
            return statuses
        return {i: s for i, s in statuses.items() if not self.hides(i)}

    def latest_prediction(
        self, image_id: int, model_name: str | None = None
    ) -> PredictionRecord | None:
        """:meth:`LabelStore.latest_prediction`; ``None`` on a hidden image."""
        if self.hides(image_id):
            return None
        return super().latest_prediction(image_id, model_name)

    def models_with_predictions(
        self, dataset_id: int, *, leave_out: frozenset[int] = frozenset()
    ) -> list[str]:
        """:meth:`LabelStore.models_with_predictions` counting only predictions she may see."""
        return super().models_with_predictions(
            dataset_id, leave_out=leave_out | self.blinding.image_ids
        )

    def browse(
        self,
        flt: ImageFilter,
        *,
        sort: str = "patient",
        descending: bool = False,
        offset: int = 0,
        limit: int = 24,
        blinding: Blinding | None = None,
    ) -> tuple[list[BrowseRow], int]:
        """:meth:`LabelStore.browse` with this reader's blinding (hidden labels neither show nor
        filter nor order)."""
        return super().browse(
            flt,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
            blinding=blinding or self.blinding,
        )

    def audit_log(self, *, limit: int = 200) -> list[AuditEntry]:
        """:meth:`LabelStore.audit_log` without the entries about labels and predictions that
        the blinding hides (another person's save on a hidden image)."""
        return [e for e in super().audit_log(limit=limit) if self._entry_visible(e)]

    def _entry_visible(self, entry: AuditEntry) -> bool:
        details = entry.details or {}
        image_id = details.get("image_id")
        if not isinstance(image_id, int) or not self.hides(image_id):
            return True
        if entry.entity == "prediction":
            return False
        return entry.entity in _LABEL_ENTITIES and details.get("rater") == self.reader


def shows_round_labels(store: LabelStore, study_round: StudyRound, rater: str) -> bool:
    """Whether ``store``'s reader may see ``rater``'s labels of a round: not while it is an open
    blind round she rates, unless they are her own."""
    if not isinstance(store, ReaderStore) or rater == store.reader:
        return True
    return study_round.id not in store.blinding.round_ids


def reader_view(store: LabelStore, reader: str | None) -> LabelStore:
    """``store`` as ``reader`` sees it, or ``store`` itself when no reader is named (the
    operator's own command line: everything)."""
    if reader is None:
        return store
    if isinstance(store, ReaderStore) and store.reader == reader:
        return store
    return ReaderStore(store, reader)


def require_visible(store: LabelStore, image_id: int) -> None:
    """Refuse to show the model on an image the reader's open blind round hides.

    Raises:
        PermissionDenied: the image is hidden from the store's reader.
    """
    if isinstance(store, ReaderStore):
        blind = store.blind_round_of(image_id)
        if blind is not None:
            raise PermissionDenied(
                f"This frame is in your open blind round {blind.name!r}: the model's outline and "
                "grade stay hidden until an administrator closes the round."
            )
