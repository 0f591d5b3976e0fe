"""Training examples drawn on the fly from the appearance families, zero-shot and prompted.

In the spirit of SynthSeg (Billot et al., Medical Image Analysis 2023): the segmenter never sees
the same frame twice and never one fixed contrast; every batch is rendered anew from random label
maps and random appearance (``sgus_core.synthesis``), so what it can learn is the gland's shape,
texture and place in the anatomy, not one renderer's grey levels.

Each example is one of two kinds, drawn at random:

* **zero-shot**: the frame's field of view (its edges jittered, as a detector would find them,
  sometimes the whole screenshot) resized to the network input, the prompt channels zero, with
  flips, small rotations, crops and gain / gamma / speckle changes;
* **prompted** (networks with the prompt channels): a box around the gland moved the way people
  drag one (each side up to :data:`BOX_JITTER` of the box loose or tight), sometimes include
  clicks anywhere inside the gland and an exclude click beside it; the network sees the box's
  neighbourhood, encoded as at prediction time (``sgus_core.inference.prompts``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from sgus_core.imaging import Rect
from sgus_core.inference.processing import preprocess_frame, resize_mask
from sgus_core.inference.prompts import (
    PROMPT_MARGIN,
    Prompt,
    encode_prompt,
    mask_box,
    prompt_region,
    takes_prompts,
)
from sgus_core.synthesis.families import family
from sgus_core.synthesis.family import SynthFrame
from sgus_core.training.augmentation import (
    AugmentConfig,
    adjust_gain,
    adjust_gamma,
    augment,
    randomise_appearance,
)

BOX_JITTER = 0.2  # training boxes: each side moved up to this share of the box, either way
FOV_JITTER = 0.06  # field-of-view edges moved up to this share of the FOV, either way
VALIDATION_FIRST_SEED = 7_000_000  # validation frames: seeds never drawn for training batches
TRAINING_AUGMENTATION = AugmentConfig(
    flip_p=0.5,
    max_rotation_deg=8.0,
    crop_p=0.3,
    min_crop=0.85,
    gain=(0.8, 1.25),
    gamma=(0.8, 1.25),
    max_speckle=0.08,
)


@dataclass(frozen=True)
class SynthConfig:
    """What the on-the-fly examples are drawn from.

    Attributes:
        families: appearance family names (``sgus_core.synthesis.families.FAMILIES``).
        input_shape: the network input (H, W, C); C = 4 (grey + prompt channels) also trains
            the prompted mode, C = 1 zero-shot only.
        prompt_fraction: share of prompted examples (networks with prompt channels).
        render_width: range of the rendered frame width in px (before the crop and resize).
        render_aspect: range of the rendered frame's width / height.
        augmentation: geometry and appearance changes of the zero-shot examples.
    """

    families: tuple[str, ...]
    input_shape: tuple[int, int, int] = (192, 256, 4)
    prompt_fraction: float = 0.5
    render_width: tuple[int, int] = (320, 576)
    render_aspect: tuple[float, float] = (1.15, 1.8)
    augmentation: AugmentConfig = field(default_factory=lambda: TRAINING_AUGMENTATION)

    def __post_init__(self) -> None:
        if not self.families:
            raise ValueError("name at least one appearance family to train on")
        for name in self.families:
            family(name)  # raises on an unknown name

    def describe(self) -> dict[str, Any]:
        """What a model card records about the training data."""
        return {
            "synthetic": True,
            "families": list(self.families),
            "prompt_fraction": self.prompt_fraction if takes_prompts(self.input_shape) else 0.0,
            "render_width": list(self.render_width),
            "render_aspect": list(self.render_aspect),
            "box_jitter": BOX_JITTER,
            "fov_jitter": FOV_JITTER,
        } | {
            key: share
            for key, share in (
                ("intensity_remap", self.augmentation.remap_p),
                ("random_convolution", self.augmentation.random_conv_p),
            )
            if share
        }

    def digest(self) -> str:
        """A hash of :meth:`describe` (the card's ``training_data.hash``)."""
        return hashlib.sha256(repr(sorted(self.describe().items())).encode()).hexdigest()


def _render_size(config: SynthConfig, rng: np.random.Generator) -> tuple[int, int]:
    """A random ``(width, height)`` within the config's ranges."""
    width = int(rng.integers(config.render_width[0], config.render_width[1] + 1))
    return width, int(round(width / rng.uniform(*config.render_aspect)))


def render_training_frame(config: SynthConfig, rng: np.random.Generator) -> SynthFrame:
    """One frame of a random family at a random size, from a seed drawn from ``rng``."""
    name = config.families[int(rng.integers(len(config.families)))]
    size = _render_size(config, rng)
    seed = int(rng.integers(0, VALIDATION_FIRST_SEED))
    return family(name)(seed, size=size)


def _jittered_fov(frame: SynthFrame, rng: np.random.Generator) -> Rect:
    height, width = frame.image.shape
    if rng.random() < 0.1:
        return Rect(0, 0, width, height)  # a detector that found no FOV keeps the whole frame
    x, y, w, h = frame.fov
    dx0, dx1 = (rng.uniform(-FOV_JITTER, FOV_JITTER) * w for _ in range(2))
    dy0, dy1 = (rng.uniform(-FOV_JITTER, FOV_JITTER) * h for _ in range(2))
    x0, y0 = max(0, int(round(x + dx0))), max(0, int(round(y + dy0)))
    x1, y1 = min(width, int(round(x + w + dx1))), min(height, int(round(y + h + dy1)))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return Rect(x, y, w, h)
    return Rect(x0, y0, x1 - x0, y1 - y0)


class ExampleShape(Protocol):
    """What drawing one example needs to know: the network input and the augmentation."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...

    @property
    def augmentation(self) -> AugmentConfig: ...


def zero_shot_example(
    frame: SynthFrame, rng: np.random.Generator, config: ExampleShape
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: the jittered FOV crop as the network input (H, W, C) float32, prompt channels
    zero, and its (H, W) bool mask, augmented."""
    height, width, channels = config.input_shape
    region = _jittered_fov(frame, rng)
    image = preprocess_frame(frame.image[region.slices], (height, width))
    mask = resize_mask(frame.mask[region.slices], (height, width))
    image, augmented = augment(image, mask, rng, config.augmentation)
    x = np.zeros((height, width, channels), np.float32)
    x[..., 0] = image
    return x, np.asarray(augmented, dtype=bool)


def jitter_box(
    box: tuple[int, int, int, int], rng: np.random.Generator, fraction: float = BOX_JITTER
) -> tuple[int, int, int, int]:
    """A box ``(x0, y0, x1, y1)`` with each side moved by up to ``fraction`` of the box's width
    (x) or height (y), outwards or inwards, independently."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0 + 1, y1 - y0 + 1
    x0 += int(round(rng.uniform(-fraction, fraction) * w))
    x1 += int(round(rng.uniform(-fraction, fraction) * w))
    y0 += int(round(rng.uniform(-fraction, fraction) * h))
    y1 += int(round(rng.uniform(-fraction, fraction) * h))
    return min(x0, x1 - 2), min(y0, y1 - 2), max(x1, x0 + 2), max(y1, y0 + 2)


def random_clicks(
    mask: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator
) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
    """Clicks as people give them: half the time 1-2 include clicks anywhere in the gland, a
    quarter of the time an exclude click in the box but off the gland."""
    include: list[tuple[float, float]] = []
    exclude: list[tuple[float, float]] = []
    if rng.random() < 0.5:
        ys, xs = np.nonzero(mask)
        for i in rng.integers(0, len(xs), size=int(rng.integers(1, 3))):
            include.append((float(xs[i]), float(ys[i])))
    if rng.random() < 0.25:
        x0, y0, x1, y1 = box
        outside = ~mask[y0 : y1 + 1, x0 : x1 + 1]
        ys, xs = np.nonzero(outside)
        if len(xs):
            i = int(rng.integers(len(xs)))
            exclude.append((float(xs[i] + x0), float(ys[i] + y0)))
    return tuple(include), tuple(exclude)


def prompted_example(
    frame: SynthFrame, rng: np.random.Generator, config: ExampleShape
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` for a prompt drawn the way people give one (None when the frame has no gland).

    The crop margin is drawn around :data:`PROMPT_MARGIN` so the network does not learn one
    exact box-to-crop ratio; a horizontal flip mirrors image, prompt and mask together."""
    height, width, channels = config.input_shape
    tight = mask_box(frame.mask)
    if tight is None:
        return None
    shape = frame.image.shape
    box = jitter_box(tight, rng)
    include, exclude = random_clicks(frame.mask, Prompt(box).checked(shape).box, rng)
    prompt = Prompt(box, include, exclude).checked(shape)
    margin = PROMPT_MARGIN * rng.uniform(0.7, 1.3)
    region = prompt_region(prompt.box, shape, margin)
    x = np.zeros((height, width, channels), np.float32)
    image = preprocess_frame(frame.image[region.slices], (height, width))
    image = adjust_gamma(adjust_gain(image, rng.uniform(*config.augmentation.gain)),
                         rng.uniform(*config.augmentation.gamma))  # fmt: skip
    x[..., 0] = image
    x[..., 1:] = encode_prompt(prompt, region, (height, width))
    y = resize_mask(frame.mask[region.slices], (height, width))
    if rng.random() < 0.5:
        x, y = x[:, ::-1].copy(), y[:, ::-1].copy()
    x[..., 0] = randomise_appearance(x[..., 0], rng, config.augmentation)
    return x, y


def draw_example(config: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One training example ``(x (H, W, C) float32, y (H, W) bool)`` of either kind."""
    prompted = takes_prompts(config.input_shape) and rng.random() < config.prompt_fraction
    while True:
        frame = render_training_frame(config, rng)
        example = prompted_example(frame, rng, config) if prompted else None
        if example is not None:
            return example
        if not prompted:
            return zero_shot_example(frame, rng, config)


class SyntheticBatches(keras.utils.PyDataset):
    """``steps`` batches per epoch rendered on the fly; batch ``i`` of epoch ``e`` is a pure
    function of ``(seed, e, i)``. Threads (``workers``) render while the network trains."""

    def __init__(
        self, config: SynthConfig, *, steps: int, batch_size: int, seed: int, workers: int = 2
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
        self.config, self.steps, self.batch_size, self.seed = config, steps, batch_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        pairs = [draw_example(self.config, rng) for _ in range(self.batch_size)]
        x = np.stack([p[0] for p in pairs])
        y = np.stack([p[1] for p in pairs])[..., None].astype(np.float32)
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1


def validation_set(config: SynthConfig, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fixed examples of the training families from seeds no training batch draws, half
    zero-shot and half prompted (for a prompted network): what early stopping watches."""
    rng = np.random.default_rng([VALIDATION_FIRST_SEED, seed])
    xs, ys = [], []
    prompted_ok = takes_prompts(config.input_shape)
    for i in range(n):
        name = config.families[i % len(config.families)]
        frame = family(name)(VALIDATION_FIRST_SEED + i, size=_render_size(config, rng))
        example = prompted_example(frame, rng, config) if prompted_ok and i % 2 else None
        x, y = example if example is not None else zero_shot_example(frame, rng, config)
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)[..., None].astype(np.float32)


@dataclass(frozen=True)
class FrameExamples:
    """Examples drawn from labelled frames (a clinic's outlines) instead of rendered ones: the
    network input, the share of prompted examples and the augmentation."""

    input_shape: tuple[int, int, int]
    prompt_fraction: float = 0.5
    augmentation: AugmentConfig = field(default_factory=lambda: TRAINING_AUGMENTATION)


def frame_example(
    frame: SynthFrame, rng: np.random.Generator, config: FrameExamples
) -> tuple[np.ndarray, np.ndarray]:
    """One example of a labelled frame: prompted (box from its mask, jittered, clicks) with
    ``config.prompt_fraction`` for a prompted network, else zero-shot."""
    if takes_prompts(config.input_shape) and rng.random() < config.prompt_fraction:
        example = prompted_example(frame, rng, config)
        if example is not None:
            return example
    return zero_shot_example(frame, rng, config)


class FrameBatches(keras.utils.PyDataset):
    """Shuffled batches of examples over labelled frames (each frame once per epoch, or more
    often when ``min_steps`` batches are asked of a small set; a new random draw of its
    augmentation and prompt every time); batch ``i`` of epoch ``e`` is a pure function of
    ``(seed, e, i)``."""

    def __init__(
        self,
        frames: list[SynthFrame],
        config: FrameExamples,
        *,
        batch_size: int,
        seed: int,
        workers: int = 1,
        min_steps: int = 1,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=False)
        self.frames, self.config, self.batch_size, self.seed = frames, config, batch_size, seed
        self.min_steps = min_steps
        self.epoch = 0
        self.order = np.random.default_rng([seed, 0]).permutation(len(frames))

    def __len__(self) -> int:
        return max(self.min_steps, -(-len(self.frames) // self.batch_size))

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        if len(self) * self.batch_size > len(self.order):  # a small set, seen several times
            slots = np.arange(idx * self.batch_size, (idx + 1) * self.batch_size)
            index = self.order[slots % len(self.order)]
        else:
            index = self.order[idx * self.batch_size : (idx + 1) * self.batch_size]
        pairs = [frame_example(self.frames[i], rng, self.config) for i in index]
        x = np.stack([p[0] for p in pairs])
        y = np.stack([p[1] for p in pairs])[..., None].astype(np.float32)
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.frames))
