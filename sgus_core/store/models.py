"""Registered models and their stored predictions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase, utc_now
from sgus_core.store.records import ModelRecord, PredictionRecord
from sgus_core.store.validation import require_valid_mask


class ModelArea(StoreBase):
    """Registered models and their stored predictions."""

    def register_model(
        self,
        name: str,
        *,
        task: str,
        architecture: str,
        path: str | Path,
        card: dict[str, Any],
        actor: str = "system",
    ) -> ModelRecord:
        """Register a trained model (a new name each time: a model is never replaced)."""
        existing = self.get_model(name)
        if existing is not None:
            if existing.path == str(path) and existing.card == card:
                return existing
            raise StoreError(f"A model named {name!r} is already registered; choose a new name.")
        with self.transaction() as conn:
            result = conn.execute(
                insert(t.models).values(
                    name=name,
                    task=task,
                    architecture=architecture,
                    path=str(path),
                    card=json.loads(json.dumps(card)),
                    created_at=utc_now(),
                )
            )
            new_id = self._inserted_id(result, "model")
            self._audit(conn, actor, "register", "model", new_id, {"name": name})
        found = self.get_model(name)
        if found is None:  # only if the row vanished between write and read
            raise StoreError(f"The model {name!r} was written but cannot be read back.")
        return found

    _MODEL_COLS = (
        t.models.c.id,
        t.models.c.name,
        t.models.c.task,
        t.models.c.architecture,
        t.models.c.path,
        t.models.c.card,
    )

    def get_model(self, name: str) -> ModelRecord | None:
        """The registered model called ``name`` or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*self._MODEL_COLS).where(t.models.c.name == name)).first()
        return ModelRecord(**row._mapping) if row else None

    def list_models(self) -> list[ModelRecord]:
        """Every registered model, by name."""
        with self.engine.connect() as conn:
            return [
                ModelRecord(**r._mapping)
                for r in conn.execute(select(*self._MODEL_COLS).order_by("name"))
            ]

    def save_prediction(
        self,
        image_id: int,
        model_name: str,
        png: bytes,
        *,
        area_px: int,
        area_mm2: float | None = None,
        grade: int | None = None,
        grade_probabilities: Sequence[float] | None = None,
        actor: str = "model",
    ) -> PredictionRecord:
        """Append a model prediction of an image (the model must be registered).

        The mask PNG is checked as :meth:`LabelStore.save_mask` checks a rater's (decodes, binary,
        the frame's size, ``area_px`` its pixel count); otherwise nothing is written.

        Raises:
            StoreError: the model is not registered, or the mask fails those checks.
        """
        model = self.get_model(model_name)
        if model is None:
            raise StoreError(f"Model {model_name!r} is not registered in the labels store.")
        with self.engine.connect() as conn:  # before the write lock: decoding takes a moment
            require_valid_mask(conn, image_id, png, area_px, f"prediction by {model_name}")
        now = utc_now()
        probs = [float(p) for p in grade_probabilities] if grade_probabilities is not None else None
        with self.transaction() as conn:
            result = conn.execute(
                insert(t.predictions).values(
                    image_id=image_id,
                    model_id=model.id,
                    png=png,
                    area_px=int(area_px),
                    area_mm2=area_mm2,
                    grade=grade,
                    grade_probabilities=probs,
                    created_at=now,
                )
            )
            new_id = self._inserted_id(result, "prediction")
            self._audit(
                conn,
                actor,
                "save",
                "prediction",
                new_id,
                {"image_id": image_id, "model": model_name},
            )
        return PredictionRecord(
            new_id,
            image_id,
            model_name,
            png,
            int(area_px),
            area_mm2,
            grade,
            tuple(probs) if probs is not None else None,
            now,
        )

    def models_with_predictions(
        self, dataset_id: int, *, leave_out: frozenset[int] = frozenset()
    ) -> list[str]:
        """Names of the models that have predictions of images of the dataset (other than the
        images ``leave_out``)."""
        q = (
            select(t.models.c.name)
            .join(t.predictions, t.predictions.c.model_id == t.models.c.id)
            .join(t.images, t.images.c.id == t.predictions.c.image_id)
            .where(t.images.c.dataset_id == dataset_id)
            .distinct()
            .order_by(t.models.c.name)
        )
        if leave_out:
            q = q.where(t.images.c.id.not_in(sorted(leave_out)))
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def latest_prediction(
        self, image_id: int, model_name: str | None = None
    ) -> PredictionRecord | None:
        """The newest prediction of an image (optionally of one model), or ``None``."""
        q = (
            select(
                t.predictions.c.id,
                t.predictions.c.image_id,
                t.models.c.name.label("model"),
                t.predictions.c.png,
                t.predictions.c.area_px,
                t.predictions.c.area_mm2,
                t.predictions.c.grade,
                t.predictions.c.grade_probabilities,
                t.predictions.c.created_at,
            )
            .join(t.models, t.models.c.id == t.predictions.c.model_id)
            .where(t.predictions.c.image_id == image_id)
            .order_by(t.predictions.c.id.desc())
            .limit(1)
        )
        if model_name is not None:
            q = q.where(t.models.c.name == model_name)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        m = dict(row._mapping)
        gp = m["grade_probabilities"]
        m["grade_probabilities"] = tuple(gp) if gp is not None else None
        return PredictionRecord(**m)
