"""Mask editing behind the Annotate page's drawing canvas.

The page draws on ``streamlit-drawable-canvas`` 0.13, whose front end is Fabric.js 7.4. The canvas
shows the frame (or a zoomed region of it) scaled to a display size, and reports what was drawn as
Fabric objects in *display* coordinates. This module turns those objects into :class:`Stroke`
values, draws them at the frame's resolution, composes them onto a binary mask, cleans masks up and
keeps an undo history. It never imports streamlit.

How Fabric 7 places an object (read from the component's bundled Fabric 7.4, and what
:func:`strokes_from_canvas` reproduces)::

    display_point = centre + R(angle) . S(scaleX, scaleY, flipX, flipY) . K(skewX) . K(skewY)
                             . (local_point - path_offset)

- ``centre`` is ``(left, top)`` moved from the object's origin (``originX``/``originY``; Fabric 7's
  default is ``"center"``, the component's rect and circle tools use ``"left"``) by the object's
  transformed size, stroke included, then rotated about ``(left, top)``.
- Free drawing (``"Path"``, made by the pencil brush as ``M``, ``Q`` ..., ``L`` commands) and polygons
  (``"Polygon"`` with ``points``) keep *absolute* canvas coordinates in their geometry, and
  ``path_offset`` is the centre of that geometry's bounding box (for paths, Fabric's own curve
  bounds, which treat a ``Q`` segment as the cubic ``P0, C, C, P2``: reproduced exactly, because an
  unmoved object has ``centre == path_offset`` and any mismatch would shift the stroke). So an
  object that was never moved or scaled maps to itself; one moved in the toolbar's edit mode
  follows ``left``/``top``/``scaleX``/``angle``. ``pathOffset`` is not serialised; it is recomputed.
- ``"Rect"``, ``"Circle"``, ``"Ellipse"`` and ``"Line"`` draw around their centre: local corners are
  ``+-width/2, +-height/2``, the circle has radius ``radius``, the line's serialised ``x1..y2`` are
  already relative to its centre.
- Component 0.13's polygon tool emits ``"Polygon"``; older canvases (0.9) emitted a ``"path"`` with
  ``M``/``L``/``z`` commands: a path that contains a ``Z`` command is read as a filled polygon.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from sgus_core.errors import MaskError

MODES = ("add", "erase")
KINDS = ("freedraw", "polygon", "rect", "circle")
DEFAULT_HISTORY_DEPTH = 50
CIRCLE_VERTICES = 128
MAX_COORDINATE = 1e7
# Fabric's origin keywords as fractions of the object's size (``resolveOrigin``).
_ORIGINS = {"left": -0.5, "top": -0.5, "center": 0.0, "right": 0.5, "bottom": 0.5}
# Transparent or absent stroke colours: the shape has no outline band.
_NO_PAINT = {"", "none", "transparent", "rgba(0,0,0,0)"}


@dataclass(frozen=True)
class Stroke:
    """One drawn object, in the canvas's display coordinates.

    Attributes:
        mode: ``"add"`` (paints the mask) or ``"erase"`` (removes pixels).
        kind: ``"freedraw"`` (an open polyline stroked with ``width``), or a closed, filled shape:
            ``"polygon"``, ``"rect"`` (its 4 corners) or ``"circle"`` (an ellipse sampled as a
            polygon of :data:`CIRCLE_VERTICES` vertices).
        points: ``(N, 2)`` float64, read-only, ``(x, y)`` display coordinates with curves
            flattened and the object's own transform applied.
        width: stroke width in display pixels; for closed shapes the outline band (0 for none).
    """

    mode: str
    kind: str
    points: np.ndarray
    width: float

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Stroke mode must be one of {MODES}, got {self.mode!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"Stroke kind must be one of {KINDS}, got {self.kind!r}.")
        points = np.array(self.points, dtype=np.float64).reshape(-1, 2)
        # The bound keeps absurd canvas numbers from overflowing pixel arithmetic later.
        if points.shape[0] == 0 or not np.all(np.abs(points) <= MAX_COORDINATE):
            raise ValueError(
                f"A stroke needs at least one point, all finite and within +-{MAX_COORDINATE:g}."
            )
        points.flags.writeable = False
        object.__setattr__(self, "points", points)
        width = float(self.width)
        if not math.isfinite(width) or width < 0:
            raise ValueError(f"Stroke width must be a finite number >= 0, got {self.width!r}.")
        object.__setattr__(self, "width", width)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stroke):
            return NotImplemented
        return (
            (self.mode, self.kind, self.width) == (other.mode, other.kind, other.width)
            and self.points.shape == other.points.shape
            and bool(np.array_equal(self.points, other.points))
        )

    def __hash__(self) -> int:
        return hash((self.mode, self.kind, self.width, self.points.tobytes()))


# --------------------------------------------------------------------------------------------
# Fabric JSON -> strokes
# --------------------------------------------------------------------------------------------


class _Malformed(Exception):
    """One canvas object could not be read; it is skipped."""


def _num(obj: Mapping[str, Any], key: str, default: float) -> float:
    value = obj.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed(key)
    value = float(value)
    if not math.isfinite(value):
        raise _Malformed(key)
    return value


def _origin(value: Any) -> float:
    if isinstance(value, str):
        if value not in _ORIGINS:
            raise _Malformed("origin")
        return _ORIGINS[value]
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value) - 0.5
    if value is None:
        return 0.0  # Fabric 7's default origin is the centre.
    raise _Malformed("origin")


def _dimensions_matrix(obj: Mapping[str, Any]) -> np.ndarray:
    """Fabric's ``calcDimensionsMatrix``: scale (with flips) . skewX . skewY, as a 2x2 matrix."""
    sx = _num(obj, "scaleX", 1.0) * (-1.0 if obj.get("flipX") is True else 1.0)
    sy = _num(obj, "scaleY", 1.0) * (-1.0 if obj.get("flipY") is True else 1.0)
    matrix = np.array([[sx, 0.0], [0.0, sy]])
    skew_x, skew_y = _num(obj, "skewX", 0.0), _num(obj, "skewY", 0.0)
    if skew_x:
        matrix = matrix @ np.array([[1.0, math.tan(math.radians(skew_x))], [0.0, 1.0]])
    if skew_y:
        matrix = matrix @ np.array([[1.0, 0.0], [math.tan(math.radians(skew_y)), 1.0]])
    return matrix


def _object_transform(
    obj: Mapping[str, Any], size: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The object's ``(centre, 2x2 matrix)``: Fabric's ``calcOwnMatrix`` split in two.

    ``size`` is the object's untransformed ``(width, height)``, computed from its geometry as
    Fabric does on loading (the serialised ``width``/``height`` of a path can be stale).
    """
    dims = _dimensions_matrix(obj)
    angle = math.radians(_num(obj, "angle", 0.0))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    anchor = np.array([_num(obj, "left", 0.0), _num(obj, "top", 0.0)])
    off_x, off_y = _origin(obj.get("originX")), _origin(obj.get("originY"))
    centre = anchor
    if off_x or off_y:
        # _getTransformedDimensions: the size of the scaled/skewed box, stroke included.
        stroke = _num(obj, "strokeWidth", 1.0)
        uniform = obj.get("strokeUniform") is True
        pre, post = (0.0, stroke) if uniform else (stroke, 0.0)
        w, h = size[0] + pre, size[1] + pre
        corners = np.array([[-w, -h], [w, -h], [-w, h], [w, h]]) / 2.0 @ dims.T
        size = corners.max(axis=0) - corners.min(axis=0) + post
        centre = anchor + rotation @ (-np.array([off_x, off_y]) * size)
    return centre, rotation @ dims


def _stroke_width(obj: Mapping[str, Any], matrix: np.ndarray) -> float:
    width = max(_num(obj, "strokeWidth", 1.0), 0.0)
    if obj.get("strokeUniform") is True:
        return width
    return width * math.sqrt(abs(float(np.linalg.det(matrix))))


def _has_stroke(obj: Mapping[str, Any]) -> bool:
    colour = obj.get("stroke")
    if colour is None:
        return False
    if isinstance(colour, str):
        return colour.replace(" ", "").lower() not in _NO_PAINT
    return True  # a gradient or pattern paints


def _cubic_extrema(p0: float, p1: float, p2: float, p3: float) -> list[float]:
    """Parameters in (0, 1) where one coordinate of a cubic Bezier has a turning point."""
    a = -3 * p0 + 9 * p1 - 9 * p2 + 3 * p3
    b = 6 * p0 - 12 * p1 + 6 * p2
    c = 3 * p1 - 3 * p0
    if abs(a) < 1e-12:
        return [] if abs(b) < 1e-12 else [t for t in (-c / b,) if 0 < t < 1]
    disc = b * b - 4 * a * c
    if disc < 0:
        return []
    root = math.sqrt(disc)
    return [t for t in ((-b + root) / (2 * a), (-b - root) / (2 * a)) if 0 < t < 1]


def _cubic_point(p: Sequence[tuple[float, float]], t: float) -> tuple[float, float]:
    u = 1.0 - t
    a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
    return (
        a * p[0][0] + b * p[1][0] + c * p[2][0] + d * p[3][0],
        a * p[0][1] + b * p[1][1] + c * p[2][1] + d * p[3][1],
    )


def _cubic_bounds_points(p: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Fabric's ``getBoundsOfCurve``: end points and turning points of a cubic (4 points)."""
    ts = [t for axis in (0, 1) for t in _cubic_extrema(*(q[axis] for q in p))]
    return [p[0], p[3], *(_cubic_point(p, t) for t in ts)]


def _flatten_cubic(p: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points along a cubic, one display pixel apart at most (the start point excluded)."""
    length = sum(math.dist(p[i], p[i + 1]) for i in range(3))
    n = int(min(max(math.ceil(length), 1), 512))
    return [_cubic_point(p, i / n) for i in range(1, n)] + [p[3]]


_ARITY = {"M": 2, "L": 2, "Q": 4, "C": 6, "Z": 0}


def _path_geometry(path: Any) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """Parse Fabric path commands into polylines, their Fabric bounds points and a closed flag.

    Absolute ``M L Q C Z`` (what Fabric serialises) and their relative lower-case forms are read;
    anything else makes the object malformed. Plain floats, not numpy, per command: a traced
    outline has about a thousand commands and per-command arrays cost ten times more.
    """
    if not isinstance(path, list) or not path:
        raise _Malformed("path")
    polylines: list[list[tuple[float, float]]] = []
    bounds: list[tuple[float, float]] = []
    current = start = (0.0, 0.0)
    closed = False
    for command in path:
        if not isinstance(command, list | tuple) or not command or not isinstance(command[0], str):
            raise _Malformed("command")
        letter, args = command[0], command[1:]
        upper = letter.upper()
        if _ARITY.get(upper) != len(args):
            raise _Malformed(f"command {letter!r}")
        for a in args:
            if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a):
                raise _Malformed("command arguments")
        dx, dy = current if letter.islower() else (0.0, 0.0)
        pts = [(args[i] + dx, args[i + 1] + dy) for i in range(0, len(args), 2)]
        if upper == "M":
            current = start = pts[0]
            polylines.append([current])
        elif upper == "Z":
            closed = True
            if polylines:
                polylines[-1].append(start)
            current = start
        else:
            if not polylines:
                polylines.append([current])
            end = pts[-1]
            if upper == "L":
                bounds += [current, end]
                polylines[-1].append(end)
            elif upper == "Q":
                # Fabric bounds a Q segment as the cubic (P0, C, C, P2); drawn, it is the quadratic,
                # whose exact cubic form has its control points two thirds of the way to C.
                (cx, cy), (x0, y0) = pts[0], current
                bounds += _cubic_bounds_points((current, pts[0], pts[0], end))
                c1 = (x0 / 3 + 2 * cx / 3, y0 / 3 + 2 * cy / 3)
                c2 = (2 * cx / 3 + end[0] / 3, 2 * cy / 3 + end[1] / 3)
                polylines[-1] += _flatten_cubic((current, c1, c2, end))
            else:
                cubic = (current, pts[0], pts[1], end)
                bounds += _cubic_bounds_points(cubic)
                polylines[-1] += _flatten_cubic(cubic)
            current = end
    lines = [np.array(p, dtype=np.float64) for p in polylines if p]
    if not lines:
        raise _Malformed("empty path")
    return lines, np.array(bounds, dtype=np.float64).reshape(-1, 2), closed


def _bbox_centre(points: np.ndarray) -> np.ndarray:
    if points.size == 0:
        return np.zeros(2)  # Fabric's bounding box of no points is the origin.
    return (points.min(axis=0) + points.max(axis=0)) / 2.0


def _points_list(value: Any) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise _Malformed("points")
    out = []
    for item in value:
        if not isinstance(item, Mapping):
            raise _Malformed("points")
        out.append([_num(item, "x", math.nan), _num(item, "y", math.nan)])
    return np.array(out, dtype=np.float64)


def _bbox_size(points: np.ndarray) -> tuple[float, float]:
    if points.size == 0:
        return 0.0, 0.0
    extent = points.max(axis=0) - points.min(axis=0)
    return float(extent[0]), float(extent[1])


def _parse_object(obj: Any, mode: str) -> list[Stroke]:
    if not isinstance(obj, Mapping) or obj.get("visible") is False:
        return []
    kind_name = str(obj.get("type", "")).lower()
    if obj.get("globalCompositeOperation") == "destination-out":
        # Fabric's eraser paints with destination-out: it removes, whatever the mode.
        mode = "erase"
    has_outline = _has_stroke(obj)

    def place(local: np.ndarray, offset: np.ndarray, size: tuple[float, float]):
        centre, matrix = _object_transform(obj, size)
        width = _stroke_width(obj, matrix)
        return (local - offset) @ matrix.T + centre, width, width if has_outline else 0.0

    if kind_name == "path":
        lines, bounds, closed = _path_geometry(obj.get("path"))
        offset, size = _bbox_centre(bounds), _bbox_size(bounds)
        strokes = []
        for line in lines:
            points, width, outline = place(line, offset, size)
            if closed:
                strokes.append(Stroke(mode, "polygon", points, outline))
            else:
                strokes.append(Stroke(mode, "freedraw", points, width))
        return strokes
    if kind_name in ("polygon", "polyline"):
        raw = _points_list(obj.get("points"))
        points, width, outline = place(raw, _bbox_centre(raw), _bbox_size(raw))
        if kind_name == "polyline":
            return [Stroke(mode, "freedraw", points, width)]
        return [Stroke(mode, "polygon", points, outline)]
    if kind_name == "rect":
        w, h = _num(obj, "width", math.nan), _num(obj, "height", math.nan)
        if not (w >= 0 and h >= 0):
            raise _Malformed("size")
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2.0
        points, _, outline = place(corners, np.zeros(2), (w, h))
        return [Stroke(mode, "rect", points, outline)]
    if kind_name in ("circle", "ellipse"):
        if kind_name == "circle":
            rx = ry = _num(obj, "radius", math.nan)
        else:
            rx, ry = _num(obj, "rx", math.nan), _num(obj, "ry", math.nan)
        if not (rx >= 0 and ry >= 0):
            raise _Malformed("radius")
        theta = np.linspace(0.0, 2 * math.pi, CIRCLE_VERTICES, endpoint=False)
        ring = np.column_stack([rx * np.cos(theta), ry * np.sin(theta)])
        points, _, outline = place(ring, np.zeros(2), (2 * rx, 2 * ry))
        return [Stroke(mode, "circle", points, outline)]
    if kind_name == "line":
        # Fabric serialises x1..y2 relative to the line's centre (calcLinePoints).
        ends = np.array(
            [
                [_num(obj, "x1", math.nan), _num(obj, "y1", math.nan)],
                [_num(obj, "x2", math.nan), _num(obj, "y2", math.nan)],
            ]
        )
        points, width, _ = place(ends, np.zeros(2), _bbox_size(ends))
        return [Stroke(mode, "freedraw", points, width)]
    return []  # text, images, labelled boxes, groups...: not mask strokes


def strokes_from_canvas(
    json_data: Any, *, mode: str, erase_stroke_color: str | None = None
) -> list[Stroke]:
    """Read the canvas's Fabric objects as strokes, in drawing order.

    Args:
        json_data: ``st_canvas(...).json_data`` (``{"objects": [...]}``); ``None`` is allowed.
        mode: ``"add"`` or ``"erase"``: the mode of every stroke read.
        erase_stroke_color: when given, objects whose ``stroke`` colour equals it (case and spaces
            ignored) are read as ``"erase"`` strokes whatever ``mode`` says, so one canvas can hold
            both modes in their true drawing order. Objects painted with Fabric's eraser
            (``globalCompositeOperation == "destination-out"``) are always erase strokes.

    Returns:
        The strokes, in the canvas's object order (Fabric's drawing order). Unknown object types
        (text, images, labelled boxes) are ignored; an object that cannot be read (missing or
        non-finite numbers, bad path commands) is skipped; input that is not a canvas JSON at all
        gives ``[]``. Never raises on bad canvas data.

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES` (a programming error, not canvas data).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if not isinstance(json_data, Mapping):
        return []
    objects = json_data.get("objects")
    if not isinstance(objects, list):
        return []
    erase_key = None
    if erase_stroke_color is not None:
        erase_key = erase_stroke_color.replace(" ", "").lower()
    strokes: list[Stroke] = []
    for obj in objects:
        obj_mode = mode
        if erase_key is not None and isinstance(obj, Mapping):
            colour = obj.get("stroke")
            if isinstance(colour, str) and colour.replace(" ", "").lower() == erase_key:
                obj_mode = "erase"
        try:
            strokes.extend(_parse_object(obj, obj_mode))
        except (_Malformed, ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError):
            continue
    return strokes


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
    return (lambda pts: view.to_frame(pts, (dw, dh))), width_scale


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
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), 8)
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
