"""Personal data: burned-in text outside the field of view.

Raw scanner screenshots carry the hospital, the date and sometimes the patient's name in the UI
panels around the ultrasound field of view. Frames imported from DICOM are blanked outside their
detected field of view by default (``BLANK_KEY`` in the image's metadata says so); the app, the
models and every export then only ever see the blanked frame. DICOM tags are never stored: the
readers keep only what the app needs (see ``imaging``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLANK_KEY = "blank_outside_fov"


def blank_by_default(meta: dict[str, Any]) -> bool:
    """Whether a frame with this reader metadata is blanked outside its FOV unless asked not to."""
    return str(meta.get("format", "")).lower() == "dicom"


def blank_outside_fov(pixels: np.ndarray, fov: tuple[int, int, int, int] | None) -> np.ndarray:
    """A copy of ``pixels`` (H, W) with everything outside ``fov`` (x, y, width, height) set to 0.

    A missing field of view leaves the frame unchanged.
    """
    if fov is None:
        return pixels
    x, y, width, height = fov
    out = np.zeros_like(pixels)
    out[y : y + height, x : x + width] = pixels[y : y + height, x : x + width]
    return out


def frame_for_display(
    pixels: np.ndarray, meta: dict[str, Any], fov: tuple[int, int, int, int] | None
) -> np.ndarray:
    """The pixels the app may show and export for an image with this metadata."""
    return blank_outside_fov(pixels, fov) if meta.get(BLANK_KEY) else pixels
