"""Gland masks as files and pictures: 1-bit PNG encoding, mask files, contours and overlays."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from sgus_core.errors import ImageReadError, MaskError
from sgus_core.imaging.readers import decode_samples, describe_exception
from sgus_core.settings import DEFAULT_MAX_PIXELS

# ---------------------------------------------------------------- masks


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A mask as a compact, lossless 1-bit PNG.

    Args:
        mask: (H, W) bool (or any array: non-zero is True).

    Returns:
        PNG bytes; :func:`decode_mask_png` gives the mask back exactly.

    Raises:
        MaskError: the mask is not 2-D or is empty.
    """
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise MaskError(f"A mask must be a non-empty (H, W) array, got shape {array.shape}.")
    buffer = io.BytesIO()
    Image.fromarray(array.astype(bool)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def decode_mask_png(data: bytes) -> np.ndarray:
    """The mask of PNG bytes written by :func:`encode_mask_png` (or any 0/non-0 grey PNG).

    Returns:
        (H, W) bool.

    Raises:
        MaskError: the bytes are not a readable PNG image.
    """
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            # Not np.asarray on a mode "1" image: Pillow stores True as byte 255, which numpy
            # comparisons between masks then get wrong.
            array = np.asarray(image.convert("L"))
    except Exception as exc:  # UnidentifiedImageError, truncated data, decompression bombs ...
        raise MaskError(f"A stored mask cannot be decoded ({describe_exception(exc)}).") from exc
    return array != 0


def read_mask_file(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as bool, checked against its frame's ``shape``.

    Accepts PNG (or BMP, TIFF) with the values 0/255 or 0/1, stored as grey, 1-bit or RGB
    with equal channels.

    Args:
        path: the mask file.
        shape: ``(H, W)`` of the frame the mask belongs to.

    Returns:
        (H, W) bool, True on the structure.

    Raises:
        MaskError: unreadable file, wrong size (both sizes named), colour, or values other
            than 0/255 or 0/1.
    """
    path = Path(path)
    expected = (int(shape[0]), int(shape[1]))
    limit = max(DEFAULT_MAX_PIXELS, 4 * expected[0] * expected[1])
    try:
        decoded, _ = decode_samples(path, limit)
    except ImageReadError as exc:
        raise MaskError(f"Mask {path.name} cannot be read: {exc}") from exc
    pixels, _, metadata, _ = decoded[0]
    if pixels.shape != expected:
        raise MaskError(
            f"Mask {path.name} is {pixels.shape[1]} x {pixels.shape[0]} px but its frame is "
            f"{expected[1]} x {expected[0]} px (width x height)."
        )
    if metadata.get("colour"):
        raise MaskError(f"Mask {path.name} is a colour image; save masks as grey 0/255 PNG.")
    values = set(np.unique(pixels).tolist())
    if metadata.get("mapping") == "min-max":
        # A 16-bit mask is judged on its stored values (the mapping made any two levels 0/255).
        low, high = metadata["mapped_from"]
        if low == high:
            return np.full(expected, low != 0)
        if len(values) == 2 and low == 0 and high in (1, 255, 65535):
            return pixels != 0
        values = {low, high} if len(values) == 2 else values
    if not (values <= {0, 255} or values <= {0, 1}):
        shown = ", ".join(str(v) for v in sorted(values)[:6]) + (", ..." if len(values) > 6 else "")
        hint = " JPEG is lossy: save masks as PNG." if metadata.get("format") == "jpeg" else ""
        raise MaskError(
            f"Mask {path.name} is not binary: it holds {len(values)} grey levels ({shown}); "
            f"use 0 and 255, or 0 and 1.{hint}"
        )
    return pixels != 0


def mask_contour(mask: np.ndarray) -> np.ndarray:
    """The outline of a mask's largest region.

    Args:
        mask: (H, W) bool (non-zero is True).

    Returns:
        (N, 2) int32 ``x, y`` points of the largest external contour in frame coordinates
        (every boundary pixel, in order); (0, 2) for an empty mask.
    """
    contours, _ = cv2.findContours(
        np.asarray(mask).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    if not contours:
        return np.zeros((0, 2), dtype=np.int32)
    largest = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    return np.ascontiguousarray(largest.reshape(-1, 2), dtype=np.int32)


def draw_overlay(
    gray: np.ndarray,
    layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    thickness: int = 2,
    fill_alpha: float = 0.0,
) -> np.ndarray:
    """A frame in colour with each mask's outline (and optional translucent fill) drawn on it.

    Args:
        gray: (H, W) uint8 frame (an (H, W, 3) RGB frame is drawn on as it is).
        layers: ``(mask, (r, g, b))`` pairs, each mask (H, W) bool; drawn in order.
        thickness: outline width in px.
        fill_alpha: opacity of the fill inside each mask, 0 (none) to 1.

    Returns:
        (H, W, 3) uint8 RGB; ``gray`` is not modified.

    Raises:
        MaskError: a mask's shape differs from the frame's.
    """
    base = np.asarray(gray)
    if base.dtype != np.uint8:
        base = np.clip(base, 0, 255).astype(np.uint8)
    rgb = base.copy() if base.ndim == 3 else cv2.cvtColor(base, cv2.COLOR_GRAY2RGB)
    alpha = float(min(max(fill_alpha, 0.0), 1.0))
    for mask, colour in layers:
        m = np.asarray(mask).astype(bool)
        if m.shape != rgb.shape[:2]:
            raise MaskError(
                f"A mask of {m.shape[1]} x {m.shape[0]} px cannot be drawn on a frame of "
                f"{rgb.shape[1]} x {rgb.shape[0]} px."
            )
        tint = tuple(int(c) for c in colour)
        if alpha > 0 and m.any():
            blended = (1 - alpha) * rgb[m] + alpha * np.array(tint, dtype=np.float32)
            rgb[m] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        width = max(1, int(thickness))
        # Anti-aliasing smooths thick outlines but makes a 1 px outline faint and off-colour.
        cv2.drawContours(rgb, contours, -1, tint, width, cv2.LINE_AA if width > 1 else cv2.LINE_8)
    return rgb


def display_window(
    pixels: np.ndarray, brightness: float = 0.0, contrast: float = 1.0
) -> np.ndarray:
    """The frame as shown with a brightness offset (grey levels, -100..100) and a contrast gain
    about mid-grey (0.5..3): display only, the stored frame and its mask never change.

    Returns:
        A uint8 array of the same shape (the input itself when nothing changes).
    """
    if brightness == 0 and contrast == 1:
        return pixels
    shown = (pixels.astype(np.float32) - 128.0) * float(contrast) + 128.0 + float(brightness)
    return np.clip(np.rint(shown), 0, 255).astype(np.uint8)
