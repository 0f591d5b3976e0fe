"""Doppler signal over a synthetic greyscale frame, and the coloured marks scanners draw.

* :func:`add_doppler` paints vessels in a power-Doppler (dark red - orange - yellow) or a
  colour-flow (red towards, blue away) map over a grey frame: spots and short branching
  segments inside the gland and a few near it, as many as an OMERACT Doppler grade asks for
  (1 focal signals; 2 diffuse over less than half the gland; 3 over more than half). The truth
  is exact: the painted pixels, and their share of the gland mask.
* :func:`add_colour_marks` draws what a colour screenshot of a *greyscale* frame may hold in
  colour: calipers, a dotted outline, text, a marker, a logo and a colour bar outside the field
  of view. None of it is Doppler signal; the Doppler benchmark checks none is taken for it.

Both are pure functions of their arguments (all randomness from the ``rng`` given).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DOPPLER_MODES = ("power", "colour")
# Power Doppler map: weak flow dark red, strong flow yellow (RGB stops at t = 0, 0.5, 1).
_POWER_STOPS = np.array([[150, 0, 0], [235, 70, 0], [255, 225, 60]], dtype=float)
_TOWARDS_STOPS = np.array([[140, 0, 0], [200, 20, 10], [255, 120, 60]], dtype=float)
_AWAY_STOPS = np.array([[0, 30, 150], [10, 90, 220], [70, 170, 255]], dtype=float)
# Vessels per grade: (spots, segments) ranges, and the share of the gland's width they spread
# over (grade 2: under half the gland, grade 3: most of it).
_VESSELS = {
    1: ((1, 3), (0, 1), (0.15, 0.35)),
    2: ((2, 5), (3, 6), (0.30, 0.48)),
    3: ((4, 9), (8, 14), (0.70, 1.00)),
}
_NEAR = (1, 3)  # vessels just outside the gland (not part of its vascular fraction)


@dataclass(frozen=True, eq=False)
class DopplerFrame:
    """A grey frame with Doppler signal painted over it.

    Attributes:
        rgb: (H, W, 3) uint8 RGB screenshot: the grey frame, coloured where there is flow.
        signal: (H, W) bool, True where colour was painted (the truth).
        grade: the OMERACT Doppler grade 1-3 the vessels were drawn for.
        mode: ``"power"`` or ``"colour"``.
    """

    rgb: np.ndarray
    signal: np.ndarray
    grade: int
    mode: str

    def vascular_fraction(self, mask: np.ndarray) -> float:
        """The painted share of a gland mask, 0-1 (0 for an empty mask)."""
        area = int(np.count_nonzero(mask))
        return float(np.count_nonzero(self.signal & mask)) / area if area else 0.0


def _colour_map(t: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """(N,) values in [0, 1] to (N, 3) uint8 colours, piecewise linear through three stops."""
    t = np.clip(t, 0.0, 1.0)[:, None]
    low = stops[0] + (stops[1] - stops[0]) * np.clip(t * 2, 0, 1)
    high = stops[1] + (stops[2] - stops[1]) * np.clip(t * 2 - 1, 0, 1)
    return np.rint(np.where(t < 0.5, low, high)).astype(np.uint8)


def _vessel_mask(
    rng: np.random.Generator,
    shape: tuple[int, int],
    points: np.ndarray,
    n_spots: int,
    n_segments: int,
    scale: float,
) -> np.ndarray:
    """Spots and short bent segments centred on points drawn from ``points`` ((N, 2) x, y)."""
    out = np.zeros(shape, np.uint8)
    if len(points) == 0:
        return out.astype(bool)
    for _ in range(n_spots):
        x, y = points[int(rng.integers(len(points)))]
        axes = (
            max(4, round(rng.uniform(4.5, 9) * scale)),
            max(4, round(rng.uniform(4, 7) * scale)),
        )
        cv2.ellipse(out, (int(x), int(y)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    for _ in range(n_segments):
        x, y = points[int(rng.integers(len(points)))].astype(float)
        angle = rng.uniform(0, np.pi)
        thickness = max(7, round(rng.uniform(7, 12) * scale))
        path = [(x, y)]
        for _ in range(int(rng.integers(2, 5))):
            angle += rng.normal(0, 0.5)
            step = rng.uniform(10, 22) * scale
            x, y = x + step * np.cos(angle), y + step * np.sin(angle)
            path.append((x, y))
        cv2.polylines(out, [np.rint(path).astype(np.int32)], False, 1, thickness, cv2.LINE_8)
    return out.astype(bool)


def add_doppler(
    grey: np.ndarray,
    mask: np.ndarray,
    fov: tuple[int, int, int, int],
    rng: np.random.Generator,
    *,
    grade: int,
    mode: str = "power",
) -> DopplerFrame:
    """Paint Doppler signal for an OMERACT Doppler grade over a grey frame.

    Args:
        grey: (H, W) uint8 grey frame.
        mask: (H, W) bool gland mask (inside ``fov``).
        fov: the field of view ``(x, y, width, height)``: no signal is painted outside it.
        rng: the random stream.
        grade: OMERACT Doppler grade 1-3 (a grade-0 gland has no signal: it is not painted).
        mode: ``"power"`` or ``"colour"`` (colour flow, red and blue).

    Returns:
        A :class:`DopplerFrame`.

    Raises:
        ValueError: a grade outside 1-3, an unknown mode, or shapes that differ.
    """
    if grade not in _VESSELS:
        raise ValueError(f"a painted Doppler grade is 1, 2 or 3, not {grade!r}")
    if mode not in DOPPLER_MODES:
        raise ValueError(f"unknown Doppler mode {mode!r}; choose from {', '.join(DOPPLER_MODES)}")
    if grey.shape != mask.shape:
        raise ValueError(f"frame {grey.shape} and mask {mask.shape} differ in shape")
    h, w = grey.shape
    scale = max(0.5, w / 800.0)  # vessel sizes follow the frame's width (800 px native)
    (s_lo, s_hi), (g_lo, g_hi), (f_lo, f_hi) = _VESSELS[grade]
    ys, xs = np.nonzero(mask)
    # The vessels spread over a band of the gland's width, eroded so they stay mostly inside.
    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    iy, ix = np.nonzero(inner) if inner.any() else (ys, xs)
    if ix.size:
        left, right = int(ix.min()), int(ix.max())
        share = rng.uniform(f_lo, f_hi)
        width = max(1, round((right - left) * share))
        start = left + int(rng.integers(0, max(1, right - left - width + 1)))
        band = (ix >= start) & (ix <= start + width)
        points = np.stack([ix[band], iy[band]], axis=1)
    else:
        points = np.zeros((0, 2), int)
    vessels = _vessel_mask(
        rng,
        (h, w),
        points,
        int(rng.integers(s_lo, s_hi + 1)),
        int(rng.integers(g_lo, g_hi + 1)),
        scale,
    )
    # A few vessels just outside the gland, in the tissue around it.
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool) & ~mask
    ry, rx = np.nonzero(ring)
    near = _vessel_mask(
        rng, (h, w), np.stack([rx, ry], axis=1), int(rng.integers(*_NEAR)), 0, scale
    )
    signal = vessels | near
    fx, fy, fw, fh = fov
    inside = np.zeros((h, w), bool)
    inside[fy : fy + fh, fx : fx + fw] = True
    signal &= inside
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if signal.any():
        # Flow strongest at a vessel's centre line: the distance to its edge sets the colour.
        depth = cv2.distanceTransform(signal.astype(np.uint8), cv2.DIST_L2, 3)
        t = np.clip(depth[signal] / (4.0 * scale), 0, 1) * rng.uniform(0.7, 1.0)
        if mode == "power":
            rgb[signal] = _colour_map(t, _POWER_STOPS)
        else:
            n, labels = cv2.connectedComponents(signal.astype(np.uint8), connectivity=8)
            away = np.asarray(rng.random(n)) < 0.5  # each vessel flows one way
            towards_px = ~away[labels[signal]]
            colours = np.where(
                towards_px[:, None], _colour_map(t, _TOWARDS_STOPS), _colour_map(t, _AWAY_STOPS)
            )
            rgb[signal] = colours
    if fx > 30:  # the scanner's colour bar, in the UI beside the field of view (not signal)
        _colour_bar(rgb, fov, _POWER_STOPS if mode == "power" else _AWAY_STOPS)
    return DopplerFrame(rgb, signal, int(grade), mode)


def _colour_bar(rgb: np.ndarray, fov: tuple[int, int, int, int], stops: np.ndarray) -> None:
    """A colour map's bar left of the field of view (in place)."""
    fx, fy, _, fh = fov
    s = max(0.5, rgb.shape[0] / 555.0)
    bar_x, bar_y = max(2, fx - round(16 * s)), fy + fh // 4
    ramp = _colour_map(np.linspace(1, 0, fh // 2), stops)
    rgb[bar_y : bar_y + fh // 2, bar_x : bar_x + max(3, round(6 * s))] = ramp[:, None, :]


# Colours scanners draw their marks in (RGB): yellow, green, cyan, orange, white, magenta.
MARK_COLOURS: tuple[tuple[int, int, int], ...] = ((255, 230, 0), (0, 220, 80), (0, 210, 230), (255, 150, 0), (235, 235, 235),
                (230, 60, 200))  # fmt: skip


def add_colour_marks(
    grey: np.ndarray,
    mask: np.ndarray,
    fov: tuple[int, int, int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """A colour screenshot of a greyscale frame: coloured calipers, a dotted outline of the
    gland, text and a marker inside the field of view, a logo and a colour bar outside it.

    Returns:
        (H, W, 3) uint8 RGB; none of what is drawn is Doppler signal.
    """
    h, w = grey.shape
    rgb = np.repeat(grey[..., None], 3, axis=2).copy()
    fx, fy, fw, fh = fov
    s = max(0.5, h / 555.0)

    def colour() -> tuple[int, int, int]:
        return MARK_COLOURS[int(rng.integers(len(MARK_COLOURS)))]

    # Calipers: two crosses and the dotted line between them, across the gland.
    ys, xs = np.nonzero(mask)
    if xs.size:
        y = int(np.median(ys))
        a, b = (int(xs.min()), y), (int(xs.max()), y + int(rng.integers(-10, 11)))
        c = colour()
        for px, py in (a, b):
            arm = max(4, round(6 * s))
            cv2.line(rgb, (px - arm, py), (px + arm, py), c, 1)
            cv2.line(rgb, (px, py - arm), (px, py + arm), c, 1)
        n = max(2, int(np.hypot(b[0] - a[0], b[1] - a[1]) // 6))
        for i in range(n):
            q = (round(a[0] + (b[0] - a[0]) * i / n), round(a[1] + (b[1] - a[1]) * i / n))
            cv2.circle(rgb, q, 1, c, -1)
        # A dotted (or dashed) outline of the gland, as a measured area is drawn.
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        c = colour()
        dashed = bool(rng.random() < 0.5)
        for contour in contours:
            pts = contour[:, 0, :]
            for i in range(0, len(pts), 8):
                if dashed:
                    end = pts[min(i + 4, len(pts) - 1)]
                    cv2.line(rgb, tuple(int(v) for v in pts[i]), tuple(int(v) for v in end), c, 2)
                else:
                    cv2.circle(rgb, tuple(int(v) for v in pts[i]), 1, c, -1)
    # Text inside the field of view (a measurement, a body mark's label) and an arrow marker.
    font = cv2.FONT_HERSHEY_SIMPLEX
    for _ in range(int(rng.integers(1, 4))):
        text = ("D1 21.4 mm", "A 2.31 cm2", "PAROTID R", "SMG LT", "Dist 1.82cm", "TRANS")[
            int(rng.integers(6))
        ]
        org = (
            fx + int(rng.integers(5, max(6, fw // 2))),
            fy + int(rng.integers(15, max(16, fh - 5))),
        )
        cv2.putText(rgb, text, org, font, 0.45 * s, colour(), int(rng.integers(1, 3)), cv2.LINE_AA)
    tip = (
        fx + int(rng.integers(10, max(11, fw - 10))),
        fy + int(rng.integers(10, max(11, fh - 10))),
    )
    cv2.arrowedLine(
        rgb, (tip[0] - round(20 * s), tip[1] - round(12 * s)), tip, colour(), 2, tipLength=0.3
    )
    # Outside the field of view: a coloured logo and a colour bar in the UI.
    if fx > 30:
        logo = (4, 4, min(fx - 4, round(26 * s)), round(14 * s))
        cv2.rectangle(rgb, logo[:2], (logo[0] + logo[2], logo[1] + logo[3]), colour(), -1)
        _colour_bar(rgb, fov, _POWER_STOPS)
    return rgb
