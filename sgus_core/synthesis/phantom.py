"""The synthetic SGUS generator: raw scanner screenshots of salivary glands with known labels.

No real SGUS data ships with the project, so the demo and the shipped models use phantoms that
look like the real frames described in ``docs/SGUS.md`` ("What real SGUS frames look like"):

* a **raw scanner screenshot**: black margins and uniform dark-grey UI panels (hospital name and
  date, imaging parameters, a greyscale bar, a depth scale with ticks) around the scanner's field
  of view (FOV), a sub-rectangle of the frame;
* inside the FOV, **layered anatomy** from the top: bright skin line, dark subcutaneous fat with
  bright septa, the gland (a long flat lens, finely granular, *not* brighter than its border zone
  but told apart by texture, shape and a bright fascial capsule line), striated muscle, deep
  structures; strong loss of brightness with depth; the mandible as a bright curve with a black
  acoustic shadow; vessels as round anechoic spots (present at every grade); a burned-in label;
* **speckle** from band-limited complex scatterer fields (envelopes compounded over a few looks,
  as scanners' compounding does), grains stretched sideways as a linear probe makes them, over
  the log-compressed echo level;
* **pathology** after de Vita: 0 homogeneous; 1 a few small hypoechoic foci; 2 multiple
  hypoechoic areas; 3 large confluent hypoechoic areas and bright fibrous bands. OMERACT and the
  five Hocevar items are drawn consistent with what is rendered.

Everything random comes from a ``numpy.random.Generator`` seeded by the arguments, so a frame is a
pure function of ``(seed, devita, gland, side, scanner, config)``. ``python -m sgus_core.synthesis.phantom``
writes a dataset in the import format of ``docs/CLI.md``. ``sgus_core.synthesis.frame_stats`` measures the
frames the way ``docs/SGUS.md`` measured the real ones.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sgus_core.synthesis.doppler import add_doppler

# Display chain (tuned with ``python -m sgus_core.synthesis.frame_stats`` against the docs/SGUS.md figures).
TOP_DB = 33.0  # echo level (dB, gland at the skin = 0 dB) drawn white at 60 dB dynamic range
GAMMA = 1.2  # the grey map's lower half: presses dark levels down
KNEE = 175.0  # the grey map's shoulder: highlights above it are compressed, not clipped
ATTENUATION_DB_PER_MM = 0.18  # brightness loss with depth, net of the scanner's TGC
SPECKLE_P = 1.3  # exponent of the compounded speckle amplitude: the speckle contrast
COMPOUND_LOOKS = 3  # independent speckle looks averaged (spatial / frequency compounding)
GRAIN_PX = (6.7, 2.2)  # speckle PSF sigmas (lateral, axial) at native size: HWHM about 9 x 3 px
NOISE_FLOOR = 0.02  # electronic noise, echo amplitude (gland = 1)
PIXEL_NOISE = 1.5  # grey levels of per-pixel noise (digitisation, export)

# Echogenicity (linear echo amplitude, gland = 1) of the tissues and interfaces.
ECHO = {
    "gel": 0.3,
    "skin": 3.2,
    "dermis": 1.1,
    "fat": 0.35,
    "septum": 2.6,
    "fascia": 1.7,
    "capsule": 4.0,
    "deep_capsule": 2.6,
    "gland": 1.0,
    "connective": 1.5,
    "muscle": 0.32,
    "striation": 3.6,
    "deep": 1.0,
    "bone": 7.0,
    "fibrosis": 3.0,
    "vessel_wall": 1.4,
}
# The generator draws glands and sides in this order and seeds by their index in it: changing
# it would change every phantom, so it is kept here rather than taken from the vocabulary.
GLANDS = ("parotid", "submandibular")
SIDES = ("R", "L")
LABELS_HEADER = ("image", "mask", "patient", "gland", "side", "devita", "omeract", "spacing_mm")
DOPPLER_COLUMN = "doppler"  # added to LABELS_HEADER when a dataset has Doppler frames
# OMERACT Doppler grades 1-3 of a phantom Doppler frame (a grade-0 gland shows no colour at all).
DOPPLER_GRADE_P = (0.45, 0.35, 0.20)

# Burned-in gland labels as different scanners' annotation presets spell them.
GLAND_LABELS = {
    ("parotid", "R"): ("PAROTID GLAND RIGHT", "PAROTID RT", "R PAROTID", "PG-R"),
    ("parotid", "L"): ("PAROTID GLAND LEFT", "PAROTID LT", "L PAROTID", "PG-L"),
    ("submandibular", "R"): ("SMG RIGHT", "SUBMANDIBULAR RT", "R SMG", "SMG-R"),
    ("submandibular", "L"): ("SMG LEFT", "SUBMANDIBULAR LT", "L SMG", "SMG-L"),
}
# Fake institutions: every one says PHANTOM so that no reader mistakes a frame for a patient's.
HOSPITALS = ("PHANTOM HOSPITAL", "PHANTOM UNIVERSITY CLINIC", "PHANTOM MEDICAL CENTRE")

# Patient-level severity (level 0-3) and each gland's de Vita grade given the level: chosen so that
# glands of one patient agree mostly and the overall de Vita distribution is close to the real set
# (0:110, 1:28, 2:55, 3:32 of 225 = 0.49, 0.12, 0.24, 0.14).
PATIENT_LEVEL_P = (0.48, 0.14, 0.22, 0.16)
GRADE_GIVEN_LEVEL = (
    (0.93, 0.07, 0.00, 0.00),
    (0.30, 0.45, 0.25, 0.00),
    (0.00, 0.12, 0.70, 0.18),
    (0.00, 0.00, 0.35, 0.65),
)
# OMERACT given de Vita: the same reading of the gland, borderline cases one grade up.
OMERACT_GIVEN_DEVITA = (
    (0.85, 0.15, 0.00, 0.00),
    (0.00, 0.80, 0.20, 0.00),
    (0.00, 0.00, 1.00, 0.00),
    (0.00, 0.00, 0.00, 1.00),
)


@dataclass(frozen=True)
class ScannerLayout:
    """Where a scanner puts its field of view and panels, as fractions of its screenshot.

    Attributes:
        name: key of ``SCANNERS`` (its native screenshot size).
        size: native screenshot size ``(width, height)`` in px.
        fov: field of view ``(x, y, width, height)`` as fractions of the screenshot.
        header: height of the top panel, fraction of the screenshot height.
        side_panel: ``(x0, x1)`` of the parameter panel, fractions of the width.
        footer: height of the bottom panel, fraction of the height (0: none).
        panel_grey: grey level of the panels.
        depth_mm: range of imaging depths the sonographers chose on it.
        margin: black image area around the FOV ``(left, top, right, bottom)``, fractions of
            the width and height; the rest of the screen is panel grey.
        speckle: the scanner's speckle contrast (its speckle reduction), relative.
    """

    name: str
    size: tuple[int, int]
    fov: tuple[float, float, float, float]
    header: float
    side_panel: tuple[float, float]
    footer: float
    panel_grey: int
    depth_mm: tuple[float, float]
    margin: tuple[float, float, float, float]
    speckle: float = 1.0


SCANNERS: dict[str, ScannerLayout] = {
    "800x555": ScannerLayout(
        "800x555", (800, 555), (0.175, 0.085, 0.70, 0.835), 0.07, (0.0, 0.16), 0.0, 55,
        (36, 50), (0.01, 0.012, 0.05, 0.06), 1.15,
    ),
    "1024x768": ScannerLayout(
        "1024x768", (1024, 768), (0.06, 0.08, 0.72, 0.80), 0.065, (0.835, 1.0), 0.055, 59,
        (40, 55), (0.04, 0.012, 0.05, 0.06), 0.8,
    ),
    "1280x872": ScannerLayout(
        "1280x872", (1280, 872), (0.16, 0.08, 0.685, 0.80), 0.065, (0.0, 0.145), 0.06, 51,
        (42, 60), (0.012, 0.012, 0.05, 0.055), 1.0,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class PhantomConfig:
    """The generator's knobs; the defaults give the realistic look of ``docs/SGUS.md``.

    Every knob has a visible effect, so robustness tests can push frames beyond the training range.

    Attributes:
        frame_size: screenshot ``(width, height)`` in px; ``None`` keeps the scanner's native size
            (800x555 to 1280x872). Smaller sizes render the same layout faster (for training).
        scanner: a key of ``SCANNERS``; ``None`` lets the seed pick one (one per patient).
        gain_db: receiver gain added to every echo, in dB (+6 dB is about +25 grey levels).
        dynamic_range_db: echo range mapped onto 0-255 (smaller: harsher contrast).
        depth_attenuation: multiplies the loss of brightness with depth (0: none).
        gland_scale: multiplies the gland's width and height.
        gland_aspect: multiplies the gland's width/height ratio (area kept).
        speckle_size: multiplies the speckle grain size (lateral and axial).
        noise: multiplies the electronic noise floor (grey haze in shadows, vessels and the
            deep field) and the per-pixel noise.
        lesion_contrast: multiplies how dark the hypoechoic foci are (0: invisible pathology).
        show_text: draw burned-in text (panels' text, gland label, depth numbers).
        show_ui: draw the panels and depth scale around the FOV (else black margins only).
        crop_to_fov: return only the field of view (the frame is then the FOV's size).
    """

    frame_size: tuple[int, int] | None = None
    scanner: str | None = None
    gain_db: float = 0.0
    dynamic_range_db: float = 60.0
    depth_attenuation: float = 1.0
    gland_scale: float = 1.0
    gland_aspect: float = 1.0
    speckle_size: float = 1.0
    noise: float = 1.0
    lesion_contrast: float = 1.0
    show_text: bool = True
    show_ui: bool = True
    crop_to_fov: bool = False

    def __post_init__(self) -> None:
        if self.frame_size is not None:
            w, h = self.frame_size
            if w < 96 or h < 64:
                raise ValueError(f"frame_size {self.frame_size} is below the minimum (96, 64)")
        if self.scanner is not None and self.scanner not in SCANNERS:
            raise ValueError(f"unknown scanner {self.scanner!r}; choose from {sorted(SCANNERS)}")
        for name in ("gland_scale", "gland_aspect", "speckle_size", "dynamic_range_db"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("depth_attenuation", "noise", "lesion_contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True, eq=False)
class PhantomFrame:
    """One synthetic frame and its ground truth.

    Attributes:
        image: ``(H, W)`` uint8 grey screenshot.
        mask: ``(H, W)`` bool, True on the gland (inside ``fov``).
        devita: de Vita grade 0-3.
        omeract: OMERACT grade 0-3.
        hocevar: the five Hocevar items (echogenicity 0-1, inhomogeneity 0-3, hypoechoic areas
            0-3, hyperechoic reflections 0-3, border clarity 0-2).
        gland: ``"parotid"`` or ``"submandibular"``.
        side: ``"L"`` or ``"R"``.
        patient: patient id.
        spacing_mm: pixel spacing (mm per px, square pixels).
        fov: field of view ``(x, y, width, height)`` in frame px.
        seed: the seed it was generated from.
        scanner: the layout's key in ``SCANNERS``.
        lesion_fraction: fraction of the gland covered by hypoechoic foci as drawn (0-1).
        rgb: for a Doppler frame, the (H, W, 3) uint8 RGB screenshot (``image`` with the flow
            painted in colour, what is written to disk); ``None`` for a greyscale frame.
        doppler_signal: (H, W) bool, where colour was painted (the truth); ``None`` if greyscale.
        doppler_grade: the OMERACT Doppler grade 1-3 the flow was drawn for; ``None`` if greyscale.
    """

    image: np.ndarray
    mask: np.ndarray
    devita: int
    omeract: int
    hocevar: tuple[int, int, int, int, int]
    gland: str
    side: str
    patient: str
    spacing_mm: float
    fov: tuple[int, int, int, int]
    seed: int
    scanner: str = "800x555"
    lesion_fraction: float = 0.0
    rgb: np.ndarray | None = None
    doppler_signal: np.ndarray | None = None
    doppler_grade: int | None = None

    @property
    def vascular_fraction(self) -> float | None:
        """The painted share of the gland, 0-1, for a Doppler frame; ``None`` if greyscale."""
        if self.doppler_signal is None:
            return None
        area = int(np.count_nonzero(self.mask))
        return float(np.count_nonzero(self.doppler_signal & self.mask)) / area if area else 0.0

    @property
    def screenshot(self) -> np.ndarray:
        """What a scanner would export: ``rgb`` for a Doppler frame, else the grey ``image``."""
        return self.image if self.rgb is None else self.rgb

    @property
    def name(self) -> str:
        """File stem, e.g. ``"P00007_parotid_R"``."""
        return f"{self.patient}_{self.gland}_{self.side}"


# ----------------------------------------------------------------------------------------------
# small random building blocks


def _mean_power(looks: int, q: float) -> float:
    """E[X**q] for X the mean of ``looks`` unit-mean exponential intensities (Gamma(k, 1/k))."""
    return math.gamma(looks + q) / math.gamma(looks) / looks**q


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Smooth noise ``(h, w)`` float32, about unit variance, with about ``cells`` (rows, cols) blobs.

    A coarse Gaussian grid upsampled by cubic interpolation; the margin cut off hides the
    interpolation's edge effects.
    """
    grid = rng.standard_normal((cells[0] + 3, cells[1] + 3)).astype(np.float32)
    size = (w + 2 * w // cells[1], h + 2 * h // cells[0])
    big = cv2.resize(grid, size, interpolation=cv2.INTER_CUBIC)
    y0, x0 = h // cells[0], w // cells[1]
    return big[y0 : y0 + h, x0 : x0 + w]


def _wobble(
    rng: np.random.Generator, x: np.ndarray, amp: float, periods: tuple[float, ...]
) -> np.ndarray:
    """A smooth 1-D curve over ``x``: a sum of sines with random phases and amplitudes."""
    out = np.zeros(x.shape, np.float32)
    for period in periods:
        out += amp * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * x / period + rng.uniform(0, 6.3))
    return out


def _random_walk_line(
    rng: np.random.Generator, x0: float, x1: float, z0: float, slope_sd: float, step: float
) -> np.ndarray:
    """Points ``(x, z)`` of a gently wandering, mostly horizontal line (int32, for cv2)."""
    n = max(2, int(abs(x1 - x0) / step) + 1)
    xs = np.linspace(x0, x1, n)
    slope = rng.normal(0, slope_sd) + np.cumsum(rng.normal(0, slope_sd * 0.5, n))
    zs = z0 + np.cumsum(slope * step)
    return np.stack([xs, zs], axis=1).round().astype(np.int32)


# ----------------------------------------------------------------------------------------------
# labels


@dataclass(frozen=True)
class _Pathology:
    """How the gland's parenchyma is drawn for its grades (internal rendering plan)."""

    coverage: float  # fraction of the gland the hypoechoic foci should cover
    radius_mm: tuple[float, float]  # range of the foci's radii
    confluent: bool  # foci come in touching pairs (grade 3)
    n_bands: int  # bright fibrous bands
    n_spots: int  # small hyperechoic reflections
    inhomogeneity: float  # amplitude of the slow echo variation inside the gland
    echo_factor: float  # overall gland echogenicity (Hocevar item 1 = 1: decreased)
    border: int  # Hocevar border clarity 0-2: how bright the capsule line is
    items: tuple[int, int, int]  # Hocevar echogenicity, inhomogeneity, hyperechoic reflections


def _draw_grades(rng: np.random.Generator, devita: int) -> tuple[int, _Pathology]:
    """OMERACT grade and the rendering plan of the pathology for a de Vita grade."""
    omeract = int(rng.choice(4, p=OMERACT_GIVEN_DEVITA[devita]))
    upgraded = omeract > devita  # a borderline gland: drawn a little more inhomogeneous
    coverage = (0.0, rng.uniform(0.03, 0.08), rng.uniform(0.1, 0.2), rng.uniform(0.26, 0.42))
    n_bands = int(rng.integers(4, 9)) if devita == 3 else int(devita == 2 and rng.random() < 0.3)
    n_spots = int(rng.integers(6, 20)) if devita >= 2 else int(rng.integers(0, 3))
    echo_item = int(rng.random() < (0.0, 0.05, 0.4, 0.7)[devita])
    border_p = ((0.9, 0.1, 0.0), (0.75, 0.25, 0.0), (0.25, 0.65, 0.1), (0.0, 0.5, 0.5))[devita]
    reflections = n_bands + n_spots // 8
    hyper_item = 0 if reflections == 0 else 1 if reflections <= 2 else 2 if reflections <= 5 else 3
    plan = _Pathology(
        coverage=coverage[devita] + (0.03 if devita == 1 and upgraded else 0.0),
        radius_mm=((0.0, 0.0), (0.5, 1.0), (0.7, 1.6), (1.0, 2.6))[devita],
        confluent=devita == 3,
        n_bands=n_bands,
        n_spots=n_spots,
        inhomogeneity=(0.04, 0.10, 0.17, 0.24)[devita] + (0.06 if upgraded else 0.0),
        echo_factor=0.85 if echo_item else 1.0,
        border=int(rng.choice(3, p=border_p)),
        items=(echo_item, min(3, devita + int(devita == 0 and upgraded)), hyper_item),
    )
    return omeract, plan


def _hocevar(plan: _Pathology, lesion_fraction: float) -> tuple[int, int, int, int, int]:
    """The five Hocevar items; "hypoechoic areas" is read from the foci as drawn."""
    if plan.coverage <= 0:
        hypo = 0
    else:
        hypo = 1 if lesion_fraction < 0.08 else 2 if lesion_fraction < 0.22 else 3
    echo, inhom, hyper = plan.items
    return (echo, inhom, hypo, hyper, plan.border)


# ----------------------------------------------------------------------------------------------
# the field of view


def _gland_geometry(
    rng: np.random.Generator,
    parotid: bool,
    fw: int,
    fh: int,
    frame_w: int,
    cfg: PhantomConfig,
    bone_side: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each column's top and bottom of the gland lens (float32, length ``fw``; bottom NaN outside).

    Sizes follow the docs/SGUS.md figures as fractions of the screenshot: width about 0.59 of the
    frame's width, width/height about 3.4 (parotids flatter than submandibular glands).
    """
    width_frac = float(np.clip(rng.normal(0.63 if parotid else 0.57, 0.05), 0.47, 0.74))
    aspect = float(np.clip(np.exp(rng.normal(np.log(4.4 if parotid else 3.3), 0.2)), 2.4, 6.5))
    # gland_aspect stretches the lens at constant area (width * sqrt(k), height / sqrt(k)).
    gw = width_frac * frame_w * cfg.gland_scale * np.sqrt(cfg.gland_aspect)
    gh = min(gw / (aspect * cfg.gland_aspect), 0.42 * fh)
    top0 = fh * (rng.uniform(0.12, 0.21) if parotid else rng.uniform(0.16, 0.26))
    if top0 + gh * 1.15 > 0.86 * fh:
        top0 = max(0.05 * fh, 0.86 * fh - gh * 1.15)
    shift = rng.uniform(-0.07, 0.07) * fw
    if not parotid and bone_side is not None:
        # The submandibular gland sits beside the mandible, away from the bone's shadow.
        shift = (0.09 + rng.uniform(0, 0.05)) * fw * (1 if bone_side == "left" else -1)
    x = np.arange(fw, dtype=np.float32)
    t = (x - (fw / 2 + shift)) / (gw / 2)
    p = rng.uniform(0.45, 0.75) if parotid else rng.uniform(0.6, 0.95)
    skew = rng.uniform(-0.35, 0.35)
    tc = np.clip(t, -1, 1)
    profile = np.power(np.clip(1 - tc**2, 0, 1), p) * (1 + skew * tc)
    profile /= profile.max()
    curvature = rng.uniform(0.05, 0.3) * gh
    top = top0 + curvature * np.minimum(t**2, 1.6) + _wobble(rng, x, 0.035 * gh, (fw / 1.7, fw / 4))
    bottom = top + gh * profile + _wobble(rng, x, 0.05 * gh, (fw / 2.3, fw / 5.5)) * profile
    bottom = np.where(np.abs(t) < 1, bottom, np.nan)
    return top.astype(np.float32), bottom.astype(np.float32)


def _draw_lines(
    canvas: np.ndarray,
    rng: np.random.Generator,
    n: int,
    x_range: tuple[float, float],
    z_range: tuple[float, float],
    length: tuple[float, float],
    slope_sd: float,
    thickness: int,
) -> None:
    """Draw ``n`` wandering, mostly horizontal lines of random brightness onto a uint8 canvas."""
    for _ in range(n):
        x0 = rng.uniform(*x_range)
        pts = _random_walk_line(
            rng, x0, x0 + rng.uniform(*length), rng.uniform(*z_range), slope_sd, 6
        )
        cv2.polylines(canvas, [pts], False, int(rng.integers(120, 256)), thickness)


@dataclass(frozen=True)
class _FovRequest:
    """What :func:`_render_fov` draws: the gland, its pathology, the FOV's size and the display."""

    gland: str  # "parotid" or "submandibular"
    plan: _Pathology  # how the parenchyma is drawn
    fw: int  # FOV width, px
    fh: int  # FOV height, px
    frame_w: int  # the whole screenshot's width, px (the gland's size is a fraction of it)
    spacing: float  # mm per px
    grain: float  # speckle grain size relative to the scanner's native screenshot
    speckle_scale: float  # the scanner's speckle contrast, relative
    cfg: PhantomConfig

    @property
    def parotid(self) -> bool:
        """Whether the gland is a parotid (else a submandibular gland)."""
        return self.gland == "parotid"

    @property
    def px_per_mm(self) -> float:
        """Pixels per millimetre."""
        return 1.0 / self.spacing

    @property
    def unit(self) -> float:
        """Line-width unit: 460 px is the 800x555 scanner's FOV height."""
        return self.fh / 460.0

    @property
    def grain_sigmas(self) -> tuple[float, float]:
        """The speckle PSF's sigmas ``(lateral, axial)`` in px."""
        return max(0.5, GRAIN_PX[0] * self.grain), max(0.35, GRAIN_PX[1] * self.grain)


@dataclass(frozen=True, eq=False)
class _FovAnatomy:
    """Where the tissues lie in the FOV, in px from its top (``(1, fw)`` rows broadcast over z)."""

    col: np.ndarray  # (fw,) float32 column index
    z: np.ndarray  # (fh, 1) float32 row index
    bone_side: str | None  # "left" or "right": the mandible's side; None: no bone in view
    top: np.ndarray  # (fw,) the gland's top per column
    bottom: np.ndarray  # (fw,) the gland's bottom per column (= top outside the gland)
    inside_cols: np.ndarray  # (fw,) bool: the columns the gland spans
    mask: np.ndarray  # (fh, fw) bool: the gland
    skin: np.ndarray  # (1, fw) the skin line
    skin_t: float  # the skin line's thickness
    fat_top: np.ndarray  # (1, fw) the subcutaneous fat's top (below the dermis)
    fascia_top: np.ndarray  # (1, fw) the superficial fascia's top (SMAS / platysma)
    muscle_top: np.ndarray  # (fw,)
    muscle_bot: np.ndarray  # (fw,)

    @property
    def x(self) -> np.ndarray:
        """``(1, fw)`` column index."""
        return self.col[None, :]

    @property
    def fat(self) -> np.ndarray:
        """``(fh, fw)`` bool: the subcutaneous fat."""
        return (self.z >= self.fat_top) & (self.z < self.fascia_top)

    @property
    def fascia(self) -> np.ndarray:
        """``(fh, fw)`` bool: the superficial fascia over the gland."""
        return (self.z >= np.maximum(self.fascia_top, self.fat_top)) & (self.z < self.top[None, :])

    @property
    def muscle(self) -> np.ndarray:
        """``(fh, fw)`` bool: the muscle below the gland."""
        return (self.z >= self.muscle_top[None, :]) & (self.z < self.muscle_bot[None, :])

    @property
    def deep(self) -> np.ndarray:
        """``(fh, fw)`` bool: the deep structures below the muscle."""
        return self.z >= self.muscle_bot[None, :]


def _fov_anatomy(rng: np.random.Generator, req: _FovRequest) -> _FovAnatomy:
    """Draw whether the mandible shows, the gland lens and the tissue layers' boundaries."""
    fw, fh = req.fw, req.fh
    col = np.arange(fw, dtype=np.float32)
    z = np.arange(fh, dtype=np.float32)[:, None]
    has_bone = rng.random() < (0.7 if req.parotid else 0.8)
    bone_side = ("left" if rng.random() < 0.5 else "right") if has_bone else None
    top, bottom = _gland_geometry(rng, req.parotid, fw, fh, req.frame_w, req.cfg, bone_side)
    inside_cols = ~np.isnan(bottom)
    bottom = np.where(inside_cols, bottom, top)
    skin = (0.012 * fh + _wobble(rng, col, 0.003 * fh, (fw / 1.5,)))[None, :]
    skin_t = max(2.0, 0.011 * fh)
    fat_top = skin + skin_t + rng.uniform(0.012, 0.025) * fh
    fascia_top = top[None, :] - rng.uniform(0.02, 0.035) * fh
    muscle_top, muscle_bot = _muscle_band(rng, col, fh, top, bottom)
    return _FovAnatomy(
        col=col,
        z=z,
        bone_side=bone_side,
        top=top,
        bottom=bottom,
        inside_cols=inside_cols,
        mask=(z >= top[None, :]) & (z < bottom[None, :]),
        skin=skin,
        skin_t=skin_t,
        fat_top=fat_top,
        fascia_top=fascia_top,
        muscle_top=muscle_top,
        muscle_bot=muscle_bot,
    )


def _muscle_band(
    rng: np.random.Generator, col: np.ndarray, fh: int, top: np.ndarray, bottom: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The muscle's top and bottom per column: below the deep fascia, smoother than the gland."""
    fw = col.size
    deep_fascia_t = rng.uniform(0.015, 0.03) * fh
    muscle_top = np.maximum(bottom + deep_fascia_t, top + 0.06 * fh)
    k = max(3, fw // 10) | 1
    muscle_top = cv2.blur(muscle_top[None, :].astype(np.float32), (k, 1))[0]
    muscle_top = np.maximum(muscle_top, bottom + deep_fascia_t)
    muscle_bot = muscle_top + rng.uniform(0.1, 0.2) * fh + _wobble(rng, col, 0.02 * fh, (fw / 2,))
    return muscle_top, muscle_bot


def _layer_echo(req: _FovRequest, a: _FovAnatomy) -> np.ndarray:
    """Echogenicity of the plain layers: gel, skin, dermis, fat, fascia, connective, gland."""
    z, skin, top_r = a.z, a.skin, a.top[None, :]
    echo = np.full((req.fh, req.fw), ECHO["deep"], np.float32)
    echo = np.where(z < skin, ECHO["gel"], echo)
    echo = np.where((z >= skin) & (z < skin + a.skin_t), ECHO["skin"], echo)
    echo = np.where((z >= skin + a.skin_t) & (z < a.fat_top), ECHO["dermis"], echo)
    echo = np.where(a.fat, ECHO["fat"], echo)
    echo = np.where(a.fascia, ECHO["fascia"], echo)
    connective = (z >= top_r) & (z < a.muscle_top[None, :]) & ~a.mask
    echo = np.where(connective, ECHO["connective"], echo)
    return np.where(a.mask, ECHO["gland"] * req.plan.echo_factor, echo)


def _add_muscle(
    rng: np.random.Generator, req: _FovRequest, a: _FovAnatomy, echo: np.ndarray
) -> np.ndarray:
    """Striated muscle below the gland, and the platysma over a submandibular gland."""
    # Thin bright perimysium lines, fragmented, on a dark background. Fibre bundles are neither
    # straight nor evenly spaced: the stripes' phase is warped by noise.
    fw, fh = req.fw, req.fh
    angle = rng.uniform(-0.35, 0.35)
    period = rng.uniform(0.018, 0.03) * fh
    wobble = _wobble(rng, a.col, 0.6 * period, (fw / 3,))[None, :]
    u = a.x * np.sin(angle) + a.z * np.cos(angle) + wobble
    u = u + 0.9 * period * _smooth_noise(rng, fh, fw, (7, 5))
    stripes = (0.5 + 0.5 * np.cos(2 * np.pi * u / period)) ** 6
    broken = np.clip(_smooth_noise(rng, fh, fw, (12, 9)) + 0.5, 0, 1)
    echo = np.where(a.muscle, ECHO["muscle"] + ECHO["striation"] * stripes * broken, echo)
    if not req.parotid:
        # Platysma over the submandibular gland: a thin striated band inside the fascia layer.
        echo = np.where(a.fascia, echo * (0.45 + 0.9 * stripes), echo)
    return echo


def _add_interfaces(
    rng: np.random.Generator, req: _FovRequest, a: _FovAnatomy, echo: np.ndarray
) -> np.ndarray:
    """Deep-field blobs and bright fascial interfaces, and bright septa between the fat lobules."""
    fw, fh, unit = req.fw, req.fh, req.unit
    deep, fat = a.deep, a.fat
    blobs = _smooth_noise(rng, fh, fw, (6, 6)) + 0.5 * _smooth_noise(rng, fh, fw, (14, 10))
    echo = np.where(deep, echo * np.exp(0.55 * blobs), echo)
    lines = np.zeros((fh, fw), np.uint8)
    z_deep = float(a.muscle_bot.mean())
    _draw_lines(
        lines, rng, int(rng.integers(2, 6)), (-0.2 * fw, 0.4 * fw), (z_deep, z_deep + 0.3 * fh),
        (0.4 * fw, 1.0 * fw), 0.12, max(2, round(2.5 * unit)),
    )  # fmt: skip
    fat_lo, fat_hi = float(np.mean(a.fat_top)), float(np.min(a.fascia_top))
    if fat_hi > fat_lo:
        _draw_lines(
            lines, rng, int(rng.integers(6, 12)), (-0.2 * fw, 0.8 * fw), (fat_lo, fat_hi),
            (0.1 * fw, 0.6 * fw), 0.2, max(1, round(unit)),
        )  # fmt: skip
    # Interfaces are not evenly bright along their length (the angle of incidence changes).
    patchy = np.clip(_smooth_noise(rng, fh, fw, (4, 10)) * 0.6 + 0.7, 0.1, 1.2)
    echo += np.where(fat | deep, ECHO["septum"] * lines.astype(np.float32) * (patchy / 255.0), 0)
    return echo


def _add_texture_and_capsule(
    rng: np.random.Generator, req: _FovRequest, a: _FovAnatomy, echo: np.ndarray
) -> np.ndarray:
    """Coarse patchy texture around the gland, and its bright capsule lines (top, deep border)."""
    # The tissues around the gland are coarser and patchier than its fine, even grain.
    noise = _smooth_noise(rng, req.fh, req.fw, (18, 26))
    echo = np.where(a.mask, echo, echo * np.exp(0.45 * noise))
    capsule_gain = (1.0, 0.55, 0.25)[req.plan.border]
    cap_t = max(1.5, 0.009 * req.fh)
    on_top = np.abs(a.z - a.top[None, :]) < cap_t
    echo = np.where(on_top, echo + ECHO["capsule"] * capsule_gain, echo)
    on_bottom = (np.abs(a.z - a.bottom[None, :]) < cap_t) & a.inside_cols[None, :]
    return np.where(on_bottom, echo + ECHO["deep_capsule"] * capsule_gain, echo)


def _add_parenchyma(
    rng: np.random.Generator, req: _FovRequest, a: _FovAnatomy, echo: np.ndarray
) -> tuple[np.ndarray, float]:
    """Inhomogeneity, hypoechoic foci, fibrosis: ``(echo, share of the gland the foci cover)``."""
    plan = req.plan
    inhom = np.exp(plan.inhomogeneity * 2.2 * _smooth_noise(rng, req.fh, req.fw, (10, 16)))
    echo = np.where(a.mask, echo * inhom, echo)
    ys, xs = np.nonzero(a.mask)
    lesion_fraction = 0.0
    if plan.coverage > 0 and ys.size:
        soft = _draw_foci(rng, req, a.mask, ys, xs)
        lesion_fraction = float((soft > 0.5).sum() / ys.size)
        darkness = min(0.97, rng.uniform(0.86, 0.95) * req.cfg.lesion_contrast)
        echo *= 1 - darkness * soft
    if (plan.n_bands or plan.n_spots) and ys.size:
        echo += ECHO["fibrosis"] * _draw_fibrosis(rng, req, a, ys, xs) * a.mask
    return echo, lesion_fraction


def _draw_foci(
    rng: np.random.Generator, req: _FovRequest, mask: np.ndarray, ys: np.ndarray, xs: np.ndarray
) -> np.ndarray:
    """Hypoechoic foci until they cover the plan's share of the gland: soft ``(fh, fw)`` 0-1 map."""
    plan = req.plan
    foci = np.zeros((req.fh, req.fw), np.uint8)
    target = plan.coverage * ys.size
    for attempt in range(400):
        r = rng.uniform(*plan.radius_mm) * req.px_per_mm
        elong = rng.uniform(1.0, 1.6)
        axes = (max(1, round(r * elong)), max(1, round(r / elong)))
        i = int(rng.integers(0, ys.size))
        cv2.ellipse(foci, (int(xs[i]), int(ys[i])), axes, rng.uniform(-30, 30), 0, 360, 255, -1)
        if plan.confluent and rng.random() < 0.6:
            dx, dy = rng.normal(0, r, 2)  # a neighbour touching it: confluent areas
            centre = (int(xs[i] + 1.5 * dx), int(ys[i] + 0.6 * dy))
            cv2.ellipse(foci, centre, axes, rng.uniform(-30, 30), 0, 360, 255, -1)
        if attempt % 2 and np.count_nonzero(foci[ys, xs]) >= target:
            break
    soft = cv2.GaussianBlur(foci.astype(np.float32) / 255.0, (0, 0), max(1.0, 1.2 * req.unit))
    soft *= mask
    return soft


def _draw_fibrosis(
    rng: np.random.Generator, req: _FovRequest, a: _FovAnatomy, ys: np.ndarray, xs: np.ndarray
) -> np.ndarray:
    """Bright fibrous bands and small hyperechoic spots in the gland: ``(fh, fw)`` float32 0-1."""
    plan, unit = req.plan, req.unit
    bright = np.zeros((req.fh, req.fw), np.uint8)
    cols = np.flatnonzero(a.inside_cols)
    for _ in range(plan.n_bands):
        x0 = rng.uniform(cols[0], cols[-1])
        length = rng.uniform(0.1, 0.35) * req.fw * (1 if rng.random() < 0.5 else -1)
        zc = rng.uniform(a.top[int(x0)], a.bottom[int(x0)])
        pts = _random_walk_line(rng, x0, x0 + length, zc, 0.35, 5)
        thickness = max(2, round(2.5 * unit))
        cv2.polylines(bright, [pts], False, int(rng.integers(150, 256)), thickness)
    for _ in range(plan.n_spots):
        i = int(rng.integers(0, ys.size))
        axes = (max(1, round(rng.uniform(2, 5) * unit)), max(1, round(unit)))
        cv2.ellipse(bright, (int(xs[i]), int(ys[i])), axes, 0, 0, 360, 255, -1)
    return bright.astype(np.float32) / 255.0


def _add_vessels(
    rng: np.random.Generator, req: _FovRequest, a: _FovAnatomy, echo: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Anechoic vessels with a bright wall; returns ``(echo, gain_map)`` (their enhancement)."""
    # One often runs through the gland's deep part (retromandibular vein, facial artery), at every
    # grade; the gain map holds the posterior enhancement below each vessel.
    fw, fh = req.fw, req.fh
    ys, xs = np.nonzero(a.mask)
    vessels = []
    if ys.size and rng.random() < 0.75:
        deep_half = ys > np.percentile(ys, 45)
        pick = int(rng.integers(0, int(deep_half.sum()))) if deep_half.any() else 0
        vessels.append((int(xs[deep_half][pick]), int(ys[deep_half][pick])))
    if rng.random() < 0.6:
        vessels.append((int(rng.uniform(0.1, 0.9) * fw), int(rng.uniform(0.62, 0.9) * fh)))
    wall = np.zeros((fh, fw), np.uint8)
    lumen = np.zeros((fh, fw), np.uint8)
    enhance = np.zeros((fh, fw), np.uint8)
    for vx, vz in vessels:
        r = rng.uniform(1.0, 2.2) * req.px_per_mm
        axes = (max(2, round(r * rng.uniform(1.0, 1.4))), max(2, round(r)))
        cv2.ellipse(wall, (vx, vz), (axes[0] + 2, axes[1] + 2), 0, 0, 360, 255, -1)
        cv2.ellipse(lumen, (vx, vz), axes, 0, 0, 360, 255, -1)
        cv2.rectangle(enhance, (vx - axes[0], vz), (vx + axes[0], fh), 255, -1)
    echo = np.where(wall > 0, echo + ECHO["vessel_wall"], echo)
    echo = np.where(lumen > 0, 0.0, echo)
    gain_map = np.ones((fh, fw), np.float32)
    gain_map *= 1 + 0.35 * cv2.GaussianBlur(enhance.astype(np.float32) / 255, (0, 0), 6 * req.unit)
    return echo, gain_map


def _echo_amplitude(
    rng: np.random.Generator,
    req: _FovRequest,
    a: _FovAnatomy,
    echo: np.ndarray,
    gain_map: np.ndarray,
) -> np.ndarray:
    """Echo amplitude: slow variation, depth loss net of the TGC, focal zone, probe ends, noise."""
    fw, fh, spacing = req.fw, req.fh, req.spacing
    echo = echo * np.exp(0.12 * _smooth_noise(rng, fh, fw, (5, 7)))
    z_mm = a.z * spacing
    focus_mm = rng.uniform(0.3, 0.5) * fh * spacing
    loss_db = -ATTENUATION_DB_PER_MM * req.cfg.depth_attenuation * z_mm
    loss_db = loss_db + 2.0 * np.exp(-((z_mm - focus_mm) ** 2) / 60)
    gain_map = gain_map * (10 ** (loss_db / 20)).astype(np.float32)
    lateral = 1 - 0.25 * ((a.x - fw / 2) / (fw / 2)) ** 4  # weaker echoes at the probe's ends
    amplitude = echo * gain_map * lateral
    noise_floor = NOISE_FLOOR * req.cfg.noise
    return np.sqrt(amplitude**2 + noise_floor**2).astype(np.float32)


def _speckle(rng: np.random.Generator, req: _FovRequest) -> np.ndarray:
    """Unit-mean multiplicative speckle: compounded envelopes of band-limited scatterer fields."""
    # Grains are stretched sideways like a linear probe's and incoherently compounded over a few
    # looks as scanners' spatial and frequency compounding does. (One look through a pure log map
    # draws networks of dark cracks instead.)
    sx, sz = req.grain_sigmas
    field = rng.standard_normal((2 * COMPOUND_LOOKS, req.fh, req.fw), dtype=np.float32)
    intensity = np.zeros((req.fh, req.fw), np.float32)
    for look in field:
        blurred = cv2.GaussianBlur(look, (0, 0), sigmaX=sx, sigmaY=sz)
        intensity += blurred * blurred
    # Unit mean: white noise blurred by a unit-sum Gaussian keeps 1 / (4 pi sx sz) of its variance.
    intensity *= np.float32(4 * np.pi * sx * sz / (2 * COMPOUND_LOOKS))
    # Scanners differ in speckle reduction, and so do their presets: the contrast varies.
    contrast = SPECKLE_P * req.speckle_scale * rng.uniform(0.85, 1.1)
    mean = np.float32(_mean_power(COMPOUND_LOOKS, contrast / 2))
    return intensity ** np.float32(contrast / 2) / mean


def _display_chain(
    rng: np.random.Generator, req: _FovRequest, amplitude: np.ndarray, speckle: np.ndarray
) -> np.ndarray:
    """PSF blur, gain, log compression, grey map and pixel noise: the FOV's uint8 image."""
    cfg = req.cfg
    sx, sz = req.grain_sigmas
    level = cv2.GaussianBlur(amplitude, (0, 0), sigmaX=0.5 * sx, sigmaY=0.5 * sz)
    db = 20 * np.log10(level + 1e-6) + cfg.gain_db
    # Log compression about the middle of the default 60 dB range, so that changing the dynamic
    # range changes the contrast and keeps the mid-grey tissues where they were.
    mid_db = TOP_DB - 30.0
    grey = np.clip(0.5 + (db - mid_db) / cfg.dynamic_range_db, 0, 1) ** GAMMA * 255.0 * speckle
    grey = np.where(grey > KNEE, KNEE + (grey - KNEE) * 0.6, grey)
    noise = rng.standard_normal((req.fh, req.fw), dtype=np.float32)
    grey += noise * np.float32(PIXEL_NOISE * cfg.noise)
    return np.clip(grey, 0, 255).astype(np.uint8)


def _render_fov(rng: np.random.Generator, req: _FovRequest) -> tuple[np.ndarray, np.ndarray, float]:
    """Render the field of view, drawing from ``rng`` in a fixed order (the frames depend on it).

    Returns:
        ``(grey, mask, lesion_fraction)``: ``(fh, fw)`` uint8 image, ``(fh, fw)`` bool gland
        mask, and the fraction of the gland the hypoechoic foci cover.
    """
    anatomy = _fov_anatomy(rng, req)
    echo = _layer_echo(req, anatomy)
    echo = _add_muscle(rng, req, anatomy, echo)
    echo = _add_interfaces(rng, req, anatomy, echo)
    echo = _add_texture_and_capsule(rng, req, anatomy, echo)
    echo, lesion_fraction = _add_parenchyma(rng, req, anatomy, echo)
    echo, gain_map = _add_vessels(rng, req, anatomy, echo)
    mask = anatomy.mask
    if anatomy.bone_side is not None:
        # The mandible: a bright curved cortex and the black acoustic shadow below it.
        gland_bottom = float(np.nanmax(anatomy.bottom))
        echo, shadow = _mandible(rng, echo, req.parotid, anatomy.bone_side, gland_bottom, req.unit)
        mask = mask & (shadow < 0.5)  # what the bone hides is not outlined
    amplitude = _echo_amplitude(rng, req, anatomy, echo, gain_map)
    speckle = _speckle(rng, req)
    return _display_chain(rng, req, amplitude, speckle), mask, lesion_fraction


def _mandible(
    rng: np.random.Generator,
    echo: np.ndarray,
    parotid: bool,
    bone_side: str | None,
    gland_bottom: float,
    unit: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the mandible's cortex and shadow into ``echo``; returns ``(echo, shadow)``.

    The bone surface is a gentle arc whose free end turns down steeply (the ramus' or the body's
    edge): a thick bright cortex, and below it an acoustic shadow (``shadow`` 0-1, float32).
    """
    fh, fw = echo.shape
    if parotid:  # the ramus, deep to the gland
        span = rng.uniform(0.22, 0.38) * fw
        zb0 = min(0.9 * fh, max(gland_bottom + 0.06 * fh, rng.uniform(0.62, 0.74) * fh))
        rise = rng.uniform(0.02, 0.06) * fh
    else:  # the body's lower border, beside the submandibular gland
        span = rng.uniform(0.16, 0.26) * fw
        zb0 = rng.uniform(0.1, 0.22) * fh
        rise = rng.uniform(0.03, 0.08) * fh
    s = np.linspace(0.0, 1.0, 64)
    knee = rng.uniform(0.55, 0.8)
    drop = rng.uniform(0.12, 0.25) * fh
    zb = zb0 + rise * s**2 + drop * np.clip((s - knee) / (1 - knee), 0, 1) ** 2
    zb += 0.006 * fh * np.sin(6.0 * s + rng.uniform(0, 6.3))
    xb = s * span if bone_side == "left" else fw - 1 - s * span
    edge = -0.02 * fw if bone_side == "left" else fw * 1.02
    curve = np.stack([np.concatenate([[edge], xb]), np.concatenate([[zb[0]], zb])], axis=1)
    curve = curve.round().astype(np.int32)
    shadow_u8 = np.zeros((fh, fw), np.uint8)
    poly = np.concatenate([curve, [[int(curve[-1, 0]), fh + 5], [round(edge), fh + 5]]])
    cv2.fillPoly(shadow_u8, [poly.astype(np.int32)], 255)
    cortex_u8 = np.zeros((fh, fw), np.uint8)
    cv2.polylines(cortex_u8, [curve], False, 255, max(2, round(0.014 * fh)), cv2.LINE_AA)
    shadow = cv2.GaussianBlur(shadow_u8.astype(np.float32) / 255, (0, 0), 2.5 * unit)
    cortex = cortex_u8.astype(np.float32) / 255
    echo = echo * (1 - 0.985 * shadow)
    return echo * (1 - cortex) + ECHO["bone"] * cortex, shadow


# ----------------------------------------------------------------------------------------------
# the screenshot around it


def _text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    grey: float,
    thickness: int = 1,
) -> None:
    """Draw anti-aliased text in the scanner's font (in place)."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, int(grey), thickness, cv2.LINE_AA)


def _draw_ui(
    img: np.ndarray,
    rng: np.random.Generator,
    layout: ScannerLayout,
    fov: tuple[int, int, int, int],
    depth_mm: float,
    plan_text: str,
    cfg: PhantomConfig,
    patient: str,
) -> None:
    """Panels, greyscale bar, depth scale and burned-in text around the FOV (in place)."""
    h, w = img.shape
    fx, fy, fw, fh = fov
    s = h / 555.0  # font and tick sizes follow the frame height
    grey = layout.panel_grey
    ml, mt, mr, mb = layout.margin
    screen = np.ones((h, w), bool)
    screen[
        max(0, fy - round(mt * h)) : fy + fh + round(mb * h),
        max(0, fx - round(ml * w)) : fx + fw + round(mr * w),
    ] = False
    img[screen] = grey - 8
    header_h = round(layout.header * h)
    img[:header_h, :] = grey
    img[header_h - 1, :] = grey + 18
    x0, x1 = round(layout.side_panel[0] * w), round(layout.side_panel[1] * w)
    if x1 > x0:
        img[header_h:, x0:x1] = grey - 6
        edge = x1 - 1 if x0 == 0 else x0
        img[header_h:, edge] = grey + 14
    footer_h = round(layout.footer * h)
    if footer_h:
        img[h - footer_h :, :] = grey - 4
        img[h - footer_h, :] = grey + 14
    # Greyscale bar in the parameter panel.
    if x1 > x0:
        bx = x0 + round(0.15 * (x1 - x0))
        by0, by1 = round(0.62 * h), round(0.86 * h)
        bw = max(3, round(0.06 * (x1 - x0)))
        ramp = np.linspace(255, 0, by1 - by0).astype(np.uint8)[:, None]
        img[by0:by1, bx : bx + bw] = ramp
    # Depth scale: ticks every 5 mm, longer every 10 mm, right of the FOV.
    sx = fx + fw + max(3, round(4 * s))
    if sx + 10 * s < w:
        px_per_mm = fh / depth_mm
        for mm in range(0, int(depth_mm) + 1, 5):
            ty = fy + round(mm * px_per_mm)
            length = round((9 if mm % 10 == 0 else 5) * s)
            cv2.line(img, (sx, ty), (sx + length, ty), 170, 1)
            if cfg.show_text and mm % 10 == 0 and mm > 0 and sx + 14 * s < w:
                _text(img, str(mm // 10), (sx + length + 2, ty + round(4 * s)), 0.38 * s, 170)
        cv2.line(img, (sx, fy), (sx, fy + fh), 120, 1)
        # Focal-zone marker.
        fz = fy + round(rng.uniform(0.3, 0.5) * fh)
        tri = np.array(
            [
                [sx - 1, fz],
                [sx - round(6 * s), fz - round(4 * s)],
                [sx - round(6 * s), fz + round(4 * s)],
            ]
        )
        cv2.fillPoly(img, [tri.astype(np.int32)], 200)
    # Probe orientation mark at the FOV's top-left corner.
    cv2.circle(img, (fx + round(6 * s), fy - round(5 * s)), max(1, round(3 * s)), 210, -1)
    if not cfg.show_text:
        return
    # Header: institution, date and time, patient id, probe and safety indices.
    ty = round(header_h * 0.65)
    f = 0.42 * s
    day, month, year = (
        int(rng.integers(1, 29)),
        int(rng.integers(1, 13)),
        int(rng.integers(2014, 2027)),
    )
    hour, minute = int(rng.integers(7, 19)), int(rng.integers(0, 60))
    left = f"{HOSPITALS[int(rng.integers(len(HOSPITALS)))]}  {day:02d}.{month:02d}.{year}  {hour:02d}:{minute:02d}"
    _text(img, left, (round(8 * s), ty), f, 215)
    _text(img, f"ID {patient}", (round(0.47 * w), ty), f, 200)
    probe = ("L15-4", "LA523", "ML6-15", "L12-5")[int(rng.integers(4))]
    _text(
        img,
        f"{probe}  SMALL PARTS  MI 0.{rng.integers(5, 10)}  TIs 0.{rng.integers(1, 5)}",
        (round(0.64 * w), ty),
        f,
        200,
    )
    # Parameter panel.
    if x1 > x0:
        lines = [
            "B-MODE",
            f"Frq {rng.uniform(10, 15):.1f}MHz",
            f"Gn {int(rng.integers(40, 70))}",
            f"DR {int(cfg.dynamic_range_db)}",
            f"FR {int(rng.integers(18, 45))}Hz",
            f"D {depth_mm / 10:.1f}cm",
            f"PWR {int(rng.integers(80, 101))}%",
            plan_text,
        ]
        for i, line in enumerate(lines):
            _text(img, line, (x0 + round(8 * s), header_h + round((26 + 21 * i) * s)), 0.4 * s, 190)
    if footer_h:
        _text(
            img,
            "1/4  SALIVARY GLANDS  CINE 00:04",
            (round(0.05 * w), h - round(footer_h * 0.35)),
            0.42 * s,
            185,
        )


def _draw_gland_label(
    img: np.ndarray,
    rng: np.random.Generator,
    gland: str,
    side: str,
    fov: tuple[int, int, int, int],
    mask_bottom: int,
) -> None:
    """Burn the gland label into the FOV's lower left corner (below the gland), or under the FOV."""
    fx, fy, fw, fh = fov
    h = img.shape[0]
    s = h / 555.0
    text = GLAND_LABELS[(gland, side)][int(rng.integers(4))]
    scale = 0.5 * s
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = fy + fh - round(8 * s)
    if y - th - 4 <= mask_bottom:
        y = min(h - 3, fy + fh + th + round(6 * s))
    _text(img, text, (fx + round(10 * s), y), scale, 225, max(1, round(s)))
    # Body marker: a small head outline with the probe's position.
    cx, cy = fx + round(10 * s) + tw + round(30 * s), y - th // 2
    r = max(4, round(10 * s))
    if cx + r < fx + fw:
        cv2.ellipse(img, (cx, cy), (round(r * 0.8), r), 0, 0, 360, 160, 1, cv2.LINE_AA)
        px = cx + (round(0.8 * r) if side == "L" else -round(0.8 * r))
        py = cy + (0 if gland == "parotid" else round(0.7 * r))
        cv2.line(
            img, (px, py - round(0.5 * r)), (px, py + round(0.5 * r)), 230, max(1, round(2 * s))
        )


# ----------------------------------------------------------------------------------------------
# public API


def _check_choice(name: str, value: object, choices: Collection[str]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose from {list(choices)}")


def generate_frame(
    seed: int,
    *,
    devita: int | None = None,
    gland: str | None = None,
    side: str | None = None,
    patient: str = "P0000",
    config: PhantomConfig | None = None,
    scanner: str | None = None,
    doppler: bool = False,
    doppler_mode: str = "power",
) -> PhantomFrame:
    """Generate one synthetic SGUS screenshot with its gland mask and grades.

    Args:
        seed: any int; the frame is a pure function of the arguments.
        devita: de Vita grade 0-3; ``None`` draws one from the real set's distribution.
        gland: ``"parotid"`` or ``"submandibular"``; ``None`` draws one.
        side: ``"L"`` or ``"R"``; ``None`` draws one.
        patient: patient id written into the frame's header and its ``name``.
        config: the generator's knobs (defaults: the realistic look).
        scanner: a key of ``SCANNERS``; overrides ``config.scanner``; ``None`` and no config
            scanner draws one.
        doppler: also paint Doppler flow in and near the gland (``synthesis.doppler``), for an
            OMERACT Doppler grade 1-3 drawn from its own random stream: the grey ``image`` is
            the same as without it.
        doppler_mode: ``"power"`` (red-orange-yellow) or ``"colour"`` (red and blue flow).

    Returns:
        A :class:`PhantomFrame`: ``image`` (H, W) uint8, ``mask`` (H, W) bool, grades, ``fov``,
        and for a Doppler frame ``rgb``, ``doppler_signal`` and ``doppler_grade``.

    Raises:
        ValueError: an unknown gland, side, scanner, Doppler mode or a grade outside 0-3.
    """
    cfg = config or PhantomConfig()
    pick = np.random.default_rng([abs(int(seed)), 0 if seed >= 0 else 1, 11])
    gland = gland if gland is not None else GLANDS[int(pick.integers(2))]
    side = side if side is not None else SIDES[int(pick.integers(2))]
    real_p = np.array([110, 28, 55, 32]) / 225
    devita = int(devita) if devita is not None else int(pick.choice(4, p=real_p))
    scanner = scanner or cfg.scanner or sorted(SCANNERS)[int(pick.integers(len(SCANNERS)))]
    _check_choice("gland", gland, GLANDS)
    _check_choice("side", side, SIDES)
    _check_choice("scanner", scanner, SCANNERS)
    if devita not in (0, 1, 2, 3):
        raise ValueError(f"de Vita grade must be 0-3, got {devita}")
    layout = SCANNERS[scanner]
    rng = np.random.default_rng(
        [abs(int(seed)), 0 if seed >= 0 else 1, GLANDS.index(gland), SIDES.index(side), devita,
         sorted(SCANNERS).index(scanner)]
    )  # fmt: skip

    w, h = cfg.frame_size or layout.size
    fx, fy = round(layout.fov[0] * w), round(layout.fov[1] * h)
    fw, fh = round(layout.fov[2] * w), round(layout.fov[3] * h)
    depth_mm = float(rng.uniform(*layout.depth_mm))
    spacing = depth_mm / fh
    omeract, plan = _draw_grades(rng, devita)
    # Grain in px follows the frame's size relative to the scanner's native screenshot.
    grain = cfg.speckle_size * w / layout.size[0]
    request = _FovRequest(
        gland=gland,
        plan=plan,
        fw=fw,
        fh=fh,
        frame_w=w,
        spacing=spacing,
        grain=grain,
        speckle_scale=layout.speckle,
        cfg=cfg,
    )
    fov_grey, fov_mask, lesion_fraction = _render_fov(rng, request)

    image = np.zeros((h, w), np.uint8)
    mask = np.zeros((h, w), bool)
    image[fy : fy + fh, fx : fx + fw] = fov_grey
    mask[fy : fy + fh, fx : fx + fw] = fov_mask
    fov = (fx, fy, fw, fh)
    if cfg.show_ui:
        _draw_ui(image, rng, layout, fov, depth_mm, "SGUS", cfg, patient)
    if cfg.show_text:
        rows = np.flatnonzero(fov_mask.any(axis=1))
        mask_bottom = fy + (int(rows[-1]) if rows.size else 0)
        _draw_gland_label(image, rng, gland, side, fov, mask_bottom)
    if cfg.crop_to_fov:
        image = np.ascontiguousarray(image[fy : fy + fh, fx : fx + fw])
        mask = np.ascontiguousarray(mask[fy : fy + fh, fx : fx + fw])
        fov = (0, 0, fw, fh)
    painted = None
    if doppler:
        flow = np.random.default_rng(
            [abs(int(seed)), 0 if seed >= 0 else 1, 31, GLANDS.index(gland), SIDES.index(side)]
        )
        grade = 1 + int(flow.choice(3, p=DOPPLER_GRADE_P))
        painted = add_doppler(image, mask, fov, flow, grade=grade, mode=doppler_mode)
    return PhantomFrame(
        image=image,
        mask=mask,
        devita=devita,
        omeract=omeract,
        hocevar=_hocevar(plan, lesion_fraction),
        gland=gland,
        side=side,
        patient=patient,
        spacing_mm=float(spacing),
        fov=fov,
        seed=int(seed),
        scanner=scanner,
        lesion_fraction=lesion_fraction,
        rgb=painted.rgb if painted else None,
        doppler_signal=painted.signal if painted else None,
        doppler_grade=painted.grade if painted else None,
    )


def patient_grades(seed: int) -> dict[tuple[str, str], int]:
    """De Vita grades of one phantom patient's four glands, correlated through a severity level.

    Returns:
        ``{(gland, side): grade}`` for the four glands.
    """
    rng = np.random.default_rng([abs(int(seed)), 0 if seed >= 0 else 1, 23])
    level = int(rng.choice(4, p=PATIENT_LEVEL_P))
    return {(g, s): int(rng.choice(4, p=GRADE_GIVEN_LEVEL[level])) for g in GLANDS for s in SIDES}


def generate_patient(
    seed: int, patient: str, config: PhantomConfig | None = None, *, doppler: bool = False
) -> list[PhantomFrame]:
    """The four glands of one phantom patient, scanned on one scanner (``doppler``: with power
    Doppler flow painted over each, see :func:`generate_frame`).

    Grades are correlated within the patient (a patient-level severity); over many patients the
    de Vita distribution is close to the real set's (0:110, 1:28, 2:55, 3:32).

    Returns:
        Frames in the order parotid R, parotid L, submandibular R, submandibular L.
    """
    cfg = config or PhantomConfig()
    grades = patient_grades(seed)
    pick = np.random.default_rng([abs(int(seed)), 0 if seed >= 0 else 1, 29])
    scanner = cfg.scanner or sorted(SCANNERS)[int(pick.integers(len(SCANNERS)))]
    return [
        generate_frame(
            seed,
            devita=grades[(g, s)],
            gland=g,
            side=s,
            patient=patient,
            config=cfg,
            scanner=scanner,
            doppler=doppler,
        )  # fmt: skip
        for g in GLANDS
        for s in SIDES
    ]


def patient_id(first_seed: int, index: int) -> str:
    """The id of the ``index``-th patient of a dataset: ``f"P{first_seed + index:05d}"``.

    The patient's seed is ``first_seed + index`` too, so datasets from disjoint seed ranges hold
    distinct patients with distinct ids.
    """
    return f"P{first_seed + index:05d}"


def write_dataset(
    out_dir: Path,
    n_patients: int,
    first_seed: int,
    *,
    config: PhantomConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    doppler_patients: Collection[int] = (),
) -> Path:
    """Write a phantom dataset in the import format of ``docs/CLI.md``.

    Writes ``out_dir/images/<name>.png`` (grey; RGB for a Doppler frame),
    ``out_dir/masks/<name>.png`` (0/255, the frame's size) and ``out_dir/labels.csv`` (header
    ``image,mask,patient,gland,side,devita,omeract,spacing_mm``, paths relative to ``out_dir``;
    with Doppler patients also ``doppler``, the OMERACT Doppler grade, empty for a greyscale
    frame). Patient
    ``i`` is :func:`patient_id` ``(first_seed, i)`` generated from seed ``first_seed + i``; the
    patients whose index ``i`` is in ``doppler_patients`` are scanned with power Doppler.

    Args:
        out_dir: folder to write into (created if missing; existing files are overwritten).
        n_patients: number of patients (four frames each).
        first_seed: seed (and id number) of the first patient.
        config: the generator's knobs.
        progress: called as ``progress(done, total)`` after each frame.

    Returns:
        The path of ``labels.csv``.

    Raises:
        ValueError: ``n_patients`` < 0.
        OSError: a file could not be written.
    """
    if n_patients < 0:
        raise ValueError(f"n_patients must be >= 0, got {n_patients}")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    total = 4 * n_patients
    done = 0
    labels = out_dir / "labels.csv"
    rows = []
    for i in range(n_patients):
        pid = patient_id(first_seed, i)
        for frame in generate_patient(first_seed + i, pid, config, doppler=i in doppler_patients):
            image_rel = f"images/{frame.name}.png"
            mask_rel = f"masks/{frame.name}.png"
            pixels = (
                frame.image if frame.rgb is None else cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
            )
            if not cv2.imwrite(str(out_dir / image_rel), pixels):
                raise OSError(f"could not write {out_dir / image_rel}")
            if not cv2.imwrite(str(out_dir / mask_rel), frame.mask.astype(np.uint8) * 255):
                raise OSError(f"could not write {out_dir / mask_rel}")
            rows.append(
                (image_rel, mask_rel, frame.patient, frame.gland, frame.side, frame.devita,
                 frame.omeract, f"{frame.spacing_mm:.5f}")
                + (("" if frame.doppler_grade is None else frame.doppler_grade,)
                   if doppler_patients else ())
            )  # fmt: skip
            done += 1
            if progress is not None:
                progress(done, total)
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LABELS_HEADER + ((DOPPLER_COLUMN,) if doppler_patients else ()))
        writer.writerows(rows)
    return labels


def main(argv: list[str] | None = None) -> int:
    """``python -m sgus_core.synthesis.phantom --out DIR --patients N --first-seed S``."""
    parser = argparse.ArgumentParser(
        prog="python -m sgus_core.synthesis.phantom",
        description="Write a synthetic (phantom) SGUS dataset.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--patients", type=int, default=40, metavar="N", help="four glands each")
    parser.add_argument("--first-seed", type=int, default=0, metavar="S", help="first patient seed")
    parser.add_argument("--size", metavar="WxH", help="frame size (default: each scanner's own)")
    args = parser.parse_args(argv)
    config = PhantomConfig()
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
            config = PhantomConfig(frame_size=(w, h))
        except ValueError as exc:
            print(f"error: --size {args.size!r}: {exc}", file=sys.stderr)
            return 2
    if args.patients < 0:
        print("error: --patients must be >= 0", file=sys.stderr)
        return 2
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=4 * args.patients, desc="phantoms", unit="img", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh()

    try:
        path = write_dataset(
            Path(args.out), args.patients, args.first_seed, config=config, progress=progress
        )
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {4 * args.patients} frames and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
