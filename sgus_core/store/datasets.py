"""Datasets and their images (frames with patient, gland, side, spacing, FOV)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase, utc_now
from sgus_core.store.records import Dataset, ImageRecord, NewImage

METADATA_FIELDS = ("patient", "gland", "side", "spacing_mm")
"""The image fields a later import (with a CSV) may update, each change audited."""


class DatasetArea(StoreBase):
    """Datasets and their images (frames with patient, gland, side, spacing, FOV)."""

    def ensure_dataset(self, name: str, root_path: str | Path, *, actor: str = "system") -> Dataset:
        """Return the dataset called ``name``, creating it (rooted at ``root_path``) if missing."""
        name = name.strip()
        if not name:
            raise StoreError("A dataset needs a name.")
        existing = self.get_dataset(name)
        if existing:
            return existing
        try:
            with self.transaction() as conn:
                result = conn.execute(
                    insert(t.datasets).values(
                        name=name, root_path=str(root_path), created_at=utc_now()
                    )
                )
                new_id = self._inserted_id(result, "dataset")
                self._audit(conn, actor, "create", "dataset", new_id, {"name": name})
        except IntegrityError:
            pass  # another process created it first: use theirs
        found = self.get_dataset(name)
        if found is None:  # only if the row vanished between write and read
            raise StoreError(f"The dataset {name!r} was written but cannot be read back.")
        return found

    def get_dataset(self, name: str) -> Dataset | None:
        """The dataset called ``name`` or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.datasets).where(t.datasets.c.name == name)).first()
        return Dataset(**row._mapping) if row else None

    def require_dataset(self, name: str) -> Dataset:
        """The dataset called ``name``; raises :class:`StoreError` naming the ones that exist."""
        found = self.get_dataset(name)
        if found is None:
            names = ", ".join(d.name for d in self.list_datasets()) or "none yet"
            raise StoreError(f"No dataset named {name!r} (datasets: {names}).")
        return found

    def list_datasets(self) -> list[Dataset]:
        """Every dataset, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.datasets).order_by(t.datasets.c.name))
            return [Dataset(**r._mapping) for r in rows]

    def add_images(
        self, dataset_id: int, new_images: Sequence[NewImage], *, actor: str = "system"
    ) -> list[tuple[int, bool]]:
        """Add frames in one transaction; a frame already present (same content hash and frame
        index in the dataset) is not added again.

        Returns:
            One ``(image_id, created)`` per input, in order.
        """
        for attempt in range(3):
            try:
                return self._add_images(dataset_id, new_images, actor)
            except IntegrityError:
                # Another process added one of these frames between our check and our insert:
                # the transaction rolled back whole; the retry finds theirs as already present.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add_images(
        self, dataset_id: int, new_images: Sequence[NewImage], actor: str
    ) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        with self.transaction() as conn:
            for img in new_images:
                existing = self._find_image_id(conn, dataset_id, img.content_hash, img.frame_index)
                if existing is not None:
                    out.append((existing, False))
                    continue
                fov = img.fov or (None, None, None, None)
                result = conn.execute(
                    insert(t.images).values(
                        dataset_id=dataset_id,
                        path=img.path,
                        content_hash=img.content_hash,
                        frame_index=img.frame_index,
                        width=img.width,
                        height=img.height,
                        patient=img.patient,
                        gland=img.gland,
                        side=img.side,
                        spacing_mm=img.spacing_mm,
                        fov_x=fov[0],
                        fov_y=fov[1],
                        fov_width=fov[2],
                        fov_height=fov[3],
                        meta=img.meta or {},
                        created_at=utc_now(),
                    )
                )
                new_id = self._inserted_id(result, "image")
                self._audit(conn, actor, "create", "image", new_id, {"path": img.path})
                out.append((new_id, True))
        return out

    def add_image(
        self, dataset_id: int, new_image: NewImage, *, actor: str = "system"
    ) -> tuple[int, bool]:
        """Add one frame; returns ``(image_id, created)`` (see :meth:`add_images`)."""
        return self.add_images(dataset_id, [new_image], actor=actor)[0]

    def update_image_metadata(
        self, image_id: int, changes: dict[str, Any], *, actor: str = "system"
    ) -> dict[str, tuple[Any, Any]]:
        """Set an image's ``patient``, ``gland``, ``side`` or ``spacing_mm`` to new values; the
        audit log keeps each old value beside the new one (action ``update``), so the image's
        earlier metadata is never lost. Values equal to the stored ones change nothing.

        Returns:
            ``{field: (old, new)}`` of what changed (empty when nothing did).

        Raises:
            StoreError: no such image, or a field that is not one of those four.
        """
        unknown = set(changes) - set(METADATA_FIELDS)
        if unknown:
            raise StoreError(f"Image metadata has no field {', '.join(sorted(unknown))}.")
        with self.transaction() as conn:
            row = conn.execute(select(t.images).where(t.images.c.id == image_id)).first()
            if row is None:
                raise StoreError(f"No image with id {image_id}.")
            changed = {k: (row._mapping[k], v) for k, v in changes.items() if row._mapping[k] != v}
            if changed:
                conn.execute(
                    update(t.images)
                    .where(t.images.c.id == image_id)
                    .values({k: new for k, (_, new) in changed.items()})
                )
                self._audit(
                    conn,
                    actor,
                    "update",
                    "image",
                    image_id,
                    {
                        "before": {k: old for k, (old, _) in changed.items()},
                        "after": {k: new for k, (_, new) in changed.items()},
                    },
                )
        return changed

    @staticmethod
    def _find_image_id(
        conn: Connection, dataset_id: int, content_hash: str, frame_index: int
    ) -> int | None:
        row = conn.execute(
            select(t.images.c.id).where(
                t.images.c.dataset_id == dataset_id,
                t.images.c.content_hash == content_hash,
                t.images.c.frame_index == frame_index,
            )
        ).first()
        image_id: int | None = row[0] if row else None
        return image_id

    def find_image(
        self, dataset_id: int, content_hash: str, frame_index: int = 0
    ) -> ImageRecord | None:
        """The image with this content hash and frame index in the dataset, or ``None``."""
        with self.engine.connect() as conn:
            image_id = self._find_image_id(conn, dataset_id, content_hash, frame_index)
        return self.get_image(image_id) if image_id is not None else None

    def get_image(self, image_id: int) -> ImageRecord:
        """The image with this id; raises :class:`StoreError` if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.images).where(t.images.c.id == image_id)).first()
        if row is None:
            raise StoreError(f"No image with id {image_id}.")
        return self._image_from_row(row)

    def list_images(self, dataset_id: int) -> list[ImageRecord]:
        """Every image of a dataset in insertion order."""
        q = select(t.images).where(t.images.c.dataset_id == dataset_id).order_by(t.images.c.id)
        with self.engine.connect() as conn:
            return [self._image_from_row(r) for r in conn.execute(q)]

    def image_path(self, image: ImageRecord) -> Path:
        """The image's file on disk (paths are stored relative to the dataset root)."""
        with self.engine.connect() as conn:
            root = conn.execute(
                select(t.datasets.c.root_path).where(t.datasets.c.id == image.dataset_id)
            ).scalar_one()
        return Path(root) / image.path

    def patients(self, dataset_id: int) -> list[str]:
        """Distinct patient ids of a dataset, sorted."""
        q = (
            select(t.images.c.patient)
            .where(t.images.c.dataset_id == dataset_id, t.images.c.patient.is_not(None))
            .distinct()
            .order_by(t.images.c.patient)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(q)]
