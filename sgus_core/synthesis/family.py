"""The frame every synthetic appearance family returns.

An *appearance family* is a module with ``render(seed, *, size=None, devita=None) -> SynthFrame``:
a synthetic SGUS frame with its exact gland mask, as a pure function of its arguments. Families
are written with different rendering code (``phantom``, ``randomised``, ``scatter``), so that a
network trained on some families and tested on another measures generalisation across appearance,
not memorisation of one renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# de Vita grade frequencies of the real multi-centre set (docs/SGUS.md: 0:110, 1:28, 2:55, 3:32 of 225).
DEVITA_COUNTS = (110, 28, 55, 32)
DEVITA_P = tuple(c / sum(DEVITA_COUNTS) for c in DEVITA_COUNTS)


@dataclass(frozen=True, eq=False)
class SynthFrame:
    """One synthetic SGUS frame and its labels.

    Attributes:
        image: ``(H, W)`` uint8 grey frame (scanner field of view, possibly inside UI margins).
        mask: ``(H, W)`` bool gland mask: one connected region without holes, inside ``fov``;
            hypoechoic foci and vessels inside the gland belong to it, outlines or calipers drawn
            over the frame do not change it.
        devita: de Vita grade 0-3 of the parenchyma drawn.
        fov: the scanner's field of view ``(x, y, w, h)`` in frame px (its bounding box for a
            sector probe's fan).
        family: name of the family that rendered it (``"randomised"``, ``"scatter"``, ...).
        seed: the seed it was rendered from.
    """

    image: np.ndarray
    mask: np.ndarray
    devita: int
    fov: tuple[int, int, int, int]
    family: str
    seed: int


def draw_devita(rng: np.random.Generator) -> int:
    """A de Vita grade 0-3 drawn with the real set's frequencies."""
    return int(rng.choice(4, p=DEVITA_P))


def check_request(size: tuple[int, int] | None, devita: int | None) -> None:
    """Reject a frame size below 32 px a side, or a de Vita grade outside 0-3.

    Raises:
        ValueError: on a bad size or grade.
    """
    if size is not None and (len(size) != 2 or int(size[0]) < 32 or int(size[1]) < 32):
        raise ValueError(f"size must be (width, height), each >= 32 px, not {size!r}")
    if devita is not None and int(devita) not in (0, 1, 2, 3):
        raise ValueError(f"devita must be 0-3, not {devita!r}")


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (ends exclusive) of a mask's nonzero pixels, None when it has none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a mask with its holes filled (bool, same shape).

    Work is done on the region's bounding box, so it costs little on big frames.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    out = np.zeros(m.shape, bool)
    box = bounding_box(m)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    crop = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)
    crop[1:-1, 1:-1] = m[y0:y1, x0:x1]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=4)
    if n > 2:
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        crop = (labels == keep).astype(np.uint8)
    flood = crop.copy()
    cv2.floodFill(flood, np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8), (0, 0), 2)
    region = flood != 2  # the region and every hole enclosed by it
    out[y0:y1, x0:x1] = region[1:-1, 1:-1]
    return out


# What each de Vita grade draws inside the gland: the share of the gland the hypoechoic foci
# should cover, their radii as fractions of the gland's height, and the fewest foci.
FOCI_BY_GRADE: dict[int, tuple[tuple[float, float], tuple[float, float], int]] = {
    1: ((0.015, 0.05), (0.05, 0.11), 1),  # a few small
    2: ((0.08, 0.22), (0.08, 0.18), 3),  # multiple medium
    3: ((0.25, 0.50), (0.11, 0.26), 5),  # many large, confluent (drawn in pairs)
}


def foci_plan(
    rng: np.random.Generator, devita: int, gland_px: float, gland_height_px: float
) -> tuple[int, float, float]:
    """How many hypoechoic foci a grade draws, and their radius range in px.

    Args:
        rng: the pathology's random stream.
        devita: de Vita grade 0-3 (0: none).
        gland_px: the gland's area, px.
        gland_height_px: the gland's height, px.

    Returns:
        ``(count, r_low, r_high)``; ``(0, 0, 0)`` at grade 0.
    """
    if devita == 0:
        return 0, 0.0, 0.0
    (c_lo, c_hi), (r_lo, r_hi), fewest = FOCI_BY_GRADE[devita]
    r_lo, r_hi = r_lo * gland_height_px, r_hi * gland_height_px
    mean_area = np.pi * ((r_lo + r_hi) / 2) ** 2 * 1.3 * (1.5 if devita == 3 else 1.0)
    n = rng.uniform(c_lo, c_hi) * gland_px / max(mean_area, 1e-6)
    return int(np.clip(round(n), fewest, 40)), float(r_lo), float(r_hi)
