"""Study rounds: which images which raters read, blind or not, and their statuses."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select, update

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase, utc_now
from sgus_core.store.records import StudyRound


class RoundArea(StoreBase):
    """Study rounds: which images which raters read, blind or not, and their statuses."""

    def create_round(
        self,
        name: str,
        dataset_id: int,
        image_ids: Sequence[int],
        raters: Sequence[str],
        *,
        blind: bool = False,
        shuffled: bool = False,
        repeat_of: int | None = None,
        actor: str = "system",
    ) -> StudyRound:
        """Create a study round over ``image_ids`` for ``raters`` (names must exist).

        Raises:
            StoreError: empty round, unknown rater, image of another dataset, or a taken name.
        """
        if not image_ids or not raters:
            raise StoreError("A round needs at least one image and one rater.")
        if self.get_round(name) is not None:
            raise StoreError(f"A round named {name!r} exists already; choose another name.")
        with self.transaction() as conn:
            foreign = conn.execute(
                select(func.count()).where(
                    t.images.c.id.in_(list(image_ids)), t.images.c.dataset_id != dataset_id
                )
            ).scalar_one()
            if foreign:
                raise StoreError(f"{foreign} of the images are not in this round's dataset.")
            rater_ids = [self._rater_id(conn, r) for r in raters]
            result = conn.execute(
                insert(t.rounds).values(
                    name=name,
                    dataset_id=dataset_id,
                    blind=blind,
                    shuffled=shuffled,
                    repeat_of=repeat_of,
                    created_at=utc_now(),
                )
            )
            round_id = self._inserted_id(result, "study round")
            conn.execute(
                insert(t.round_images),
                [{"round_id": round_id, "image_id": i} for i in dict.fromkeys(image_ids)],
            )
            conn.execute(
                insert(t.round_raters),
                [{"round_id": round_id, "rater_id": r} for r in dict.fromkeys(rater_ids)],
            )
            self._audit(
                conn,
                actor,
                "create",
                "round",
                round_id,
                {"name": name, "images": len(image_ids), "raters": list(raters), "blind": blind},
            )
        found = self.get_round(name)
        if found is None:  # only if the row vanished between write and read
            raise StoreError(f"The study round {name!r} was written but cannot be read back.")
        return found

    def get_round(self, name_or_id: str | int) -> StudyRound | None:
        """A round by name or id, or ``None``."""
        col = t.rounds.c.id if isinstance(name_or_id, int) else t.rounds.c.name
        with self.engine.connect() as conn:
            row = conn.execute(select(t.rounds).where(col == name_or_id)).first()
            if row is None:
                return None
            image_ids = conn.execute(
                select(t.round_images.c.image_id)
                .where(t.round_images.c.round_id == row.id)
                .order_by(t.round_images.c.image_id)
            ).scalars()
            raters_ = conn.execute(
                select(t.raters.c.name)
                .join(t.round_raters, t.round_raters.c.rater_id == t.raters.c.id)
                .where(t.round_raters.c.round_id == row.id)
                .order_by(t.raters.c.name)
            ).scalars()
            return StudyRound(
                id=row.id,
                name=row.name,
                dataset_id=row.dataset_id,
                blind=bool(row.blind),
                shuffled=bool(row.shuffled),
                repeat_of=row.repeat_of,
                image_ids=tuple(image_ids),
                raters=tuple(raters_),
                created_at=row.created_at,
                closed_at=row.closed_at,
            )

    def close_round(self, name_or_id: str | int, *, actor: str = "system") -> StudyRound:
        """Close a round: it takes no more labels and, when blind, stops hiding other people's
        labels of its images from its raters. Closing twice is refused.

        Raises:
            StoreError: no such round, or it is closed already.
        """
        found = self.get_round(name_or_id)
        if found is None:
            raise StoreError(f"No study round {name_or_id!r}.")
        if not found.is_open:
            raise StoreError(f"The round {found.name!r} is closed already.")
        with self.transaction() as conn:
            conn.execute(
                update(t.rounds)
                .where(t.rounds.c.id == found.id, t.rounds.c.closed_at.is_(None))
                .values(closed_at=utc_now())
            )
            self._audit(conn, actor, "close", "round", found.id, {"name": found.name})
        closed = self.get_round(found.id)
        if closed is None:  # only if the row vanished between write and read
            raise StoreError(f"The study round {found.name!r} was closed but cannot be read back.")
        return closed

    def list_rounds(self, dataset_id: int | None = None) -> list[StudyRound]:
        """Every round (of one dataset), oldest first."""
        q = select(t.rounds.c.id).order_by(t.rounds.c.id)
        if dataset_id is not None:
            q = q.where(t.rounds.c.dataset_id == dataset_id)
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        return [r for r in (self.get_round(i) for i in ids) if r is not None]

    def latest_statuses(self, rater: str, round_id: int | None) -> dict[int, str]:
        """``{image_id: latest status}`` of one rater within a round (or outside any round)."""
        cond = (
            t.status_events.c.round_id.is_(None)
            if round_id is None
            else t.status_events.c.round_id == round_id
        )
        newest = (
            select(func.max(t.status_events.c.id))
            .join(t.raters, t.raters.c.id == t.status_events.c.rater_id)
            .where(t.raters.c.name == rater, cond)
            .group_by(t.status_events.c.image_id)
        )
        q = select(t.status_events.c.image_id, t.status_events.c.status).where(
            t.status_events.c.id.in_(newest)
        )
        with self.engine.connect() as conn:
            return {r.image_id: r.status for r in conn.execute(q)}
