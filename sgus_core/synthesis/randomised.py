"""Domain-randomised SGUS frames: random anatomy first, then a random appearance per image.

After SynthSeg (Billot et al., Medical Image Analysis 2023): a segmentation network trained on
frames whose contrast, texture, resolution and framing are drawn at random for every image can
only rely on what stays constant, the anatomy's shape, layering and context, and so generalises
to scanners it never saw. :func:`render` makes one frame in two steps:

* **Step A, a label map** of the scanner's field of view (FOV), integer tissue classes: skin,
  dermis, subcutaneous fat with bright septa, a superficial fascia, the gland (an implicit,
  lobulated, flat lens, sometimes tilted, sometimes cut by the FOV's side), its often faint and
  partial capsule, vessels, hypoechoic foci and fibrous bands by de Vita grade, lymph nodes with
  a bright hilum, striated muscle, deep structures and, in about half of the frames, the mandible
  as a bright curve with its acoustic shadow (which may cut the gland's deep side). Layers are
  thresholds of a warped depth coordinate, the gland a level set of a noisy implicit lens.
* **Step B, a random appearance**: a mean echo level per tissue class (the gland brighter, equal
  to or darker than its surroundings; sometimes every class at random), speckle from two
  band-limited complex noise fields mixed per class (random anisotropic grain, fine to coarse),
  a per-class speckle strength, point-spread blur, depth attenuation with a random TGC curve,
  gain, dynamic range and grey-map gamma of the log compression, a random rendering resolution,
  linear or sector (fan) geometry, optional scanner UI (margins, panels, burned-in text, depth
  scale, greyscale bar, calipers, sonographers' outlines drawn over the gland), JPEG artefacts
  and electronic noise.

The gland mask is the label map's gland, resampled with the image; nothing drawn over the frame
afterwards changes it. A frame is a pure function of ``(seed, size, devita)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sgus_core.synthesis.family import (
    SynthFrame,
    bounding_box,
    check_request,
    clean_mask,
    draw_devita,
    foci_plan,
)

FAMILY = "randomised"
_SALT = 0x52_41_4E_44  # "RAND": keeps this family's random streams apart from other families'
# OpenCV's default structuring element (what a ``None`` kernel means): a 3x3 square.
_SQUARE3 = np.ones((3, 3), np.uint8)

# Tissue classes of the label map.
(
    GEL,
    SKIN,
    DERMIS,
    FAT,
    SEPTUM,
    FASCIA,
    CONNECTIVE,
    MUSCLE,
    STRIATION,
    DEEP,
    DEEP_BLOB,
    GLAND,
    CAPSULE,
    FOCUS,
    BAND,
    VESSEL,
    WALL,
    NODE,
    HILUM,
    BONE,
    SHADOW,
) = range(21)
N_CLASSES = 21

# Echo level of each class, dB relative to the tissues around the gland: uniform (low, high).
# The gland's own level is drawn separately, relative to its neighbours (see _appearance).
LEVEL_DB: dict[int, tuple[float, float]] = {
    GEL: (-30.0, -8.0),
    SKIN: (6.0, 22.0),
    DERMIS: (-4.0, 8.0),
    FAT: (-14.0, 2.0),
    SEPTUM: (2.0, 16.0),
    FASCIA: (2.0, 15.0),
    CONNECTIVE: (-6.0, 6.0),
    MUSCLE: (-12.0, 3.0),
    STRIATION: (0.0, 12.0),
    DEEP: (-12.0, 4.0),
    DEEP_BLOB: (-16.0, 10.0),
    CAPSULE: (-2.0, 15.0),
    FOCUS: (-24.0, -7.0),  # relative to the gland
    BAND: (3.0, 13.0),  # relative to the gland
    VESSEL: (-42.0, -22.0),
    WALL: (-2.0, 10.0),
    NODE: (-20.0, -6.0),
    HILUM: (0.0, 12.0),
    BONE: (12.0, 26.0),
    SHADOW: (-45.0, -26.0),
}
# The classes whose levels are set relative to the gland's.
_GLAND_RELATIVE = (FOCUS, BAND)

# Realistic frame sizes: the real set's one size per scanner, and raw screenshots' range.
SCANNER_SIZES = ((921, 641), (781, 365), (908, 584), (606, 459))
SCREENSHOT_WIDTH = (800, 1280)

GLAND_LABELS = (
    "PAROTID GLAND RIGHT",
    "PAROTID GLAND LEFT",
    "PAROTID RT",
    "PAROTID LT",
    "SMG RIGHT",
    "SMG LEFT",
    "SUBMANDIBULAR R",
    "SUBMANDIBULAR L",
    "R PAROTID",
    "L SMG",
    "PG-R",
    "SMG-L",
)
# Invented institutions (none is a real hospital).
INSTITUTIONS = (
    "SYNTH GENERAL HOSPITAL",
    "RANDOM UNIVERSITY CLINIC",
    "NOWHERE MEDICAL CENTRE",
    "DEPT RHEUMATOLOGY - SIM",
    "FICTIONAL HOSPITAL 3",
)
PROBES = ("12L-RS 10.0MHz", "L12-5 12MHz", "ML6-15 13MHz", "L18-4", "14L5 SP", "C5-1 4.0MHz")
PARAMETERS = (
    "MI 0.9",
    "TIS 0.2",
    "Gn 54",
    "DR 60",
    "FR 27",
    "D 4.0cm",
    "G 62%",
    "FPS 31",
    "2D",
    "THI",
    "CRI",
    "P 100%",
    "Frq 12.0",
)
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX)


# ----------------------------------------------------------------------------------------------
# small random shapes


def _wiggle(rng: np.random.Generator, n: int, amp: float, knots: int) -> np.ndarray:
    """A smooth random curve of ``n`` samples (float32): ``knots`` normal values, cubic-resampled."""
    k = max(2, knots)
    values = rng.normal(0.0, amp, (1, k + 2)).astype(np.float32)
    out = cv2.resize(values, (n + 2 * (n // k + 1), 1), interpolation=cv2.INTER_CUBIC)[0]
    off = n // k + 1
    return out[off : off + n]


def _field(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """A smooth random field ``(h, w)`` float32, about unit std, with blobs about ``cell`` px."""
    gh, gw = max(2, int(h / cell) + 3), max(2, int(w / cell) + 3)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    # Bilinear: the third positional argument of cv2.resize is ``dst``, not the interpolation,
    # so the former ``cv2.INTER_CUBIC`` there was ignored; kept linear, frames stay the same.
    big = cv2.resize(
        grid,
        (int(w * gw / (gw - 2)) + 2, int(h * gh / (gh - 2)) + 2),
        interpolation=cv2.INTER_LINEAR,
    )
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0 : y0 + h, x0 : x0 + w]


def _band_noise(rng: np.random.Generator, h: int, w: int, sz: float, sx: float) -> np.ndarray:
    """Band-limited complex noise ``(h, w, 2)`` (real, imaginary), unit std per part.

    Uniform bytes on a grid of about ``sigma / 1.3`` px, Gaussian-filtered on the grid (sums of
    many uniforms: Gaussian enough) and linearly resampled to ``(h, w)``: a complex field with a
    Gaussian correlation of ``sz`` px in depth and ``sx`` px sideways, cheap at any grain.
    """
    dz, dx = max(1.0, sz / 1.3), max(1.0, sx / 1.3)
    gh, gw = int(math.ceil(h / dz)) + 1, int(math.ceil(w / dx)) + 1
    raw = np.frombuffer(rng.bytes(gh * gw * 2), np.int8).reshape(gh, gw, 2).astype(np.float32)
    sig_z, sig_x = max(0.45, sz / dz), max(0.45, sx / dx)
    grid = cv2.GaussianBlur(raw, (0, 0), sigmaX=sig_x, sigmaY=sig_z)
    if gh - 1 != h or gw - 1 != w:
        grid = cv2.resize(grid, (int(round(w * gw / (gw - 1))), int(round(h * gh / (gh - 1)))))
    field = np.ascontiguousarray(grid[:h, :w], dtype=np.float32)
    std = float(field[::5, ::5].std()) or 1.0
    field *= 1.0 / std
    return field


def _ellipse(
    img: np.ndarray, c: tuple[float, float], ax: tuple[float, float], ang: float, v: int
) -> None:
    """Draw a filled ellipse (centre, semi-axes in px, angle in degrees) of value ``v``."""
    cv2.ellipse(
        img,
        (int(round(c[0] * 4)), int(round(c[1] * 4))),
        (max(1, int(round(ax[0] * 4))), max(1, int(round(ax[1] * 4)))),
        ang,
        0,
        360,
        int(v),
        -1,
        cv2.LINE_8,
        2,
    )


def _random_line(
    rng: np.random.Generator, x0: float, z0: float, length: float, angle: float, bend: float
) -> np.ndarray:
    """Points (x, z) int32 of a gently curved line from ``(x0, z0)`` at ``angle`` (radians)."""
    n = max(3, int(length / 4))
    t = np.linspace(0.0, 1.0, n)
    da = bend * (t - 0.5) + _wiggle(rng, n, 0.08, 3)
    a = angle + da
    step = length / (n - 1)
    xs = x0 + np.concatenate([[0.0], np.cumsum(np.cos(a[:-1]) * step)])
    zs = z0 + np.concatenate([[0.0], np.cumsum(np.sin(a[:-1]) * step)])
    return np.stack([xs, zs], 1).round().astype(np.int32)


# ----------------------------------------------------------------------------------------------
# Step A: the label map


def _gland_shape(
    rng: np.random.Generator, rw: int, rh: int, area_frac: float
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A lobulated flat lens, the level set ``f < 1`` of a noisy implicit function.

    Returns:
        ``(region, (x0, y0, x1, y1))``: the gland as a bool crop of the render grid and where the
        crop lies, or None when the drawn parameters made no usable gland.
    """
    p = rng.uniform(1.4, 2.8)  # < 2: pointed tips, > 2: blunt ends
    fill = math.gamma(1 + 1 / p) ** 2 / math.gamma(1 + 2 / p) * 0.93  # of the bounding box
    box_area = min(area_frac, 0.36) * rw * rh / fill
    for _ in range(30):
        aspect = _log_uniform(rng, 3.6, 13.0)  # of the untilted, unbent lens
        gw = math.sqrt(box_area * aspect)
        gh = gw / aspect
        if 0.36 * rw <= gw <= 0.97 * rw and gh <= 0.5 * rh:
            break
    else:  # the area asked for cannot be a flat lens here: keep the width in range
        gw = float(np.clip(gw, 0.36 * rw, 0.97 * rw))
        gh = min(0.5 * rh, box_area / gw)
    top_hi = min(0.55, 0.95 - gh / rh)
    if top_hi < 0.15:
        return None
    top = rng.uniform(0.15, top_hi) * rh
    if rng.random() < 0.22:  # cut by one of the FOV's side edges
        cx = gw / 2 * rng.uniform(0.45, 0.9)
        if rng.random() < 0.5:
            cx = rw - cx
    else:
        slack = max(0.0, rw - gw) / 2
        cx = rw / 2 + rng.uniform(-1, 1) * slack * 0.9
    tilt = math.radians(rng.uniform(-15, 15) if rng.random() < 0.4 else rng.uniform(-4, 4))
    top_share = rng.uniform(0.28, 0.5)  # the superficial half is the flatter one
    bend = rng.uniform(-0.3, 0.5)  # lens curved along the skin (> 0: ends rise)
    cz = top + gh * top_share
    x0, x1 = int(max(0, cx - 0.75 * gw)), int(min(rw, cx + 0.75 * gw + 1))
    y0, y1 = int(max(0, top - 0.45 * gh)), int(min(rh, top + 1.45 * gh + 1))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    zs = np.arange(y0, y1, dtype=np.float32)[:, None] - cz
    c, s = math.cos(tilt), math.sin(tilt)
    u = (c * xs + s * zs) / (gw / 2)
    v = (-s * xs + c * zs) / gh
    v = v + bend * u * u * 0.5
    v = np.where(v < 0, v / top_share, v / (1 - top_share))
    f = np.abs(u) ** p + np.abs(v) ** rng.uniform(1.6, 2.6)
    lob = rng.uniform(0.1, 0.5)
    f += lob * _field(rng, y1 - y0, x1 - x0, gh * rng.uniform(0.2, 0.7))
    if rng.random() < 0.5:  # finer lobules
        f += rng.uniform(0.01, 0.07) * _field(rng, y1 - y0, x1 - x0, gh * rng.uniform(0.08, 0.15))
    region = clean_mask(f < 1.0)
    if region.sum() < 30:
        return None
    return region, (x0, y0, x1, y1)


def _solidity(region: np.ndarray) -> float:
    """Area over convex-hull area of a bool region."""
    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    pts = np.concatenate(contours)
    hull = cv2.contourArea(cv2.convexHull(pts))
    return float(cv2.contourArea(max(contours, key=cv2.contourArea)) / hull) if hull > 0 else 0.0


def _mandible(
    rng: np.random.Generator, rw: int, rh: int, gland_mid: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """The mandible's bright curve and its shadow: (curve points int32, shadow polygon, thickness)."""
    left = rng.random() < 0.5
    z_edge = rng.uniform(max(gland_mid, 0.3 * rh), 0.92 * rh)
    reach = rng.uniform(0.15, 0.5) * rw
    z_end = z_edge + rng.uniform(-0.12, 0.25) * rh
    bulge = rng.uniform(-0.12, 0.05) * rh
    t = np.linspace(0.0, 1.0, 40)
    xs = reach * t
    zs = (1 - t) ** 2 * z_edge + 2 * t * (1 - t) * ((z_edge + z_end) / 2 + bulge) + t**2 * z_end
    zs = zs + _wiggle(rng, 40, 0.006 * rh, 4)
    if not left:
        xs = rw - 1 - xs
    thick = max(1, int(rng.uniform(0.008, 0.03) * rh))
    curve = np.stack([xs, zs], 1).round().astype(np.int32)
    under = curve + np.array([0, thick // 2], np.int32)
    shadow = np.concatenate([under, [[under[-1, 0], rh + 5], [under[0, 0], rh + 5]]]).astype(
        np.int32
    )
    return curve, shadow, thick


def _label_map(
    rng: np.random.Generator,
    prng: np.random.Generator,
    rw: int,
    rh: int,
    devita: int,
    area_frac: float,
    min_aspect: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Step A: the tissue classes of the render grid and the gland region (both ``(rh, rw)``).

    ``min_aspect`` is the flattest gland (bounding-box width / height) accepted on the grid.
    ``prng`` draws the pathology (foci, bands) alone, so that the same seed at another grade
    keeps the anatomy and the appearance and changes only the parenchyma.
    """
    gland = None
    for _ in range(12):
        shape = _gland_shape(rng, rw, rh, area_frac)
        if shape is None:
            continue
        region, (x0, y0, x1, y1) = shape
        box = bounding_box(region)
        aspect = (box[2] - box[0]) / (box[3] - box[1]) if box else 0.0
        if min_aspect <= aspect <= 7.0 and 0.64 <= _solidity(region) <= 0.975:
            gland = np.zeros((rh, rw), bool)
            gland[y0:y1, x0:x1] = region
            break
    if gland is None:  # a plain ellipse: never reached in practice, but always valid
        gland = np.zeros((rh, rw), np.uint8)
        cv2.ellipse(
            gland, (rw // 2, int(0.45 * rh)), (int(0.3 * rw), int(0.1 * rh)), 0, 0, 360, 1, -1
        )
        gland = gland.astype(bool)

    cols = gland.any(axis=0)
    gx = np.flatnonzero(cols)
    g_top_all = np.argmax(gland, axis=0).astype(np.float32)
    g_bot_all = (rh - 1 - np.argmax(gland[::-1], axis=0)).astype(np.float32)
    ys_g = np.flatnonzero(gland.any(axis=1))
    top_px, bot_px = float(ys_g[0]), float(ys_g[-1])
    gh = bot_px - top_px + 1

    # Mandible first: its shadow may cut the gland's deep side (never most of it).
    bone_lines = None
    if rng.random() < 0.5:
        for _ in range(4):
            curve, shadow, thick = _mandible(rng, rw, rh, top_px + 0.55 * gh)
            cut = np.zeros((rh, rw), np.uint8)
            cv2.fillPoly(cut, [shadow], 1)
            cv2.polylines(cut, [curve], False, 1, thick)
            kept = clean_mask(gland & (cut == 0))
            if kept.sum() >= 0.7 * gland.sum():
                gland = kept
                bone_lines = (curve, shadow, thick)
                break
        cols = gland.any(axis=0)
        gx = np.flatnonzero(cols)
        g_top_all = np.argmax(gland, axis=0).astype(np.float32)
        g_bot_all = (rh - 1 - np.argmax(gland[::-1], axis=0)).astype(np.float32)

    x = np.arange(rw, dtype=np.float32)
    g_top = np.interp(x, gx, g_top_all[gx]).astype(np.float32)
    g_bot = np.interp(x, gx, g_bot_all[gx]).astype(np.float32)

    # Layer boundaries per column (render px from the top), monotonic in depth.
    gel = (rng.uniform(0, 0.035) * rh if rng.random() < 0.5 else 0.0) + _wiggle(
        rng, rw, 0.003 * rh, 2
    )
    skin = gel + max(1.0, rng.uniform(0.005, 0.02) * rh)
    dermis = skin + rng.uniform(0.008, 0.04) * rh + _wiggle(rng, rw, 0.004 * rh, 4)
    gap = rng.uniform(0.004, 0.03) * rh
    fat_bot = np.minimum(g_top - gap, g_top.min() - gap + _wiggle(rng, rw, 0.03 * rh, 3))
    k = max(3, rw // 12) | 1
    fat_bot = cv2.GaussianBlur(fat_bot[None, :], (k, 1), 0)[0]
    fat_bot = np.where(cols, np.minimum(fat_bot, g_top - gap), fat_bot)
    fat_bot = np.maximum(fat_bot, dermis + 2)
    fascia_t = rng.uniform(0.003, 0.014) * rh if rng.random() < 0.8 else 0.0
    fascia_on = _wiggle(rng, rw, 1.0, 5) > rng.uniform(-1.2, 0.3)
    fascia = fat_bot + np.where(fascia_on, fascia_t, 0.0)
    mode = rng.choice(3, p=(0.55, 0.3, 0.15))  # muscle under the gland / beside it / none
    if mode == 0:
        m_top = np.maximum(g_bot + rng.uniform(0.005, 0.04) * rh, 0.0)
        m_top = cv2.GaussianBlur(m_top[None, :], (k, 1), 0)[0]
        m_top = np.maximum(m_top, np.where(cols, g_bot + 1, 0)) + _wiggle(rng, rw, 0.01 * rh, 4)
    else:
        m_top = (g_top.min() + rng.uniform(0.2, 1.0) * gh) + _wiggle(rng, rw, 0.05 * rh, 3)
    m_bot = m_top + rng.uniform(0.06, 0.28) * rh + _wiggle(rng, rw, 0.02 * rh, 3)
    if mode == 2:
        m_bot = m_top
    bounds = [gel, skin, dermis, fat_bot, fascia, m_top, m_bot]
    classes = np.array([GEL, SKIN, DERMIS, FAT, FASCIA, CONNECTIVE, MUSCLE, DEEP], np.uint8)
    stack = np.maximum.accumulate(np.stack(bounds).astype(np.float32), axis=0)

    z = np.arange(rh, dtype=np.float32)[:, None]
    warp_amp = rng.uniform(0.0, 0.012) * rh
    zz = z + warp_amp * _field(rng, rh, rw, rh * rng.uniform(0.05, 0.2)) if warp_amp > 0.3 else z
    count = np.zeros((rh, rw), np.uint8)
    for b in stack:
        count += zz >= b[None, :]
    lut = np.zeros(256, np.uint8)
    lut[: len(classes)] = classes
    labels = cv2.LUT(count, lut)

    lines = np.zeros((rh, rw), np.uint8)
    unit = rh / 300.0
    # Septa in the fat: thin, mostly horizontal, some oblique.
    for _ in range(int(rng.integers(2, 14))):
        pts = _random_line(
            rng,
            rng.uniform(-0.1, 1.0) * rw,
            rng.uniform(float(dermis.min()), float(fat_bot.max()) + 1),
            rng.uniform(0.05, 0.5) * rw,
            rng.normal(0, 0.25),
            rng.normal(0, 0.5),
        )
        cv2.polylines(lines, [pts], False, 1, max(1, int(unit * rng.uniform(0.5, 1.8))))
    np.putmask(labels, (lines == 1) & (labels == FAT), SEPTUM)
    # Striations in the muscle: many parallel-ish lines at the muscle's own angle.
    if mode != 2:
        ang = rng.normal(0, 0.2)
        for _ in range(int(rng.integers(6, 30))):
            pts = _random_line(
                rng,
                rng.uniform(-0.2, 1.0) * rw,
                rng.uniform(float(m_top.min()), float(m_bot.max()) + 1),
                rng.uniform(0.1, 0.6) * rw,
                ang + rng.normal(0, 0.05),
                rng.normal(0, 0.2),
            )
            cv2.polylines(lines, [pts], False, 2, max(1, int(unit * rng.uniform(0.5, 1.5))))
        np.putmask(labels, (lines == 2) & (labels == MUSCLE), STRIATION)
    # Deep structures: blobs and a bright interface or two.
    blobs = np.zeros((rh, rw), np.uint8)
    for _ in range(int(rng.integers(0, 6))):
        c = (rng.uniform(0, rw), rng.uniform(0.5, 1.0) * rh)
        _ellipse(
            blobs,
            c,
            (rng.uniform(0.04, 0.25) * rw, rng.uniform(0.02, 0.08) * rh),
            rng.normal(0, 15),
            1,
        )
    for _ in range(int(rng.integers(0, 3))):
        pts = _random_line(
            rng,
            rng.uniform(-0.2, 0.6) * rw,
            rng.uniform(0.6, 0.95) * rh,
            rng.uniform(0.3, 1.0) * rw,
            rng.normal(0, 0.15),
            rng.normal(0, 0.3),
        )
        cv2.polylines(blobs, [pts], False, 2, max(1, int(unit * rng.uniform(1, 3))))
    np.putmask(labels, (blobs == 1) & (labels == DEEP), DEEP_BLOB)
    np.putmask(labels, (blobs == 2) & (labels == DEEP), FASCIA)

    # Lymph nodes outside the gland: oval, hypoechoic, with a bright hilum.
    near_gland = cv2.dilate(gland.view(np.uint8), _SQUARE3, iterations=2) * np.uint8(255)
    for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.35 else 0):
        a = rng.uniform(0.03, 0.08) * rw
        b = a * rng.uniform(0.35, 0.65)
        for _ in range(6):
            c = (rng.uniform(0.05, 0.95) * rw, rng.uniform(float(dermis.mean()) + b, 0.9 * rh))
            node = np.zeros((rh, rw), np.uint8)
            ang = rng.normal(0, 12)
            _ellipse(node, c, (a, b), ang, NODE)
            if not cv2.countNonZero(cv2.bitwise_and(node, near_gland)):
                off = rng.uniform(-0.4, 0.4) * a
                hc = (
                    c[0] + off * math.cos(math.radians(ang)),
                    c[1] + off * math.sin(math.radians(ang)),
                )
                _ellipse(
                    node, hc, (a * rng.uniform(0.25, 0.6), b * rng.uniform(0.12, 0.35)), ang, HILUM
                )
                np.putmask(labels, node > 0, node)
                break

    # Vessels outside the gland (any grade): anechoic, round or oval, some with a bright wall.
    vessels = np.zeros((rh, rw), np.uint8)
    for _ in range(int(rng.integers(0, 5))):
        r = rng.uniform(0.008, 0.03) * rh
        c = (rng.uniform(0, rw), rng.uniform(float(dermis.mean()), rh))
        ax = (r * rng.uniform(1.0, 2.5), r)
        if rng.random() < 0.5:
            _ellipse(vessels, c, (ax[0] + unit, ax[1] + unit), rng.normal(0, 10), WALL)
        _ellipse(vessels, c, ax, rng.normal(0, 10), VESSEL)
    np.putmask(labels, (vessels > 0) & ~gland, vessels)

    # The gland, its parenchyma by de Vita grade, its vessels and its capsule.
    labels[gland] = GLAND
    gland_box = bounding_box(gland)
    if gland_box is None:
        raise ValueError("the gland region is empty")
    bx0, by0, bx1, by1 = gland_box
    ys, xs = np.nonzero(gland[by0:by1, bx0:bx1])
    ys, xs = ys + by0, xs + bx0
    inner = np.zeros((rh, rw), np.uint8)
    n_foci, r_lo, r_hi = foci_plan(prng, devita, float(ys.size), gh)
    for _ in range(n_foci):
        i = int(prng.integers(ys.size))
        r = prng.uniform(r_lo, r_hi)
        c = (xs[i] + prng.normal(0, 0.5), ys[i] + prng.normal(0, 0.5))
        ang = prng.uniform(0, 180)
        _ellipse(inner, c, (r * prng.uniform(1.0, 1.7), r), ang, FOCUS)
        if devita == 3 and prng.random() < 0.6:  # confluent: a touching neighbour
            d = r * prng.uniform(0.9, 1.6)
            t = prng.uniform(0, 2 * math.pi)
            _ellipse(
                inner,
                (c[0] + d * math.cos(t), c[1] + d * math.sin(t)),
                (r, r * prng.uniform(0.6, 1.0)),
                ang,
                FOCUS,
            )
    n_bands = int(prng.integers(2, 7)) if devita == 3 else int(prng.random() < 0.3 and devita == 2)
    for _ in range(n_bands):
        i = int(prng.integers(ys.size))
        pts = _random_line(
            prng,
            xs[i],
            ys[i],
            prng.uniform(0.2, 0.7) * gh * 2,
            prng.uniform(-1.2, 1.2),
            prng.normal(0, 0.8),
        )
        cv2.polylines(inner, [pts], False, BAND, max(1, int(unit * prng.uniform(0.8, 2.2))))
    n_vessels = int(rng.integers(0, 4))
    if n_vessels and ys.size > 50:
        core = cv2.erode(
            gland[by0:by1, bx0:bx1].astype(np.uint8), _SQUARE3, iterations=max(1, int(0.05 * gh))
        )
        cy, cx = np.nonzero(core)
        cy, cx = cy + by0, cx + bx0
        for _ in range(n_vessels if cy.size else 0):
            i = int(rng.integers(cy.size))
            r = rng.uniform(0.03, 0.09) * gh
            _ellipse(
                inner, (cx[i], cy[i]), (r * rng.uniform(1.0, 2.2), r), rng.normal(0, 20), VESSEL
            )
    np.putmask(labels, (inner > 0) & gland, inner)
    if rng.random() < 0.85:
        contours, _ = cv2.findContours(
            gland.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        pts = max(contours, key=len)[:, 0, :]
        n = len(pts)
        # Which parts show: a smooth random keep-signal along the contour, the top favoured.
        keep = _wiggle(rng, n, 1.0, max(3, n // 60))
        upper = pts[:, 1] <= np.interp(pts[:, 0], np.arange(rw), (g_top + g_bot) / 2)
        keep = keep + np.where(upper, rng.uniform(0.0, 1.5), 0.0) > rng.uniform(-1.5, 0.8)
        thick = max(1, int(round(unit * rng.uniform(0.6, 2.5))))
        cap = np.zeros((rh, rw), np.uint8)
        for seg in np.split(np.arange(n), np.flatnonzero(np.diff(keep.astype(np.int8))) + 1):
            if keep[seg[0]] and seg.size > 2:
                cv2.polylines(cap, [pts[seg]], False, 1, thick)
        np.putmask(labels, cap > 0, CAPSULE)

    if bone_lines is not None:
        curve, shadow, thick = bone_lines
        bone = np.zeros((rh, rw), np.uint8)
        cv2.fillPoly(bone, [shadow], SHADOW)
        cv2.polylines(bone, [curve], False, BONE, thick)
        np.putmask(labels, bone > 0, bone)
        gland &= bone == 0
        gland = clean_mask(gland)
    return labels, gland


# ----------------------------------------------------------------------------------------------
# Step B: a random appearance


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw uniform in log between ``lo`` and ``hi``."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _appearance(
    rng: np.random.Generator, labels: np.ndarray, gland: np.ndarray, grain_px: tuple[float, float]
) -> np.ndarray:
    """Step B: the echo image ``(rh, rw)`` uint8 of a label map, every setting drawn at random.

    Args:
        rng: the frame's random stream.
        labels: ``(rh, rw)`` uint8 tissue classes.
        gland: ``(rh, rw)`` bool gland region (to place the gland's grey level).
        grain_px: ``(axial, lateral)`` Gaussian correlation of the finer speckle field, render px.
    """
    rh, rw = labels.shape
    lev = np.zeros(256, np.float32)
    for c, (lo, hi) in LEVEL_DB.items():
        lev[c] = rng.uniform(lo, hi)
    if rng.random() < 0.2:  # SynthSeg-style: tissue levels at random, only anechoic ones kept dark
        lev[:N_CLASSES] = rng.uniform(-22.0, 14.0, N_CLASSES)
        lev[VESSEL] = rng.uniform(-40.0, -18.0)
        lev[SHADOW] = rng.uniform(-45.0, -22.0)
    # The gland against its neighbours: brighter, equal or darker (dB).
    neighbours = 0.4 * lev[FAT] + 0.3 * lev[CONNECTIVE] + 0.3 * lev[MUSCLE]
    lev[GLAND] = neighbours + rng.uniform(-9.0, 9.0)
    for c in _GLAND_RELATIVE:
        lo, hi = LEVEL_DB[c]
        lev[c] = lev[GLAND] + rng.uniform(lo, hi)

    # Per-class texture: speckle strength (1 = fully developed) and the mix of two grains.
    k_base = rng.uniform(0.5, 1.15)
    k_lut = np.zeros(256, np.float32)
    k_lut[:N_CLASSES] = k_base * rng.uniform(0.75, 1.25, N_CLASSES)
    w_lut = np.zeros(256, np.float32)
    w_lut[:N_CLASSES] = rng.uniform(0.0, 1.0, N_CLASSES)
    v_lut = np.sqrt(1.0 - w_lut * w_lut).astype(np.float32)

    sz, sx = grain_px
    levels = cv2.LUT(labels, lev)
    psf = rng.uniform(0.4, 1.1)
    levels = cv2.GaussianBlur(levels, (0, 0), sigmaX=max(0.3, psf * sx), sigmaY=max(0.3, psf * sz))
    fine = _band_noise(rng, rh, rw, sz, sx)
    coarse_k = rng.uniform(1.3, 2.5)
    coarse = _band_noise(rng, rh, rw, sz * coarse_k, sx * coarse_k * rng.uniform(0.7, 1.3))
    w = cv2.LUT(labels, w_lut)
    v = cv2.LUT(labels, v_lut)
    fr, fi = cv2.split(fine)
    cr, ci = cv2.split(coarse)
    if rng.random() < 0.6:  # one coherent look: the two grains' complex fields mixed per class
        re = cv2.add(cv2.multiply(w, fr), cv2.multiply(v, cr))
        im = cv2.add(cv2.multiply(w, fi), cv2.multiply(v, ci))
        intensity = cv2.add(cv2.multiply(re, re), cv2.multiply(im, im))
    else:  # two looks compounded incoherently, weighted per class
        i1 = cv2.add(cv2.multiply(fr, fr), cv2.multiply(fi, fi))
        i2 = cv2.add(cv2.multiply(cr, cr), cv2.multiply(ci, ci))
        intensity = cv2.add(
            cv2.multiply(i1, cv2.multiply(w, w)), cv2.multiply(i2, cv2.multiply(v, v))
        )
    # A floor under the speckle's dark dips (compounding and filtering scanners fill them in).
    floored = np.asarray(intensity, np.float32)
    floored += max(1e-4, 2.0 * rng.uniform(0.0, 0.7) ** 2)
    # ln I, centred below: the class levels stay the mean levels
    speckle = np.asarray(cv2.log(floored), np.float32)
    speckle -= float(speckle[::4, ::4].mean())
    db = np.asarray(
        cv2.add(levels, cv2.multiply(cv2.LUT(labels, k_lut), speckle, scale=10 / math.log(10))),
        np.float32,
    )

    if rng.random() < 0.7:  # slow inhomogeneity of every tissue
        amp = rng.uniform(0.5, 4.0)
        db += amp * _field(rng, rh, rw, rh * rng.uniform(0.05, 0.3))
    # Depth: attenuation and a random TGC curve (brightness may fall or rise with depth).
    depth = np.linspace(0.0, 1.0, rh, dtype=np.float32)
    gain = -rng.uniform(0.0, 28.0) * depth + _wiggle(rng, rh, rng.uniform(0.0, 5.0), 4)
    gain += rng.uniform(-4.0, 10.0) * depth**2
    db += gain[:, None]
    if rng.random() < 0.3:  # lateral fall-off towards the FOV's sides
        lat = np.linspace(-1.0, 1.0, rw, dtype=np.float32)
        db -= (rng.uniform(0.0, 5.0) * lat * lat)[None, :]

    # Log compression to 8 bit: dynamic range, gain (where the gland lands) and the grey map.
    dr = rng.uniform(30.0, 80.0)
    gamma = _log_uniform(rng, 0.65, 1.7)
    target = rng.uniform(35.0, 115.0) if rng.random() < 0.7 else rng.uniform(12.0, 210.0)
    gy = np.flatnonzero(gland.any(axis=1))
    gz = int(gy.mean()) if gy.size else rh // 2
    gland_db = float(lev[GLAND] + gain[gz])
    lo = gland_db - dr * (target / 255.0) ** (1.0 / gamma)
    t = (db - lo) * (1023.0 / dr)
    np.clip(t, 0.0, 1023.0, out=t)
    idx = t.astype(np.uint16)
    ramp = np.linspace(0.0, 1.0, 1024)
    grey_map = 255.0 * ramp**gamma
    if rng.random() < 0.5:  # a soft shoulder: highlights compressed, not clipped
        knee = rng.uniform(150.0, 230.0)
        over = grey_map > knee
        grey_map[over] = knee + (255 - knee) * np.tanh((grey_map[over] - knee) / (255 - knee))
    grey = np.take(np.clip(grey_map, 0, 255).astype(np.uint8), idx)

    # Electronic noise floor (what anechoic regions show) and speckle-reduction filters.
    if rng.random() < 0.75:
        floor = rng.uniform(2.0, 28.0)
        noise = np.frombuffer(rng.bytes(rh * rw), np.uint8).reshape(rh, rw)
        grain = cv2.GaussianBlur(noise, (3, 3), 0) if rng.random() < 0.5 else noise
        cv2.max(grey, cv2.convertScaleAbs(grain, alpha=floor / 255.0), dst=grey)
    r = rng.random()
    if r < 0.15:
        grey = cv2.medianBlur(grey, 3)
    elif r < 0.45:
        sigma = rng.uniform(0.3, 1.2)
        grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=sigma * rng.uniform(1.0, 2.0), sigmaY=sigma)
    return grey


# ----------------------------------------------------------------------------------------------
# frame geometry: size, field of view, sector scan conversion


def _frame_size(rng: np.random.Generator) -> tuple[int, int, bool]:
    """A realistic frame ``(width, height, framed)``; framed frames carry scanner UI around the FOV."""
    r = rng.random()
    if r < 0.35:
        w, h = SCANNER_SIZES[int(rng.integers(len(SCANNER_SIZES)))]
        return w, h, bool(rng.random() < 0.6)
    if r < 0.7:
        w = int(rng.integers(SCREENSHOT_WIDTH[0], SCREENSHOT_WIDTH[1] + 1))
        return w, int(round(w / rng.uniform(1.44, 1.47))), True
    w = int(rng.integers(380, 1001))
    return w, max(32, int(round(w / rng.uniform(1.0, 2.2)))), False


def _fov_rect(rng: np.random.Generator, w: int, h: int, framed: bool) -> tuple[int, int, int, int]:
    """Where the scanner's image area lies in the frame: ``(x, y, w, h)``."""
    if not framed:
        if rng.random() < 0.3:  # a crop that kept a thin black border
            mx, my = int(rng.uniform(0, 0.03) * w), int(rng.uniform(0, 0.03) * h)
            return mx, my, w - 2 * mx - int(rng.integers(0, mx + 1)), h - 2 * my
        return 0, 0, w, h
    fw = int(w * rng.uniform(0.5, 0.82))
    fh = int(h * rng.uniform(0.6, 0.86))
    fw = int(min(fw, 2.3 * fh))
    x = int(w * rng.uniform(0.03, max(0.031, 1.0 - fw / w - 0.03)))
    y = int(h * rng.uniform(0.04, max(0.041, min(0.16, 1.0 - fh / h - 0.02))))
    return x, y, min(fw, w - x), min(fh, h - y)


class _Sector:
    """A convex probe's fan fitted into a box: apex above the box, radii ``r0``-``r1``, half-angle."""

    def __init__(self, rng: np.random.Generator, bw: int, bh: int) -> None:
        q = rng.uniform(0.25, 1.6)  # inner radius / depth
        # The half-angle (18-45 degrees) whose fan best fills the box, a little narrower.
        want = bw / bh * rng.uniform(0.8, 1.0)
        phis = np.radians(np.arange(18.0, 45.5, 0.5))
        aspects = 2 * (q + 1) * np.sin(phis) / ((q + 1) - q * np.cos(phis))
        self.phi = float(phis[int(np.argmin(np.abs(aspects - want)))])
        nat_w, nat_h = 2 * (q + 1) * math.sin(self.phi), (q + 1) - q * math.cos(self.phi)
        k = min(bw / nat_w, bh / nat_h)
        self.r0, self.depth = k * q, k
        self.w, self.h = max(8, int(k * nat_w)), max(8, int(k * nat_h))
        self.ax, self.ay = self.w / 2.0, -k * q * math.cos(self.phi)

    @property
    def fill(self) -> float:
        """The fan's area over its bounding box's."""
        return self.phi * ((self.r0 + self.depth) ** 2 - self.r0**2) / (self.w * self.h)

    def grid(self, scale: float) -> tuple[int, int]:
        """The polar render grid ``(width along the arc, height along the radius)`` at a scale."""
        arc = (self.r0 + self.depth / 2) * 2 * self.phi
        return max(24, int(arc * scale)), max(24, int(self.depth * scale))

    def maps(self, rw: int, rh: int) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` maps from the fan's box ``(h, w)`` to the polar grid ``(rh, rw)``.

        Computed every 4 px and interpolated (the maps are smooth; the apex is outside the box).
        """
        cw, ch = self.w // 4 + 2, self.h // 4 + 2
        xs = (np.arange(cw, dtype=np.float32) * 4 + 1.5)[None, :] - self.ax
        ys = (np.arange(ch, dtype=np.float32) * 4 + 1.5)[:, None] - self.ay
        theta = np.arctan2(xs, ys)
        radius = np.sqrt(xs * xs + ys * ys)
        mx = ((theta + self.phi) / (2 * self.phi) * rw - 0.5).astype(np.float32)
        my = ((radius - self.r0) / self.depth * rh - 0.5).astype(np.float32)
        size = (cw * 4, ch * 4)
        mx = cv2.resize(mx, size, interpolation=cv2.INTER_LINEAR)[: self.h, : self.w]
        my = cv2.resize(my, size, interpolation=cv2.INTER_LINEAR)[: self.h, : self.w]
        return np.ascontiguousarray(mx), np.ascontiguousarray(my)


# ----------------------------------------------------------------------------------------------
# scanner UI and sonographers' marks


def _put(
    img: np.ndarray,
    rng: np.random.Generator,
    text: str,
    org: tuple[int, int],
    scale: float,
    grey: int,
) -> None:
    """Burn in one line of text."""
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    s = scale * (1.4 if font == cv2.FONT_HERSHEY_PLAIN else 1.0)
    cv2.putText(
        img, text, org, font, s, int(grey), 1, cv2.LINE_AA if rng.random() < 0.6 else cv2.LINE_8
    )


def _date(rng: np.random.Generator) -> str:
    """An invented date and time, in one of the formats scanners print."""
    y, m, d = int(rng.integers(2008, 2025)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    hh, mm, ss = int(rng.integers(7, 19)), int(rng.integers(60)), int(rng.integers(60))
    fmt = int(rng.integers(3))
    if fmt == 0:
        return f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}"
    if fmt == 1:
        return f"{d:02d}/{m:02d}/{y} {hh:02d}:{mm:02d}"
    return f"{d:02d}.{m:02d}.{y % 100:02d}"


def _draw_ui(
    rng: np.random.Generator, img: np.ndarray, fov: tuple[int, int, int, int], framed: bool
) -> None:
    """Panels, burned-in text, depth scale, greyscale bar and focus marker around / in the FOV."""
    h, w = img.shape
    x, y, fw, fh = fov
    fs = max(0.22, h / 1000.0 * rng.uniform(0.8, 1.3))
    line = max(6, int(30 * fs))
    text_grey = int(rng.uniform(140, 256))
    if framed:
        panel = int(rng.uniform(12, 70))
        if rng.random() < 0.6 and y > line:
            cv2.rectangle(img, (0, 0), (w - 1, max(0, y - 3)), panel, -1)
        if rng.random() < 0.5 and x > 3 * line:
            cv2.rectangle(img, (0, y), (max(0, x - 4), h - 1), panel, -1)
        right = x + fw + 4
        if rng.random() < 0.4 and right < w - 2 * line:
            cv2.rectangle(img, (right, y), (w - 1, h - 1), panel, -1)
        _put(
            img,
            rng,
            INSTITUTIONS[int(rng.integers(len(INSTITUTIONS)))],
            (4, int(0.8 * line)),
            fs,
            text_grey,
        )
        _put(
            img, rng, _date(rng), (int(w * rng.uniform(0.45, 0.7)), int(0.8 * line)), fs, text_grey
        )
        if y > 2 * line:
            _put(
                img,
                rng,
                PROBES[int(rng.integers(len(PROBES)))],
                (4, int(1.8 * line)),
                fs,
                text_grey,
            )
        # A parameter column left or right of the FOV.
        col_x = 4 if x > 4 * line else min(w - 4 * line, x + fw + 6)
        for i, k in enumerate(rng.choice(len(PARAMETERS), int(rng.integers(2, 8)), replace=False)):
            _put(img, rng, PARAMETERS[int(k)], (col_x, y + line * (i + 1)), fs * 0.9, text_grey)
        if rng.random() < 0.6:  # greyscale bar
            bw, bh = max(3, int(0.012 * w)), int(fh * rng.uniform(0.2, 0.45))
            bx = x + fw + 6 if x + fw + 6 + bw < w else max(0, x - bw - 6)
            ramp = np.linspace(255, 0, bh).astype(np.uint8)[:, None]
            img[y + 2 : y + 2 + bh, bx : bx + bw] = ramp
        if rng.random() < 0.5:  # a TGC curve icon
            n = 12
            pts = np.stack(
                [
                    x + fw + 8 + 10 * np.abs(_wiggle(rng, n, 1.0, 3)) * fs,
                    y + np.linspace(0, fh * 0.6, n),
                ],
                1,
            )
            cv2.polylines(img, [pts.astype(np.int32)], False, text_grey, 1)
    # Depth scale: ticks (and numbers) along one side of the FOV.
    if rng.random() < (0.85 if framed else 0.4):
        cm = int(rng.integers(3, 7))
        side_x = x + fw - 2 if rng.random() < 0.7 else x + 1
        d = -1 if side_x > x + fw // 2 else 1
        for i in range(cm * 2 + 1):
            ty = y + int(i * (fh - 1) / (2 * cm))
            length = max(2, int(fs * (14 if i % 2 == 0 else 7)))
            cv2.line(img, (side_x, ty), (side_x + d * length, ty), text_grey, 1)
            if i % 2 == 0 and framed and rng.random() < 0.8:
                tx = side_x + 4 if d < 0 else max(0, side_x - int(18 * fs * 2))
                _put(img, rng, str(i // 2), (min(w - 10, tx), ty + line // 3), fs * 0.8, text_grey)
    if rng.random() < 0.5:  # focus marker: a small triangle at the FOV's edge
        fy = y + int(fh * rng.uniform(0.2, 0.6))
        fx = x + fw + 3 if x + fw + 10 < w else x + fw - 8
        s = max(2, int(6 * fs))
        tri = np.array([[fx, fy], [fx + s, fy - s], [fx + s, fy + s]], np.int32)
        cv2.fillPoly(img, [tri], text_grey)
    if rng.random() < (0.8 if framed else 0.45):  # the gland label, in or below the FOV
        label = GLAND_LABELS[int(rng.integers(len(GLAND_LABELS)))]
        ly = y + fh + line if framed and y + fh + line < h else y + fh - int(0.5 * line)
        _put(img, rng, label, (x + int(fw * rng.uniform(0.02, 0.3)), ly), fs, text_grey)


def _draw_marks(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray) -> None:
    """Calipers and a sonographer's outline over the gland (they change the image, not the mask)."""
    ys, xs = np.nonzero(mask)
    if ys.size < 20:
        return
    grey = int(rng.uniform(170, 256))
    unit = max(1.0, img.shape[0] / 500.0)
    if rng.random() < 0.3:  # calipers: '+' marks at the gland's ends, a dashed line between
        left, right = int(np.argmin(xs)), int(np.argmax(xs))
        p0, p1 = np.array([xs[left], ys[left]]), np.array([xs[right], ys[right]])
        if rng.random() < 0.4:  # or across its depth
            col = xs[ys.size // 2]
            cy = ys[xs == col]
            p0, p1 = np.array([col, cy.min()]), np.array([col, cy.max()])
        arm = int(4 * unit)
        for p in (p0, p1):
            cv2.line(img, (int(p[0]) - arm, int(p[1])), (int(p[0]) + arm, int(p[1])), grey, 1)
            cv2.line(img, (int(p[0]), int(p[1]) - arm), (int(p[0]), int(p[1]) + arm), grey, 1)
        n = max(2, int(np.hypot(*(p1 - p0)) / (6 * unit)))
        for i in range(0, n, 2):
            a, b = p0 + (p1 - p0) * i / n, p0 + (p1 - p0) * min(n, i + 1) / n
            cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), grey, 1)
        _put(
            img,
            rng,
            f"D1 {rng.uniform(1.5, 5.5):.2f}cm",
            (int(8 * unit), img.shape[0] - int(10 * unit)),
            0.4 * unit,
            grey,
        )
    if rng.random() < 0.3:  # an outline traced near (sometimes over) the border
        m = mask.astype(np.uint8)
        r = int(rng.integers(-2, 4) * unit)
        traced: cv2.typing.MatLike = m
        if r > 0:
            traced = cv2.dilate(m, _SQUARE3, iterations=r)
        elif r < 0:
            traced = cv2.erode(m, _SQUARE3, iterations=-r)
        contours, _ = cv2.findContours(traced, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            return
        pts = max(contours, key=len)[:, 0, :].astype(np.float32)
        jitter = np.stack(
            [_wiggle(rng, len(pts), 1.5 * unit, max(3, len(pts) // 80)) for _ in range(2)], 1
        )
        pts = (pts + jitter).round().astype(np.int32)
        if rng.random() < 0.3:  # only part of it
            a = int(rng.integers(len(pts)))
            pts = np.roll(pts, -a, axis=0)[: int(len(pts) * rng.uniform(0.3, 0.8))]
        if rng.random() < 0.5:
            step = max(2, int(rng.uniform(3, 9) * unit))
            for p in pts[::step]:
                cv2.circle(img, (int(p[0]), int(p[1])), max(1, int(unit * 0.7)), grey, -1)
        else:
            cv2.polylines(img, [pts], rng.random() < 0.5, grey, max(1, int(unit * 0.8)))


# ----------------------------------------------------------------------------------------------
# the public functions


@dataclass(frozen=True)
class Layout:
    """How :func:`render` lays a frame out (the first draws of its random stream).

    Attributes:
        size: ``(width, height)`` of the frame.
        framed: scanner UI (margins, panels, text) around the FOV, as in raw screenshots.
        sector: a convex probe's fan-shaped FOV (black outside the fan), else a linear one.
        fov: the FOV's bounding box ``(x, y, w, h)`` in frame px.
    """

    size: tuple[int, int]
    framed: bool
    sector: bool
    fov: tuple[int, int, int, int]


def _draw_layout(
    rng: np.random.Generator, size: tuple[int, int] | None
) -> tuple[int, int, bool, _Sector | None, tuple[int, int, int, int]]:
    """Frame size, framing, probe geometry and FOV: ``(w, h, framed, sector, fov)``."""
    w, h, framed = _frame_size(rng)
    framed_given = bool(rng.random() < 0.45)
    if size is not None:
        w, h, framed = int(size[0]), int(size[1]), framed_given
    box = _fov_rect(rng, w, h, framed)
    sector = _Sector(rng, box[2], box[3]) if rng.random() < 0.3 else None
    if sector is None:
        return w, h, framed, None, box
    return w, h, framed, sector, (box[0] + (box[2] - sector.w) // 2, box[1], sector.w, sector.h)


def layout(seed: int, *, size: tuple[int, int] | None = None) -> Layout:
    """The layout :func:`render` gives the frame of ``(seed, size)`` (any ``devita``), cheaply."""
    check_request(size, None)
    rng = np.random.default_rng([_SALT, int(seed)])
    draw_devita(rng)
    w, h, framed, sector, fov = _draw_layout(rng, size)
    return Layout((w, h), framed, sector is not None, fov)


def render(
    seed: int, *, size: tuple[int, int] | None = None, devita: int | None = None
) -> SynthFrame:
    """One domain-randomised SGUS frame with its exact gland mask.

    Args:
        seed: non-negative integer; the frame is a pure function of ``(seed, size, devita)``.
        size: ``(width, height)`` of the frame; None draws a realistic one (the real set's
            scanner sizes, raw screenshots 800x555 to 1280x872, or FOV-only crops of aspect
            1.0-2.2). The frame is rendered at this size, never at full size and downscaled.
        devita: de Vita grade 0-3 of the parenchyma; None draws one with the real set's
            frequencies (the other random choices do not depend on whether it was given).

    Returns:
        A :class:`SynthFrame` with ``family="randomised"``.

    Raises:
        ValueError: a size below 32 px a side or a grade outside 0-3.
    """
    check_request(size, devita)
    rng = np.random.default_rng([_SALT, int(seed)])
    drawn = draw_devita(rng)
    grade = drawn if devita is None else int(devita)
    w, h, framed, sector, fov = _draw_layout(rng, size)
    fx, fy, fw, fh = fov
    # Gland area: raw screenshots 4.5-20 % of the frame, FOV-only crops 8-38 % of the FOV.
    area = (
        rng.uniform(0.045, 0.2) * (w * h) / (fw * fh) if framed else _log_uniform(rng, 0.08, 0.38)
    )
    if sector is not None:
        area /= sector.fill

    scale = rng.uniform(0.35, 1.0)
    rw, rh = (
        sector.grid(scale)
        if sector is not None
        else (max(24, int(fw * scale)), max(24, int(fh * scale)))
    )
    # A flat lens (width/height >= 2, width <= 0.95 of the FOV) covers at most ~0.25 w/h of it.
    area = float(np.clip(area, 0.06, min(0.42, 0.25 * rw / rh)))
    pathology_rng = np.random.default_rng([_SALT, int(seed), 1])
    # A fan bends the lens along its arcs (taller box): ask the polar grid for a flatter one.
    min_aspect = 2.4 if sector is not None else 2.0
    labels, gland = _label_map(rng, pathology_rng, rw, rh, grade, area, min_aspect)
    if rng.random() < 0.5:  # mirror the anatomy
        labels, gland = labels[:, ::-1].copy(), gland[:, ::-1].copy()
    # Speckle grain (Gaussian correlation of the finer field) in output px, then render px.
    out_h = sector.depth if sector is not None else fh
    g_ax = _log_uniform(rng, 0.0012, 0.008) * out_h
    g_lat = g_ax * rng.uniform(1.0, 4.0)
    ratio = rh / out_h
    grey = _appearance(rng, labels, gland, (max(0.5, g_ax * ratio), max(0.5, g_lat * ratio)))

    interp = cv2.INTER_CUBIC if rng.random() < 0.3 else cv2.INTER_LINEAR
    soft = gland.astype(np.uint8) * 255
    if sector is None:
        image_fov = cv2.resize(grey, (fw, fh), interpolation=interp)
        mask_fov = cv2.resize(soft, (fw, fh), interpolation=cv2.INTER_LINEAR) >= 128
    else:
        mx, my = sector.maps(rw, rh)
        image_fov = cv2.remap(grey, mx, my, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mask_fov = cv2.remap(soft, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) >= 128
        fan = (mx >= -0.5) & (mx <= rw - 0.5) & (my >= -0.5) & (my <= rh - 0.5)
        image_fov[~fan] = 0
        mask_fov &= fan
    frame = np.full(
        (h, w), int(rng.uniform(0, 10)) if framed and rng.random() < 0.3 else 0, np.uint8
    )
    frame[fy : fy + fh, fx : fx + fw] = image_fov
    mask = np.zeros((h, w), bool)
    mask[fy : fy + fh, fx : fx + fw] = clean_mask(mask_fov)

    if framed or rng.random() < 0.5:
        _draw_ui(rng, frame, fov, framed)
    _draw_marks(rng, frame, mask)
    image: cv2.typing.MatLike = frame
    if rng.random() < 0.3:  # digitisation / export noise
        noise = np.frombuffer(rng.bytes(h * w), np.uint8).reshape(h, w)
        amp = rng.uniform(2.0, 10.0)
        image = cv2.add(image, cv2.convertScaleAbs(noise, alpha=amp / 255.0))
        image = cv2.subtract(image, np.full_like(image, int(amp / 2)))
    if rng.random() < 0.45:
        quality = int(rng.integers(30, 96))
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
            if decoded is None:
                raise ValueError("the frame's JPEG round trip did not decode")
            image = decoded
    return SynthFrame(image=image, mask=mask, devita=grade, fov=fov, family=FAMILY, seed=int(seed))
