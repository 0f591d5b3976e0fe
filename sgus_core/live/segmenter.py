"""One live frame at a time: the gland's outline, area and grade, and the frames per second.

A scanner's field of view does not move between frames, so it is found once a second (and when
the frame size changes) instead of on every frame; the grader, which reads texture inside the
mask, runs every ``grade_every`` frames and its answer is carried until the next (a gland's
grade does not change in a fifth of a second). Everything else (crop, network, one region, holes
filled, outline) runs on every frame.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from sgus_core.errors import SourceError
from sgus_core.imaging import Frame, Rect, detect_fov
from sgus_core.imaging.readers import MIN_SIDE
from sgus_core.inference.pipeline import Prediction, segment_frames
from sgus_core.inference.runtimes import Grader, Segmenter

OUTLINE_RGB = (255, 64, 64)
"""The live outline's colour (the model's colour on every page)."""

FPS_WINDOW_S = 2.0
"""Frames per second are counted over this many seconds."""


@dataclass(frozen=True)
class LiveResult:
    """One processed frame.

    Attributes:
        index: 0-based frame number since the segmenter was made.
        image: the frame as it came in (grey or RGB; what Capture writes to disk).
        frame: the grey frame with its field of view (what Capture stores).
        prediction: the mask, probability and area; ``grade`` is the latest the grader gave.
        overlay: (H, W, 3) uint8 RGB: the frame with the outline and a caption (area, grade,
            frames per second) burned in.
        fps: frames processed per second over the last :data:`FPS_WINDOW_S` seconds (0 until
            there are two).
        graded: whether the grader ran on this frame (else its grade was carried over).
    """

    index: int
    image: np.ndarray
    frame: Frame
    prediction: Prediction
    overlay: np.ndarray
    fps: float
    graded: bool

    def vascular_caption(self) -> str | None:
        """``"Doppler: vascular fraction 12.3 % inside the gland"`` when the frame is a colour or
        power Doppler frame (coloured flow inside its field of view), else ``None``. Measured on
        request (the page asks once a second), not on every frame of the video."""
        from sgus_core.imaging.doppler import doppler_frame_signal, vascular_caption

        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            return None
        return vascular_caption(doppler_frame_signal(self.image, self.frame.fov),
                                self.prediction.mask)  # fmt: skip


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey of an (H, W) grey or (H, W, 3) RGB frame."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_RGB2GRAY)
    raise SourceError(f"A live frame of shape {array.shape} is neither grey nor RGB.")


class LiveSegmenter:
    """Segment (and grade) a stream of frames, one call per frame.

    Not thread-safe: one segmenter per stream (the Live page makes one per browser session).
    """

    def __init__(
        self,
        segmenter: Segmenter,
        grader: Grader | None = None,
        *,
        spacing_mm: float | None = None,
        grade_every: int = 5,
        fov_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.segmenter = segmenter
        self.grader = grader
        self.spacing_mm = spacing_mm
        self.grade_every = max(1, int(grade_every))
        self.fov_every_s = float(fov_every_s)
        self._clock = clock
        self._fov: Rect | None = None
        self._fov_at = -np.inf
        self._fov_shape: tuple[int, int] | None = None
        self._grade: tuple[int | None, tuple[float, ...] | None] = (None, None)
        self._times: deque[float] = deque()
        self.frames = 0

    @property
    def model_name(self) -> str:
        """What the store calls the segmenter (predictions are stored under it)."""
        return self.segmenter.name

    def _field_of_view(self, grey: np.ndarray, now: float) -> Rect:
        shape = (int(grey.shape[0]), int(grey.shape[1]))
        if self._fov is None or shape != self._fov_shape or now - self._fov_at >= self.fov_every_s:
            self._fov, self._fov_at, self._fov_shape = detect_fov(grey), now, shape
        return self._fov

    def _tick(self, now: float) -> float:
        self._times.append(now)
        while self._times and now - self._times[0] > FPS_WINDOW_S:
            self._times.popleft()
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def process(self, image: np.ndarray) -> LiveResult:
        """Segment one (H, W) grey or (H, W, 3) RGB frame.

        Raises:
            SourceError: the frame is not an image, or smaller than an ultrasound frame can be.
        """
        grey = to_grey(image)
        if min(grey.shape) < MIN_SIDE:
            raise SourceError(
                f"A live frame of {grey.shape[1]} x {grey.shape[0]} px is too small to be an "
                f"ultrasound image (at least {MIN_SIDE} px a side)."
            )
        now = self._clock()
        frame = Frame(grey, self.spacing_mm, self._field_of_view(grey, now))
        graded = self.grader is not None and self.frames % self.grade_every == 0
        prediction = segment_frames(
            self.segmenter, [frame], grader=self.grader if graded else None, batch_size=1
        )[0]
        if graded:
            self._grade = (prediction.grade, prediction.grade_probabilities)
        else:
            prediction = _with_grade(prediction, *self._grade)
        fps = self._tick(now)
        base = image if np.asarray(image).ndim == 3 else grey
        overlay = caption(draw_outline(base, prediction.contour), prediction, fps)
        result = LiveResult(self.frames, np.asarray(image), frame, prediction, overlay, fps, graded)
        self.frames += 1
        return result


def _with_grade(
    prediction: Prediction, grade: int | None, probabilities: tuple[float, ...] | None
) -> Prediction:
    return replace(prediction, grade=grade, grade_probabilities=probabilities)


def draw_outline(image: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB copy of a grey or RGB frame with the gland's outline drawn on it."""
    array = np.asarray(image)
    if array.ndim == 2:
        rgb = cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    else:
        rgb = np.ascontiguousarray(array[..., :3], dtype=np.uint8).copy()
    if len(contour) >= 2:
        cv2.polylines(rgb, [contour.reshape(-1, 1, 2)], True, OUTLINE_RGB, 2, cv2.LINE_AA)
    return rgb


def caption_text(prediction: Prediction, fps: float) -> str:
    """The caption burned into a live frame: area, grade (when graded) and frames per second."""
    if prediction.area_mm2 is not None:
        area = f"gland {prediction.area_mm2:.1f} mm2"
    else:
        area = f"gland {prediction.area_px} px"
    grade = "" if prediction.grade is None else f"  de Vita {prediction.grade}"
    return f"{area}{grade}  {fps:.1f} fps"


def caption(rgb: np.ndarray, prediction: Prediction, fps: float) -> np.ndarray:
    """Burn :func:`caption_text` into the top-left corner of ``rgb`` (in place; returned)."""
    text = caption_text(prediction, fps)
    scale = max(0.4, min(1.0, rgb.shape[1] / 1000))
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(rgb, (4, 4), (12 + width, 12 + height + base), (0, 0, 0), cv2.FILLED)
    cv2.putText(
        rgb,
        text,
        (8, 8 + height),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return rgb
