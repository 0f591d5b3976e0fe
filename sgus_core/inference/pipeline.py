"""The frame pipeline: a frame -> its field of view -> the network -> a :class:`Prediction`.

A prediction travels: frame -> FOV crop -> ``processing.preprocess`` -> a runtime's forward pass
-> ``processing.probability_in_frame`` / ``postprocess`` -> :class:`Prediction` (arrays at the
frame's size); the grader then reads the FOV (or the gland box) with the mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgus_core import imaging
from sgus_core.errors import ModelError
from sgus_core.imaging import Frame, Rect
from sgus_core.inference import processing
from sgus_core.inference.prompts import (
    Prompt,
    box_prior,
    encode_prompt,
    prompt_region,
    takes_prompts,
)
from sgus_core.inference.runtimes import FEATURE_DESIGN, Grader, Segmenter

LOW_CONFIDENCE = 0.8
"""Below this mean gland probability inside its own mask an outline is flagged as unsure. On 120
frames of appearance families the networks never saw (``sgus bench-generalisation``'s held-out
test frames) it flagged 23, whose mean IoU was 0.31 against 0.63 for the rest, and 10 of 10
frames of noise that are no ultrasound at all."""


@dataclass(frozen=True)
class Prediction:
    """What a model says about one frame (arrays at the frame's size)."""

    mask: np.ndarray
    probability: np.ndarray
    contour: np.ndarray
    overlay: np.ndarray
    area_px: int
    area_mm2: float | None
    grade: int | None
    grade_probabilities: tuple[float, ...] | None
    model: str
    fov: Rect

    @property
    def confidence(self) -> float | None:
        """The mean gland probability inside the mask (None for an empty mask): how sure the
        network is of the outline it drew."""
        return float(self.probability[self.mask].mean()) if self.mask.any() else None

    def confidence_warning(self) -> str | None:
        """A sentence for an outline the network is unsure of (or an empty one), else None."""
        confidence = self.confidence  # a mean over the mask: measured once
        if confidence is None:
            return "The model found no gland in this frame: outline it by hand."
        if confidence >= LOW_CONFIDENCE:
            return None
        return (
            f"The model is unsure of this outline (mean gland probability {confidence:.2f}, "
            f"below {LOW_CONFIDENCE:.2f}): on frames unlike its training data such outlines are "
            "often wrong, and so is a grade read inside them. Check it, or draw a box for the "
            "prompted model, before relying on it."
        )

    def store_fields(self) -> dict[str, Any]:
        """What the labels store keeps of it besides the mask (``save_prediction``'s keywords)."""
        return {
            "area_px": self.area_px,
            "area_mm2": self.area_mm2,
            "grade": self.grade,
            "grade_probabilities": self.grade_probabilities,
        }


@dataclass(frozen=True)
class Reading:
    """How a segmenter's output becomes a mask in one mode (``"zero_shot"`` or ``"prompted"``):
    whether its probability is averaged with that of the left-right mirrored input (test-time
    flip), the probability threshold, and (prompted only) the weight of the box's ellipse prior
    (``prompts.box_prior``) blended into the probability. A card's ``"reading"`` block sets
    them per mode (chosen on the network's own training families by
    ``bench.generalisation.calibrate``); without one: no flip, threshold 0.5, no prior."""

    flip: bool = False
    threshold: float = processing.THRESHOLD
    prior: float = 0.0

    @classmethod
    def of(cls, segmenter: Segmenter, mode: str) -> Reading:
        """The reading a segmenter's card gives for ``mode`` (the default without one)."""
        card = getattr(segmenter, "card", None) or {}
        block = (card.get("reading") or {}).get(mode) or {}
        return cls(
            flip=bool(block.get("flip", False)),
            threshold=float(block.get("threshold", processing.THRESHOLD)),
            prior=float(block.get("prior", 0.0)),
        )


def probabilities(segmenter: Segmenter, batch: np.ndarray, *, flip: bool = False) -> np.ndarray:
    """(N, H, W) gland probabilities of a network-input batch; with ``flip`` the mean of the
    batch's and its left-right mirror's (mirrored back)."""
    out = segmenter.predict_probabilities(batch)
    if flip:
        mirrored = segmenter.predict_probabilities(np.ascontiguousarray(batch[:, :, ::-1]))
        out = (out + mirrored[:, :, ::-1]) / 2
    return out


def grader_input(fov_pixels: np.ndarray, fov_mask: np.ndarray | None, grader: Grader) -> np.ndarray:
    """The grader's (H, W, C) input for one FOV crop: the whole FOV (``grader_frame``) or the
    padded gland box with its mask as a second channel (``grader_crop``), as in training; a
    feature grader's input is the texture features inside the mask (``features.py``)."""
    if grader.design == FEATURE_DESIGN:
        from sgus_core.inference.features import grade_features

        return grade_features(fov_pixels, fov_mask)
    height, width, channels = grader.input_shape
    if grader.design == "grader_crop":
        crop, crop_mask = processing.gland_crop(fov_pixels, fov_mask, (height, width))
        layers = [crop, crop_mask.astype(np.float32)][:channels]
        return np.stack(layers, axis=-1)
    return processing.preprocess_frame(fov_pixels, (height, width))[..., np.newaxis]


def _predict_one(
    frame: Frame,
    probability: np.ndarray,
    mask: np.ndarray,
    grades: np.ndarray | None,
    model: str,
) -> Prediction:
    area_px, area_mm2 = processing.area(mask, frame.spacing_mm)
    probs = None if grades is None else tuple(float(p) for p in grades)
    return Prediction(
        mask=mask,
        probability=probability,
        contour=imaging.mask_contour(mask),
        overlay=imaging.draw_overlay(frame.shown(), [(mask, (255, 64, 64))]),
        area_px=area_px,
        area_mm2=area_mm2,
        grade=None if probs is None else int(np.argmax(probs)),
        grade_probabilities=probs,
        model=model,
        fov=frame.fov,
    )


def _model_name(segmenter: Segmenter, grader: Grader | None) -> str:
    return segmenter.name if grader is None else f"{segmenter.name}+{grader.name}"


def segment_frames(
    segmenter: Segmenter,
    frames: Sequence[Frame],
    *,
    grader: Grader | None = None,
    batch_size: int = 8,
    reading: Reading | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Prediction]:
    """Segment (and grade) frames in batches; raw scanner screenshots work through their FOV.
    ``reading`` overrides the segmenter card's zero-shot :class:`Reading`."""
    reading = reading or Reading.of(segmenter, "zero_shot")
    out: list[Prediction] = []
    for start in range(0, len(frames), max(1, batch_size)):
        chunk = frames[start : start + batch_size]
        crops = [f.pixels[f.fov.slices] for f in chunk]
        batch = np.concatenate([processing.preprocess(c, segmenter.input_shape) for c in crops])
        maps, masks = [], []
        for frame, prob in zip(
            chunk, probabilities(segmenter, batch, flip=reading.flip), strict=True
        ):
            full = processing.probability_in_frame(prob, frame.fov, frame.pixels.shape)
            maps.append(full)
            masks.append(processing.postprocess(full, threshold=reading.threshold))
        grades = None
        if grader is not None:
            inputs = np.stack(
                [
                    grader_input(crop, mask[f.fov.slices], grader)
                    for crop, mask, f in zip(crops, masks, chunk, strict=True)
                ]
            )
            grades = grader.predict_grades(inputs)
        name = _model_name(segmenter, grader)
        for i, (frame, full, mask) in enumerate(zip(chunk, maps, masks, strict=True)):
            out.append(_predict_one(frame, full, mask, None if grades is None else grades[i], name))
        if progress:
            progress(min(start + batch_size, len(frames)), len(frames))
    return out


def segment_crops(segmenter: Segmenter, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Gland masks of field-of-view crops taken whole (training samples are such crops), each
    at its crop's size."""
    frames = [Frame(c, None, Rect(0, 0, c.shape[1], c.shape[0])) for c in crops]
    return [p.mask for p in segment_frames(segmenter, frames)]


def _prompted_region_picker(prompt: Prompt) -> Callable[[np.ndarray, int], int | None]:
    """Which connected region a prompt means: the one holding most include clicks, else the one
    with most pixels inside the box (None, so the largest, when none touches the box)."""

    def pick(labels: np.ndarray, count: int) -> int | None:
        if prompt.include:
            hits = [int(labels[int(y), int(x)]) for x, y in prompt.include]
            hits = [h for h in hits if h > 0]
            if hits:
                return max(set(hits), key=hits.count)
        x0, y0, x1, y1 = prompt.box
        inside = np.bincount(labels[y0 : y1 + 1, x0 : x1 + 1].ravel(), minlength=count + 1)
        inside[0] = 0
        return int(np.argmax(inside)) if inside.any() else None

    return pick


def prompted_probability(
    segmenter: Segmenter, frame: Frame, prompt: Prompt, *, flip: bool = False, prior: float = 0.0
) -> np.ndarray:
    """The frame-size gland probability a prompted network gives for a (checked) prompt: the
    network sees the box's neighbourhood with the prompt channels (0 outside it); with ``prior``
    > 0 that much of the box's ellipse prior is blended in."""
    region = prompt_region(prompt.box, frame.pixels.shape)
    height, width = int(segmenter.input_shape[0]), int(segmenter.input_shape[1])
    x = processing.preprocess(frame.pixels[region.slices], segmenter.input_shape)
    x[0, :, :, 1:] = encode_prompt(prompt, region, (height, width))
    probability = probabilities(segmenter, x, flip=flip)[0]
    full = processing.probability_in_frame(probability, region, frame.pixels.shape)
    if prior > 0:
        full = (1 - prior) * full + prior * box_prior(prompt.box, region, frame.pixels.shape)
    return full


def prompted_mask(probability: np.ndarray, prompt: Prompt, threshold: float) -> np.ndarray:
    """The mask of a prompted probability: the region the prompt points at, above threshold."""
    return processing.postprocess(
        probability, threshold=threshold, keep=_prompted_region_picker(prompt)
    )


def segment_prompted(
    segmenter: Segmenter,
    frame: Frame,
    prompt: Prompt,
    *,
    grader: Grader | None = None,
    reading: Reading | None = None,
) -> Prediction:
    """Segment one frame from a prompt: a box around the gland and optional clicks.

    The network sees the box's neighbourhood (:func:`~sgus_core.inference.prompts.prompt_region`)
    with the prompt channels; the mask is the connected region the prompt points at, and nothing
    outside the box's neighbourhood.

    Raises:
        ModelError: the segmenter does not take prompts.
        PromptError: the prompt does not fit the frame.
    """
    if not takes_prompts(segmenter.input_shape):
        raise ModelError(
            f"{segmenter.name} does not take box or click prompts; use a prompted segmenter "
            "(one whose input has 4 channels: grey, box, include and exclude clicks)."
        )
    prompt = prompt.checked(frame.pixels.shape)
    reading = reading or Reading.of(segmenter, "prompted")
    full = prompted_probability(segmenter, frame, prompt, flip=reading.flip, prior=reading.prior)
    mask = prompted_mask(full, prompt, reading.threshold)
    grades = None
    if grader is not None:
        crop = frame.pixels[frame.fov.slices]
        grades = grader.predict_grades(grader_input(crop, mask[frame.fov.slices], grader)[None])[0]
    return _predict_one(frame, full, mask, grades, _model_name(segmenter, grader))
