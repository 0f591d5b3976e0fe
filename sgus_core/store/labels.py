"""Labels: mask versions, grades and statuses, each appended, never overwritten."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, func, insert, select, text

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase, utc_now
from sgus_core.store.records import Grade, MaskVersion, StatusEvent
from sgus_core.store.validation import require_valid_mask, same_mask
from sgus_core.vocabulary import (
    CONFIDENCES,
    GRADES,
    HOCEVAR_ITEM_RANGES,
    MASK_SOURCES,
    STATUSES,
)

_L = TypeVar("_L", MaskVersion, Grade)
_PG_LOCK_IMAGE_LABELS = 7405205  # advisory-lock class: one lock per image (import's saves)
_GradeValues = tuple[
    int | None, int | None, int | None, tuple[int, ...] | None, str | None, int | None
]
"""(de Vita, OMERACT, Doppler, Hocevar items, comment, confidence) of one save."""


def _mask(row: Any) -> MaskVersion:
    return MaskVersion(**row._mapping)


def _grade(row: Any) -> Grade:
    m = dict(row._mapping)
    m["hocevar"] = tuple(m["hocevar"]) if m["hocevar"] is not None else None
    return Grade(**m)


def _check_grades(
    devita: int | None,
    omeract: int | None,
    doppler: int | None,
    hocevar: Sequence[int] | None = None,
    confidence: int | None = None,
) -> None:
    """Refuse a grade outside 0-3, Hocevar items that are not the five items in their ranges,
    and a confidence outside 1-5.

    Raises:
        StoreError: names the scale and the value.
    """
    for label, value in (("de Vita", devita), ("OMERACT", omeract), ("OMERACT Doppler", doppler)):
        if value is not None and value not in GRADES:
            raise StoreError(f"{label} grade must be 0, 1, 2 or 3, not {value!r}.")
    if hocevar is not None:
        if len(hocevar) != len(HOCEVAR_ITEM_RANGES):
            raise StoreError(f"Hocevar needs {len(HOCEVAR_ITEM_RANGES)} items, not {len(hocevar)}.")
        for (name, low, high), value in zip(HOCEVAR_ITEM_RANGES, hocevar, strict=True):
            if isinstance(value, bool) or value not in range(low, high + 1):
                raise StoreError(f"Hocevar {name!r} must be {low}-{high}, not {value!r}.")
    if confidence is not None and confidence not in CONFIDENCES:
        raise StoreError(f"Confidence must be 1-5, not {confidence!r}.")


def _newest_per_rater(history: Sequence[_L]) -> dict[str, _L]:
    """The last of each rater's versions in an oldest-first history."""
    latest: dict[str, _L] = {}
    for version in history:
        latest[version.rater] = version
    return latest


class LabelArea(StoreBase):
    """Labels: mask versions, grades and statuses, each appended, never overwritten."""

    def save_mask(
        self,
        image_id: int,
        rater: str,
        png: bytes,
        *,
        area_px: int,
        source: str,
        parent_id: int | None = None,
        model_id: int | None = None,
        round_id: int | None = None,
        actor: str | None = None,
    ) -> MaskVersion:
        """Append a new mask version; earlier versions stay untouched.

        The PNG must decode, be binary (grey 0/255 or 0/1), have the frame's size, and
        ``area_px`` must be its number of mask pixels; otherwise nothing is written.

        Raises:
            StoreError: unknown source, image or rater, a parent of another image, or a mask that
                fails those checks (one line saying what is wrong).
        """
        self._check_mask(image_id, png, area_px, source)
        with self.transaction() as conn:
            return self._save_mask(
                conn, image_id, rater, png, area_px, source, parent_id, model_id, round_id, actor
            )

    def _check_mask(self, image_id: int, png: bytes, area_px: int, source: str) -> None:
        """Refuse an unknown source or a mask that fails :func:`require_valid_mask`; read before
        the write transaction, so the write lock is not held while the PNG is decoded (a frame's
        size never changes)."""
        if source not in MASK_SOURCES:
            raise StoreError(f"Unknown mask source {source!r}; use one of {MASK_SOURCES}.")
        with self.engine.connect() as conn:
            require_valid_mask(conn, image_id, png, area_px, "mask")

    def _save_mask(
        self,
        conn: Connection,
        image_id: int,
        rater: str,
        png: bytes,
        area_px: int,
        source: str,
        parent_id: int | None,
        model_id: int | None,
        round_id: int | None,
        actor: str | None,
    ) -> MaskVersion:
        rater_id = self._rater_id(conn, rater)
        if parent_id is not None:
            parent_image = conn.execute(
                select(t.mask_versions.c.image_id).where(t.mask_versions.c.id == parent_id)
            ).scalar()
            if parent_image != image_id:
                raise StoreError(f"Mask version {parent_id} is not a version of image {image_id}.")
        newest = conn.execute(
            select(func.max(t.mask_versions.c.id)).where(
                t.mask_versions.c.image_id == image_id, t.mask_versions.c.rater_id == rater_id
            )
        ).scalar()
        stale = parent_id is not None and newest is not None and newest != parent_id
        now = utc_now()
        result = conn.execute(
            insert(t.mask_versions).values(
                image_id=image_id,
                rater_id=rater_id,
                round_id=round_id,
                source=source,
                parent_id=parent_id,
                model_id=model_id,
                png=png,
                area_px=int(area_px),
                created_at=now,
            )
        )
        new_id = self._inserted_id(result, "mask version")
        self._audit(
            conn,
            actor or rater,
            "save",
            "mask",
            new_id,
            {
                "image_id": image_id,
                "rater": rater,
                "source": source,
                "parent_id": parent_id,
                "stale_parent": stale,
            },
        )
        return MaskVersion(
            new_id, image_id, rater, source, parent_id, model_id, round_id, png, int(area_px), now,
            stale,
        )  # fmt: skip

    _MASK_COLS = (
        t.mask_versions.c.id,
        t.mask_versions.c.image_id,
        t.raters.c.name.label("rater"),
        t.mask_versions.c.source,
        t.mask_versions.c.parent_id,
        t.mask_versions.c.model_id,
        t.mask_versions.c.round_id,
        t.mask_versions.c.png,
        t.mask_versions.c.area_px,
        t.mask_versions.c.created_at,
    )

    def mask_history(self, image_id: int, rater: str | None = None) -> list[MaskVersion]:
        """Every mask version of an image (optionally of one rater), oldest first."""
        return self._history(t.mask_versions, self._MASK_COLS, _mask, image_id, rater)

    def get_mask(self, version_id: int) -> MaskVersion:
        """One mask version by id."""
        q = (
            select(*self._MASK_COLS)
            .join(t.raters, t.raters.c.id == t.mask_versions.c.rater_id)
            .where(t.mask_versions.c.id == version_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise StoreError(f"No mask version with id {version_id}.")
        return _mask(row)

    def latest_masks(self, image_id: int) -> dict[str, MaskVersion]:
        """Each rater's newest mask version of an image."""
        return _newest_per_rater(self.mask_history(image_id))

    def latest_masks_for_dataset(self, dataset_id: int, rater: str) -> dict[int, MaskVersion]:
        """``{image_id: newest mask version of rater}`` over a dataset, in one query."""
        return self._latest_for_dataset(t.mask_versions, self._MASK_COLS, _mask, dataset_id, rater)

    # ------------------------------------------------------------ grades

    def save_grade(
        self,
        image_id: int,
        rater: str,
        *,
        devita: int | None = None,
        omeract: int | None = None,
        hocevar: Sequence[int] | None = None,
        comment: str | None = None,
        confidence: int | None = None,
        round_id: int | None = None,
        actor: str | None = None,
        doppler: int | None = None,
    ) -> Grade:
        """Append a new set of grades for (image, rater); ``doppler`` is the OMERACT Doppler
        grade.

        Raises:
            StoreError: a grade outside 0-3, or nothing to save.
        """
        _check_grades(devita, omeract, doppler, hocevar, confidence)
        if (
            devita is None
            and omeract is None
            and doppler is None
            and hocevar is None
            and not comment
        ):
            raise StoreError(
                "Nothing to save: give a de Vita, OMERACT or Doppler grade, items or a comment."
            )
        with self.transaction() as conn:
            return self._save_grade(
                conn,
                image_id,
                rater,
                devita,
                omeract,
                hocevar,
                comment,
                confidence,
                round_id,
                actor,
                doppler,
            )

    def _save_grade(
        self,
        conn: Connection,
        image_id: int,
        rater: str,
        devita: int | None,
        omeract: int | None,
        hocevar: Sequence[int] | None,
        comment: str | None,
        confidence: int | None,
        round_id: int | None,
        actor: str | None,
        doppler: int | None = None,
    ) -> Grade:
        rater_id = self._rater_id(conn, rater)
        now = utc_now()
        items = list(hocevar) if hocevar is not None else None
        result = conn.execute(
            insert(t.grades).values(
                image_id=image_id,
                rater_id=rater_id,
                round_id=round_id,
                devita=devita,
                omeract=omeract,
                doppler=doppler,
                hocevar=items,
                comment=comment,
                confidence=confidence,
                created_at=now,
            )
        )
        new_id = self._inserted_id(result, "grade")
        self._audit(
            conn,
            actor or rater,
            "save",
            "grade",
            new_id,
            {"image_id": image_id, "rater": rater, "devita": devita, "omeract": omeract,
             **({"doppler": doppler} if doppler is not None else {})},
        )  # fmt: skip
        return Grade(
            new_id,
            image_id,
            rater,
            devita,
            omeract,
            tuple(items) if items is not None else None,
            comment,
            confidence,
            round_id,
            now,
            doppler,
        )

    _GRADE_COLS = (
        t.grades.c.id,
        t.grades.c.image_id,
        t.raters.c.name.label("rater"),
        t.grades.c.devita,
        t.grades.c.omeract,
        t.grades.c.doppler,
        t.grades.c.hocevar,
        t.grades.c.comment,
        t.grades.c.confidence,
        t.grades.c.round_id,
        t.grades.c.created_at,
    )

    def grade_history(self, image_id: int, rater: str | None = None) -> list[Grade]:
        """Every grade of an image (optionally of one rater), oldest first."""
        return self._history(t.grades, self._GRADE_COLS, _grade, image_id, rater)

    def latest_grades(self, image_id: int) -> dict[str, Grade]:
        """Each rater's newest grades of an image."""
        return _newest_per_rater(self.grade_history(image_id))

    def latest_grades_for_dataset(self, dataset_id: int, rater: str) -> dict[int, Grade]:
        """``{image_id: newest grade of rater}`` over a dataset, in one query."""
        return self._latest_for_dataset(t.grades, self._GRADE_COLS, _grade, dataset_id, rater)

    # ------------------------------------------------------------ one query for every kind

    def _history(
        self,
        table: Table,
        columns: Sequence[Any],
        make: Callable[[Any], _L],
        image_id: int,
        rater: str | None,
    ) -> list[_L]:
        """Rows of a label table for one image (optionally one rater), oldest first."""
        q = (
            select(*columns)
            .join(t.raters, t.raters.c.id == table.c.rater_id)
            .where(table.c.image_id == image_id)
            .order_by(table.c.id)
        )
        if rater is not None:
            q = q.where(t.raters.c.name == rater)
        with self.engine.connect() as conn:
            return [make(r) for r in conn.execute(q)]

    def _latest_for_dataset(
        self,
        table: Table,
        columns: Sequence[Any],
        make: Callable[[Any], _L],
        dataset_id: int,
        rater: str,
    ) -> dict[int, _L]:
        """``{image_id: newest row of rater}`` of a label table over a dataset, in one query."""
        newest = (
            select(func.max(table.c.id))
            .join(t.images, t.images.c.id == table.c.image_id)
            .join(t.raters, t.raters.c.id == table.c.rater_id)
            .where(t.images.c.dataset_id == dataset_id, t.raters.c.name == rater)
            .group_by(table.c.image_id)
        )
        q = (
            select(*columns)
            .join(t.raters, t.raters.c.id == table.c.rater_id)
            .where(table.c.id.in_(newest))
        )
        with self.engine.connect() as conn:
            return {r.image_id: make(r) for r in conn.execute(q)}

    # ------------------------------------------------------------ labels in one go

    def save_labels(
        self,
        image_id: int,
        rater: str,
        *,
        mask_png: bytes | None = None,
        area_px: int = 0,
        source: str = "imported",
        parent_id: int | None = None,
        devita: int | None = None,
        omeract: int | None = None,
        round_id: int | None = None,
        actor: str | None = None,
        skip_unchanged: bool = False,
        doppler: int | None = None,
        hocevar: Sequence[int] | None = None,
        comment: str | None = None,
        confidence: int | None = None,
    ) -> tuple[MaskVersion | None, Grade | None]:
        """Save a mask and grades of one image atomically (both or neither); the mask is checked
        as :meth:`save_mask` checks it, the grades as :meth:`save_grade` checks them.

        With ``skip_unchanged`` (what an import does) a mask with the same pixels as the rater's
        newest one, and grades equal to her newest, are not saved again (``None`` in their
        place); new grades keep the newest grade's Doppler grade, Hocevar items and comment
        where they give none. The comparison and the save are one transaction serialised per
        image (SQLite: the write lock; PostgreSQL: an advisory lock on the image), so several
        processes importing the same labels at once save them once.

        Raises:
            StoreError: a grade outside its range, or a mask :meth:`save_mask` would refuse.
        """
        _check_grades(devita, omeract, doppler, hocevar, confidence)
        if mask_png is not None:
            self._check_mask(image_id, mask_png, area_px, source)
        items = tuple(hocevar) if hocevar is not None else None
        grades: _GradeValues = (devita, omeract, doppler, items, comment or None, confidence)
        with self.transaction() as conn:
            mask = None
            grade = None
            if skip_unchanged:
                mask_png, grades = self._only_changes(conn, image_id, rater, mask_png, grades)
            if mask_png is not None:
                mask = self._save_mask(
                    conn,
                    image_id,
                    rater,
                    mask_png,
                    area_px,
                    source,
                    parent_id,
                    None,
                    round_id,
                    actor,
                )
            devita, omeract, doppler, items, comment, confidence = grades
            if any(g is not None for g in (devita, omeract, doppler, items, comment)):
                grade = self._save_grade(
                    conn, image_id, rater, devita, omeract, items, comment, confidence, round_id,
                    actor, doppler,
                )  # fmt: skip
        return mask, grade

    def _only_changes(
        self,
        conn: Connection,
        image_id: int,
        rater: str,
        mask_png: bytes | None,
        grades: _GradeValues,
    ) -> tuple[bytes | None, _GradeValues]:
        """The parts of a save that differ from the rater's newest labels, read under a lock on
        the image held until the transaction ends."""
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(CAST(:c AS integer), CAST(:k AS integer))"),
                {"c": _PG_LOCK_IMAGE_LABELS, "k": image_id},
            )
        rater_id = self._rater_id(conn, rater)
        if mask_png is not None:
            newest = conn.execute(
                select(t.mask_versions.c.png)
                .where(
                    t.mask_versions.c.image_id == image_id, t.mask_versions.c.rater_id == rater_id
                )
                .order_by(t.mask_versions.c.id.desc())
                .limit(1)
            ).scalar()
            if newest is not None and same_mask(newest, mask_png):
                mask_png = None
        if any(g is not None for g in grades):
            g = t.grades.c
            latest = conn.execute(
                select(g.devita, g.omeract, g.doppler, g.hocevar, g.comment, g.confidence)
                .where(g.image_id == image_id, g.rater_id == rater_id)
                .order_by(g.id.desc())
                .limit(1)
            ).first()
            # A save leaves the optional parts it does not give (a CSV without the Doppler,
            # Hocevar, comment or confidence column) out of the comparison: the same de Vita and
            # OMERACT grades are then nothing new. When something is new, the Doppler grade,
            # Hocevar items and comment it does not give are kept from the newest grade (the
            # confidence is not: it was given for the grades that changed).
            if latest is not None:
                held = (*latest[:3], None if latest[3] is None else tuple(latest[3]), *latest[4:])
                if held[:2] == grades[:2] and all(
                    new in (None, old) for new, old in zip(grades[2:], held[2:], strict=True)
                ):
                    return mask_png, (None, None, None, None, None, None)
                devita, omeract, doppler, items, comment, confidence = grades
                grades = (
                    devita,
                    omeract,
                    held[2] if doppler is None else doppler,
                    held[3] if items is None else items,
                    held[4] if comment is None else comment,
                    confidence,
                )
        return mask_png, grades

    # ------------------------------------------------------------ status

    def set_status(
        self,
        image_id: int,
        rater: str,
        status: str,
        *,
        reason: str | None = None,
        round_id: int | None = None,
        actor: str | None = None,
    ) -> StatusEvent:
        """Record a status change of (image, rater); a flag needs a reason."""
        if status not in STATUSES:
            raise StoreError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
        if status == "flagged" and not (reason and reason.strip()):
            raise StoreError("Say why the image is flagged.")
        now = utc_now()
        with self.transaction() as conn:
            rater_id = self._rater_id(conn, rater)
            result = conn.execute(
                insert(t.status_events).values(
                    image_id=image_id,
                    rater_id=rater_id,
                    round_id=round_id,
                    status=status,
                    reason=reason,
                    created_at=now,
                )
            )
            new_id = self._inserted_id(result, "status event")
            self._audit(
                conn,
                actor or rater,
                "set",
                "status",
                new_id,
                {"image_id": image_id, "rater": rater, "status": status, "reason": reason},
            )
        return StatusEvent(new_id, image_id, rater, status, reason, now)

    def status_history(self, image_id: int) -> list[StatusEvent]:
        """Every status change of an image, oldest first."""
        q = (
            select(
                t.status_events.c.id,
                t.status_events.c.image_id,
                t.raters.c.name.label("rater"),
                t.status_events.c.status,
                t.status_events.c.reason,
                t.status_events.c.created_at,
            )
            .join(t.raters, t.raters.c.id == t.status_events.c.rater_id)
            .where(t.status_events.c.image_id == image_id)
            .order_by(t.status_events.c.id)
        )
        with self.engine.connect() as conn:
            return [StatusEvent(**r._mapping) for r in conn.execute(q)]
