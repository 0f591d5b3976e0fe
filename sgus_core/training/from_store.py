"""Training from the labels store: ``sgus train segment|grade`` (docs/CLI.md).

Reads a dataset's latest labels of one rater, crops each frame to its field of view, trains
through :mod:`sgus_core.training`, writes ``models/<name>.keras`` with its model card and registers
the model in the store.
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
from sgus_core.inference.runtimes import load_keras_model
from sgus_core.settings import Settings
from sgus_core.store import LabelStore
from sgus_core.training.export import export_accelerated
from sgus_core.transfer import default_rater

TASKS = ("segment", "grade")
DEFAULT_EPOCHS = {"segment": 40, "grade": 40}

Progress = Callable[[int, int], None]


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
    model_options: dict[str, Any] | None = None,
    input_size: tuple[int, int] | None = None,
    load_progress: Progress | None = None,
    epoch_progress: Callable[[int, int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train (or fine-tune with ``from_model``) a model on a dataset; returns its model card.

    ``input_size`` (H, W) overrides the architecture's default input size (the channels stay the
    architecture's); when fine-tuning it must be the model's own.

    Raises:
        ModelError: unknown task or architecture, too little data, or a bad ``from_model``.
        StoreError: unknown dataset or rater, or a model name already registered.
    """
    from sgus_core import training

    if task not in TASKS:
        raise ModelError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}.")
    samples, rater = samples_from_store(
        store, dataset, rater=rater, max_pixels=settings.max_pixels, progress=load_progress
    )
    models_dir = settings.models_dir
    start = None
    if from_model:
        start = Path(from_model)
        if not start.suffix:
            start = models_dir / f"{from_model}.keras"
        if not start.is_file():
            raise ModelError(f"No model to fine-tune at {start}.")
    options: dict[str, Any] = {
        "input_shape": input_size,
        "epochs": epochs or DEFAULT_EPOCHS[task],
        "seed": seed,
        "from_model": start,
        "progress": epoch_progress,
        "model_options": model_options,
    }
    try:
        result = _train(training, task, samples, arch, target, models_dir, options)
    except ValueError as exc:  # a bad architecture option or input size
        raise ModelError(str(exc)) from exc
    name = out or f"{result.architecture}-{dataset}"
    if store.get_model(name) is not None:
        raise ModelError(f"A model named {name!r} exists already; choose another with --out.")
    weights, card_path = training.save_model(
        result, models_dir, name, card_extra={"dataset": dataset, "rater": rater}
    )
    accelerated = export_accelerated(weights, weights.with_suffix(".onnx"))
    card = read_card_file(card_path) | {"accelerated": accelerated.name}
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    store.register_model(
        name, task=task, architecture=result.architecture, path=str(weights), card=card
    )
    return card


def _train(training, task, samples, arch, target, models_dir, options):
    """Run the task's trainer; the crop grader outlines unmasked frames with the default
    segmenter."""
    if task == "segment":
        return training.train_segmenter(samples, arch=arch or training.DEFAULT_SEGMENTER, **options)
    design = arch or training.DEFAULT_GRADER
    segmenter = None
    if design == "grader_crop" and any(s.mask is None for s in samples):
        name = default_model_names(models_dir).get("segment")
        if not name:
            raise ModelError(
                "Some frames have no mask and there is no default segmenter to outline them; "
                "train one first (`sgus train segment`)."
            )
        segmenter = load_keras_model(models_dir / f"{name}.keras")
    return training.train_grader(
        samples, design=design, target=target, segmenter=segmenter, **options
    )
