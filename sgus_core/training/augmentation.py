"""Augmentation: random geometry (identical on image and mask) and appearance, and the batches
that apply it on the fly.

Augmentation of a batch costs a few milliseconds against a few hundred for the training step, so
the :class:`Batches` dataset runs it in the training thread by default (``workers=1``): batches
then come out the same on every run, whatever the thread scheduling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import keras
import numpy as np


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
        remap_p: probability of a random piecewise-linear grey-level curve
            (:func:`remap_intensity`), which may invert contrast: the network may then not rely
            on which tissue is brighter (on real frames the gland is brighter than, equal to or
            darker than its surroundings).
        random_conv_p: probability of a random shallow convolutional network over the image
            (:func:`random_convolve`): new local texture and a non-linear grey-level response,
            the shapes kept (on real frames speckle grain and the point-spread blur differ from
            scanner to scanner).
    """

    flip_p: float = 0.5
    max_rotation_deg: float = 10.0
    crop_p: float = 0.7
    min_crop: float = 0.8
    gain: tuple[float, float] = (0.75, 1.3)
    gamma: tuple[float, float] = (0.7, 1.4)
    max_speckle: float = 0.15
    remap_p: float = 0.0
    random_conv_p: float = 0.0


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


def remap_intensity(image: np.ndarray, rng: np.random.Generator, knots: int = 5) -> np.ndarray:
    """Map a 0..1 float image through a random piecewise-linear grey-level curve: ``knots``
    evenly spaced inputs, each sent to a uniform random output in 0..1, so the curve may rise,
    fall or both (a random, possibly non-monotonic, contrast). Returns float32 in 0..1."""
    xs = np.linspace(0.0, 1.0, knots)
    ys = rng.uniform(0.0, 1.0, knots)
    return np.interp(np.clip(image, 0.0, 1.0), xs, ys).astype(np.float32)


def random_convolve(
    image: np.ndarray, rng: np.random.Generator, layers: int = 3, width: int = 2
) -> np.ndarray:
    """Pass a 0..1 float image through a randomly drawn shallow convolutional network and mix the
    result with the image (GIN, Ouyang et al., "Causality-inspired single-source domain
    generalization for medical image segmentation", IEEE TMI 2022).

    Each of ``layers`` layers convolves every one of ``width`` channels (one at the input) with a
    Gaussian-random kernel of side 1, 3 or 5 and adds the sums, then applies a leaky ReLU
    (not after the last one, which has one output channel). The output is scaled to 0..1 by its
    1st and 99th percentiles, flipped bright-for-dark with probability 0.5, and blended with the
    input by a uniform random weight. Returns float32 in 0..1, the input's shape.
    """
    x = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    channels = [x - float(x.mean())]
    for layer in range(layers):
        outputs = 1 if layer == layers - 1 else width
        size = int(rng.choice([1, 3, 5]))
        mixed = []
        for _ in range(outputs):
            total = np.zeros_like(x)
            for channel in channels:
                kernel = rng.normal(0.0, 1.0, (size, size)).astype(np.float32) / size
                total += cv2.filter2D(channel, -1, kernel, borderType=cv2.BORDER_REFLECT)
            mixed.append(total + np.float32(rng.normal(0.0, 0.1)))
        if layer < layers - 1:
            mixed = [np.where(m > 0, m, np.float32(0.2) * m) for m in mixed]
        channels = mixed
    out = channels[0]
    lo, hi = np.percentile(out, [1.0, 99.0])
    out = np.clip((out - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    if rng.random() < 0.5:
        out = 1.0 - out
    alpha = np.float32(rng.uniform(0.0, 1.0))
    return (alpha * out + (1.0 - alpha) * x).astype(np.float32)


def add_speckle(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Multiply a 0..1 float image by 1 + N(0, sigma) noise per pixel and clip to 0..1."""
    noise = rng.normal(1.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(image * noise, 0.0, 1.0).astype(np.float32)


def randomise_appearance(
    image: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray:
    """The global appearance randomisations of ``config``: the grey-level curve with probability
    ``remap_p``, then the random convolution with probability ``random_conv_p`` (no random draw
    for one that is off, so recipes without them draw the same batches as before)."""
    if config.remap_p > 0 and rng.random() < config.remap_p:
        image = remap_intensity(image, rng)
    if config.random_conv_p > 0 and rng.random() < config.random_conv_p:
        image = random_convolve(image, rng)
    return image


def augment(
    image: np.ndarray,
    mask: np.ndarray | None,
    rng: np.random.Generator,
    config: AugmentConfig = DEFAULT_AUGMENTATION,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one random draw of every augmentation; geometry identically to image and mask.

    Order: flip, rotation, random crop resized back to the input size, then gain, gamma, the
    grey-level curve (with probability ``remap_p``), the random convolution (with probability
    ``random_conv_p``) and speckle on the image alone.

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
    image = randomise_appearance(image, rng, config)
    if config.max_speckle > 0:
        image = add_speckle(image, rng, rng.uniform(0.0, config.max_speckle))
    return image, mask


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented batches over prepared arrays.

    ``images``: (N, H, W) float32; ``masks``: (N, H, W) bool or None; ``targets``: (N, ...)
    float32 used as y when given (else the masks are); ``weights``: (N,) per-sample weights or
    None. When ``mask_channel`` is True the (augmented) mask is also stacked as a second input
    channel (the crop grader). At least ``min_steps`` batches make an epoch (a small set is
    then gone through several times, each with new augmentation). The random draws depend only
    on (seed, epoch, batch index).
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
        min_steps: int = 1,
    ):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.images, self.masks, self.targets, self.weights = images, masks, targets, weights
        self.batch_size, self.seed, self.config = batch_size, seed, config
        self.mask_channel = mask_channel
        self.min_steps = min_steps
        self.epoch = 0
        self.order = np.random.default_rng([seed, 0]).permutation(len(images))

    def __len__(self) -> int:
        return max(self.min_steps, math.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, idx: int):
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        if len(self) * self.batch_size > len(self.order):  # a small set, seen several times
            index = self.order[
                np.arange(idx * self.batch_size, (idx + 1) * self.batch_size) % len(self.order)
            ]
        else:
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
        masks = [m for m in ms if m is not None]
        if (self.mask_channel or self.targets is None) and len(masks) != len(ms):
            raise ValueError("every sample needs a mask for a mask channel or mask targets")
        if self.mask_channel:
            x = np.concatenate([x, np.stack(masks)[..., None].astype(np.float32)], axis=-1)
        y = (
            self.targets[index]
            if self.targets is not None
            else np.stack(masks)[..., None].astype(np.float32)
        )
        if self.weights is not None:
            return x, y, self.weights[index]
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))
