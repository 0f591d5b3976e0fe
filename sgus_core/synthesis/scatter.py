"""Physics-style SGUS frames: point scatterers, a pulse-echo point-spread function, envelopes.

A third appearance family, made another way than ``phantom`` and ``randomised``: the image is
*simulated* rather than painted. :func:`render`

1. draws the anatomy as **vector geometry** in the field of view (FOV): tissue boundaries are
   cubic splines through random control points, the gland a star-shaped closed curve (a flat,
   asymmetric superellipse lens whose radius is modulated by a periodic spline: lobulation),
   foci, vessels and lymph nodes star-shaped polygons, interfaces polylines;
2. rasterises it into tissue classes and places **random point scatterers** on the pixel grid,
   with a Bernoulli (thinned Poisson) density and an amplitude distribution per tissue (dense
   and fine in the gland, sparse and bright in the fat, empty in vessels), plus coherent **line
   scatterers** for the specular interfaces (skin, septa, fascia, capsule, fibrous bands, bone);
3. attenuates each scatterer by the echo's two-way loss accumulated along depth through the
   tissues above it (bone stops it: its acoustic shadow; fluid barely: enhancement behind
   vessels and cysts), adds receiver noise, and **convolves with a separable analytic PSF**
   (lateral Gaussian beam times a Gaussian-windowed complex carrier along depth: the analytic
   RF signal, so its modulus is the envelope a Hilbert transform would give);
4. applies a TGC curve and **log-compresses** the envelope to 8 bit with a random dynamic range
   and gain; the frame is the FOV alone or inside black margins with a little burned-in text.

Hypoechoic foci by de Vita grade are regions of low scatterer amplitude, vessels regions without
scatterers. The gland mask is rasterised from the same vector geometry at the output size (less
what the mandible's shadow hides), so it is exact whatever the simulation resolution. A frame is
a pure function of ``(seed, size, devita)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.interpolate import CubicSpline

from sgus_core.synthesis.family import (
    SynthFrame,
    check_request,
    clean_mask,
    draw_devita,
    foci_plan,
)

FAMILY = "scatter"
_SALT = 0x53_43_41_54  # "SCAT"
# OpenCV's default structuring element (what a ``None`` kernel means): a 3x3 square.
_SQUARE3 = np.ones((3, 3), np.uint8)

# Tissue classes.
(
    COUPLING,
    SKIN,
    DERMIS,
    FAT,
    SEPTUM,
    FASCIA,
    CONNECTIVE,
    GLAND,
    CAPSULE,
    FOCUS,
    BAND,
    VESSEL,
    MUSCLE,
    STRIATION,
    DEEP,
    NODE,
    HILUM,
    BONE,
) = range(18)
N_CLASSES = 18


@dataclass(frozen=True)
class Tissue:
    """Ranges the per-image scatterer parameters of one class are drawn from.

    Attributes:
        density: scatterers per pixel (Bernoulli probability), uniform ``(low, high)``.
        amplitude: std of the random scatterer amplitude, relative to the gland's.
        coherent: amplitude of the coherent (same-sign) part: line scatterers, specular.
        attenuation: two-way loss in dB over the full FOV depth through this tissue.
    """

    density: tuple[float, float]
    amplitude: tuple[float, float]
    coherent: tuple[float, float] = (0.0, 0.0)
    attenuation: tuple[float, float] = (10.0, 25.0)


TISSUES: dict[int, Tissue] = {
    COUPLING: Tissue((0.0, 0.02), (0.0, 0.2), attenuation=(0.5, 2.0)),
    SKIN: Tissue((0.5, 1.0), (1.0, 3.0), (3.0, 9.0), (15.0, 30.0)),
    DERMIS: Tissue((0.2, 0.8), (0.6, 1.6)),
    FAT: Tissue((0.01, 0.12), (0.8, 3.0), attenuation=(8.0, 25.0)),
    SEPTUM: Tissue((0.3, 1.0), (0.5, 1.5), (1.5, 5.0)),
    FASCIA: Tissue((0.3, 1.0), (0.5, 1.5), (1.2, 5.0)),
    CONNECTIVE: Tissue((0.1, 0.6), (0.5, 1.4)),
    GLAND: Tissue((0.15, 0.9), (1.0, 1.0), attenuation=(8.0, 24.0)),
    CAPSULE: Tissue((0.3, 1.0), (0.5, 1.2), (0.6, 5.0)),
    FOCUS: Tissue((0.05, 0.5), (0.04, 0.32), attenuation=(2.0, 10.0)),
    BAND: Tissue((0.5, 1.0), (0.8, 2.0), (1.0, 3.5)),
    VESSEL: Tissue((0.0, 0.0), (0.0, 0.0), attenuation=(0.5, 2.0)),
    MUSCLE: Tissue((0.1, 0.6), (0.3, 0.9), attenuation=(10.0, 30.0)),
    STRIATION: Tissue((0.3, 1.0), (0.8, 2.0), (0.5, 2.5), (10.0, 30.0)),
    DEEP: Tissue((0.1, 0.8), (0.4, 1.4), attenuation=(10.0, 30.0)),
    NODE: Tissue((0.05, 0.4), (0.1, 0.35), attenuation=(4.0, 12.0)),
    HILUM: Tissue((0.5, 1.0), (1.0, 2.5), (0.5, 2.0)),
    BONE: Tissue((1.0, 1.0), (2.0, 4.0), (8.0, 20.0), (0.0, 0.0)),  # its loss: see _simulate
}

LABELS = ("PAROTID R", "PAROTID L", "SMG R", "SMG L", "PG RIGHT", "PG LEFT", "SUBMAND L", "RT PAR")


# ----------------------------------------------------------------------------------------------
# vector geometry


def _spline_curve(
    rng: np.random.Generator, x0: float, x1: float, z: float, amp: float, knots: int
) -> np.ndarray:
    """A smooth curve ``(n, 2)`` float (x, z) across ``[x0, x1]``: a cubic spline through knots."""
    xk = np.linspace(x0, x1, knots)
    xk[1:-1] += rng.uniform(-0.3, 0.3, knots - 2) * (x1 - x0) / (knots - 1)
    zk = z + rng.normal(0.0, amp, knots)
    xs = np.linspace(x0, x1, max(8, int((x1 - x0) / 3)))
    return np.stack([xs, CubicSpline(xk, zk)(xs)], 1)


def _star(
    rng: np.random.Generator,
    centre: tuple[float, float],
    radii: tuple[float, float, float],
    power: float,
    lobes: tuple[int, float],
    tilt: float = 0.0,
    bend: float = 0.0,
    n: int = 240,
) -> np.ndarray:
    """A closed star-shaped curve ``(n, 2)`` float (x, z): a lobulated superellipse lens.

    Args:
        centre: ``(x, z)`` px.
        radii: ``(half width, upper half height, lower half height)`` px.
        power: superellipse exponent (2: ellipse; lower: pointed ends).
        lobes: ``(knots, amplitude)`` of the periodic spline modulating the log radius.
        tilt: rotation, radians. bend: the ends rise by ``bend`` times the lower half height.
    """
    a, b_up, b_lo = radii
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    b = np.where(s < 0, b_up, b_lo)
    r = (np.abs(c / a) ** power + np.abs(s / b) ** power) ** (-1.0 / power)
    k, amp = lobes
    tk = np.linspace(0.0, 2 * np.pi, k + 1)
    vk = rng.normal(0.0, amp, k + 1)
    vk[-1] = vk[0]
    r = r * np.exp(CubicSpline(tk, vk, bc_type="periodic")(t))
    x, z = r * c, r * s
    z = z - bend * b_lo * (x / a) ** 2
    ct, st = math.cos(tilt), math.sin(tilt)
    return np.stack([centre[0] + ct * x - st * z, centre[1] + st * x + ct * z], 1)


@dataclass
class _Anatomy:
    """The FOV's anatomy as vector shapes in output px (x across, z down)."""

    w: int
    h: int
    layers: list[tuple[int, np.ndarray]] = field(default_factory=list)  # class, upper boundary
    gland: np.ndarray | None = None
    inside: list[tuple[int, np.ndarray]] = field(default_factory=list)  # gland-clipped polygons
    bands: list[np.ndarray] = field(default_factory=list)
    lines: list[tuple[int, np.ndarray, float, int]] = field(default_factory=list)  # in-class
    blobs: list[tuple[int, np.ndarray]] = field(default_factory=list)  # outside the gland
    capsule: list[np.ndarray] = field(default_factory=list)
    capsule_px: float = 1.0
    bone: np.ndarray | None = None
    bone_px: float = 2.0


def _gland_outline(
    rng: np.random.Generator, w: int, h: int, area_frac: float
) -> tuple[np.ndarray, float, float]:
    """The gland's closed outline (float px) and its top and height; lens checked for shape."""
    best = None
    for _ in range(40):
        aspect = math.exp(rng.uniform(math.log(2.8), math.log(9.0)))
        power = rng.uniform(1.5, 2.6)
        fill = math.gamma(1 + 1 / power) ** 2 / math.gamma(1 + 2 / power)
        gw = math.sqrt(area_frac * w * h / fill * aspect)
        gh = gw / aspect
        if not (0.35 * w <= gw <= 1.05 * w and gh <= 0.5 * h):
            continue
        up = rng.uniform(0.3, 0.48)
        top = rng.uniform(0.15, max(0.151, min(0.55, 0.94 - gh / h))) * h
        if rng.random() < 0.2:  # running off a side of the FOV
            cx = gw / 2 * rng.uniform(0.5, 0.9)
            cx = w - cx if rng.random() < 0.5 else cx
        else:
            cx = w / 2 + rng.uniform(-1, 1) * max(0.0, (w - gw) / 2) * 0.9
        tilt = math.radians(rng.normal(0, 6))
        lobes = (int(rng.integers(5, 17)), rng.uniform(0.04, 0.2))
        outline = _star(
            rng,
            (cx, top + up * gh),
            (gw / 2, up * gh, (1 - up) * gh),
            power,
            lobes,
            tilt,
            rng.uniform(-0.15, 0.35),
        )
        poly = outline.astype(np.float32)
        hull = cv2.contourArea(cv2.convexHull(poly))
        solidity = cv2.contourArea(poly) / hull if hull > 0 else 0.0
        x0, z0 = outline.min(0)
        x1, z1 = outline.max(0)
        ok_aspect = 2.0 <= (min(x1, w) - max(x0, 0)) / (z1 - z0) <= 7.0
        if 0.68 <= solidity <= 0.975 and ok_aspect and z0 >= 0.1 * h and z1 <= 0.97 * h:
            return outline, float(z0), float(z1 - z0)
        best = (outline, float(z0), float(z1 - z0))
    if best is None:  # a plain lens
        outline = _star(rng, (w / 2, 0.4 * h), (0.3 * w, 0.05 * h, 0.08 * h), 2.0, (6, 0.0))
        return outline, float(outline[:, 1].min()), 0.13 * h
    return best


def _anatomy(
    rng: np.random.Generator,
    prng: np.random.Generator,
    w: int,
    h: int,
    devita: int,
    area_frac: float,
) -> _Anatomy:
    """Draw the FOV's anatomy (output px) for a de Vita grade and a gland area / FOV area.

    ``prng`` draws the pathology (foci, bands) alone: another grade of the same seed keeps the
    anatomy, the scatterers' settings and the framing, and changes only the parenchyma.
    """
    an = _Anatomy(w, h)
    outline, g_top, g_h = _gland_outline(rng, w, h, area_frac)
    an.gland = outline
    g_bot = g_top + g_h
    pad = 0.05 * w
    x0, x1 = -pad, w + pad
    unit = h / 400.0

    # Layers from the top, each an upper boundary; a later layer covers the earlier below it.
    skin_z = rng.uniform(0.0, 0.03) * h if rng.random() < 0.5 else 0.0
    an.layers.append((COUPLING, np.array([[x0, -5.0], [x1, -5.0]])))
    an.layers.append((SKIN, _spline_curve(rng, x0, x1, skin_z, 0.004 * h, 4)))
    dermis_z = skin_z + max(1.5, rng.uniform(0.006, 0.02) * h)
    an.layers.append((DERMIS, _spline_curve(rng, x0, x1, dermis_z, 0.004 * h, 4)))
    fat_z = dermis_z + rng.uniform(0.01, 0.04) * h
    an.layers.append((FAT, _spline_curve(rng, x0, x1, fat_z, 0.006 * h, 5)))
    fascia_z = max(fat_z + 0.02 * h, g_top - rng.uniform(0.01, 0.05) * h)
    fascia = _spline_curve(rng, x0, x1, fascia_z, 0.015 * h, int(rng.integers(3, 7)))
    an.layers.append((CONNECTIVE, fascia))
    if rng.random() < 0.85:
        an.lines.append((FASCIA, fascia, max(1.0, rng.uniform(0.5, 2.0) * unit), -1))
    if rng.random() < 0.8:  # muscle below the gland (or beside it, through the gland's depth)
        m_z = g_bot + rng.uniform(0.0, 0.06) * h if rng.random() < 0.65 else g_top + 0.4 * g_h
        muscle = _spline_curve(rng, x0, x1, m_z, 0.03 * h, int(rng.integers(3, 6)))
        an.layers.append((MUSCLE, muscle))
        deep_z = m_z + rng.uniform(0.08, 0.3) * h
        ang = rng.normal(0, 0.15)
        for _ in range(int(rng.integers(5, 25))):
            xa = rng.uniform(x0, x1)
            length = rng.uniform(0.1, 0.5) * w
            za = rng.uniform(m_z, deep_z)
            xs = np.linspace(xa, xa + length, 12)
            zs = za + (xs - xa) * math.tan(ang + rng.normal(0, 0.04))
            zs += rng.normal(0, 0.004 * h) * np.sin(np.linspace(0, 3, 12) + rng.uniform(0, 6))
            an.lines.append((STRIATION, np.stack([xs, zs], 1), max(1.0, unit), MUSCLE))
    else:
        deep_z = g_bot + rng.uniform(0.05, 0.25) * h
    an.layers.append((DEEP, _spline_curve(rng, x0, x1, deep_z, 0.03 * h, int(rng.integers(3, 6)))))
    # Septa in the fat (line scatterers, only where the fat is).
    for _ in range(int(rng.integers(1, 10))):
        xa = rng.uniform(x0, x1)
        length = rng.uniform(0.05, 0.45) * w
        curve = _spline_curve(rng, xa, xa + length, rng.uniform(fat_z, fascia_z), 0.01 * h, 3)
        curve[:, 1] += (curve[:, 0] - xa) * rng.normal(0, 0.2)
        an.lines.append((SEPTUM, curve, max(1.0, rng.uniform(0.4, 1.5) * unit), FAT))
    # Deep interfaces.
    for _ in range(int(rng.integers(0, 3))):
        curve = _spline_curve(rng, x0, x1, rng.uniform(min(deep_z, h), h + 1.0), 0.03 * h, 4)
        an.lines.append((FASCIA, curve, max(1.0, rng.uniform(1, 3) * unit), DEEP))

    # Vessels and lymph nodes outside the gland.
    for _ in range(int(rng.integers(0, 5))):
        r = rng.uniform(0.008, 0.03) * h
        c = (rng.uniform(0, w), rng.uniform(fat_z, h))
        shape = _star(rng, c, (r * rng.uniform(1, 2.2), r, r), 2.0, (5, 0.04), rng.normal(0, 0.2))
        an.blobs.append((VESSEL, shape))
    if rng.random() < 0.35:
        a = rng.uniform(0.03, 0.08) * w
        b = a * rng.uniform(0.35, 0.6)
        c = (rng.uniform(0.1, 0.9) * w, rng.uniform(fat_z + b, 0.92 * h))
        tilt = rng.normal(0, 0.2)
        node = _star(rng, c, (a, b, b), 2.0, (6, 0.05), tilt)
        if not _overlaps(node, outline, w, h):
            an.blobs.append((NODE, node))
            off = rng.uniform(-0.4, 0.4) * a
            hc = (c[0] + off * math.cos(tilt), c[1] + off * math.sin(tilt))
            hb = b * rng.uniform(0.12, 0.3)
            an.blobs.append(
                (HILUM, _star(rng, hc, (a * rng.uniform(0.3, 0.6), hb, hb), 2.0, (5, 0.05), tilt))
            )

    # Inside the gland: vessels (any grade), hypoechoic foci and fibrous bands by grade.
    gx0, gz0 = outline.min(0)
    gx1, gz1 = outline.max(0)
    gh = gz1 - gz0
    path = outline.astype(np.float32).reshape(-1, 1, 2)

    def point_inside(gen: np.random.Generator) -> tuple[float, float]:
        for _ in range(50):
            p = (float(gen.uniform(max(gx0, 0), min(gx1, w))), float(gen.uniform(gz0, gz1)))
            if cv2.pointPolygonTest(path, p, False) > 0:
                return p
        return float(outline[:, 0].mean()), float(outline[:, 1].mean())

    for _ in range(int(rng.integers(0, 4))):
        r = rng.uniform(0.03, 0.08) * gh
        shape = _star(
            rng,
            point_inside(rng),
            (r * rng.uniform(1, 2), r, r),
            2.0,
            (5, 0.04),
            rng.normal(0, 0.3),
        )
        an.inside.append((VESSEL, shape))
    gland_px = cv2.contourArea(outline.astype(np.float32))
    n_foci, r_lo, r_hi = foci_plan(prng, devita, gland_px, gh)
    for _ in range(n_foci):
        r = prng.uniform(r_lo, r_hi)
        c = point_inside(prng)
        shape = _star(
            prng,
            c,
            (r * prng.uniform(1.0, 1.6), r, r),
            prng.uniform(1.8, 2.4),
            (7, 0.12),
            prng.uniform(0, math.pi),
        )
        an.inside.append((FOCUS, shape))
        if devita == 3 and prng.random() < 0.5:  # confluent
            t = prng.uniform(0, 2 * math.pi)
            c2 = (c[0] + 1.2 * r * math.cos(t), c[1] + 1.2 * r * math.sin(t))
            an.inside.append((FOCUS, _star(prng, c2, (r, r, r), 2.0, (7, 0.12))))
    n_bands = int(prng.integers(2, 7)) if devita == 3 else int(devita == 2 and prng.random() < 0.3)
    for _ in range(n_bands):
        c = point_inside(prng)
        ang = prng.uniform(-1.3, 1.3)
        length = prng.uniform(0.3, 1.2) * gh
        s = np.linspace(-0.5, 0.5, 10)[:, None] * length
        pts = np.array(c) + s * np.array([math.cos(ang), math.sin(ang)])
        pts[:, 1] += prng.normal(0, 0.05 * gh) * np.sin(np.linspace(0, 3, 10) + prng.uniform(0, 6))
        an.bands.append(pts)

    # The capsule: a partial line along the outline, more often on the superficial side.
    if rng.random() < 0.85:
        n = len(outline)
        theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        knots = int(rng.integers(4, 12))
        vk = rng.normal(0, 1, knots + 1)
        vk[-1] = vk[0]
        keep = CubicSpline(np.linspace(0, 2 * np.pi, knots + 1), vk, bc_type="periodic")(theta)
        upper = outline[:, 1] < outline[:, 1].mean()
        keep = keep + upper * rng.uniform(0.0, 1.5) > rng.uniform(-1.5, 0.8)
        edges = np.flatnonzero(np.diff(np.r_[keep, keep[0]].astype(np.int8)))
        idx = np.roll(np.arange(n), -(edges[0] + 1) if edges.size else 0)
        kept = keep[idx]
        for seg in np.split(idx, np.flatnonzero(np.diff(kept.astype(np.int8))) + 1):
            if keep[seg[0]] and seg.size > 2:
                an.capsule.append(outline[seg])
        an.capsule_px = max(1.0, rng.uniform(0.5, 2.0) * unit)

    # The mandible (about half of the frames): a bright curve; its shadow is simulated.
    if rng.random() < 0.5:
        for _ in range(4):
            left = rng.random() < 0.5
            reach = rng.uniform(0.15, 0.5) * w
            z_edge = rng.uniform(max(gz0 + 0.55 * gh, 0.3 * h), 0.92 * h)
            xs = np.linspace(0.0, reach, 24)
            dz = rng.uniform(-0.1, 0.25) * h
            zs = z_edge + dz * (xs / reach) ** rng.uniform(1.0, 2.5) + rng.normal(0, 0.005 * h, 24)
            zs = cv2.GaussianBlur(zs[None, :].astype(np.float64), (5, 1), 0)[0]
            if not left:
                xs = w - 1 - xs
            bone = np.stack([xs, zs], 1)
            hidden = _shadow_limit(bone, w, h)
            gland = np.zeros((h, w), np.uint8)
            cv2.fillPoly(gland, [_fixed(outline)], 1, cv2.LINE_8, 3)
            zz = np.arange(h)[:, None]
            if (gland & (zz >= hidden[None, :])).sum() <= 0.3 * gland.sum():
                an.bone = bone
                an.bone_px = max(2.0, rng.uniform(0.008, 0.025) * h)
                break
    return an


def _fixed(points: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Points as int32 with 3 fractional bits (``cv2`` drawing with ``shift=3``)."""
    return np.round(points * scale * 8).astype(np.int32)


def _overlaps(a: np.ndarray, b: np.ndarray, w: int, h: int) -> bool:
    """Whether two closed outlines (px) overlap, with a 2 px margin."""
    ma = np.zeros((h, w), np.uint8)
    cv2.fillPoly(ma, [_fixed(a)], 1, cv2.LINE_8, 3)
    mb = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mb, [_fixed(b)], 1, cv2.LINE_8, 3)
    grown = np.asarray(cv2.dilate(ma, _SQUARE3, iterations=2), np.uint8)
    return bool((grown & mb).any())


def _shadow_limit(bone: np.ndarray, w: int, h: int, scale: float = 1.0) -> np.ndarray:
    """Per column (length ``w``) the depth below which the bone hides everything (inf: none)."""
    order = np.argsort(bone[:, 0])
    xs, zs = bone[order, 0] * scale, bone[order, 1] * scale
    cols = np.arange(w, dtype=np.float64)
    limit = np.interp(cols, xs, zs)
    return np.where((cols >= xs[0]) & (cols <= xs[-1]), limit, np.inf)


def _rasterise(an: _Anatomy, w: int, h: int) -> np.ndarray:
    """The tissue classes ``(h, w)`` uint8 of the anatomy drawn at ``w x h`` px."""
    sx, sz = w / an.w, h / an.h
    scale = np.array([sx, sz])
    labels = np.zeros((h, w), np.uint8)
    for cls, upper in an.layers:
        pts = upper * scale
        poly = np.concatenate([pts, [[pts[-1, 0], h + 10], [pts[0, 0], h + 10]]])
        cv2.fillPoly(labels, [_fixed(poly)], cls, cv2.LINE_8, 3)
    scratch = np.zeros((h, w), np.uint8)
    for cls, pts, thick, within in an.lines:
        t = max(1, int(round(thick * sz)))
        if within < 0:
            cv2.polylines(labels, [_fixed(pts * scale)], False, cls, t, cv2.LINE_8, 3)
            continue
        scratch[:] = 0
        cv2.polylines(scratch, [_fixed(pts * scale)], False, 1, t, cv2.LINE_8, 3)
        np.putmask(labels, (scratch > 0) & (labels == within), cls)
    gland = np.zeros((h, w), np.uint8)
    cv2.fillPoly(gland, [_fixed(an.gland * scale)], 1, cv2.LINE_8, 3)
    for cls, shape in an.blobs:
        scratch[:] = 0
        cv2.fillPoly(scratch, [_fixed(shape * scale)], 1, cv2.LINE_8, 3)
        np.putmask(labels, (scratch > 0) & (gland == 0), cls)
    np.putmask(labels, gland > 0, GLAND)
    inner = np.zeros((h, w), np.uint8)
    for cls, shape in an.inside:
        cv2.fillPoly(inner, [_fixed(shape * scale)], cls, cv2.LINE_8, 3)
    for pts in an.bands:
        t = max(1, int(round(h / 300.0)))
        cv2.polylines(inner, [_fixed(pts * scale)], False, BAND, t, cv2.LINE_8, 3)
    np.putmask(labels, (inner > 0) & (gland > 0), inner)
    for pts in an.capsule:
        t = max(1, int(round(an.capsule_px * sz)))
        cv2.polylines(labels, [_fixed(pts * scale)], False, CAPSULE, t, cv2.LINE_8, 3)
    if an.bone is not None:
        t = max(2, int(round(an.bone_px * sz)))
        cv2.polylines(labels, [_fixed(an.bone * scale)], False, BONE, t, cv2.LINE_8, 3)
    return labels


# ----------------------------------------------------------------------------------------------
# the pulse-echo simulation


def _psf(sigma_z: float, sigma_x: float, wavelength: float) -> tuple[np.ndarray, ...]:
    """Separable analytic PSF: lateral Gaussian, and the real / imaginary axial kernels.

    The axial kernel is a Gaussian-windowed complex carrier ``exp(2 pi i z / wavelength)``: the
    analytic signal of the RF pulse, so the modulus of the echo it makes is the envelope.
    """
    rx = max(1, int(math.ceil(3 * sigma_x)))
    rz = max(1, int(math.ceil(3 * sigma_z)))
    x = np.arange(-rx, rx + 1, dtype=np.float64)
    z = np.arange(-rz, rz + 1, dtype=np.float64)
    gx = np.exp(-0.5 * (x / sigma_x) ** 2)
    gz = np.exp(-0.5 * (z / sigma_z) ** 2)
    gx /= gx.sum()
    gz /= np.sqrt((gz**2).sum())
    phase = 2 * np.pi * z / wavelength
    return (
        gx.astype(np.float32)[:, None],
        (gz * np.cos(phase)).astype(np.float32)[:, None],
        (gz * np.sin(phase)).astype(np.float32)[:, None],
    )


def _simulate(
    rng: np.random.Generator, labels: np.ndarray, psf_px: tuple[float, float, float]
) -> np.ndarray:
    """The B-mode image ``(h, w)`` uint8 of a label map: scatterers, loss, PSF, envelope, log.

    Args:
        rng: the frame's random stream.
        labels: ``(h, w)`` uint8 tissue classes at the simulation resolution.
        psf_px: ``(sigma_z, sigma_x, wavelength)`` of the PSF at that resolution, px.
    """
    h, w = labels.shape
    dens = np.zeros(256, np.uint16)
    sigma = np.zeros(256, np.float32)
    coherent = np.zeros(256, np.float32)
    loss = np.zeros(256, np.float32)
    for cls, t in TISSUES.items():
        dens[cls] = int(rng.uniform(*t.density) * 65535)
        sigma[cls] = rng.uniform(*t.amplitude)
        coherent[cls] = rng.uniform(*t.coherent)
        loss[cls] = rng.uniform(*t.attenuation) / h
    sigma[GLAND] = 1.0
    loss *= np.float32(rng.uniform(1.0, 2.0))  # attenuation grows with the probe's frequency
    # Bone: the echo loses 45-70 dB across it (its acoustic shadow).
    bone_rows = max(1.0, float((labels == BONE).any(axis=1).sum()) / 3.0) if coherent[BONE] else 1.0
    loss[BONE] = rng.uniform(45.0, 70.0) / bone_rows

    present = np.frombuffer(rng.bytes(h * w * 2), np.uint16).reshape(h, w) < cv2.LUT(labels, dens)
    present_f = present.astype(np.float32)
    att = cv2.LUT(labels, loss)
    depth_loss = np.cumsum(att, axis=0, dtype=np.float32)
    depth_loss -= 0.5 * att
    gain = cv2.exp(depth_loss * np.float32(-math.log(10) / 20))  # two-way amplitude factor
    gland_level = math.sqrt(dens[GLAND] / 65535.0)
    noise = gland_level * 10 ** (-rng.uniform(42.0, 66.0) / 20)
    amplitude = rng.standard_normal((h, w), dtype=np.float32)
    factor = cv2.multiply(cv2.multiply(present_f, cv2.LUT(labels, sigma)), gain)
    scat = np.asarray(cv2.multiply(amplitude, factor + np.float32(noise)), np.float32)
    scat += cv2.multiply(cv2.multiply(present_f, cv2.LUT(labels, coherent)), gain)

    # Envelope detection, compounded over 1-3 looks at shifted centre frequencies (frequency
    # compounding: each look's speckle differs, their mean intensity has fewer dark dips).
    sigma_z, sigma_x, wavelength = psf_px
    looks = int(rng.choice(3, p=(0.35, 0.35, 0.3))) + 1
    spread = rng.uniform(0.15, 0.35)
    intensity = np.zeros((h, w), np.float32)
    for i in range(looks):
        shift = 1.0 + spread * (i - (looks - 1) / 2)
        gx, gz_re, gz_im = _psf(sigma_z / shift**0.5, sigma_x, max(2.0, wavelength / shift))
        re = cv2.sepFilter2D(scat, cv2.CV_32F, gx, gz_re, borderType=cv2.BORDER_REFLECT)
        im = cv2.sepFilter2D(scat, cv2.CV_32F, gx, gz_im, borderType=cv2.BORDER_REFLECT)
        intensity += cv2.add(cv2.multiply(re, re), cv2.multiply(im, im))
    np.maximum(intensity, 1e-18, out=intensity)
    db = np.asarray(cv2.log(intensity * np.float32(1.0 / looks)), np.float32)
    db *= np.float32(10 / math.log(10))

    # TGC: compensates part of the mean loss with depth, with the sonographer's slider wiggle.
    mean_loss = depth_loss[:, :: max(1, w // 64)].mean(axis=1)
    knots = rng.uniform(-5.0, 5.0, 5)
    tgc = rng.uniform(0.2, 0.8) * mean_loss + np.interp(np.linspace(0, 4, h), np.arange(5), knots)
    db += tgc.astype(np.float32)[:, None]

    # Log compression to 8 bit: the gland's median echo lands at a random grey.
    gland = labels == GLAND
    sample = db[::3, ::3][gland[::3, ::3]]
    ref = float(np.median(sample)) if sample.size else float(np.median(db))
    # Log compression (dynamic range) then the scanner's grey map, a power curve that lifts the
    # speckle's bright grains; the gland's median echo lands at a random grey.
    dr = rng.uniform(40.0, 72.0)
    gamma = rng.uniform(0.9, 2.4)
    target = rng.uniform(40.0, 120.0)
    t_ref = (target / 255.0) ** (1.0 / gamma)
    grey = (db - ref) * np.float32(255.0 / dr) + np.float32(255.0 * t_ref)
    np.clip(grey, 0, 255, out=grey)
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    return cv2.LUT(grey.astype(np.uint8), lut)


# ----------------------------------------------------------------------------------------------
# framing


def _draw_size(rng: np.random.Generator) -> tuple[int, int, bool]:
    """A frame size ``(width, height)`` and whether the FOV sits inside black margins."""
    r = rng.random()
    if r < 0.4:
        w, h = ((921, 641), (781, 365), (908, 584), (606, 459))[int(rng.integers(4))]
        return w, h, bool(rng.random() < 0.5)
    if r < 0.65:
        w = int(rng.integers(800, 1281))
        return w, int(w / rng.uniform(1.44, 1.47)), True
    w = int(rng.integers(360, 1001))
    return w, int(w / rng.uniform(1.0, 2.2)), False


def _annotate(
    rng: np.random.Generator, img: np.ndarray, fov: tuple[int, int, int, int], framed: bool
) -> None:
    """A little burned-in text: the gland label and a depth scale (numbers in the margin)."""
    h, w = img.shape
    x, y, fw, fh = fov
    scale = max(0.25, h / 900.0)
    grey = int(rng.uniform(150, 256))
    if rng.random() < 0.75:
        label = LABELS[int(rng.integers(len(LABELS)))]
        org = (
            (x + int(0.03 * fw), y + fh - int(0.03 * fh))
            if not framed
            else (x, min(h - 3, y + fh + int(22 * scale)))
        )
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, grey, 1, cv2.LINE_AA)
    if rng.random() < 0.7:
        cm = int(rng.integers(3, 6))
        for i in range(cm + 1):
            ty = y + int(i * (fh - 1) / cm)
            if framed and x + fw + 30 * scale < w:
                cv2.line(img, (x + fw + 2, ty), (x + fw + int(8 * scale) + 2, ty), grey, 1)
                cv2.putText(
                    img,
                    str(i),
                    (x + fw + int(12 * scale), ty + int(5 * scale)),
                    cv2.FONT_HERSHEY_PLAIN,
                    scale,
                    grey,
                    1,
                )
            else:
                cv2.line(img, (x + fw - 1, ty), (x + fw - 1 - int(8 * scale), ty), grey, 1)
    if framed and rng.random() < 0.6:
        text = ("L12 10MHz", "LINEAR 13.0", "SP 8-18", "L15 HD")[int(rng.integers(4))]
        cv2.putText(
            img, text, (4, max(10, int(18 * scale))), cv2.FONT_HERSHEY_PLAIN, scale * 1.2, grey, 1
        )


def render(
    seed: int, *, size: tuple[int, int] | None = None, devita: int | None = None
) -> SynthFrame:
    """One physics-style SGUS frame (scatterers, PSF, envelope, log compression) with its mask.

    Args:
        seed: non-negative integer; the frame is a pure function of ``(seed, size, devita)``.
        size: ``(width, height)`` of the frame; None draws a realistic one (the real set's
            scanner sizes, raw screenshots, or FOV-only crops of aspect 1.0-2.2).
        devita: de Vita grade 0-3; None draws one with the real set's frequencies (the other
            random choices do not depend on whether it was given).

    Returns:
        A :class:`SynthFrame` with ``family="scatter"``.

    Raises:
        ValueError: a size below 32 px a side or a grade outside 0-3.
    """
    check_request(size, devita)
    rng = np.random.default_rng([_SALT, int(seed)])
    drawn = draw_devita(rng)
    grade = drawn if devita is None else int(devita)
    w, h, framed = _draw_size(rng)
    framed_given = bool(rng.random() < 0.4)
    if size is not None:
        w, h, framed = int(size[0]), int(size[1]), framed_given
    if framed:
        fw, fh = int(w * rng.uniform(0.6, 0.88)), int(h * rng.uniform(0.65, 0.9))
        fx = int(rng.uniform(0.02, 0.98) * (w - fw))
        fy = int(rng.uniform(0.1, 0.9) * (h - fh))
        area = rng.uniform(0.045, 0.2) * (w * h) / (fw * fh)
    else:
        fx, fy, fw, fh = 0, 0, w, h
        area = math.exp(rng.uniform(math.log(0.08), math.log(0.38)))
    area = float(np.clip(area, 0.06, min(0.42, 0.25 * fw / fh)))
    anatomy = _anatomy(rng, np.random.default_rng([_SALT, int(seed), 1]), fw, fh, grade, area)
    if anatomy.gland is None:
        raise ValueError("the drawn anatomy has no gland outline")

    # The simulation grid: the FOV's size, or coarser (then interpolated, as scan conversion does).
    sim = 1.0 if rng.random() < 0.5 else rng.uniform(0.6, 1.0)
    sw, sh = max(24, int(round(fw * sim))), max(24, int(round(fh * sim)))
    labels = _rasterise(anatomy, sw, sh)
    sigma_z = math.exp(rng.uniform(math.log(0.002), math.log(0.0065))) * fh
    sigma_x = min(sigma_z * rng.uniform(1.2, 3.2), 0.014 * fh)  # a beam finer than the foci
    wavelength = sigma_z / rng.uniform(0.45, 1.0)
    k = sh / fh
    psf = (max(0.6, sigma_z * k), max(0.6, sigma_x * k), max(2.2, wavelength * k))
    image = _simulate(rng, labels, psf)
    if (sw, sh) != (fw, fh):
        image = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_LINEAR)

    gland = np.zeros((fh, fw), np.uint8)
    cv2.fillPoly(gland, [_fixed(anatomy.gland)], 1, cv2.LINE_8, 3)
    mask_fov = gland.astype(bool)
    if anatomy.bone is not None:
        limit = _shadow_limit(anatomy.bone, fw, fh) - anatomy.bone_px / 2
        mask_fov &= np.arange(fh)[:, None] < limit[None, :]
    frame = np.zeros((h, w), np.uint8)
    frame[fy : fy + fh, fx : fx + fw] = image
    mask = np.zeros((h, w), bool)
    mask[fy : fy + fh, fx : fx + fw] = clean_mask(mask_fov)
    if framed or rng.random() < 0.4:
        _annotate(rng, frame, (fx, fy, fw, fh), framed)
    return SynthFrame(
        image=frame, mask=mask, devita=grade, fov=(fx, fy, fw, fh), family=FAMILY, seed=int(seed)
    )
