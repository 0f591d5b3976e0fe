"""Mask editing behind the Annotate page's drawing canvas: strokes drawn at the frame's
resolution and composed onto one mask, clean-up (fill holes, largest region, smooth), undo history.

The page draws on ``streamlit-drawable-canvas`` 0.13 (Fabric.js 7.4); :mod:`~sgus_core.annotate.strokes`
reads what it reports as :class:`Stroke` values in display coordinates. This module never imports
streamlit.

What a stroke covers (the mask shows what the canvas painted): free drawing is the set of points
within ``width / 2`` of the polyline (round caps and joins, as the pencil brush paints); closed
shapes (polygon, rect, circle) are filled, plus their outline band of the stroke width when they
have a stroke colour. A frame pixel ``(row, col)`` is set when its centre ``(col + 0.5, row + 0.5)``,
in continuous frame coordinates, lies inside the shape (polygons use Fabric's default non-zero
fill rule). Drawing is exact pure numpy, not ``cv2.fillPoly``: OpenCV rounds vertices to whole pixels
and its thick lines come in odd widths only, which made masks up to a pixel fatter than drawn.
Curves are flattened to at most one display pixel per segment; circles to 128 vertices. Skew and
non-uniform scale of a stroke *width* are approximated by the geometric mean of the scales.
Outline bands use round joins where Fabric's shapes default to mitre joins (corners differ by under
a third of the stroke width), and a path with several closed sub-paths is filled sub-path by
sub-path, so holes made by the winding of one sub-path inside another are not reproduced.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from sgus_core.annotate.strokes import Stroke
from sgus_core.errors import MaskError

DEFAULT_HISTORY_DEPTH = 50


# --------------------------------------------------------------------------------------------
# Drawing at frame resolution
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame, in frame pixels, that a canvas shows scaled to its display size."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        """Return the region of ``image`` (``(H, W)`` or ``(H, W, C)``) as a copy."""
        return np.array(image[self.y : self.y + self.height, self.x : self.x + self.width])

    def to_frame(self, points: np.ndarray, display_size: tuple[int, int]) -> np.ndarray:
        """Map ``(N, 2)`` display ``(x, y)`` points to continuous frame coordinates.

        Args:
            points: display coordinates of a canvas of ``display_size = (width, height)`` showing
                this region.
            display_size: the canvas size in display pixels.

        Returns:
            ``(N, 2)`` float64 frame coordinates (pixel ``(row, col)`` covers ``[col, col+1)`` x
            ``[row, row+1)``).
        """
        dw, dh = _check_display_size(display_size)
        scale = np.array([self.width / dw, self.height / dh])
        return np.asarray(points, dtype=np.float64) * scale + np.array([self.x, self.y])

    def fit(self, max_width: int, max_height: int | None = None) -> tuple[int, int]:
        """Return the largest display ``(width, height)`` within the limits keeping the aspect."""
        scale = max_width / self.width
        if max_height is not None:
            scale = min(scale, max_height / self.height)
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))


def crop_zoom(shape: tuple[int, ...], rect: tuple[float, float, float, float]) -> Region:
    """Clip a zoom rectangle to the frame, for a canvas that shows only part of the frame.

    Args:
        shape: the frame's shape ``(H, W, ...)``.
        rect: ``(x, y, width, height)`` in frame pixels; it may reach past the frame's edges.

    Returns:
        The :class:`Region` inside the frame (whole pixels). Pass it to :func:`rasterize` /
        :func:`compose` as ``region=`` so strokes drawn on the zoomed canvas land on the right
        frame pixels, and use :meth:`Region.crop` for the image the canvas shows.

    Raises:
        ValueError: the rectangle has no pixel inside the frame.
    """
    height, width = int(shape[0]), int(shape[1])
    x, y, w, h = (float(v) for v in rect)
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(width, math.ceil(x + w)), min(height, math.ceil(y + h))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"Zoom rectangle {rect!r} lies outside the {width}x{height} frame.")
    return Region(x0, y0, x1 - x0, y1 - y0)


def _check_display_size(display_size: tuple[int, int]) -> tuple[float, float]:
    dw, dh = (float(v) for v in display_size)
    if not (dw > 0 and dh > 0 and math.isfinite(dw) and math.isfinite(dh)):
        raise ValueError(f"display_size must be two positive numbers, got {display_size!r}.")
    return dw, dh


def _fill_polygon(out: np.ndarray, vertices: np.ndarray) -> None:
    """Set pixels whose centres are inside the polygon (non-zero winding), exactly."""
    height, width = out.shape
    ring = np.vstack([vertices, vertices[:1]])
    y_lo = max(0, math.floor(float(vertices[:, 1].min()) - 0.5))
    y_hi = min(height, math.ceil(float(vertices[:, 1].max()) + 0.5))
    if y_hi <= y_lo or len(vertices) < 3:
        return
    centres_y = np.arange(y_lo, y_hi) + 0.5
    x0, y0 = ring[:-1, 0], ring[:-1, 1]
    x1, y1 = ring[1:, 0], ring[1:, 1]
    # Half-open crossing rule (y0 <= c < y1 or y1 <= c < y0): a vertex on a row counts once.
    cy = centres_y[:, None]
    crossing = ((y0 <= cy) & (cy < y1)) | ((y1 <= cy) & (cy < y0))
    rows, edges = np.nonzero(crossing)
    if rows.size == 0:
        return
    ey0, ey1 = y0[edges], y1[edges]
    xs = x0[edges] + (centres_y[rows] - ey0) * (x1[edges] - x0[edges]) / (ey1 - ey0)
    direction = np.where(ey1 > ey0, 1, -1)
    # A crossing at x adds its direction to every pixel whose centre is at or right of x; the
    # running sum along the row is then the winding number at each pixel centre.
    cols = np.clip(np.ceil(xs - 0.5), 0, width).astype(np.int64)
    winding = np.zeros((y_hi - y_lo, width + 1), dtype=np.int32)
    np.add.at(winding, (rows, cols), direction)
    out[y_lo:y_hi] |= np.cumsum(winding, axis=1)[:, :width] != 0


def _stroke_polyline(out: np.ndarray, points: np.ndarray, radius: float) -> None:
    """Set pixels whose centres lie within ``radius`` of the polyline (round caps and joins)."""
    height, width = out.shape
    if len(points) == 1:
        points = np.vstack([points, points])
    for a, b in zip(points[:-1], points[1:], strict=True):
        lo = np.minimum(a, b) - radius
        hi = np.maximum(a, b) + radius
        c0, c1 = max(0, math.floor(lo[0] - 0.5)), min(width, math.ceil(hi[0] + 0.5))
        r0, r1 = max(0, math.floor(lo[1] - 0.5)), min(height, math.ceil(hi[1] + 0.5))
        if c1 <= c0 or r1 <= r0:
            continue
        px = np.arange(c0, c1) + 0.5 - a[0]
        py = (np.arange(r0, r1) + 0.5 - a[1])[:, None]
        d = b - a
        length2 = float(d @ d)
        if length2 > 0:
            t = np.clip((px * d[0] + py * d[1]) / length2, 0.0, 1.0)
            dx, dy = px - t * d[0], py - t * d[1]
        else:
            dx, dy = px + 0 * py, py + 0 * px
        out[r0:r1, c0:c1] |= dx * dx + dy * dy <= radius * radius


def _draw(out: np.ndarray, stroke: Stroke, to_frame: Any, width_scale: float) -> None:
    points = to_frame(stroke.points)
    radius = stroke.width * width_scale / 2.0
    if stroke.kind == "freedraw":
        # A zero-width brush still marks the pixels it passes through.
        _stroke_polyline(out, points, max(radius, 0.5))
        return
    _fill_polygon(out, points)
    if radius > 0:
        _stroke_polyline(out, np.vstack([points, points[:1]]), radius)


def _mapper(
    display_size: tuple[int, int], mask_shape: tuple[int, int], region: Region | None
) -> tuple[Any, float]:
    view = region if region is not None else Region(0, 0, int(mask_shape[1]), int(mask_shape[0]))
    dw, dh = _check_display_size(display_size)
    width_scale = math.sqrt((view.width / dw) * (view.height / dh))
    return (lambda pts: view.to_frame(pts, display_size)), width_scale


def _check_shape(mask_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(mask_shape) != 2 or min(int(mask_shape[0]), int(mask_shape[1])) <= 0:
        raise MaskError(f"A mask must be a non-empty (H, W) array, got shape {tuple(mask_shape)}.")
    return int(mask_shape[0]), int(mask_shape[1])


def rasterize(
    strokes: Iterable[Stroke],
    *,
    display_size: tuple[int, int],
    mask_shape: tuple[int, int],
    region: Region | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw strokes at frame resolution, one mask per mode, ignoring their order.

    Args:
        strokes: strokes in display coordinates.
        display_size: the canvas ``(width, height)`` in display pixels.
        mask_shape: the frame's ``(H, W)``.
        region: the frame rectangle the canvas shows (from :func:`crop_zoom`); default the whole
            frame. Display coordinates scale by ``region.width / display_width`` and
            ``region.height / display_height``; stroke widths by the geometric mean of the two.

    Returns:
        ``(add, erase)``: two bool ``(H, W)`` masks, the union of the add strokes and of the erase
        strokes. Use :func:`compose` when the order of add and erase strokes matters.

    Raises:
        ValueError: ``display_size`` is not two positive numbers.
        MaskError: ``mask_shape`` is not a non-empty ``(H, W)``.
    """
    shape = _check_shape(mask_shape)
    to_frame, width_scale = _mapper(display_size, shape, region)
    add = np.zeros(shape, dtype=bool)
    erase = np.zeros(shape, dtype=bool)
    for stroke in strokes:
        _draw(add if stroke.mode == "add" else erase, stroke, to_frame, width_scale)
    return add, erase


def _as_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """A bool copy of a 2-D mask (non-zero is foreground); the caller's array is never touched."""
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise MaskError(f"The {name} must be a non-empty (H, W) array, got shape {array.shape}.")
    return array != 0


def compose(
    base: np.ndarray,
    *stroke_groups: Iterable[Stroke],
    display_size: tuple[int, int],
    region: Region | None = None,
) -> np.ndarray:
    """Apply add and erase strokes to a mask in drawing order.

    The canvas has no eraser, so the page keeps two drawing modes: strokes read in ``"erase"``
    mode remove pixels, ``"add"`` strokes paint them, and a later stroke wins over an earlier one
    where they overlap.

    Args:
        base: the mask before these strokes, ``(H, W)`` (bool, or anything where non-zero is
            foreground); not modified.
        *stroke_groups: one or more sequences of strokes, applied one after another (e.g. the
            strokes of the add canvas, then those of the erase canvas).
        display_size: the canvas ``(width, height)`` in display pixels.
        region: the frame rectangle the canvas shows (see :func:`rasterize`).

    Returns:
        A new bool ``(H, W)`` mask.

    Raises:
        MaskError: ``base`` is not a non-empty 2-D array.
        ValueError: ``display_size`` is not two positive numbers.
    """
    mask = _as_mask(base, "base mask")
    to_frame, width_scale = _mapper(display_size, mask.shape, region)
    scratch = np.zeros_like(mask)
    run_mode: str | None = None

    def flush() -> None:
        if run_mode == "add":
            mask[scratch] = True
        elif run_mode == "erase":
            mask[scratch] = False
        scratch[:] = False

    # Consecutive strokes of one mode commute, so each run is drawn once and applied once.
    for group in stroke_groups:
        for stroke in group:
            if stroke.mode != run_mode:
                flush()
                run_mode = stroke.mode
            _draw(scratch, stroke, to_frame, width_scale)
    flush()
    return mask


# --------------------------------------------------------------------------------------------
# Clean-up
# --------------------------------------------------------------------------------------------


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background enclosed by the mask (background regions not touching the frame's edge).

    Background is 4-connected, so a gap that touches only diagonally still encloses a hole.

    Returns:
        A new bool ``(H, W)`` mask.

    Raises:
        MaskError: ``mask`` is not a non-empty 2-D array.
    """
    return ndimage.binary_fill_holes(_as_mask(mask))


def keep_largest_region(mask: np.ndarray) -> np.ndarray:
    """Keep only the largest 8-connected foreground region (the first one in raster order on ties).

    Returns:
        A new bool ``(H, W)`` mask; all ``False`` when the input is empty.

    Raises:
        MaskError: ``mask`` is not a non-empty 2-D array.
    """
    binary = _as_mask(mask)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return np.zeros_like(binary)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def smooth(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Smooth a mask's outline: Gaussian blur (sigma ``radius_px``) thresholded at one half.

    Thresholding a blurred mask at 0.5 moves a straight edge by nothing and a curved one by about
    ``radius_px**2 / (2 * curvature_radius)``, so the area of a gland-sized mask changes by well
    under a few percent, unlike an opening or closing, while jagged strokes and specks smaller than
    the radius go away. The frame's edge is replicated, so a mask touching it is not eaten there.

    Args:
        mask: ``(H, W)`` mask; not modified.
        radius_px: smoothing radius in frame pixels; ``0`` returns a copy.

    Returns:
        A new bool ``(H, W)`` mask.

    Raises:
        MaskError: ``mask`` is not a non-empty 2-D array.
        ValueError: ``radius_px`` is negative or not finite.
    """
    binary = _as_mask(mask)
    radius = float(radius_px)
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"radius_px must be a finite number >= 0, got {radius_px!r}.")
    if radius == 0 or not binary.any():
        return binary
    size = 2 * math.ceil(3 * radius) + 1
    blurred = cv2.GaussianBlur(
        binary.astype(np.float32), (size, size), radius, borderType=cv2.BORDER_REPLICATE
    )
    return blurred >= 0.5


# --------------------------------------------------------------------------------------------
# Undo history
# --------------------------------------------------------------------------------------------


def _pack(mask: np.ndarray) -> tuple[tuple[int, int], bytes]:
    return (int(mask.shape[0]), int(mask.shape[1])), zlib.compress(np.packbits(mask).tobytes(), 6)


def _unpack(snapshot: tuple[tuple[int, int], bytes]) -> np.ndarray:
    shape, data = snapshot
    bits = np.unpackbits(np.frombuffer(zlib.decompress(data), dtype=np.uint8))
    return bits[: shape[0] * shape[1]].reshape(shape).astype(bool)


class EditHistory:
    """Undo/redo stack of one image's mask, small enough to live in session state.

    Each mask is kept as ``zlib(np.packbits(mask))``: one bit per pixel before compression, and a
    gland mask (a few smooth blobs) compresses to a few kilobytes, so 50 steps of a 1280x872 frame
    stay well under a megabyte. The stacks are tuples, replaced (never mutated in place) on each
    step. ``undo``/``redo`` with nothing to undo/redo return the current mask unchanged rather
    than raise: in Streamlit a stale button click can arrive after the stack changed.

    Args:
        initial: the mask the history starts from.
        max_depth: how many undo steps are kept; the oldest are dropped.

    Raises:
        MaskError: ``initial`` is not a non-empty 2-D array.
        ValueError: ``max_depth`` is smaller than 1.
    """

    def __init__(self, initial: np.ndarray, *, max_depth: int = DEFAULT_HISTORY_DEPTH) -> None:
        if int(max_depth) < 1:
            raise ValueError(f"max_depth must be at least 1, got {max_depth!r}.")
        self._max_depth = int(max_depth)
        self._past: tuple[tuple[tuple[int, int], bytes], ...] = ()
        self._future: tuple[tuple[tuple[int, int], bytes], ...] = ()
        self._current = _pack(_as_mask(initial))

    @property
    def current(self) -> np.ndarray:
        """The current mask, as a new bool ``(H, W)`` array."""
        return _unpack(self._current)

    @property
    def shape(self) -> tuple[int, int]:
        """The ``(H, W)`` of the masks in the history."""
        return self._current[0]

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` would go back a step."""
        return bool(self._past)

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` would go forward a step."""
        return bool(self._future)

    @property
    def max_depth(self) -> int:
        """The most undo steps kept."""
        return self._max_depth

    @property
    def undo_depth(self) -> int:
        """How many undo steps are available."""
        return len(self._past)

    @property
    def nbytes(self) -> int:
        """Compressed bytes held by the history (for keeping an eye on session state)."""
        return sum(len(s[1]) for s in (*self._past, self._current, *self._future))

    def push(self, mask: np.ndarray) -> bool:
        """Record ``mask`` as the new current state; the redo stack is cleared.

        Returns:
            ``True`` when a step was recorded, ``False`` when ``mask`` equals the current mask
            (a rerun pushing the same result twice leaves a single undo step).

        Raises:
            MaskError: ``mask`` is not 2-D or its shape differs from the history's.
        """
        binary = _as_mask(mask)
        if binary.shape != self.shape:
            raise MaskError(
                f"This mask is {binary.shape[1]}x{binary.shape[0]} but the image being edited is "
                f"{self.shape[1]}x{self.shape[0]}; reset the history when changing images."
            )
        snapshot = _pack(binary)
        if snapshot == self._current:
            return False
        self._past = (*self._past, self._current)[-self._max_depth :]
        self._current = snapshot
        self._future = ()
        return True

    def undo(self) -> np.ndarray:
        """Step back and return the (new) current mask; unchanged when there is nothing to undo."""
        if self._past:
            self._future = (self._current, *self._future)
            self._current = self._past[-1]
            self._past = self._past[:-1]
        return self.current

    def redo(self) -> np.ndarray:
        """Step forward and return the (new) current mask; unchanged when there is nothing to redo."""
        if self._future:
            self._past = (*self._past, self._current)[-self._max_depth :]
            self._current = self._future[0]
            self._future = self._future[1:]
        return self.current

    def reset(self, to: np.ndarray) -> None:
        """Forget every step and start again from ``to`` (e.g. another image or a saved version).

        Raises:
            MaskError: ``to`` is not a non-empty 2-D array.
        """
        self._current = _pack(_as_mask(to))
        self._past = ()
        self._future = ()
