"""Browse queries: one page of images with their latest labels, filtered and sorted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Subquery,
    Table,
    UnaryExpression,
    and_,
    func,
    select,
)

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase
from sgus_core.store.records import Blinding, BrowseRow, ImageFilter

SORT_KEYS = ("patient", "gland", "side", "grade", "added", "path")


class BrowseArea(StoreBase):
    """Browse queries: one page of images with their latest labels, filtered and sorted."""

    def _latest_per_image(
        self, table: Table, rater_id: int | None, hidden: ColumnElement[bool] | None = None
    ) -> Subquery:
        """Subquery: the newest row id of ``table`` per image (for one rater, or anyone), leaving
        out the rows ``hidden`` selects."""
        q = select(table.c.image_id, func.max(table.c.id).label("last_id")).group_by(
            table.c.image_id
        )
        if rater_id is not None:
            q = q.where(table.c.rater_id == rater_id)
        if hidden is not None:
            q = q.where(~hidden)
        return q.subquery()

    def _hidden_rows(
        self, conn: Connection, table: Table, blinding: Blinding | None
    ) -> ColumnElement[bool] | None:
        """The rows of a label table that ``blinding`` hides: on its images, everything but the
        reader's own rows of her blind rounds (every row, for predictions)."""
        if blinding is None or not blinding.image_ids:
            return None
        on_hidden = table.c.image_id.in_(sorted(blinding.image_ids))
        if "rater_id" not in table.c:
            return on_hidden
        own = and_(
            table.c.rater_id == self._rater_id(conn, blinding.reader),
            table.c.round_id.in_(sorted(blinding.round_ids)),
        )
        return and_(on_hidden, ~own)

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
        """One page of images matching ``flt`` with their current labels, and the total count.

        With ``blinding``, the labels it hides count as absent: they neither show in a row nor
        select or order it.

        Raises:
            StoreError: unknown sort key or rater.
        """
        if sort not in SORT_KEYS:
            raise StoreError(f"Unknown sort {sort!r}; use one of {', '.join(SORT_KEYS)}.")
        with self.engine.connect() as conn:
            rater_id = None
            if flt.rater:
                rater_id = self._rater_id(conn, flt.rater)
            last_grade, last_status, last_mask, last_pred = (
                self._latest_per_image(
                    table,
                    rater_id if table is not t.predictions else None,
                    self._hidden_rows(conn, table, blinding),
                )
                for table in (t.grades, t.status_events, t.mask_versions, t.predictions)
            )
            g = t.grades.alias("g")
            s = t.status_events.alias("s")
            q = (
                select(
                    t.images,
                    g.c.devita,
                    s.c.status,
                    last_mask.c.last_id.label("mask_version_id"),
                    last_pred.c.last_id.label("prediction_id"),
                )
                .select_from(t.images)
                .outerjoin(last_grade, last_grade.c.image_id == t.images.c.id)
                .outerjoin(g, g.c.id == last_grade.c.last_id)
                .outerjoin(last_status, last_status.c.image_id == t.images.c.id)
                .outerjoin(s, s.c.id == last_status.c.last_id)
                .outerjoin(last_mask, last_mask.c.image_id == t.images.c.id)
                .outerjoin(last_pred, last_pred.c.image_id == t.images.c.id)
            )
            conds = []
            if flt.dataset_id is not None:
                conds.append(t.images.c.dataset_id == flt.dataset_id)
            if flt.patient:
                conds.append(t.images.c.patient == flt.patient)
            if flt.gland:
                conds.append(t.images.c.gland == flt.gland)
            if flt.side:
                conds.append(t.images.c.side == flt.side)
            if flt.grade is not None:
                conds.append(g.c.devita == flt.grade)
            if flt.status:
                # No status row yet means "todo" for that rater.
                if flt.status == "todo":
                    conds.append((s.c.status == "todo") | s.c.status.is_(None))
                else:
                    conds.append(s.c.status == flt.status)
            if flt.has_mask is not None:
                col = last_mask.c.last_id
                conds.append(col.is_not(None) if flt.has_mask else col.is_(None))
            if flt.has_prediction is not None:
                col = last_pred.c.last_id
                conds.append(col.is_not(None) if flt.has_prediction else col.is_(None))
            if conds:
                q = q.where(and_(*conds))
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            order_col = {
                "patient": t.images.c.patient,
                "gland": t.images.c.gland,
                "side": t.images.c.side,
                "grade": g.c.devita,
                "added": t.images.c.id,
                "path": t.images.c.path,
            }[sort]
            order: list[ColumnElement[Any] | UnaryExpression[Any]] = [
                order_col.desc() if descending else order_col.asc()
            ]
            order += [t.images.c.gland, t.images.c.side, t.images.c.id]
            rows = conn.execute(q.order_by(*order).offset(offset).limit(limit)).all()
        out = [
            BrowseRow(
                image=self._image_from_row(r),
                devita=r.devita,
                status=r.status,
                mask_version_id=r.mask_version_id,
                prediction_id=r.prediction_id,
            )
            for r in rows
        ]
        return out, int(total)
