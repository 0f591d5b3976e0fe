"""Pre- and post-processing around a segmentation network, as pure functions."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from sgus_core.imaging import Rect

THRESHOLD = 0.5


def preprocess(gray_fov: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A grey field-of-view crop (h, w) uint8 as the network's input (1, H, W, 1) float32 in 0..1,
    exactly as training prepared it (``training.preprocess_frame``)."""
    from sgus_core.training import preprocess_frame

    return preprocess_frame(gray_fov, tuple(input_shape[:2]))[np.newaxis, :, :, np.newaxis]


def probability_in_frame(
    probability: np.ndarray, fov: Rect, frame_shape: tuple[int, int]
) -> np.ndarray:
    """The network's (H, W) probability resized (bilinear) back into the FOV of a frame-size
    float32 map (0 outside the FOV)."""
    out = np.zeros(frame_shape, dtype=np.float32)
    resized = cv2.resize(
        probability.astype(np.float32), (fov.width, fov.height), interpolation=cv2.INTER_LINEAR
    )
    out[fov.slices] = resized
    return out


def postprocess(probability_frame: np.ndarray, *, threshold: float = THRESHOLD) -> np.ndarray:
    """The gland mask of a frame-size probability map: thresholded, largest connected region,
    holes filled (bool (H, W); empty when nothing passes the threshold)."""
    mask = probability_frame > threshold
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndimage.binary_fill_holes(labels == int(np.argmax(sizes)))


def area(mask: np.ndarray, spacing_mm: float | None) -> tuple[int, float | None]:
    """``(area_px, area_mm2)``; mm² is None when the pixel spacing is unknown."""
    pixels = int(np.count_nonzero(mask))
    return pixels, (pixels * spacing_mm**2 if spacing_mm else None)
