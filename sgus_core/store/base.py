"""What every area of the labels store shares: the engine, write transactions, the audit row
written with every change, and rater ids."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Row, insert, select

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.engine import (
    current_revision,
    head_revision,
    make_engine,
    migrate,
    write_transaction,
)
from sgus_core.store.records import ImageRecord


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (every stored timestamp)."""
    return datetime.now(UTC)


class StoreBase:
    """What every area of the store builds on: the engine (migrated on open), write
    transactions, the audit row of every change and cached rater ids. ``LabelStore`` combines
    the areas over one of these.

    Args:
        url: SQLAlchemy URL (``sqlite:///path.db`` or ``postgresql+psycopg://...``).
        migrate_schema: run the migrations on open (the default).
    """

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate_schema:
            migrate(self.engine)
        elif current_revision(self.engine) != head_revision():
            raise StoreError(
                "The labels store's schema is not at this release's version; "
                "open it once with migrations enabled (any `sgus` command does)."
            )
        self._rater_ids: dict[str, int] = {}

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work; everything inside commits together or not at all."""
        with write_transaction(self.engine) as conn:
            yield conn

    @staticmethod
    def _audit(
        conn: Connection,
        actor: str,
        action: str,
        entity: str,
        entity_id: int | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            insert(t.audit_log).values(
                at=utc_now(),
                actor=actor,
                action=action,
                entity=entity,
                entity_id=entity_id,
                details=details,
            )
        )

    @staticmethod
    def _inserted_id(result: CursorResult[Any], what: str) -> int:
        """The primary key of the row an ``INSERT`` just wrote."""
        key = result.inserted_primary_key
        if key is None:
            raise StoreError(f"The database gave no id for the new {what}.")
        new_id: int = key[0]
        return new_id

    @staticmethod
    def _image_from_row(row: Row[Any]) -> ImageRecord:
        m = row._mapping
        fov = None
        if m["fov_width"] is not None:
            fov = (m["fov_x"], m["fov_y"], m["fov_width"], m["fov_height"])
        return ImageRecord(
            id=m["id"],
            dataset_id=m["dataset_id"],
            path=m["path"],
            content_hash=m["content_hash"],
            frame_index=m["frame_index"],
            width=m["width"],
            height=m["height"],
            patient=m["patient"],
            gland=m["gland"],
            side=m["side"],
            spacing_mm=m["spacing_mm"],
            fov=fov,
            meta=m["meta"] or {},
        )

    def _rater_id(self, conn: Connection, name: str) -> int:
        cached = self._rater_ids.get(name)
        if cached is not None:
            return cached
        row = conn.execute(select(t.raters.c.id).where(t.raters.c.name == name)).first()
        if row is None:
            raise StoreError(f"No rater named {name!r}.")
        self._rater_ids[name] = row[0]
        return row[0]
