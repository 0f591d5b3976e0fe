"""Thumbnails for the Browse grid (the latest outline drawn) and their on-disk cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from sgus_core.errors import ImageReadError, MaskError
from sgus_core.imaging.masks import draw_overlay

# ---------------------------------------------------------------- thumbnails

THUMBNAIL_JPEG_QUALITY = 80


def make_thumbnail(
    gray: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    max_side: int = 256,
    colour: tuple[int, int, int] = (255, 200, 0),
) -> bytes:
    """A small JPEG of a frame with its mask's outline.

    Args:
        gray: (H, W) uint8 frame.
        mask: optional (H, W) bool mask whose outline is drawn in ``colour`` (RGB).
        max_side: the longer side of the thumbnail in px (frames are never enlarged).
        colour: outline colour.

    Returns:
        JPEG bytes (quality 80).

    Raises:
        MaskError: the mask's shape differs from the frame's.
        ImageReadError: the JPEG could not be encoded.
    """
    gray = np.asarray(gray)
    height, width = gray.shape[:2]
    if mask is not None and np.asarray(mask).shape != (height, width):
        raise MaskError(
            f"A mask of {np.asarray(mask).shape[1]} x {np.asarray(mask).shape[0]} px does not "
            f"fit a frame of {width} x {height} px."
        )
    scale = min(1.0, max_side / max(height, width, 1))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    layers = []
    if mask is not None:
        small_mask: np.ndarray = np.asarray(mask).astype(np.uint8)
        if scale != 1.0:
            small_mask = cv2.resize(small_mask, size, interpolation=cv2.INTER_NEAREST)
        layers.append((small_mask > 0, colour))
    # 2 px: JPEG halves colour resolution, so a 1 px outline would lose most of its colour.
    rgb = draw_overlay(small, layers, thickness=2 if max(size) >= 128 else 1)
    params = [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_JPEG_QUALITY]
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageReadError("Could not encode a thumbnail.")
    return data.tobytes()


class ThumbnailCache:
    """Thumbnails on disk, one file per key, written atomically.

    Safe across concurrent page sessions and processes: a file appears whole (written to a
    temporary file in the same folder, then renamed over its name) or not at all; two sessions
    building the same key both succeed and one of the identical files wins.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        """Where the thumbnail of ``key`` lives: ``root/<first 2 chars>/<key>.jpg``.

        Characters other than letters, digits, ``-`` and ``_`` become ``_`` (no key can leave
        ``root``).

        Raises:
            ValueError: an empty key.
        """
        if not key:
            raise ValueError("A thumbnail key must not be empty.")
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in key)
        return self.root / safe[:2] / f"{safe}.jpg"

    def get_or_create(self, key: str, build: Callable[[], bytes]) -> Path:
        """The thumbnail file of ``key``, built with ``build()`` and stored the first time.

        Returns:
            The path of the complete file.

        Raises:
            OSError: the cache folder cannot be written.
        """
        path = self.path_for(key)
        try:
            if path.stat().st_size > 0:
                return path
        except FileNotFoundError:
            pass
        data = build()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
