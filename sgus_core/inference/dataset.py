"""Predictions over the store: run the default (or a named) model on a dataset's frames and keep
the results, so the pages, ``sgus predict`` and ``sgus evaluate`` share one path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sgus_core import imaging
from sgus_core.browse import load_frame
from sgus_core.errors import SgusError
from sgus_core.inference.pipeline import segment_frames
from sgus_core.inference.registry import load_pipeline, register
from sgus_core.store import LabelStore

if TYPE_CHECKING:
    from sgus_core.auth import AccountStore

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
    writer: AccountStore | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Predict every frame of a dataset (those without a prediction of this model, by default)
    and store the masks, areas and grades; without ``model``, the dataset's default (else the
    global one). Returns ``(predicted, skipped with reasons)``.

    ``writer`` is the signed-in person a page runs this for: her permissions are checked before
    anything is loaded or written (a viewer is refused), and each prediction is audited under her
    name. Without it (``sgus evaluate``, the demo) predictions are stored as actor ``model``.

    Raises:
        PermissionDenied: ``writer`` may not write (a viewer).
    """
    if writer is not None:
        writer.require_may_write()
    save = store.save_prediction if writer is None else writer.save_prediction
    segmenter, grader = load_pipeline(models_dir, model, dataset=dataset)
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
            save(
                image.id, segmenter.name, imaging.encode_mask_png(pred.mask), **pred.store_fields()
            )
            done += 1
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return done, skipped


def model_task(models_dir: Path, name: str) -> str:
    """ "segment" or "grade" for a model name (a Deep SGUS ``.pb`` graph is a segmenter).

    Raises:
        ModelError: no such model (the message lists the ones there are).
    """
    from sgus_core.inference.registry import read_card

    if name.endswith(".pb") or (Path(models_dir) / f"{name}.pb").is_file():
        return "segment"
    return str(read_card(models_dir, name).get("task", "segment"))


def evaluation_models(
    models_dir: Path, model: str | None, grader: str | None
) -> tuple[str | None, str | None]:
    """``sgus evaluate``'s (segmenter, grader) names: a grader given as ``--model`` is taken as
    the grader (with the default segmenter); a model of the wrong kind is refused.

    Raises:
        ModelError: a missing model, or a segmenter given as the grader, or two graders.
    """
    from sgus_core.errors import ModelError

    if model is not None and model_task(models_dir, model) == "grade":
        if grader is not None:
            raise ModelError(
                f"{model} is a grader; give the segmenter as --model, {grader} as --grader."
            )
        model, grader = None, model
    if grader is not None and model_task(models_dir, grader) != "grade":
        raise ModelError(f"{grader} is a segmentation model, not a grader; give it as --model.")
    return model, grader


def grade_dataset(
    store: LabelStore,
    dataset: str,
    models_dir: Path,
    grader_name: str,
    segmenter_name: str,
    *,
    progress: Progress | None = None,
) -> dict[int, tuple[int, list[float]]]:
    """A grader's grades for the frames that have a prediction of ``segmenter_name``, each read
    inside that predicted mask (as the app grades a frame): ``{image_id: (grade, probabilities)}``.
    Nothing is stored."""
    import numpy as np

    from sgus_core.inference.pipeline import grader_input
    from sgus_core.inference.registry import load_model

    grader = load_model(grader_name, models_dir)
    ds = store.require_dataset(dataset)
    images = store.list_images(ds.id)
    out: dict[int, tuple[int, list[float]]] = {}
    for done, image in enumerate(images, start=1):
        pred = store.latest_prediction(image.id, segmenter_name)
        if pred is not None:
            try:
                frame = load_frame(store, image)
            except SgusError:
                continue
            mask = imaging.decode_mask_png(pred.png)
            crop = frame.pixels[frame.fov.slices]
            x = grader_input(crop, mask[frame.fov.slices], grader)[None]
            probs = np.asarray(grader.predict_grades(x))[0]
            out[image.id] = (int(np.argmax(probs)), [float(p) for p in probs])
        if progress:
            progress(done, len(images))
    return out
