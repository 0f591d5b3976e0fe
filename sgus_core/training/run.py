"""One training run for either task: build or load the network, fit it with early stopping,
measure it on the held-out patients.

Pure Python over numpy arrays: the caller (the CLI, the admin page) reads the labels store and
hands over :class:`Sample` values; nothing here touches the store.

How a segmenter is trained (the Deep SGUS recipe, made small enough for a 2-core CPU):

* split by patient (:func:`split_by_patient`): no patient's frames in two of train/val/test;
* every field-of-view crop is resized once to the model's input size (``cv2.INTER_AREA``) and
  scaled to 0..1 (:func:`preprocess_frame`), masks likewise (area-resized, threshold 0.5);
* each training batch is augmented on the fly (:func:`augment`): horizontal flip, small rotation,
  random crop resized back (as in the Deep SGUS paper), gain, contrast (gamma) and speckle
  (multiplicative noise), the geometric part applied identically to image and mask;
* loss = binary cross-entropy + soft Dice, Adam, early stopping on validation IoU with the best
  epoch's weights restored; fine-tuning loads a saved model and continues at a tenth of the
  learning rate.

Augmentation of a batch costs a few milliseconds against a few hundred for the training step, so
the :class:`keras.utils.PyDataset` runs it in the training thread by default (``workers=1``):
batches then come out the same on every run, whatever the thread scheduling.

Grade classifiers learn from frames with a grade, with or without a mask. Class imbalance (de
Vita grade 1 is rare) is handled by class-weighted cross-entropy: each training sample is weighted
by ``n / (k * n_grade)`` (k = grades present), clipped to [0.2, 10] and normalised to mean 1.
Weighting was chosen over a focal or ordinal loss because it keeps the softmax calibrated enough
to report per-grade probabilities and adds no hyper-parameter; the ordinal structure is judged by
the quadratic-weighted kappa that early stopping watches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np

from sgus_core.errors import ModelError
from sgus_core.inference.processing import (
    THRESHOLD,
    gland_crop,
    preprocess_frame,
    resize_mask,
)
from sgus_core.inference.prompts import takes_prompts
from sgus_core.inference.registry import read_card_file
from sgus_core.inference.runtimes import load_keras_model
from sgus_core.nets import DEFAULT_INPUT_SHAPES, GRADER_NAMES, SEGMENTER_NAMES, build_model
from sgus_core.synthesis.family import SynthFrame
from sgus_core.training.augmentation import DEFAULT_AUGMENTATION, AugmentConfig, Batches
from sgus_core.training.data import Sample, data_hash, split_by_patient
from sgus_core.training.losses import (
    bce_dice_loss,
    class_weights,
    grade_metrics,
    iou,
    iou_per_image,
    quadratic_kappa,
)
from sgus_core.training.synthetic import (
    TRAINING_AUGMENTATION,
    FrameBatches,
    FrameExamples,
    SynthConfig,
    SyntheticBatches,
    validation_set,
)
from sgus_core.vocabulary import GRADE_TARGETS, N_GRADES

DEFAULT_SEGMENTER = "unet"
DEFAULT_SEGMENTER_OPTIONS: dict[str, Any] = {"base_filters": 8, "depth": 4}
DEFAULT_GRADER = "grader_crop"
LEARNING_RATE = 1e-3
FINE_TUNE_LR_FACTOR = 0.1  # fine-tuning continues at a tenth of the rate
FREEZE_EPOCHS_SHARE = 0.25  # fine-tuning: this share of the epochs with the encoder frozen
MIN_STEPS_PER_EPOCH = 16  # a segmenter epoch on a handful of outlines still takes 16 batches

ProgressFn = Callable[[int, int, dict[str, float]], None]
"""``progress(epochs_done, epochs_total, logs)``, called after every epoch."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        model: the trained Keras model (best validation epoch's weights).
        task: "segment" or "grade".
        architecture: registry name (``sgus_core.nets.MODEL_NAMES``).
        input_shape: (H, W, C) the model takes.
        history: per-epoch metrics, e.g. ``{"loss": [...], "val_iou": [...]}``.
        test_metrics: segmenters: ``iou_mean``, ``iou_median``, ``dice_mean``, ``n``;
            graders: ``accuracy``, ``kappa_quadratic``, ``precision_per_grade``,
            ``recall_per_grade``, ``support_per_grade``, ``confusion``, ``n``. Both also
            ``float16_delta``: how much the headline metric moves when the weights are rounded
            to float16 (what :func:`save_model` uses to pick the storage type).
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        data_hash: sha256 over the sorted sample keys and their labels (see :func:`data_hash`).
        n_samples: samples used (n_train + n_val + n_test).
        epochs_run: epochs trained (early stopping may end before the requested number).
        best_epoch: 1-based epoch whose weights the model holds.
        seed: the random seed.
        target: "devita" or "omeract" for graders, None for segmenters.
        model_options: builder options (``width``, ``base_filters`` ...).
        fine_tuned_from: path of the model it continued from, or None.
        seconds: wall time of the run.
        warning: a line for the user when the run did not do what was asked (a fine-tune
            that did not beat its starting network on the validation frames), else None.
    """

    model: keras.Model
    task: str
    architecture: str
    input_shape: tuple[int, int, int]
    history: dict[str, list[float]]
    test_metrics: dict[str, Any]
    n_train: int
    n_val: int
    n_test: int
    data_hash: str
    n_samples: int
    epochs_run: int
    best_epoch: int
    seed: int
    target: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    fine_tuned_from: str | None = None
    seconds: float = 0.0
    warning: str | None = None


# ----------------------------------------------------------------------------------- helpers


def _epoch_callbacks(progress: ProgressFn | None, epochs: int) -> list[keras.callbacks.Callback]:
    if progress is None:
        return []
    return [
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: progress(
                epoch + 1, epochs, {k: float(v) for k, v in (logs or {}).items()}
            )
        )
    ]


def _history(fit_history: keras.callbacks.History) -> dict[str, list[float]]:
    return {k: [float(v) for v in values] for k, values in fit_history.history.items()}


def _with_float16_weights(model: keras.Model, evaluate: Callable[[], float]) -> float:
    """Return evaluate() with the weights rounded to float16 (the weights are put back after)."""
    original = model.get_weights()
    try:
        model.set_weights([w.astype(np.float16).astype(w.dtype) for w in original])
        return evaluate()
    finally:
        model.set_weights(original)


def _start_model(
    arch: str,
    input_shape: tuple[int, ...] | None,
    model_options: dict[str, Any],
    from_model: Path | None,
    task: str,
) -> tuple[keras.Model, str, dict[str, Any], tuple[int, int, int]]:
    """Build ``arch`` or load ``from_model``; returns (model, architecture, options, input shape).

    ``input_shape`` is (H, W, C) or (H, W) (the architecture's channels); with ``from_model`` it
    must match the saved model's.
    """
    if from_model is None:
        given = tuple(int(v) for v in (input_shape or DEFAULT_INPUT_SHAPES[arch]))
        if len(given) not in (2, 3):
            raise ValueError(f"input shape must be (H, W) or (H, W, C), got {given}")
        channels = given[2] if len(given) == 3 else DEFAULT_INPUT_SHAPES[arch][2]
        shape = (given[0], given[1], channels)  # (H, W): the architecture's own channels
        return build_model(arch, shape, **model_options), arch, dict(model_options), shape
    from_model = Path(from_model)
    model = load_keras_model(from_model)
    h, w, c = (int(v) for v in model.input_shape[1:])
    shape = (h, w, c)
    is_segmenter = len(model.output_shape) == 4
    if is_segmenter != (task == "segment"):
        kind = "a segmentation" if is_segmenter else "a grading"
        raise ModelError(
            f"{from_model.name} is {kind} model: it cannot be fine-tuned for this task"
        )
    if input_shape is not None and tuple(input_shape) != shape[: len(input_shape)]:
        raise ModelError(f"{from_model.name} takes input {shape}, not {tuple(input_shape)}")
    card_path = from_model.with_suffix(".json")
    card = read_card_file(card_path) if card_path.exists() else {}
    options = dict(card.get("model_options", model_options))
    return model, card.get("architecture", arch), options, shape


def _learning_rate(learning_rate: float | None, fine_tuning: bool) -> float:
    if learning_rate is not None:
        return float(learning_rate)
    return LEARNING_RATE * (FINE_TUNE_LR_FACTOR if fine_tuning else 1.0)


def _predict(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def _ious(model: keras.Model, x: np.ndarray, masks: np.ndarray, batch_size: int) -> np.ndarray:
    """Per-image IoU of a segmenter's masks (probability > ``THRESHOLD``) on inputs ``x``
    against the (N, H, W) bool ``masks``."""
    return iou_per_image(masks, _predict(model, x, batch_size)[..., 0] > THRESHOLD)


@dataclass(frozen=True)
class _Split:
    """The samples a run used and how they were split (for :func:`_result`)."""

    used: list[Sample]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]

    def counts(self) -> dict[str, Any]:
        """The split's sizes and data hash, as :class:`TrainResult` fields."""
        return {
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "data_hash": data_hash(self.used),
            "n_samples": len(self.used),
        }


def _fit(
    model: keras.Model,
    batches: Batches,
    *,
    monitor: str,
    patience: int,
    epochs: int,
    progress: ProgressFn | None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    before: Sequence[keras.callbacks.Callback] = (),
    reduce_lr: bool = False,
) -> tuple[dict[str, list[float]], int]:
    """The run skeleton both tasks share: fit with early stopping on ``monitor`` (best weights
    restored), optionally halving the rate on a plateau; returns (history, best 1-based epoch).

    ``before`` are callbacks that must write their figures into the logs before early stopping
    reads them (the grader's validation kappa)."""
    callbacks: list[keras.callbacks.Callback] = [
        *before,
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max", patience=patience, restore_best_weights=True
        ),
    ]
    if reduce_lr:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode="max", factor=0.5, patience=max(2, patience // 2), min_lr=1e-6
            )
        )
    callbacks += _epoch_callbacks(progress, epochs)
    fit = model.fit(
        batches, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=0
    )
    history = _history(fit)
    best_epoch = (
        1 + int(np.argmax(history[monitor]))
        if history.get(monitor)
        else len(history.get("loss", []))
    )
    return history, best_epoch


def _result(
    model: keras.Model,
    *,
    task: str,
    architecture: str,
    input_shape: tuple[int, int, int],
    history: dict[str, list[float]],
    best_epoch: int,
    metrics: dict[str, Any],
    counts: dict[str, Any],
    seed: int,
    model_options: dict[str, Any],
    from_model: Path | None,
    started: float,
    target: str | None = None,
    warning: str | None = None,
) -> TrainResult:
    """The :class:`TrainResult` of a finished run (both tasks build it the same way)."""
    return TrainResult(
        model=model,
        task=task,
        architecture=architecture,
        input_shape=input_shape,
        history=history,
        test_metrics=metrics,
        **counts,
        epochs_run=len(history.get("loss", [])),
        best_epoch=best_epoch,
        seed=seed,
        target=target,
        model_options=model_options,
        fine_tuned_from=None if from_model is None else str(from_model),
        warning=warning,
        seconds=time.perf_counter() - started,
    )


# -------------------------------------------------------------------------------- segmenters


def encoder_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers fine-tuning freezes first: the U-Net's ``enc*`` layers, else the first half of
    the layers that hold weights (the contracting path of the other architectures)."""
    named = [layer for layer in model.layers if layer.name.startswith("enc")]
    if named:
        return named
    weighted = [layer for layer in model.layers if layer.weights]
    return weighted[: len(weighted) // 2]


def _offset_progress(progress: ProgressFn | None, done: int, total: int) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda epoch, _phase_total, logs: progress(done + epoch, total, logs)


def _net_input(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(N, H, W) grey -> the network's (N, H, W, C) input, prompt channels zero."""
    x = np.zeros((*images.shape, shape[2]), dtype=np.float32)
    x[..., 0] = images
    return x


def _as_frame(sample: Sample) -> SynthFrame:
    """A labelled FOV crop as the frame the example drawers take (its FOV: the whole crop)."""
    height, width = sample.image.shape[:2]
    image = np.asarray(sample.image)
    if image.ndim == 3:
        image = image.mean(axis=2).astype(np.uint8)
    mask = np.asarray(sample.mask, dtype=bool)
    return SynthFrame(image, mask, int(sample.devita or 0), (0, 0, width, height), "labels", 0)


def train_segmenter(
    samples: Sequence[Sample],
    *,
    arch: str = DEFAULT_SEGMENTER,
    input_shape: tuple[int, ...] | None = None,
    epochs: int = 40,
    batch_size: int = 8,
    seed: int = 0,
    from_model: Path | None = None,
    progress: ProgressFn | None = None,
    patience: int = 8,
    model_options: dict[str, Any] | None = None,
    learning_rate: float | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    augmentation: AugmentConfig | None = DEFAULT_AUGMENTATION,
    workers: int = 1,
    freeze_encoder_epochs: int | None = None,
) -> TrainResult:
    """Train (or fine-tune) a gland segmenter on the samples that have a mask.

    Fine-tuning (``from_model``) follows a two-phase schedule that pays off after a few
    outlines: first the encoder is frozen and the decoder adapts for ``freeze_encoder_epochs``
    (default a quarter of ``epochs``), then every layer trains, both at the fine-tuning rate
    (a tenth of the training rate), with early stopping. (The decoder's phase at the full rate
    unlearned more than it learned on unfamiliar frames: 20 outlines of the benchmark's
    `randomised` family took the held-out network from IoU 0.541 to 0.500, at the fine-tuning
    rate to 0.535.) A prompted network (4 input channels) learns from the
    outlines in both modes: half the examples zero-shot, half with a box drawn from the outline
    and jittered as people drag one (``training.synthetic.FrameBatches``).

    Args:
        samples: labelled frames; those without a mask are left out.
        arch: a segmenter of ``sgus_core.nets.SEGMENTER_NAMES`` (ignored with ``from_model``).
        input_shape: (H, W, 1) or (H, W); default the registry's (192, 256, 1).
        epochs: most epochs to train.
        batch_size: frames per step.
        seed: seeds Keras, numpy, the split and the augmentation.
        from_model: a saved ``.keras`` segmenter to fine-tune (its card, beside it, names the
            architecture); training then starts at ``FINE_TUNE_LR_FACTOR`` x the rate.
        progress: called after each epoch as ``progress(done, epochs, logs)``.
        patience: epochs without a better validation IoU before stopping.
        model_options: builder options, e.g. ``{"base_filters": 8}``; default for the U-Net
            :data:`DEFAULT_SEGMENTER_OPTIONS`.
        learning_rate: Adam's rate; default 1e-3 (1e-4 when fine-tuning).
        val_fraction: share of samples (by patient) for validation.
        test_fraction: share of samples (by patient) for the test metrics.
        augmentation: augmentation ranges, or None for none.
        workers: threads preparing batches (1 keeps runs repeatable).
        freeze_encoder_epochs: epochs with the encoder frozen (0: none; default a quarter of
            ``epochs`` when fine-tuning, else 0).

    Returns:
        A :class:`TrainResult` whose ``test_metrics`` hold ``iou_mean``, ``iou_median``,
        ``dice_mean``, ``n`` and ``float16_delta`` on the test patients.

    Raises:
        ValueError: unknown ``arch`` or bad options.
        ModelError: too few masked frames or patients, or ``from_model`` unreadable or of another
            input shape.
    """
    started = time.perf_counter()
    if arch not in SEGMENTER_NAMES and from_model is None:
        raise ValueError(f"unknown segmenter {arch!r}; choose one of: {', '.join(SEGMENTER_NAMES)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    masked = [s for s in samples if s.mask is not None]
    if len(masked) < 3:
        raise ModelError(f"need at least 3 frames with a gland mask to train, got {len(masked)}")
    if model_options is None:
        model_options = dict(DEFAULT_SEGMENTER_OPTIONS) if arch == DEFAULT_SEGMENTER else {}
    keras.utils.set_random_seed(seed)
    model, arch, model_options, shape = _start_model(
        arch, input_shape, model_options, from_model, "segment"
    )
    train, val, test = split_by_patient(
        masked, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    size = shape[:2]

    def arrays(part: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
        images = np.zeros((len(part), *size), dtype=np.float32)
        masks = np.zeros((len(part), *size), dtype=bool)
        for i, s in enumerate(part):
            if s.mask is None or s.mask.shape != s.image.shape[:2]:
                shown = None if s.mask is None else s.mask.shape
                raise ModelError(f"frame {s.key}: mask {shown} does not fit image {s.image.shape}")
            images[i] = preprocess_frame(s.image, size)
            masks[i] = resize_mask(s.mask, size)
        return images, masks

    (x_tr, m_tr), (x_va, m_va), (x_te, m_te) = arrays(train), arrays(val), arrays(test)
    rate = _learning_rate(learning_rate, from_model is not None)
    batches: keras.utils.PyDataset
    if takes_prompts(shape):  # a prompted network keeps learning both modes from the outlines
        examples = FrameExamples(shape, augmentation=augmentation or TRAINING_AUGMENTATION)
        batches = FrameBatches(
            [_as_frame(s) for s in train],
            examples,
            batch_size=batch_size,
            seed=seed,
            min_steps=MIN_STEPS_PER_EPOCH,
        )
    else:
        batches = Batches(
            x_tr,
            m_tr,
            batch_size=batch_size,
            seed=seed,
            config=augmentation,
            workers=workers,
            min_steps=MIN_STEPS_PER_EPOCH,
        )
    monitor = "val_iou" if len(val) else "iou"
    validation = (_net_input(x_va, shape), m_va[..., None].astype(np.float32)) if len(val) else None
    if freeze_encoder_epochs is None:
        freeze_encoder_epochs = int(FREEZE_EPOCHS_SHARE * epochs) if from_model is not None else 0
    frozen = encoder_layers(model) if freeze_encoder_epochs > 0 else []

    def val_iou() -> float:
        assert validation is not None
        return float(_ious(model, validation[0], m_va, batch_size).mean())

    # A fine-tune must not leave the user worse off than where it started: the starting
    # network's validation IoU is the bar the tuned weights have to clear.
    start = (model.get_weights(), val_iou()) if from_model is not None and validation else None
    history: dict[str, list[float]] = {}
    best_epoch = 0
    first = min(int(freeze_encoder_epochs), epochs - 1) if frozen else 0
    for phase_epochs, freeze in ((first, True), (epochs - first, False)):
        if phase_epochs <= 0:
            continue
        for layer in frozen:
            layer.trainable = not freeze
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=bce_dice_loss, metrics=[iou])
        done = len(history.get("loss", []))
        phase, best = _fit(
            model,
            batches,
            monitor=monitor,
            patience=patience if not freeze else phase_epochs,
            epochs=phase_epochs,
            progress=_offset_progress(progress, done, epochs),
            validation=validation,
            reduce_lr=not freeze,
        )
        for key, values in phase.items():
            history.setdefault(key, []).extend(values)
        best_epoch = done + best
    for layer in frozen:
        layer.trainable = True
    warning = None
    if start is not None:
        start_weights, start_iou = start
        tuned_iou = val_iou()
        if tuned_iou < start_iou:
            model.set_weights(start_weights)
            best_epoch = 0
            warning = (
                f"WARNING: fine-tuning did not beat the starting network on the {len(val)} "
                f"validation frames (IoU {tuned_iou:.3f} against {start_iou:.3f}); the model "
                "keeps the starting network's weights. Outline more frames, or frames more "
                "like the ones you will segment, and fine-tune again."
            )

    def test_iou() -> np.ndarray:
        return _ious(model, _net_input(x_te, shape), m_te, batch_size)

    ious = test_iou()
    metrics: dict[str, Any] = {"n": len(test)}
    if start is not None:
        metrics |= {"start_val_iou": round(start[1], 4), "kept_start": warning is not None}
    if len(ious):
        ious16 = _with_float16_weights(model, lambda: float(test_iou().mean()))
        metrics |= {
            "iou_mean": float(ious.mean()),
            "iou_median": float(np.median(ious)),
            "dice_mean": float(np.mean(2 * ious / (1 + ious))),
            "float16_delta": abs(float(ious16) - float(ious.mean())),
        }
    return _result(
        model,
        task="segment",
        architecture=arch,
        input_shape=shape,
        history=history,
        best_epoch=best_epoch,
        metrics=metrics,
        counts=_Split(masked, train, val, test).counts(),
        seed=seed,
        model_options=model_options,
        from_model=from_model,
        started=started,
        warning=warning,
    )


def train_segmenter_synthetic(
    config: SynthConfig,
    *,
    arch: str = DEFAULT_SEGMENTER,
    epochs: int = 12,
    steps_per_epoch: int = 150,
    batch_size: int = 8,
    seed: int = 0,
    model_options: dict[str, Any] | None = None,
    from_model: Path | None = None,
    learning_rate: float | None = None,
    patience: int = 4,
    validation_frames: int = 96,
    progress: ProgressFn | None = None,
    workers: int = 2,
) -> TrainResult:
    """Train a segmenter on frames rendered on the fly from appearance families (SynthSeg-style).

    With ``config.input_shape`` of 4 channels the network learns both the zero-shot mode (prompt
    channels zero) and the prompted one (box and clicks); see :mod:`sgus_core.training.synthetic`.
    Early stopping watches the IoU on fixed validation frames of the *training* families; a
    held-out family is for the caller to test on (``sgus bench-generalisation``).

    Args:
        config: the families, the network input shape and the prompt share.
        arch: a segmenter of ``sgus_core.nets.SEGMENTER_NAMES``.
        epochs: most epochs; each is ``steps_per_epoch`` batches of ``batch_size`` new frames.
        steps_per_epoch: batches per epoch.
        batch_size: frames per step.
        seed: seeds Keras, the batches and the validation frames.
        model_options: builder options; default for the U-Net :data:`DEFAULT_SEGMENTER_OPTIONS`.
        from_model: a saved ``.keras`` segmenter of the same input shape to continue from.
        learning_rate: Adam's rate; default 1e-3 (1e-4 when continuing).
        patience: epochs without a better validation IoU before stopping.
        validation_frames: fixed validation examples.
        progress: called after each epoch as ``progress(done, epochs, logs)``.
        workers: threads rendering batches while the network trains.

    Returns:
        A :class:`TrainResult`; ``test_metrics`` hold the validation IoU of the best epoch
        (``val_iou``) and ``float16_delta``; ``n_train`` counts the frames rendered.

    Raises:
        ValueError: unknown architecture, family or options.
        ModelError: ``from_model`` unreadable or of another input shape.
    """
    started = time.perf_counter()
    if arch not in SEGMENTER_NAMES and from_model is None:
        raise ValueError(f"unknown segmenter {arch!r}; choose one of: {', '.join(SEGMENTER_NAMES)}")
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(f"epochs and steps must be >= 1, got {epochs}, {steps_per_epoch}")
    if model_options is None:
        model_options = dict(DEFAULT_SEGMENTER_OPTIONS) if arch == DEFAULT_SEGMENTER else {}
    keras.utils.set_random_seed(seed)
    model, arch, model_options, shape = _start_model(
        arch, config.input_shape, model_options, from_model, "segment"
    )
    x_va, y_va = validation_set(config, validation_frames, seed)
    rate = _learning_rate(learning_rate, from_model is not None)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=bce_dice_loss, metrics=[iou])
    batches = SyntheticBatches(
        config, steps=steps_per_epoch, batch_size=batch_size, seed=seed, workers=workers
    )
    history, best_epoch = _fit(
        model,
        batches,
        monitor="val_iou",
        patience=patience,
        epochs=epochs,
        progress=progress,
        validation=(x_va, y_va),
        reduce_lr=True,
    )

    def val_iou() -> float:
        return float(_ious(model, x_va, y_va[..., 0] > 0.5, batch_size).mean())

    best = val_iou()
    metrics = {
        "n": validation_frames,
        "val_iou": best,
        "float16_delta": abs(_with_float16_weights(model, val_iou) - best),
    }
    rendered = len(history.get("loss", [])) * steps_per_epoch * batch_size
    return _result(
        model,
        task="segment",
        architecture=arch,
        input_shape=shape,
        history=history,
        best_epoch=best_epoch,
        metrics=metrics,
        counts={
            "n_train": rendered,
            "n_val": validation_frames,
            "n_test": 0,
            "data_hash": config.digest(),
            "n_samples": rendered + validation_frames,
        },
        seed=seed,
        model_options=model_options,
        from_model=from_model,
        started=started,
    )


def predict_masks(
    model: keras.Model, images: Sequence[np.ndarray], *, batch_size: int = 8
) -> list[np.ndarray]:
    """Segment field-of-view crops with a Keras segmenter, each mask back at its crop's size.

    Args:
        model: a segmenter (float32 (N, H, W, 1) -> (N, H, W, 1) probability).
        images: (h, w) uint8 grey crops of any sizes.
        batch_size: frames per forward pass.

    Returns:
        One (h, w) bool mask per image: the probability resized back bilinearly, > 0.5.
    """
    size = (int(model.input_shape[1]), int(model.input_shape[2]))
    masks = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        channels = int(model.input_shape[3])
        grey = np.stack([preprocess_frame(im, size) for im in chunk])
        probability = _predict(model, _net_input(grey, (*size, channels)), batch_size)[..., 0]
        for im, p in zip(chunk, probability, strict=True):
            h, w = im.shape[:2]
            masks.append(cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) > THRESHOLD)
    return masks


# ------------------------------------------------------------------------------------ graders


def _grader_arrays(
    part: Sequence[Sample],
    design: str,
    shape: tuple[int, int, int],
    predicted: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, masks) a CNN grader of ``design`` and input ``shape`` reads from samples: the
    gland box crop and its mask (``grader_crop``; the sample's mask, else ``predicted[key]``,
    else the whole FOV) or the whole FOV (``grader_frame``); masks None without a mask channel."""
    size = shape[:2]
    crop = design == "grader_crop"
    images = np.zeros((len(part), *size), dtype=np.float32)
    masks = np.zeros((len(part), *size), dtype=bool) if crop and shape[2] == 2 else None
    for i, s in enumerate(part):
        if crop:
            mask = s.mask if s.mask is not None else (predicted or {}).get(s.key)
            images[i], crop_mask = gland_crop(s.image, mask, size)
            if masks is not None:
                masks[i] = crop_mask
        else:
            images[i] = preprocess_frame(s.image, size)
    return images, masks


def _stack_inputs(images: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    x = images[..., None]
    return x if masks is None else np.concatenate([x, masks[..., None].astype(np.float32)], -1)


def grade_probabilities(
    model: keras.Model, samples: Sequence[Sample], design: str, *, batch_size: int = 16
) -> np.ndarray:
    """(N, 4) grade probabilities of a Keras grader for samples, read as in training."""
    shape = tuple(int(v) for v in model.input_shape[1:])
    images, masks = _grader_arrays(samples, design, (shape[0], shape[1], shape[2]))
    return _predict(model, _stack_inputs(images, masks), batch_size)


class _ValidationKappa(keras.callbacks.Callback):
    """Put the validation quadratic-weighted kappa and accuracy into the epoch's logs."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def on_epoch_end(self, epoch, logs=None):
        predicted = _predict(self.model, self.x, self.batch_size).argmax(axis=1)
        logs = logs if logs is not None else {}
        logs["val_kappa"] = quadratic_kappa(self.y, predicted)
        logs["val_accuracy"] = float(np.mean(predicted == self.y))


def train_grader(
    samples: Sequence[Sample],
    *,
    design: str = DEFAULT_GRADER,
    target: str = "devita",
    input_shape: tuple[int, ...] | None = None,
    epochs: int = 40,
    batch_size: int = 16,
    seed: int = 0,
    from_model: Path | None = None,
    progress: ProgressFn | None = None,
    patience: int = 10,
    model_options: dict[str, Any] | None = None,
    learning_rate: float | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    segmenter: keras.Model | Callable[[np.ndarray], np.ndarray] | None = None,
    augmentation: AugmentConfig | None = DEFAULT_AUGMENTATION,
    workers: int = 1,
) -> TrainResult:
    """Train (or fine-tune) a grade classifier on the samples that have a ``target`` grade.

    Args:
        samples: labelled frames; those without the target grade are left out. Masks are
            optional.
        design: "grader_frame" (whole field of view) or "grader_crop" (gland box + mask channel).
        target: "devita" or "omeract".
        input_shape: (H, W, C) or (H, W) (the design's channels); default the registry's
            ((192, 256, 1) frame, (96, 256, 2) crop).
        epochs: most epochs to train.
        batch_size: frames per step.
        seed: seeds Keras, numpy, the split and the augmentation.
        from_model: a saved ``.keras`` grader to fine-tune (at a tenth of the rate).
        progress: called after each epoch as ``progress(done, epochs, logs)``.
        patience: epochs without a better validation kappa before stopping.
        model_options: builder options, e.g. ``{"width": 12}``.
        learning_rate: Adam's rate; default 1e-3 (1e-4 when fine-tuning).
        val_fraction: share of samples (by patient) for validation.
        test_fraction: share of samples (by patient) for the test metrics.
        segmenter: for "grader_crop", what outlines the gland in frames without a mask: a Keras
            segmenter, or a function (h, w) uint8 -> (h, w) bool.
        augmentation: augmentation ranges, or None for none.
        workers: threads preparing batches (1 keeps runs repeatable).

    Returns:
        A :class:`TrainResult` whose ``test_metrics`` hold ``accuracy``, ``kappa_quadratic``,
        per-grade precision, recall and support, the confusion matrix (rows: truth), ``n`` and
        ``float16_delta``.

    Raises:
        ValueError: unknown design or target, or bad options.
        ModelError: too few graded frames or patients; "grader_crop" with unmasked frames and no
            segmenter; ``from_model`` unreadable or of another input shape.
    """
    started = time.perf_counter()
    if design not in GRADER_NAMES and from_model is None:
        raise ValueError(f"unknown grader {design!r}; choose one of: {', '.join(GRADER_NAMES)}")
    if target not in GRADE_TARGETS:
        raise ValueError(
            f"unknown grade target {target!r}; choose one of: {', '.join(GRADE_TARGETS)}"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    graded = [s for s in samples if getattr(s, target) is not None]
    if len(graded) < 3:
        raise ModelError(
            f"need at least 3 frames with a {target} grade to train, got {len(graded)}"
        )
    keras.utils.set_random_seed(seed)
    model, design, model_options, shape = _start_model(
        design, input_shape, model_options or {}, from_model, "grade"
    )
    train, val, test = split_by_patient(
        graded, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    crop = design == "grader_crop"
    mask_channel = crop and shape[2] == 2

    unmasked = [s for s in graded if s.mask is None]
    predicted: dict[str, np.ndarray] = {}
    if crop and unmasked:
        if segmenter is None:
            raise ModelError(
                f"{len(unmasked)} graded frames have no gland mask: the crop grader needs a "
                "segmentation model to outline them"
            )
        if isinstance(segmenter, keras.Model):
            outlines = predict_masks(segmenter, [s.image for s in unmasked])
        else:
            outlines = [np.asarray(segmenter(s.image), dtype=bool) for s in unmasked]
        predicted = {s.key: m for s, m in zip(unmasked, outlines, strict=True)}

    def arrays(part: list[Sample]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        images, masks = _grader_arrays(part, design, shape, predicted)
        grades = np.array([int(getattr(s, target)) for s in part], dtype=np.int64)
        if np.any((grades < 0) | (grades >= N_GRADES)):
            raise ModelError(f"{target} grades must be 0-3")
        return images, masks, grades

    def inputs(images: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        return _stack_inputs(images, masks)

    (x_tr, m_tr, y_tr), (x_va, m_va, y_va), (x_te, m_te, y_te) = (
        arrays(train),
        arrays(val),
        arrays(test),
    )
    weights = class_weights(y_tr)
    rate = _learning_rate(learning_rate, from_model is not None)
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    batches = Batches(
        x_tr,
        m_tr,
        batch_size=batch_size,
        seed=seed,
        config=augmentation,
        targets=y_tr.astype(np.float32),
        weights=weights[y_tr],
        mask_channel=mask_channel,
        workers=workers,
    )
    monitor = "val_kappa" if len(val) else "accuracy"
    before = [_ValidationKappa(inputs(x_va, m_va), y_va, batch_size)] if len(val) else []
    history, best_epoch = _fit(
        model,
        batches,
        monitor=monitor,
        patience=patience,
        epochs=epochs,
        progress=progress,
        before=before,
    )

    x_test = inputs(x_te, m_te)
    metrics: dict[str, Any] = {"n": 0}
    if len(y_te):
        metrics = grade_metrics(y_te, _predict(model, x_test, batch_size).argmax(axis=1))
    if len(y_te):

        def headline() -> float:
            p16 = _predict(model, x_test, batch_size).argmax(axis=1)
            return max(
                abs(float(np.mean(p16 == y_te)) - metrics["accuracy"]),
                abs(quadratic_kappa(y_te, p16) - metrics["kappa_quadratic"]),
            )

        metrics["float16_delta"] = _with_float16_weights(model, headline)
    return _result(
        model,
        task="grade",
        architecture=design,
        input_shape=shape,
        history=history,
        best_epoch=best_epoch,
        metrics=metrics,
        counts=_Split(graded, train, val, test).counts(),
        seed=seed,
        model_options=model_options,
        from_model=from_model,
        started=started,
        target=target,
    )
