"""Canvas strokes: the Fabric objects the Annotate canvas reports, read as :class:`Stroke` values.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MODES = ("add", "erase")
KINDS = ("freedraw", "polygon", "rect", "circle")
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
