"""Predictions over the store: run the default (or a named) model on a dataset's frames and keep
the results, so the pages, ``sgus predict`` and ``sgus evaluate`` share one path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sgus_core import imaging
from sgus_core.browse import load_frame
from sgus_core.errors import SgusError
from sgus_core.inference.pipeline import segment_frames
from sgus_core.inference.registry import load_pipeline, register
from sgus_core.store import LabelStore

Progress = Callable[[int, int], None]


def predict_dataset(
    store: LabelStore,
    dataset: str,
    models_dir: Path,
    *,
    model: str | None = None,
    only_missing: bool = True,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Predict every frame of a dataset (those without a prediction of this model, by default)
    and store the masks, areas and grades. Returns ``(predicted, skipped with reasons)``."""
    segmenter, grader = load_pipeline(models_dir, model)
    register(store, models_dir, segmenter)
    ds = store.require_dataset(dataset)
    images = store.list_images(ds.id)
    if only_missing:
        images = [i for i in images if store.latest_prediction(i.id, segmenter.name) is None]
    skipped: list[tuple[str, str]] = []
    done = 0
    for start in range(0, len(images), batch_size):
        chunk, frames = [], []
        for image in images[start : start + batch_size]:
            try:
                frames.append(load_frame(store, image))
                chunk.append(image)
            except SgusError as exc:
                skipped.append((image.path, str(exc)))
        for image, pred in zip(
            chunk, segment_frames(segmenter, frames, grader=grader), strict=True
        ):
            store.save_prediction(
                image.id,
                segmenter.name,
                imaging.encode_mask_png(pred.mask),
                area_px=pred.area_px,
                area_mm2=pred.area_mm2,
                grade=pred.grade,
                grade_probabilities=pred.grade_probabilities,
            )
            done += 1
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return done, skipped
