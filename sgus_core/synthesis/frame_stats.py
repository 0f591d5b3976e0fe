"""Figures of a frame measured the way ``docs/SGUS.md`` measured the real SGUS screenshots.

``measure_frame`` computes, for one grey frame and its gland mask, every figure of the table in
``docs/SGUS.md`` ("What real SGUS frames look like"); ``summarise`` reduces many frames to
median (min-max); ``python -m sgus_core.synthesis.frame_stats`` compares phantom frames with the real ones.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

RING_PX = 20

# The real figures from docs/SGUS.md: (median, low, high); None where docs/SGUS.md gives no range.
REAL_FIGURES: dict[str, tuple[float, float | None, float | None]] = {
    "mean_grey": (58.0, None, None),
    "median_grey": (49.0, None, None),
    "p99_grey": (185.0, None, None),
    "gland_ring_ratio": (0.90, 0.73, 1.16),
    "gland_cv": (0.45, 0.15, 0.74),
    "area_fraction": (0.10, 0.045, 0.20),
    "width_fraction": (0.59, 0.45, 0.75),
    "height_fraction": (0.24, 0.16, 0.37),
    "aspect": (3.4, 2.1, 6.7),
    "grain_lateral_px": (9.0, None, None),
    "grain_axial_px": (3.0, None, None),
}
DESCRIPTIONS = {
    "mean_grey": "mean grey, whole frame",
    "median_grey": "median grey, whole frame",
    "p99_grey": "99th percentile grey",
    "gland_ring_ratio": "gland mean / 20 px ring mean",
    "gland_cv": "gland std / mean",
    "area_fraction": "gland area / frame area",
    "width_fraction": "gland width / frame width",
    "height_fraction": "gland height / frame height",
    "aspect": "gland width / height",
    "grain_lateral_px": "speckle grain lateral (px)",
    "grain_axial_px": "speckle grain axial (px)",
}


@dataclass(frozen=True)
class FigureSummary:
    """Median and range of one figure over many frames."""

    median: float
    low: float
    high: float
    n: int


def _half_width(profile: np.ndarray) -> float:
    """Lag (px, linear interpolation) where a normalised autocorrelation first falls to 0.5."""
    below = np.flatnonzero(profile <= 0.5)
    if below.size == 0:
        return float(len(profile) - 1)
    i = int(below[0])
    if i == 0:
        return 0.0
    a, b = float(profile[i - 1]), float(profile[i])
    return (i - 1) + (a - 0.5) / (a - b) if a != b else float(i)


def speckle_grain(image: np.ndarray, mask: np.ndarray, max_lag: int = 40) -> tuple[float, float]:
    """Half-width at half maximum of the grey-level autocorrelation inside the mask.

    The autocorrelation is of the mean-removed grey levels of the masked pixels, normalised by
    the number of pixel pairs at each lag (both pixels in the mask) and by the lag-0 value.

    Args:
        image: ``(H, W)`` grey frame, any numeric dtype.
        mask: ``(H, W)`` bool region (the gland).
        max_lag: largest lag examined, px.

    Returns:
        ``(lateral_px, axial_px)``: the half-widths along rows and columns; NaN for an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if ys.size < 4:
        return float("nan"), float("nan")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    m = mask[y0:y1, x0:x1].astype(np.float64)
    g = image[y0:y1, x0:x1].astype(np.float64)
    g = (g - g[m > 0].mean()) * m
    h, w = m.shape
    shape = (2 * h, 2 * w)  # zero padding: linear, not circular, correlation
    fg, fm = np.fft.rfft2(g, shape), np.fft.rfft2(m, shape)
    corr = np.fft.irfft2(fg * np.conj(fg), shape)
    pairs = np.fft.irfft2(fm * np.conj(fm), shape)
    lat_lags = min(max_lag, w - 1)
    ax_lags = min(max_lag, h - 1)
    lat = corr[0, : lat_lags + 1] / np.maximum(pairs[0, : lat_lags + 1], 1)
    ax = corr[: ax_lags + 1, 0] / np.maximum(pairs[: ax_lags + 1, 0], 1)
    if lat[0] <= 0:
        return float("nan"), float("nan")
    return _half_width(lat / lat[0]), _half_width(ax / ax[0])


def measure_frame(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Every ``docs/SGUS.md`` figure of one frame.

    Args:
        image: ``(H, W)`` grey frame (uint8, or ``(H, W, 3)`` grey-as-RGB, first channel used).
        mask: ``(H, W)`` gland mask (bool or 0/nonzero), the frame's size.

    Returns:
        ``mean_grey``, ``median_grey``, ``p99_grey`` (whole frame); ``gland_ring_ratio`` (gland
        mean / mean of a 20 px ring outside the gland: the mask dilated by a 41 px disc minus the
        mask); ``gland_cv`` (std / mean inside the gland); ``area_fraction`` (gland px / frame
        px); ``width_fraction``, ``height_fraction`` (gland bounding box / frame); ``aspect``
        (bounding-box width / height); ``grain_lateral_px``, ``grain_axial_px`` (see
        :func:`speckle_grain`). Gland figures are NaN when the mask is empty.

    Raises:
        ValueError: the mask's shape differs from the image's.
    """
    img = np.asarray(image)
    if img.ndim == 3:
        img = img[..., 0]
    m = np.asarray(mask).astype(bool)
    if m.shape != img.shape:
        raise ValueError(f"mask shape {m.shape} differs from image shape {img.shape}")
    h, w = img.shape
    grey = img.astype(np.float64)
    out = {
        "mean_grey": float(grey.mean()),
        "median_grey": float(np.median(grey)),
        "p99_grey": float(np.percentile(grey, 99)),
    }
    nan = float("nan")
    if not m.any():
        out.update(dict.fromkeys(REAL_FIGURES.keys() - out.keys(), nan))
        return out
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_PX + 1, 2 * RING_PX + 1))
    ring = cv2.dilate(m.astype(np.uint8), disc).astype(bool) & ~m
    inside = grey[m]
    ys, xs = np.nonzero(m)
    bw, bh = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    lateral, axial = speckle_grain(img, m)
    out.update(
        gland_ring_ratio=float(inside.mean() / grey[ring].mean()) if ring.any() else nan,
        gland_cv=float(inside.std() / inside.mean()) if inside.mean() > 0 else nan,
        area_fraction=float(m.sum() / (h * w)),
        width_fraction=bw / w,
        height_fraction=bh / h,
        aspect=bw / bh,
        grain_lateral_px=lateral,
        grain_axial_px=axial,
    )
    return out


def summarise(rows: Iterable[Mapping[str, float]]) -> dict[str, FigureSummary]:
    """Median (min-max) of each figure over frames, ignoring NaNs.

    Args:
        rows: dicts as returned by :func:`measure_frame`.

    Returns:
        ``{figure: FigureSummary}`` for every figure present in any row (n = values counted).
    """
    values: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            values.setdefault(key, []).append(float(value))
    table = {}
    for key, vals in values.items():
        arr = np.asarray(vals, dtype=np.float64)
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            table[key] = FigureSummary(float("nan"), float("nan"), float("nan"), 0)
        else:
            table[key] = FigureSummary(
                float(np.median(arr)), float(arr.min()), float(arr.max()), int(arr.size)
            )
    return table


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"


def format_comparison(table: Mapping[str, FigureSummary]) -> str:
    """A plain-text table: figure, the real value of ``docs/SGUS.md``, the phantom median (range)."""
    lines = [f"{'figure':34s} {'real (docs/SGUS.md)':18s} phantom median (range)"]
    for key, (median, low, high) in REAL_FIGURES.items():
        real = _fmt(median)
        if low is not None and high is not None:
            real += f" ({_fmt(low)}-{_fmt(high)})"
        s = table.get(key)
        ours = f"{_fmt(s.median)} ({_fmt(s.low)}-{_fmt(s.high)})" if s else "-"
        lines.append(f"{DESCRIPTIONS[key]:34s} {real:18s} {ours}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m sgus_core.synthesis.frame_stats --patients 40 --first-seed 0``: compare with docs/SGUS.md."""
    from sgus_core.synthesis.phantom import PhantomConfig, generate_patient, patient_id

    parser = argparse.ArgumentParser(
        prog="python -m sgus_core.synthesis.frame_stats",
        description="Measure phantom frames the docs/SGUS.md way and compare them with the real ones.",
    )
    parser.add_argument("--patients", type=int, default=40, metavar="N")
    parser.add_argument("--first-seed", type=int, default=0, metavar="S")
    parser.add_argument("--scanner", default=None, help="one scanner layout only")
    args = parser.parse_args(argv)
    config = PhantomConfig(scanner=args.scanner)
    rows = []
    grades = [0, 0, 0, 0]
    for i in range(args.patients):
        for frame in generate_patient(args.first_seed + i, patient_id(args.first_seed, i), config):
            rows.append(measure_frame(frame.image, frame.mask))
            grades[frame.devita] += 1
    print(format_comparison(summarise(rows)))
    print(f"frames: {len(rows)}; de Vita 0:{grades[0]} 1:{grades[1]} 2:{grades[2]} 3:{grades[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
