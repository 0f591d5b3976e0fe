"""Train and fine-tune the gland segmenters and the grade classifiers; save them with model cards.

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

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np
from keras import ops

from sgus_core.errors import ModelError
from sgus_core.nets import (
    DEFAULT_INPUT_SHAPES,
    GRADER_NAMES,
    SEGMENTER_NAMES,
    build_model,
    model_gflops,
)

DEFAULT_SEGMENTER = "unet"
DEFAULT_SEGMENTER_OPTIONS: dict[str, Any] = {"base_filters": 8, "depth": 4}
DEFAULT_GRADER = "grader_crop"
LEARNING_RATE = 1e-3
FINE_TUNE_LR_FACTOR = 0.1  # fine-tuning continues at a tenth of the rate
THRESHOLD = 0.5  # gland probability -> mask
CROP_PAD = 0.1  # gland box padded by this fraction of its width/height on each side
FLOAT16_TOLERANCE = 0.002  # largest test-metric change that float16 storage may cost
GRADE_TARGETS = ("devita", "omeract")
N_GRADES = 4
CLASS_WEIGHT_RANGE = (0.2, 10.0)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

ProgressFn = Callable[[int, int, dict[str, float]], None]
"""``progress(epochs_done, epochs_total, logs)``, called after every epoch."""


# --------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Sample:
    """One labelled frame, as training sees it.

    Attributes:
        image: (H, W) uint8 grey field-of-view crop of the frame.
        mask: (H, W) bool gland mask of the same crop, or None when the frame has no outline.
        devita: de Vita grade 0-3, or None.
        omeract: OMERACT grade 0-3, or None.
        patient: patient identifier; the split never puts one patient in two parts.
        key: unique, stable identifier of the frame (e.g. its content hash).
    """

    image: np.ndarray
    mask: np.ndarray | None
    devita: int | None
    omeract: int | None
    patient: str
    key: str


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


# ---------------------------------------------------------------------------------- splitting


def _patient_rank(seed: int, patient: str) -> str:
    # A hash rather than a shuffle: a patient's place in the order does not depend on which other
    # patients are present, so the segment and grade tasks put most patients in the same part.
    return hashlib.sha256(f"{seed}:{patient}".encode()).hexdigest()


def split_by_patient(
    samples: Sequence[Sample],
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Split samples into train, validation and test parts with no patient in two parts.

    Patients are ordered by a seeded hash and taken into the test part until it holds at least
    ``test_fraction`` of the samples, then into validation likewise; the rest train. A part with a
    positive fraction gets at least one patient, and training always keeps one.

    Args:
        samples: the samples (any order; each part keeps the input order).
        val_fraction: share of samples wanted in validation (0 for none).
        test_fraction: share of samples wanted in test (0 for none).
        seed: changes which patients land where.

    Returns:
        (train, val, test) lists of samples.

    Raises:
        ValueError: if a fraction is negative or they sum to 1 or more.
        ModelError: if there are too few patients to fill every part that was asked for.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"fractions must be >= 0 and sum below 1, got {val_fraction}, {test_fraction}"
        )
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.patient] = counts.get(s.patient, 0) + 1
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(counts) < needed:
        raise ModelError(
            f"need frames of at least {needed} patients to split into train/validation/test, "
            f"got {len(counts)}"
        )
    order = sorted(counts, key=lambda p: _patient_rank(seed, p))
    total = len(samples)
    test_p: set[str] = set()
    val_p: set[str] = set()
    n_test = n_val = 0
    for i, patient in enumerate(order):
        left = len(order) - i - 1  # patients still to place after this one
        val_still_empty = val_fraction > 0 and not val_p
        if test_fraction > 0 and n_test < test_fraction * total and left >= 1 + val_still_empty:
            test_p.add(patient)
            n_test += counts[patient]
        elif val_fraction > 0 and n_val < val_fraction * total and left >= 1:
            val_p.add(patient)
            n_val += counts[patient]
    train = [s for s in samples if s.patient not in test_p and s.patient not in val_p]
    val = [s for s in samples if s.patient in val_p]
    test = [s for s in samples if s.patient in test_p]
    return train, val, test


def data_hash(samples: Sequence[Sample]) -> str:
    """Return the sha256 hex digest over the samples' keys and labels, sorted by key.

    Per sample: key, patient, de Vita, OMERACT and the mask's shape and packed bits, so the
    hash changes when any label changes but not when the samples come in another order.
    """
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.key):
        digest.update(f"{s.key}\0{s.patient}\0{s.devita}\0{s.omeract}\0".encode())
        if s.mask is None:
            digest.update(b"no-mask\0")
        else:
            digest.update(f"{s.mask.shape}".encode())
            digest.update(np.packbits(np.asarray(s.mask, dtype=bool)).tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------ preprocessing


def preprocess_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a field-of-view crop to the model's (H, W) and scale it to 0..1.

    Args:
        image: (H, W) uint8 grey (an (H, W, 3) image is averaged to grey first).
        size: (height, width) of the model input.

    Returns:
        (height, width) float32 in 0..1 (``cv2.INTER_AREA`` resize, then / 255).
    """
    image = np.asarray(image)
    if image.ndim == 3:
        image = image.mean(axis=2)
    height, width = size
    resized = cv2.resize(image.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    scale = 255.0 if image.dtype == np.uint8 or resized.max(initial=0) > 1.0 else 1.0
    return np.clip(resized / scale, 0.0, 1.0).astype(np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to (height, width): area-average, then threshold at 0.5; returns bool."""
    height, width = size
    resized = cv2.resize(
        np.asarray(mask, dtype=np.float32), (width, height), interpolation=cv2.INTER_AREA
    )
    return resized >= 0.5


def gland_box(mask: np.ndarray, pad: float = CROP_PAD) -> tuple[int, int, int, int] | None:
    """Bounding box of the mask's largest connected region, padded and clipped to the mask.

    Args:
        mask: (H, W) bool.
        pad: padding on each side as a fraction of the box's width and height.

    Returns:
        (x0, y0, x1, y1) with x1, y1 exclusive, or None when the mask is empty.
    """
    m = np.asarray(mask, dtype=np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[largest, :4])
    px, py = int(round(pad * w)), int(round(pad * h))
    height, width = m.shape
    return max(0, x - px), max(0, y - py), min(width, x + w + px), min(height, y + h + py)


def gland_crop(
    image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int], pad: float = CROP_PAD
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the padded gland box out of a frame and resize it to ``size``.

    Args:
        image: (H, W) uint8 grey field-of-view crop.
        mask: (H, W) bool gland mask (the rater's or a segmenter's), or None.
        size: (height, width) of the grader input.
        pad: box padding, a fraction of the box's width and height on each side.

    Returns:
        (crop, crop_mask): (height, width) float32 in 0..1 and (height, width) bool. With no mask,
        or an empty one, the whole frame is used and the mask is all False.
    """
    box = None if mask is None else gland_box(mask, pad)
    if box is None:
        return preprocess_frame(image, size), np.zeros(size, dtype=bool)
    x0, y0, x1, y1 = box
    return preprocess_frame(image[y0:y1, x0:x1], size), resize_mask(mask[y0:y1, x0:x1], size)


# ------------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (all drawn uniformly).

    Attributes:
        flip_p: probability of a horizontal flip (left and right glands mirror each other).
        max_rotation_deg: largest rotation either way (probe tilt).
        crop_p: probability of a random crop.
        min_crop: smallest share of the width and of the height a crop keeps.
        gain: range of the brightness factor (receiver gain).
        gamma: range of the contrast exponent.
        max_speckle: largest standard deviation of the multiplicative noise.
    """

    flip_p: float = 0.5
    max_rotation_deg: float = 10.0
    crop_p: float = 0.7
    min_crop: float = 0.8
    gain: tuple[float, float] = (0.75, 1.3)
    gamma: tuple[float, float] = (0.7, 1.4)
    max_speckle: float = 0.15


DEFAULT_AUGMENTATION = AugmentConfig()


def flip_horizontal(
    image: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror image and mask left to right; returns new (image, mask) arrays of the same dtypes."""
    return np.ascontiguousarray(image[:, ::-1]), None if mask is None else np.ascontiguousarray(
        mask[:, ::-1]
    )


def rotate(
    image: np.ndarray, mask: np.ndarray | None, angle_deg: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate image and mask by ``angle_deg`` (counter-clockwise) about the centre, same size.

    Image: bilinear, black outside. Mask: nearest neighbour, False outside. Returns new arrays of
    the input dtypes.
    """
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle_deg, 1.0)
    out = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    if mask is None:
        return out, None
    m = cv2.warpAffine(
        mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST, borderValue=0
    )
    return out, m.astype(bool)


def crop_resize(
    image: np.ndarray, mask: np.ndarray | None, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut ``box`` = (x0, y0, x1, y1) out of image and mask and resize back to the input size.

    Image: bilinear. Mask: nearest neighbour. Returns new arrays of the input dtypes and shape.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    out = cv2.resize(image[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_LINEAR)
    if mask is None:
        return out, None
    m = cv2.resize(
        mask[y0:y1, x0:x1].astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
    )
    return out, m.astype(bool)


def random_crop_box(
    shape: tuple[int, int], rng: np.random.Generator, min_fraction: float
) -> tuple[int, int, int, int]:
    """Draw a crop box (x0, y0, x1, y1) keeping ``min_fraction``..1 of each side of ``shape``."""
    height, width = shape
    w = int(round(width * rng.uniform(min_fraction, 1.0)))
    h = int(round(height * rng.uniform(min_fraction, 1.0)))
    x0 = int(rng.integers(0, width - w + 1))
    y0 = int(rng.integers(0, height - h + 1))
    return x0, y0, x0 + w, y0 + h


def adjust_gain(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiply a 0..1 float image by ``factor`` and clip to 0..1 (receiver gain)."""
    return np.clip(image * factor, 0.0, 1.0).astype(np.float32)


def adjust_gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    """Raise a 0..1 float image to ``gamma`` (> 1 darkens mid-greys: more contrast in the gland)."""
    return np.power(np.clip(image, 0.0, 1.0), gamma).astype(np.float32)


def add_speckle(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Multiply a 0..1 float image by 1 + N(0, sigma) noise per pixel and clip to 0..1."""
    noise = rng.normal(1.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(image * noise, 0.0, 1.0).astype(np.float32)


def augment(
    image: np.ndarray,
    mask: np.ndarray | None,
    rng: np.random.Generator,
    config: AugmentConfig = DEFAULT_AUGMENTATION,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one random draw of every augmentation; geometry identically to image and mask.

    Order: flip, rotation, random crop resized back to the input size, then gain, gamma and
    speckle on the image alone.

    Args:
        image: (H, W) float32 in 0..1.
        mask: (H, W) bool, or None.
        rng: the random source (pass a seeded ``np.random.default_rng``).
        config: the augmentation ranges.

    Returns:
        (image, mask): (H, W) float32 in 0..1 and (H, W) bool (or None), new arrays.
    """
    image = np.asarray(image, dtype=np.float32)
    if rng.random() < config.flip_p:
        image, mask = flip_horizontal(image, mask)
    if config.max_rotation_deg > 0:
        angle = rng.uniform(-config.max_rotation_deg, config.max_rotation_deg)
        image, mask = rotate(image, mask, angle)
    if rng.random() < config.crop_p:
        box = random_crop_box(image.shape[:2], rng, config.min_crop)
        image, mask = crop_resize(image, mask, box)
    image = adjust_gain(image, rng.uniform(*config.gain))
    image = adjust_gamma(image, rng.uniform(*config.gamma))
    if config.max_speckle > 0:
        image = add_speckle(image, rng, rng.uniform(0.0, config.max_speckle))
    return image, mask


class _Batches(keras.utils.PyDataset):
    """Shuffled, augmented batches over prepared arrays.

    ``images``: (N, H, W) float32; ``masks``: (N, H, W) bool or None; ``targets``: (N, ...)
    float32 used as y when given (else the masks are); ``weights``: (N,) per-sample weights or
    None. When ``mask_channel`` is True the (augmented) mask is also stacked as a second input
    channel (the crop grader). The random draws depend only on (seed, epoch, batch index).
    """

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray | None,
        *,
        batch_size: int,
        seed: int,
        config: AugmentConfig | None,
        targets: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        mask_channel: bool = False,
        workers: int = 1,
    ):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.images, self.masks, self.targets, self.weights = images, masks, targets, weights
        self.batch_size, self.seed, self.config = batch_size, seed, config
        self.mask_channel = mask_channel
        self.epoch = 0
        self.order = np.random.default_rng([seed, 0]).permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, idx: int):
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        index = self.order[idx * self.batch_size : (idx + 1) * self.batch_size]
        xs, ms = [], []
        for i in index:
            mask = None if self.masks is None else self.masks[i]
            image = self.images[i]
            if self.config is not None:
                image, mask = augment(image, mask, rng, self.config)
            xs.append(image)
            ms.append(mask)
        x = np.stack(xs)[..., None]
        if self.mask_channel:
            x = np.concatenate([x, np.stack(ms)[..., None].astype(np.float32)], axis=-1)
        y = (
            self.targets[index]
            if self.targets is not None
            else np.stack(ms)[..., None].astype(np.float32)
        )
        if self.weights is not None:
            return x, y, self.weights[index]
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))


# -------------------------------------------------------------------------- losses and metrics


@keras.saving.register_keras_serializable(package="sgus")
def bce_dice_loss(y_true, y_pred):
    """Per-sample binary cross-entropy (pixel mean) + (1 - soft Dice); shapes (N, H, W, 1)."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
    intersection = ops.sum(y_true * y_pred, axis=(1, 2, 3))
    total = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
    dice = (2.0 * intersection + 1.0) / (total + 1.0)
    return bce + (1.0 - dice)


@keras.saving.register_keras_serializable(package="sgus")
def iou(y_true, y_pred):
    """Per-sample IoU of the 0.5-thresholded prediction (1 when both are empty); shape (N,)."""
    t = ops.cast(y_true > 0.5, "float32")
    p = ops.cast(y_pred > THRESHOLD, "float32")
    inter = ops.sum(t * p, axis=(1, 2, 3))
    union = ops.sum(t, axis=(1, 2, 3)) + ops.sum(p, axis=(1, 2, 3)) - inter
    return ops.where(union > 0, inter / ops.maximum(union, 1.0), 1.0)


CUSTOM_OBJECTS: dict[str, Any] = {"bce_dice_loss": bce_dice_loss, "iou": iou}


def iou_per_image(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """IoU per image of bool stacks (N, H, W); 1.0 where both masks are empty. Returns (N,)."""
    t = truth.reshape(len(truth), -1).astype(bool)
    p = predicted.reshape(len(predicted), -1).astype(bool)
    inter = (t & p).sum(axis=1)
    union = (t | p).sum(axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


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
        shape = tuple(int(v) for v in (input_shape or DEFAULT_INPUT_SHAPES[arch]))
        if len(shape) == 2:  # (H, W): the architecture's own channels
            shape = (*shape, DEFAULT_INPUT_SHAPES[arch][2])
        return build_model(arch, shape, **model_options), arch, dict(model_options), shape
    from_model = Path(from_model)
    model = load_model(from_model)
    shape = tuple(int(v) for v in model.input_shape[1:])
    is_segmenter = len(model.output_shape) == 4
    if is_segmenter != (task == "segment"):
        kind = "a segmentation" if is_segmenter else "a grading"
        raise ModelError(
            f"{from_model.name} is {kind} model: it cannot be fine-tuned for this task"
        )
    if input_shape is not None and tuple(input_shape) != shape[: len(input_shape)]:
        raise ModelError(f"{from_model.name} takes input {shape}, not {tuple(input_shape)}")
    card_path = from_model.with_suffix(".json")
    card = read_card(card_path) if card_path.exists() else {}
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


# -------------------------------------------------------------------------------- segmenters


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
) -> TrainResult:
    """Train (or fine-tune) a gland segmenter on the samples that have a mask.

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
            if s.mask.shape != s.image.shape[:2]:
                raise ModelError(
                    f"frame {s.key}: mask {s.mask.shape} does not fit image {s.image.shape}"
                )
            images[i] = preprocess_frame(s.image, size)
            masks[i] = resize_mask(s.mask, size)
        return images, masks

    (x_tr, m_tr), (x_va, m_va), (x_te, m_te) = arrays(train), arrays(val), arrays(test)
    rate = _learning_rate(learning_rate, from_model is not None)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=bce_dice_loss, metrics=[iou])

    batches = _Batches(
        x_tr, m_tr, batch_size=batch_size, seed=seed, config=augmentation, workers=workers
    )
    monitor = "val_iou" if len(val) else "iou"
    validation = (x_va[..., None], m_va[..., None].astype(np.float32)) if len(val) else None
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="max", factor=0.5, patience=max(2, patience // 2), min_lr=1e-6
        ),
        *_epoch_callbacks(progress, epochs),
    ]
    fit = model.fit(
        batches, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=0
    )
    history = _history(fit)
    best_epoch = (
        1 + int(np.argmax(history[monitor]))
        if history.get(monitor)
        else len(history.get("loss", []))
    )

    def test_iou() -> np.ndarray:
        probability = _predict(model, x_te[..., None], batch_size)[..., 0]
        return iou_per_image(m_te, probability > THRESHOLD)

    ious = test_iou()
    metrics: dict[str, Any] = {"n": len(test)}
    if len(ious):
        ious16 = _with_float16_weights(model, lambda: float(test_iou().mean()))
        metrics |= {
            "iou_mean": float(ious.mean()),
            "iou_median": float(np.median(ious)),
            "dice_mean": float(np.mean(2 * ious / (1 + ious))),
            "float16_delta": abs(float(ious16) - float(ious.mean())),
        }
    return TrainResult(
        model=model,
        task="segment",
        architecture=arch,
        input_shape=shape,
        history=history,
        test_metrics=metrics,
        n_train=len(train),
        n_val=len(val),
        n_test=len(test),
        data_hash=data_hash(masked),
        n_samples=len(masked),
        epochs_run=len(history.get("loss", [])),
        best_epoch=best_epoch,
        seed=seed,
        model_options=model_options,
        fine_tuned_from=None if from_model is None else str(from_model),
        seconds=time.perf_counter() - started,
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
    size = tuple(int(v) for v in model.input_shape[1:3])
    masks = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = np.stack([preprocess_frame(im, size) for im in chunk])[..., None]
        probability = _predict(model, x, batch_size)[..., 0]
        for im, p in zip(chunk, probability, strict=True):
            h, w = im.shape[:2]
            masks.append(cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) > THRESHOLD)
    return masks


# ------------------------------------------------------------------------------------ graders


class _ValidationKappa(keras.callbacks.Callback):
    """Put the validation quadratic-weighted kappa and accuracy into the epoch's logs."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def on_epoch_end(self, epoch, logs=None):
        predicted = _predict(self.model, self.x, self.batch_size).argmax(axis=1)
        logs = logs if logs is not None else {}
        logs["val_kappa"] = _kappa(self.y, predicted)
        logs["val_accuracy"] = float(np.mean(predicted == self.y))


def _kappa(truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(truth) == 0 or len(set(truth.tolist()) | set(predicted.tolist())) < 2:
        return 0.0  # undefined with a single class: count it as no agreement beyond chance
    value = cohen_kappa_score(truth, predicted, weights="quadratic", labels=list(range(N_GRADES)))
    return float(value) if np.isfinite(value) else 0.0


def class_weights(grades: np.ndarray) -> np.ndarray:
    """Per-grade weights ``n / (k * n_grade)`` over the grades present, clipped, mean 1 per sample.

    Args:
        grades: (N,) int grades 0..3 of the training samples.

    Returns:
        (4,) float32 weights; grades absent from ``grades`` get 0.
    """
    counts = np.bincount(grades, minlength=N_GRADES).astype(np.float64)
    present = counts > 0
    weights = np.zeros(N_GRADES)
    weights[present] = len(grades) / (present.sum() * counts[present])
    weights[present] = np.clip(weights[present], *CLASS_WEIGHT_RANGE)
    weights /= (weights[grades]).mean()
    return weights.astype(np.float32)


def _grade_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(N_GRADES))
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return {
        "n": len(truth),
        "accuracy": float(np.mean(truth == predicted)) if len(truth) else float("nan"),
        "kappa_quadratic": _kappa(truth, predicted),
        "precision_per_grade": [float(v) for v in precision],
        "recall_per_grade": [float(v) for v in recall],
        "support_per_grade": [int(v) for v in support],
        "confusion": confusion_matrix(truth, predicted, labels=labels).tolist(),
    }


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
    size = shape[:2]

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
        images = np.zeros((len(part), *size), dtype=np.float32)
        masks = np.zeros((len(part), *size), dtype=bool) if mask_channel else None
        for i, s in enumerate(part):
            if crop:
                mask = s.mask if s.mask is not None else predicted[s.key]
                images[i], crop_mask = gland_crop(s.image, mask, size)
                if masks is not None:
                    masks[i] = crop_mask
            else:
                images[i] = preprocess_frame(s.image, size)
        grades = np.array([int(getattr(s, target)) for s in part], dtype=np.int64)
        if np.any((grades < 0) | (grades >= N_GRADES)):
            raise ModelError(f"{target} grades must be 0-3")
        return images, masks, grades

    def inputs(images: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        x = images[..., None]
        return x if masks is None else np.concatenate([x, masks[..., None].astype(np.float32)], -1)

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
    batches = _Batches(
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
    callbacks: list[keras.callbacks.Callback] = []
    if len(val):
        callbacks.append(_ValidationKappa(inputs(x_va, m_va), y_va, batch_size))
    callbacks += [
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max", patience=patience, restore_best_weights=True
        ),
        *_epoch_callbacks(progress, epochs),
    ]
    fit = model.fit(batches, epochs=epochs, callbacks=callbacks, verbose=0)
    history = _history(fit)
    best_epoch = (
        1 + int(np.argmax(history[monitor])) if history.get(monitor) else len(history["loss"])
    )

    x_test = inputs(x_te, m_te)
    metrics = _grade_metrics(y_te, _predict(model, x_test, batch_size).argmax(axis=1))
    if len(y_te):

        def headline() -> float:
            p16 = _predict(model, x_test, batch_size).argmax(axis=1)
            return max(
                abs(float(np.mean(p16 == y_te)) - metrics["accuracy"]),
                abs(_kappa(y_te, p16) - metrics["kappa_quadratic"]),
            )

        metrics["float16_delta"] = _with_float16_weights(model, headline)
    return TrainResult(
        model=model,
        task="grade",
        architecture=design,
        input_shape=shape,
        history=history,
        test_metrics=metrics,
        n_train=len(train),
        n_val=len(val),
        n_test=len(test),
        data_hash=data_hash(graded),
        n_samples=len(graded),
        epochs_run=len(history.get("loss", [])),
        best_epoch=best_epoch,
        seed=seed,
        target=target,
        model_options=model_options,
        fine_tuned_from=None if from_model is None else str(from_model),
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- saving, loading


def _preprocessing(result: TrainResult) -> dict[str, Any]:
    height, width, channels = result.input_shape
    common = {
        "input": "field-of-view crop of the frame, grey (H, W) uint8",
        "scale": "divide by 255 -> float32 0..1",
        "layout": f"NHWC float32 (N, {height}, {width}, {channels})",
    }
    if result.task == "segment":
        return common | {
            "resize": f"cv2.resize to {width}x{height} (width x height), INTER_AREA",
            "output": f"sigmoid gland probability (N, {height}, {width}, 1); resize back to the "
            f"FOV size bilinearly, mask = probability > {THRESHOLD}",
        }
    if result.architecture == "grader_crop":
        return common | {
            "resize": f"bounding box of the largest connected region of the gland mask (the "
            f"rater's, else the segmenter's), padded by {CROP_PAD:.0%} of its width and height "
            f"on each side and clipped to the FOV, cv2.resize to {width}x{height}, INTER_AREA "
            "(no mask or an empty one: the whole FOV)",
            "channels": "0: grey crop; 1: the crop's gland mask (0/1), area-resized, >= 0.5"
            if channels == 2
            else "0: grey crop",
            "output": "softmax over grades 0-3 (N, 4)",
        }
    return common | {
        "resize": f"cv2.resize to {width}x{height} (width x height), INTER_AREA",
        "output": "softmax over grades 0-3 (N, 4)",
    }


def _float16_keras_file(source: Path, destination: Path) -> None:
    """Copy a ``.keras`` zip, storing every float32 weight array of its HDF5 part as float16.

    Keras casts the arrays back to the variables' float32 when it loads them, so the file stays
    readable by a plain ``keras.saving.load_model``.
    """
    import h5py

    def copy(src, dst) -> None:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(key))
                continue
            array = item[()]
            if isinstance(array, np.ndarray) and array.dtype == np.float32:
                array = array.astype(np.float16)
            out = dst.create_dataset(key, data=array)
            for a, v in item.attrs.items():
                out.attrs[a] = v

    with (
        zipfile.ZipFile(source) as zin,
        zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for entry in zin.namelist():
            data = zin.read(entry)
            if entry.endswith(".weights.h5"):
                buffer = io.BytesIO()
                with h5py.File(io.BytesIO(data), "r") as src, h5py.File(buffer, "w") as dst:
                    copy(src, dst)
                data = buffer.getvalue()
            zout.writestr(entry, data)


def save_model(
    result: TrainResult,
    models_dir: Path,
    name: str,
    *,
    card_extra: dict[str, Any] | None = None,
    weights_dtype: str = "auto",
) -> tuple[Path, Path]:
    """Write ``<name>.keras`` and its model card ``<name>.json`` into ``models_dir``.

    The saved model is an uncompiled copy made of stock layers only, so ``keras.saving.
    load_model`` reads it anywhere. Weights are stored as float16 when ``weights_dtype`` is
    "float16", or when it is "auto" and rounding them changed the test metrics by at most
    ``FLOAT16_TOLERANCE`` (``result.test_metrics["float16_delta"]``); they load back as float32.

    Args:
        result: what :func:`train_segmenter` or :func:`train_grader` returned.
        models_dir: folder (created if missing).
        name: file stem: letters, digits, ".", "_", "-" (up to 100, not starting with a dot).
        card_extra: more card fields (e.g. dataset name, rater); they override computed ones.
        weights_dtype: "auto", "float16" or "float32".

    Returns:
        (weights_path, card_path).

    Raises:
        ModelError: if the name is not a safe file stem or the files cannot be written.
        ValueError: if ``weights_dtype`` is not one of the three.
    """
    if not _NAME_RE.match(name):
        raise ModelError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (max 100)")
    if weights_dtype not in ("auto", "float16", "float32"):
        raise ValueError(f"weights_dtype must be auto, float16 or float32, got {weights_dtype!r}")
    delta = result.test_metrics.get("float16_delta")
    half = weights_dtype == "float16" or (
        weights_dtype == "auto" and delta is not None and delta <= FLOAT16_TOLERANCE
    )
    models_dir = Path(models_dir)
    weights_path = models_dir / f"{name}.keras"
    card_path = models_dir / f"{name}.json"
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        clean = keras.models.clone_model(result.model)  # uncompiled: no loss to deserialise
        clean.set_weights(result.model.get_weights())
        with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
            plain = Path(tmp) / "plain.keras"
            clean.save(plain)
            final = Path(tmp) / "final.keras"
            if half:
                _float16_keras_file(plain, final)
            else:
                final = plain
            os.replace(final, weights_path)
        card = _card(result, name, "float16" if half else "float32", weights_path.stat().st_size)
        card |= card_extra or {}
        tmp_card = card_path.with_suffix(".json.tmp")
        tmp_card.write_text(json.dumps(card, indent=2, default=_json_default), encoding="utf-8")
        os.replace(tmp_card, card_path)
    except OSError as exc:
        raise ModelError(f"could not write model {name!r} to {models_dir}: {exc}") from exc
    return weights_path, card_path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def training_device() -> str:
    """What TensorFlow trains on here: ``"GPU (<name>)"`` when it sees one (a CUDA build of
    TensorFlow on a machine with a GPU places every layer there by itself), else
    ``"CPU (<n> cores)"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)})"
    return f"CPU ({os.cpu_count()} cores)"


def _card(result: TrainResult, name: str, weights_dtype: str, file_bytes: int) -> dict[str, Any]:
    import tensorflow as tf

    validation_key = "val_iou" if result.task == "segment" else "val_kappa"
    validation = result.history.get(validation_key, [])
    card: dict[str, Any] = {
        "name": name,
        "task": result.task,
        "architecture": result.architecture,
        "model_options": result.model_options,
        "input_shape": list(result.input_shape),
        "parameters": int(result.model.count_params()),
        "gflops": round(model_gflops(result.model), 4),
        "training_data": {
            "hash": result.data_hash,
            "n_samples": result.n_samples,
            "split": "by patient",
        },
        "split_sizes": {"train": result.n_train, "val": result.n_val, "test": result.n_test},
        "validation": {
            "metric": validation_key,
            "best": max(validation) if validation else None,
            "best_epoch": result.best_epoch,
        },
        "test_metrics": result.test_metrics,
        "epochs_run": result.epochs_run,
        "seed": result.seed,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "preprocessing": _preprocessing(result),
        "weights_dtype": weights_dtype,
        "file_bytes": file_bytes,
        "fine_tuned_from": result.fine_tuned_from,
        "train_seconds": round(result.seconds, 1),
        "trained_on": training_device(),
    }
    if result.task == "segment":
        card["threshold"] = THRESHOLD
    else:
        card["target"] = result.target
        card["classes"] = list(range(N_GRADES))
    return card


CARD_FIELDS = (
    "name",
    "task",
    "architecture",
    "input_shape",
    "parameters",
    "gflops",
    "training_data",
    "split_sizes",
    "test_metrics",
    "epochs_run",
    "seed",
    "date",
    "keras_version",
    "tensorflow_version",
    "preprocessing",
)
"""Fields every model card has (more may follow)."""


def load_model(path: Path) -> keras.Model:
    """Load a saved ``.keras`` model (float16-stored weights come back as float32), uncompiled.

    Args:
        path: the ``.keras`` file.

    Returns:
        The Keras model, ready for ``predict``.

    Raises:
        ModelError: if the file is missing or is not a readable Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"could not load model {path.name}: {exc}") from exc


def read_card(path: Path) -> dict[str, Any]:
    """Read a model card JSON; raises ``ModelError`` if it is missing or not a JSON object."""
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not read model card {Path(path).name}: {exc}") from exc
    if not isinstance(card, dict):
        raise ModelError(f"model card {Path(path).name} is not a JSON object")
    return card
