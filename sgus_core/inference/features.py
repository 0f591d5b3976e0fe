"""Texture features of the gland for the feature grader: the de Vita and Hocevar criteria as
numbers (numpy, OpenCV, scikit-image; no network).

What a rater looks at when she grades a parotid or submandibular gland (docs/SGUS.md): how
homogeneous the parenchyma is, how many hypoechoic foci there are and how big, whether bright
(fibrous) bands cross it, and how clear its border is. :func:`grade_features` measures these
inside the gland mask (the rater's, else the predicted one, else the whole field of view), after
two normalisations that make frames of different scanners comparable:

* **scale**: the gland's box (padded by :data:`PAD`) is resized to :data:`WIDTH` pixels wide, so
  focus sizes are in units of the gland's width, not of the scanner's pixels;
* **grey level**: grey values are divided by the median of the field of view (gain), and the
  co-occurrence and binary-pattern features use ranks inside the gland (gamma, log compression).

Features (:data:`FEATURE_NAMES`, in order): first-order statistics; GLCM contrast,
dissimilarity, homogeneity, energy and correlation at three distances; uniform LBP histograms at
two radii; hypoechoic foci at two depths (count per gland area, area fraction, mean and largest
size); bright bands (white top-hat area fraction, elongated bands per area); border clarity
(edge strength on the outline against inside, grey step across it); gland area share of the
field of view.
"""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 256  # the gland's box is resized to this width (pixels) before measuring
PAD = 0.1  # the box is padded by this share of its width and height on each side
MIN_REGION = 0.005  # a mask below this share of the FOV is taken as no mask
GLCM_LEVELS = 16
GLCM_DISTANCES = (1, 3, 6)
GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")
LBP_RADII = (1, 3)
LBP_POINTS = 8
FOCI_DEPTHS = (0.7, 0.55)  # darker than this share of the local parenchyma grey
FOCI_Z = (1.0, 1.8)  # or darker than the local grey by this many of the gland's grey spreads


def _names() -> tuple[str, ...]:
    names = [
        "mean_rel_fov",
        "std_rel",
        "cv",
        "skewness",
        "kurtosis",
        "p10_rel",
        "p50_rel",
        "p90_rel",
        "spread_p90_p10",
        "gland_to_ring",
    ]
    names += [f"glcm_{p}_d{d}" for d in GLCM_DISTANCES for p in GLCM_PROPS]
    names += [f"lbp_r{r}_bin{b}" for r in LBP_RADII for b in range(LBP_POINTS + 2)]
    tags = [f"foci{int(d * 100)}" for d in FOCI_DEPTHS] + [f"fociz{int(z * 10)}" for z in FOCI_Z]
    for tag in tags:
        names += [f"{tag}_per_area", f"{tag}_area_fraction", f"{tag}_mean_size", f"{tag}_max_size"]
        names += [f"{tag}_mean_radius_rel", f"{tag}_max_radius_rel"]
    names += ["bands_area_fraction", "bands_per_area", "bright_p99_rel"]
    names += ["border_edge_ratio", "border_step", "area_share_fov"]
    return tuple(names)


FEATURE_NAMES = _names()
N_FEATURES = len(FEATURE_NAMES)


def _region(fov_pixels: np.ndarray, fov_mask: np.ndarray | None) -> np.ndarray:
    """The mask's largest connected region, or the whole FOV when the mask is missing or tiny."""
    whole = np.ones(fov_pixels.shape[:2], dtype=bool)
    if fov_mask is None or fov_mask.shape != fov_pixels.shape[:2]:
        return whole
    m = np.asarray(fov_mask, dtype=np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n < 2:
        return whole
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = labels == largest
    return region if region.mean() >= MIN_REGION else whole


def _normalised_crop(
    grey: np.ndarray, region: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, mask, ring) of the gland's padded box, resized to :data:`WIDTH` wide."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    pad_y, pad_x = int(PAD * (y1 - y0)), int(PAD * (x1 - x0))
    h, w = grey.shape
    y0, y1 = max(0, y0 - pad_y), min(h, y1 + pad_y)
    x0, x1 = max(0, x0 - pad_x), min(w, x1 + pad_x)
    crop, crop_mask = grey[y0:y1, x0:x1], region[y0:y1, x0:x1]
    height = max(16, round(crop.shape[0] * WIDTH / max(1, crop.shape[1])))
    height = min(height, 4 * WIDTH)
    image = cv2.resize(crop, (WIDTH, height), interpolation=cv2.INTER_AREA)
    mask = (
        cv2.resize(crop_mask.astype(np.uint8), (WIDTH, height), interpolation=cv2.INTER_NEAREST) > 0
    )
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    ring = (cv2.dilate(mask.astype(np.uint8), kernel) > 0) & ~mask
    return image, mask, ring


def _first_order(values: np.ndarray, fov_median: float, ring_mean: float) -> list[float]:
    mean = float(values.mean())
    std = float(values.std())
    centred = values - mean
    skew = float((centred**3).mean() / (std**3 + 1e-9))
    kurt = float((centred**4).mean() / (std**4 + 1e-9) - 3.0)
    p10, p50, p90 = (float(v) for v in np.percentile(values, (10, 50, 90)))
    ref = max(fov_median, 1.0)
    return [
        mean / ref,
        std / ref,
        std / (mean + 1e-6),
        skew,
        kurt,
        p10 / ref,
        p50 / ref,
        p90 / ref,
        (p90 - p10) / (p50 + 1.0),
        mean / max(ring_mean, 1.0),
    ]


def _rank_levels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey levels 1..GLCM_LEVELS by the gland's own percentiles (0 outside the mask)."""
    inside = image[mask]
    edges = np.percentile(inside, np.linspace(0, 100, GLCM_LEVELS + 1)[1:-1])
    levels = (np.searchsorted(edges, image, side="right") + 1).astype(np.uint8)
    levels[~mask] = 0
    return levels


def _glcm(levels: np.ndarray) -> list[float]:
    from skimage.feature import graycomatrix, graycoprops

    matrix = graycomatrix(
        levels,
        distances=list(GLCM_DISTANCES),
        angles=[0.0, np.pi / 2],
        levels=GLCM_LEVELS + 1,
        symmetric=True,
        normed=False,
    ).astype(np.float64)
    matrix = matrix[1:, 1:]  # pairs touching the outside (level 0) are not gland texture
    totals = matrix.sum(axis=(0, 1), keepdims=True)
    matrix = matrix / np.where(totals > 0, totals, 1.0)
    out = []
    for d in range(len(GLCM_DISTANCES)):
        for prop in GLCM_PROPS:
            value = graycoprops(matrix[:, :, d : d + 1, :], prop)
            out.append(float(np.nan_to_num(value).mean()))
    return out


def _lbp(image: np.ndarray, mask: np.ndarray) -> list[float]:
    from skimage.feature import local_binary_pattern

    out: list[float] = []
    for radius in LBP_RADII:
        grey = np.clip(image, 0, 255).astype(np.uint8)
        codes = local_binary_pattern(grey, LBP_POINTS, radius, method="uniform")
        hist = np.bincount(codes[mask].astype(np.int64), minlength=LBP_POINTS + 2)
        out += (hist[: LBP_POINTS + 2] / max(1, hist.sum())).tolist()
    return out


def _foci(image: np.ndarray, mask: np.ndarray) -> list[float]:
    """Hypoechoic foci: blobs darker than a share of the local parenchyma grey (or than the
    local grey less a multiple of the gland's spread), inside the gland: count per 10,000 gland
    pixels, area fraction, mean and largest size (pixels at :data:`WIDTH`), and their radii
    relative to the gland's mean thickness (de Vita's "small" and "large" foci)."""
    smooth = cv2.GaussianBlur(image, (0, 0), 1.5)
    inside = mask.astype(np.float32)
    local = cv2.GaussianBlur(smooth * inside, (0, 0), 14) / np.maximum(
        cv2.GaussianBlur(inside, (0, 0), 14), 1e-3
    )
    core = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    area = max(1, int(core.sum()))
    columns = max(1, int(np.count_nonzero(mask.any(axis=0))))
    thickness = max(1.0, float(mask.sum()) / columns)
    spread = float(smooth[mask].std()) + 1.0
    darks = [smooth < depth * local for depth in FOCI_DEPTHS]
    darks += [smooth < local - z * spread for z in FOCI_Z]
    out: list[float] = []
    for dark in darks:
        n, _, stats, _ = cv2.connectedComponentsWithStats(
            (dark & core).astype(np.uint8), connectivity=8
        )
        sizes = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
        sizes = sizes[sizes >= 6]
        mean = float(sizes.mean()) if len(sizes) else 0.0
        largest = float(sizes.max()) if len(sizes) else 0.0
        out += [
            1e4 * len(sizes) / area,
            float(sizes.sum()) / area,
            mean,
            largest / area,
            float(np.sqrt(mean / np.pi)) / thickness,
            float(np.sqrt(largest / np.pi)) / thickness,
        ]
    return out


def _bands(image: np.ndarray, mask: np.ndarray, fov_median: float) -> list[float]:
    """Bright (fibrous) bands: the white top-hat above the gland's spread, their area share and
    the number of elongated ones per 10,000 gland pixels."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
    tophat = cv2.morphologyEx(image, cv2.MORPH_TOPHAT, kernel)
    inside = image[mask]
    threshold = max(8.0, 1.5 * float(inside.std()))
    bright = (tophat > threshold) & mask
    n, _, stats, _ = cv2.connectedComponentsWithStats(bright.astype(np.uint8), connectivity=8)
    widths = stats[1:, cv2.CC_STAT_WIDTH].astype(np.float64)
    heights = stats[1:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    elongated = int(
        np.sum((np.maximum(widths, heights) >= 3 * np.minimum(widths, heights) + 1) & (sizes >= 10))
    )
    area = max(1, int(mask.sum()))
    return [
        float(bright.sum()) / area,
        1e4 * elongated / area,
        float(np.percentile(inside, 99)) / max(fov_median, 1.0),
    ]


def _border(image: np.ndarray, mask: np.ndarray, ring: np.ndarray) -> list[float]:
    smooth = cv2.GaussianBlur(image, (0, 0), 2.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    magnitude = np.hypot(gx, gy)
    m8 = mask.astype(np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    outline = (cv2.dilate(m8, kernel) > 0) & ~(cv2.erode(m8, kernel) > 0)
    core = cv2.erode(m8, np.ones((9, 9), np.uint8)) > 0
    inner = float(magnitude[core].mean()) if core.any() else float(magnitude[mask].mean())
    edge = float(magnitude[outline].mean()) if outline.any() else inner
    step = 0.0
    if ring.any():
        spread = float(image[mask].std()) + 1.0
        step = abs(float(image[mask].mean()) - float(image[ring].mean())) / spread
    return [edge / (inner + 1e-3), step]


def grade_features(fov_pixels: np.ndarray, fov_mask: np.ndarray | None) -> np.ndarray:
    """The :data:`FEATURE_NAMES` of one field-of-view crop, as an (N_FEATURES,) float32 vector.

    Args:
        fov_pixels: (H, W) uint8 grey field of view (colour is averaged to grey).
        fov_mask: (H, W) bool gland mask of the same crop (the rater's or the predicted one), or
            None: then the whole field of view is measured.

    Returns:
        Finite float32 values (a feature that cannot be measured is 0).
    """
    grey = np.asarray(fov_pixels)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    grey = grey.astype(np.float32)
    if grey.shape[0] < 8 or grey.shape[1] < 8:
        return np.zeros(N_FEATURES, dtype=np.float32)
    region = _region(grey, fov_mask)
    fov_median = float(np.median(grey[grey > 4])) if np.any(grey > 4) else 1.0
    image, mask, ring = _normalised_crop(grey, region)
    if mask.sum() < 16:
        mask = np.ones_like(mask)
    values = image[mask]
    ring_mean = float(image[ring].mean()) if ring.any() else float(values.mean())
    features = _first_order(values, fov_median, ring_mean)
    features += _glcm(_rank_levels(image, mask))
    features += _lbp(image, mask)
    features += _foci(image, mask)
    features += _bands(image, mask, fov_median)
    features += _border(image, mask, ring)
    features.append(float(region.mean()))
    vector = np.nan_to_num(np.asarray(features, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return vector.astype(np.float32)
