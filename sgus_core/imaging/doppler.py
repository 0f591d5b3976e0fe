"""Colour-flow and power-Doppler signal in a colour frame, and the vascular fraction of a gland.

A Doppler frame is a greyscale B-mode image with flow painted over it in colour: red and blue
(colour flow, towards and away from the probe) or a red-orange-yellow map (power Doppler). What
counts as signal:

1. **coloured pixels**: a high spread between the RGB channels (chroma) at a lit pixel, with a
   hue of a Doppler map (red through yellow, or blue); grey, JPEG-compressed grey and the
   greens, cyans and magentas scanners draw calipers and markers in do not count;
2. **inside the field of view**: a colour bar or a coloured logo in the UI around it is not flow;
3. **in blobs**: coloured pixels are grouped into connected regions; each region's strongly
   coloured core (chroma >= :data:`CORE_CHROMA`) is opened with a :data:`OPENING_PX` disc, which
   removes thin things (calipers, dotted outlines, text, arrows, and JPEG colour bleeding along
   them, which is wide but weakly coloured). A region counts when the opening leaves at least
   :data:`MIN_BLOB_PX` pixels and :data:`CORE_SHARE` of its area, and what it leaves is not a
   filled rectangle (a colour bar, a logo or a button, should the field of view take the UI in).
   Its signal is its pixels of chroma >= :data:`SIGNAL_CHROMA`: about half a Doppler map's
   chroma, where the edge of a blob stays when JPEG blurs it.

A frame is Doppler when its signal covers at least :data:`MIN_SIGNAL_PX` pixels. All of it works
on the (H, W, 3) uint8 RGB samples the file held, before the reader reduces them to grey.
"""

from __future__ import annotations

import cv2
import numpy as np

from sgus_core.imaging.frame import Rect

# Chroma: max - min of R, G, B. JPEG'd grey stays below 10; Doppler maps are 140-255.
MIN_CHROMA = 60  # coloured at all: regions are grouped at this level (bleeding joins a line up)
SIGNAL_CHROMA = 90  # counted as signal: JPEG blurs a blob's edge, its half-chroma level stays put
CORE_CHROMA = 110  # a blob's core: JPEG smears a thin line's colour wide, but at lower chroma
MIN_VALUE = 60  # max of R, G, B: a very dark pixel has no reliable hue
# OpenCV hue (0-179): red-orange-yellow up to HUE_YELLOW (and from HUE_RED_WRAP), blue between.
HUE_YELLOW = 38
HUE_RED_WRAP = 165
HUE_BLUE = (95, 135)
OPENING_PX = 7  # a disc this wide removes lines, arrows and text strokes up to about 6 px thick
MIN_BLOB_PX = 30  # a region counts when the opening leaves at least this many of its pixels
CORE_SHARE = 0.5  # ... and at least this share of them: a line with an arrowhead is mostly line
RECTANGLE_FILL = 0.9  # a core filling this much of its bounding box is a rectangle (UI)
MIN_SIGNAL_PX = 40  # a frame is Doppler with at least this much signal inside its FOV


def _chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chroma (max - min of R, G, B) of each pixel, and whether it is lit and of a Doppler
    map's hue."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, not {rgb.shape} {rgb.dtype}")
    high = rgb.max(axis=2)
    chroma = high - rgb.min(axis=2)  # uint8: max >= min, no wrap-around
    hue = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)[..., 0]
    doppler_hue = (hue <= HUE_YELLOW) | (hue >= HUE_RED_WRAP)
    doppler_hue |= (hue >= HUE_BLUE[0]) & (hue <= HUE_BLUE[1])
    return chroma, (high >= MIN_VALUE) & doppler_hue


def coloured_pixels(rgb: np.ndarray, min_chroma: int = MIN_CHROMA) -> np.ndarray:
    """Pixels in a Doppler map's colours: chroma of at least ``min_chroma``, lit, of a red to
    yellow or a blue hue.

    Args:
        rgb: (H, W, 3) uint8, channels in R, G, B order.
        min_chroma: the least spread between the channels, 0-255.

    Returns:
        (H, W) bool.

    Raises:
        ValueError: not an (H, W, 3) uint8 array.
    """
    chroma, hue_ok = _chroma(rgb)
    return (chroma >= min_chroma) & hue_ok


def doppler_signal(rgb: np.ndarray, fov: Rect | None = None) -> np.ndarray:
    """The Doppler signal of a colour frame: coloured pixels inside the field of view that belong
    to a blob (see the module's description).

    Args:
        rgb: (H, W, 3) uint8 RGB samples.
        fov: the field of view; ``None`` is the whole frame.

    Returns:
        (H, W) bool, False everywhere outside ``fov``.

    Raises:
        ValueError: not an (H, W, 3) uint8 array.
    """
    chroma, hue_ok = _chroma(rgb)
    inside = np.zeros(chroma.shape, bool)
    inside[fov.slices if fov is not None else (slice(None), slice(None))] = True
    coloured = (chroma >= MIN_CHROMA) & hue_ok & inside
    if not coloured.any():
        return coloured
    core = ((chroma >= CORE_CHROMA) & coloured).astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (OPENING_PX, OPENING_PX))
    opened = cv2.morphologyEx(core, cv2.MORPH_OPEN, disc)
    n, labels = cv2.connectedComponents(coloured.astype(np.uint8), connectivity=8)
    area = np.bincount(labels.ravel(), minlength=n)
    solid = np.bincount(labels.ravel(), weights=opened.ravel(), minlength=n)
    keep = (solid >= MIN_BLOB_PX) & (solid >= CORE_SHARE * area)
    keep[0] = False
    # A core that fills its bounding box is a rectangle: a colour bar, a logo, a UI button (flow
    # is never drawn in rectangles); its region is UI, also where the FOV took the UI in.
    _, core_labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    box = stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT]
    rectangles = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= RECTANGLE_FILL * box) + 1
    if rectangles.size:
        keep[np.unique(labels[np.isin(core_labels, rectangles)])] = False
    return keep[labels] & (chroma >= SIGNAL_CHROMA)


def is_doppler(signal: np.ndarray) -> bool:
    """Whether a frame's signal (:func:`doppler_signal`) is enough to call it a Doppler frame."""
    return int(np.count_nonzero(signal)) >= MIN_SIGNAL_PX


def doppler_frame_signal(rgb: np.ndarray, fov: Rect | None = None) -> np.ndarray | None:
    """The Doppler signal of a colour frame (:func:`doppler_signal`) when there is enough of it
    to call the frame a Doppler frame (:func:`is_doppler`), else None."""
    signal = doppler_signal(rgb, fov)
    return signal if is_doppler(signal) else None


def vascular_caption(signal: np.ndarray | None, mask: np.ndarray | None) -> str | None:
    """``"Doppler: vascular fraction 12.3 % inside the gland"`` for a Doppler frame's signal and a
    gland mask; ``None`` for a frame that is not Doppler (no signal) or without a mask."""
    if signal is None or mask is None:
        return None
    fraction = vascular_fraction(signal, mask)
    if fraction is None:
        return None
    return f"Doppler: vascular fraction {100 * fraction:.1f} % inside the gland"


def vascular_fraction(signal: np.ndarray, mask: np.ndarray) -> float | None:
    """The share of a gland's pixels that carry Doppler signal, 0-1.

    Args:
        signal: (H, W) bool Doppler signal (:func:`doppler_signal`).
        mask: (H, W) bool gland mask of the same frame.

    Returns:
        Signal pixels inside the mask / mask pixels; ``None`` for an empty mask.

    Raises:
        ValueError: the two arrays differ in shape.
    """
    if signal.shape != mask.shape:
        raise ValueError(f"signal {signal.shape} and mask {mask.shape} differ in shape")
    gland = mask.astype(bool)
    area = int(np.count_nonzero(gland))
    if area == 0:
        return None
    return float(np.count_nonzero(signal & gland)) / area
