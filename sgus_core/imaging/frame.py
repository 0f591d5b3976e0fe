"""The values every reader returns: a grey :class:`Frame` and :class:`Rect` (the field of view)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in pixels: ``x``, ``y`` of its top-left corner, then its size."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        """Pixels inside (0 for an empty rectangle)."""
        return max(0, self.width) * max(0, self.height)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` as plain ints (what the store keeps)."""
        return (int(self.x), int(self.y), int(self.width), int(self.height))

    @property
    def slices(self) -> tuple[slice, slice]:
        """Numpy ``(rows, cols)`` slices: ``image[rect.slices]`` is the rectangle's content."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)

    def iou(self, other: Rect) -> float:
        """Intersection over union with another rectangle, in [0, 1] (0 when both are empty)."""
        ix = max(0, min(self.x + self.width, other.x + other.width) - max(self.x, other.x))
        iy = max(0, min(self.y + self.height, other.y + other.height) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


# A B-mode field of view is mostly dark speckle: mean grey about 58 on real frames (docs/SGUS.md), at
# most 182 on the brightest rendered family, and never flat.
BRIGHT_FOV_MEAN = 200.0
FLAT_FOV_STD = 4.0


@dataclass(frozen=True)
class Frame:
    """One grey ultrasound frame with what the reader learnt about it.

    Attributes:
        pixels: (H, W) uint8 grey.
        spacing_mm: mm per pixel, ``None`` when the file does not say (PNG, JPEG, ...). Pixels
            are taken as square; when the file gives different row and column spacings this is
            their geometric mean (so ``area_px * spacing_mm**2`` is the true area) and both are
            in ``metadata`` as ``spacing_row_mm`` / ``spacing_col_mm``.
        fov: the field of view (scanner image area) inside the frame.
        frame_index: 0-based position in a multi-frame file.
        metadata: JSON-serialisable facts about the source: ``format`` (png, jpeg, bmp, tiff,
            dicom), ``dtype`` and ``bit_depth`` of the stored samples, ``photometric`` (the
            Pillow mode, TIFF photometric or DICOM PhotometricInterpretation), ``colour`` (True
            when true colour was reduced to luminance), ``mapping`` (``"none"``, ``"1-bit"`` or
            ``"min-max"`` with ``mapped_from`` = [low, high]), ``inverted`` (MONOCHROME1 or
            min-is-white), ``fov_source`` (``"detected"`` or ``"dicom_region"``), for DICOM
            ``spacing_source`` and ``dicom`` (only :data:`DICOM_KEPT_TAGS`), ``doppler``
            (True when colour-flow or power-Doppler signal was found inside the field of view,
            ``imaging.doppler``).
        doppler_signal: (H, W) bool, where a Doppler frame's colour signal is (inside the field
            of view); ``None`` for every frame that is not Doppler. Found on the colour samples
            before they were reduced to grey; never stored, read again with the frame.
        doppler_rgb: (H, W, 3) uint8, a Doppler frame's colour samples (``None`` for every
            other frame): what :meth:`shown` paints the flow with, so that a rater grading
            vascularity sees it.
    """

    pixels: np.ndarray
    spacing_mm: float | None
    fov: Rect
    frame_index: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    doppler_signal: np.ndarray | None = None
    doppler_rgb: np.ndarray | None = None

    def unlike_ultrasound(self) -> str | None:
        """A sentence when the field of view cannot be a B-mode frame (blank, or mostly bright:
        a photo, a document, a screenshot of something else), else None. A model still draws an
        outline on such a picture, often a confident one; this says not to read it."""
        fov = self.pixels[self.fov.slices]
        mean, spread = float(fov.mean()), float(fov.std())
        if spread < FLAT_FOV_STD:
            return (
                f"This frame is nearly blank (grey spread {spread:.1f} of 255): there is no "
                "ultrasound image to outline or grade."
            )
        if mean > BRIGHT_FOV_MEAN:
            return (
                f"This does not look like a B-mode ultrasound frame: its image area is mostly "
                f"bright (mean grey {mean:.0f} of 255, where scanner frames are mostly dark, "
                "about 60). An outline or grade of it means nothing."
            )
        return None

    def shown(self) -> np.ndarray:
        """What the app shows of the frame: the grey pixels, and on a Doppler frame (H, W, 3)
        RGB with the flow signal in its own colours (the analysis always reads ``pixels``)."""
        if self.doppler_signal is None or self.doppler_rgb is None:
            return self.pixels
        rgb = np.repeat(self.pixels[..., np.newaxis], 3, axis=2)
        rgb[self.doppler_signal] = self.doppler_rgb[self.doppler_signal]
        return rgb
