"""Training from the labels store: ``sgus train segment|grade`` (docs/CLI.md).

Reads a dataset's latest labels of one rater, crops each frame to its field of view, trains
through :mod:`sgus_core.training` (the small-data protocol: ``segmenting``, ``grading``), writes
the model with its card into the models folder and registers it in the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgus_core import imaging
from sgus_core.browse import load_frame
from sgus_core.errors import ModelError
from sgus_core.inference.registry import default_model_names, read_card_file
from sgus_core.settings import Settings
from sgus_core.store import LabelStore
from sgus_core.training.export import export_accelerated
from sgus_core.transfer import default_rater

TASKS = ("segment", "grade")
DEFAULT_EPOCHS = {"segment": 40, "grade": 40}
DEFAULT_FINE_TUNE_EPOCHS = 60  # fine-tuning: enough epochs for the frozen-encoder schedule
FINE_TUNE_PATIENCE = 15

Progress = Callable[[int, int], None]
StageProgress = Callable[[str, int, int, dict], None]


def _crop(array, fov):
    if fov is None:
        return array
    x, y, width, height = fov
    return array[y : y + height, x : x + width]


def samples_from_store(
    store: LabelStore,
    dataset: str,
    *,
    rater: str | None = None,
    max_pixels: int | None = None,
    progress: Progress | None = None,
):
    """The dataset's labelled frames as training samples (FOV crops), and the rater used.

    Frames with neither a mask nor a grade of the rater are left out. Returns
    ``(samples, rater)``.

    Raises:
        StoreError: unknown dataset or rater, or no labels.
    """
    from sgus_core.training.data import Sample

    ds = store.require_dataset(dataset)
    rater = default_rater(store, ds.id, rater)
    masks = store.latest_masks_for_dataset(ds.id, rater)
    grades = store.latest_grades_for_dataset(ds.id, rater)
    images = [i for i in store.list_images(ds.id) if i.id in masks or i.id in grades]
    samples = []
    for done, image in enumerate(images, start=1):
        kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
        frame = load_frame(store, image, **kwargs)
        mask = masks.get(image.id)
        grade = grades.get(image.id)
        samples.append(
            Sample(
                image=_crop(frame.pixels, image.fov),
                mask=None if mask is None else _crop(imaging.decode_mask_png(mask.png), image.fov),
                devita=grade.devita if grade else None,
                omeract=grade.omeract if grade else None,
                patient=image.patient or f"image-{image.id}",
                key=f"{image.content_hash}:{image.frame_index}",
            )
        )
        if progress:
            progress(done, len(images))
    return samples, rater


def fill_predicted_masks(
    samples: list, models_dir: Path, target: str = "devita", *, segmenter: str | None = None
) -> tuple[list, str | None, int]:
    """Graded samples without a mask get the default (or named) segmenter's mask, so the grader
    reads the gland rather than the whole field of view. Returns (samples, segmenter name or
    None when there is none, how many were outlined)."""
    import dataclasses

    from sgus_core.inference.pipeline import segment_crops
    from sgus_core.inference.registry import load_model

    todo = [i for i, s in enumerate(samples) if s.mask is None and getattr(s, target) is not None]
    name = segmenter or default_model_names(models_dir).get("segment")
    if not todo or not name:
        return samples, None, 0
    masks = segment_crops(load_model(name, models_dir), [samples[i].image for i in todo])
    out = list(samples)
    for i, mask in zip(todo, masks, strict=True):
        out[i] = dataclasses.replace(samples[i], mask=mask)
    return out, name, len(todo)


def _start_path(models_dir: Path, from_model: str | None) -> Path | None:
    if not from_model:
        return None
    start = Path(from_model)
    if not start.suffix:
        start = models_dir / f"{from_model}.keras"
    if start.suffix != ".keras" or not start.is_file():
        raise ModelError(
            f"No Keras model to fine-tune at {start} (a feature grader is refitted, not "
            "fine-tuned: train without --from)."
        )
    return start


def train_from_store(
    store: LabelStore,
    settings: Settings,
    task: str,
    dataset: str,
    *,
    arch: str | None = None,
    epochs: int | None = None,
    out: str | None = None,
    from_model: str | None = None,
    rater: str | None = None,
    target: str = "devita",
    seed: int = 0,
    folds: int | None = None,
    model_options: dict[str, Any] | None = None,
    input_size: tuple[int, int] | None = None,
    load_progress: Progress | None = None,
    progress: StageProgress | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    """Train (or fine-tune with ``from_model``) a model on a dataset; returns its model card.

    The small-data protocol (``training.validation``): below 300 labelled frames the figures come
    from patient-grouped ``folds``-fold cross-validation (default 5; 0 turns it off) and the
    saved model is fitted on every frame. Graders compare the feature grader with the CNN
    (``arch`` "auto", the default) and keep the better; frames graded without a mask are outlined
    by the default segmenter first. ``input_size`` (H, W) overrides the architecture's default
    input size; when fine-tuning it must be the model's own. ``progress(stage, done, total,
    logs)`` may raise to stop the run; ``actor`` is who the audit log names.

    Raises:
        ModelError: unknown task or architecture, too little data, or a bad ``from_model``.
        StoreError: unknown dataset or rater, or a model name already registered.
    """
    from sgus_core.training import DEFAULT_SEGMENTER, cards
    from sgus_core.training.grading import AUTO, train_grade
    from sgus_core.training.segmenting import save_segment_run, train_segment

    if task not in TASKS:
        raise ModelError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}.")
    if out is not None:
        cards.check_model_name(out)
        _check_free(store, settings.models_dir, out)
    models_dir = settings.models_dir
    start = _start_path(models_dir, from_model)
    samples, rater = samples_from_store(
        store, dataset, rater=rater, max_pixels=settings.max_pixels, progress=load_progress
    )
    extra: dict[str, Any] = {"dataset": dataset, "rater": rater}
    try:
        if task == "segment":
            options = {
                "arch": arch or DEFAULT_SEGMENTER,
                "epochs": epochs or (DEFAULT_FINE_TUNE_EPOCHS if start else DEFAULT_EPOCHS[task]),
                "seed": seed,
                "from_model": start,
                "input_shape": input_size,
                "model_options": model_options,
            }
            if start is not None:
                options["patience"] = FINE_TUNE_PATIENCE
            run = train_segment(samples, folds=folds, progress=progress, **options)
            name = out or f"{run.result.architecture}-{dataset}"
            _check_free(store, models_dir, name)
            weights, card_path = save_segment_run(run, models_dir, name, extra)
            accelerated: Path | None = export_accelerated(weights, weights.with_suffix(".onnx"))
            architecture = run.result.architecture
        else:
            samples, outliner, outlined = fill_predicted_masks(samples, models_dir, target)
            extra["masks"] = {
                "rater": sum(1 for s in samples if s.mask is not None) - outlined,
                "predicted": outlined,
                "segmenter": outliner,
            }
            grade_run = train_grade(
                samples,
                design=arch or AUTO,
                target=target,
                folds=folds,
                epochs=epochs or DEFAULT_EPOCHS[task],
                seed=seed,
                from_model=start,
                input_shape=input_size,
                model_options=model_options,
                progress=progress,
            )
            name = out or f"grader-{dataset}"
            _check_free(store, models_dir, name)
            weights, card_path = cards.save_grade_run(grade_run, models_dir, name, card_extra=extra)
            accelerated = None
            if grade_run.cnn is not None:
                accelerated = export_accelerated(weights, weights.with_suffix(".onnx"))
            architecture = grade_run.design
    except ValueError as exc:  # a bad architecture option or input size
        raise ModelError(str(exc)) from exc
    card = read_card_file(card_path) | {
        "accelerated": None if accelerated is None else accelerated.name
    }
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    store.register_model(
        name, task=task, architecture=architecture, path=str(weights), card=card, actor=actor
    )
    return card


def _check_free(store: LabelStore, models_dir: Path, name: str) -> None:
    if store.get_model(name) is not None or (Path(models_dir) / f"{name}.json").exists():
        raise ModelError(f"A model named {name!r} exists already; choose another with --out.")


def default_on_labels(
    store: LabelStore,
    settings: Settings,
    task: str,
    dataset: str,
    *,
    rater: str | None = None,
    target: str = "devita",
) -> dict[str, Any]:
    """How the current default model (the dataset's, else the global one) does on the frames a
    training run learnt from: mean IoU on the rater's outlines, or quadratic kappa and accuracy
    of the default grader (reading the default segmenter's masks) on the rater's grades. These
    frames were never the default's training data, so the figure stands beside a new model's
    cross-validated one.

    Returns:
        ``{"model": name, "n": frames, "iou_mean": ...}`` or ``{"model", "n", "kappa_quadratic",
        "accuracy"}``; ``{"model": None}`` without a default.
    """
    import numpy as np

    from sgus_core.inference.pipeline import grader_input, segment_crops
    from sgus_core.inference.registry import dataset_default, load_model
    from sgus_core.metrics import batch_iou_dice, cohen_kappa

    name = dataset_default(settings.models_dir, dataset, task) or default_model_names(
        settings.models_dir
    ).get(task)
    if not name:
        return {"model": None}
    samples, _ = samples_from_store(store, dataset, rater=rater, max_pixels=settings.max_pixels)
    if task == "segment":
        masked = [s for s in samples if s.mask is not None]
        predicted = segment_crops(load_model(name, settings.models_dir), [s.image for s in masked])
        ious = [
            float(batch_iou_dice(s.mask, mask)[0])
            for s, mask in zip(masked, predicted, strict=True)
        ]
        return {"model": name, "n": len(ious), "iou_mean": float(np.mean(ious)) if ious else None}
    graded = [s for s in samples if getattr(s, target) is not None]
    graded, _, _ = fill_predicted_masks(graded, settings.models_dir, target)
    grader = load_model(name, settings.models_dir)
    if not graded:
        return {"model": name, "n": 0}
    x = np.stack([grader_input(s.image, s.mask, grader) for s in graded])
    predicted = np.asarray(grader.predict_grades(x)).argmax(axis=1)
    truth = np.array([int(getattr(s, target)) for s in graded])
    return {
        "model": name,
        "n": len(truth),
        "kappa_quadratic": float(cohen_kappa(truth, predicted, weights="quadratic").kappa),
        "accuracy": float(np.mean(truth == predicted)),
    }
