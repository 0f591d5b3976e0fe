"""Frame figures measured the docs/SGUS.md way, on hand-made images with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from sgus_core.synthesis.frame_stats import (
    REAL_FIGURES,
    format_comparison,
    main,
    measure_frame,
    speckle_grain,
    summarise,
)


@pytest.fixture
def handmade():
    """A 100x200 frame: a 20x100 gland of rows alternating 60/100, a 40-grey zone around it."""
    image = np.zeros((100, 200), np.uint8)
    mask = np.zeros((100, 200), bool)
    mask[40:60, 50:150] = True
    # Grey 40 up to 22 px from the gland, 0 beyond: a 20 px ring sees only 40.
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    image[dist <= 22] = 40
    image[40:60:2, 50:150] = 60
    image[41:60:2, 50:150] = 100
    return image, mask


def test_whole_frame_grey_figures(handmade):
    """Mean, median and 99th percentile are taken over every pixel of the frame."""
    image, mask = handmade
    figures = measure_frame(image, mask)
    assert figures["mean_grey"] == pytest.approx(image.mean())
    assert figures["median_grey"] == np.median(image)
    assert figures["p99_grey"] == pytest.approx(100.0)


def test_gland_against_its_20_px_ring(handmade):
    """Gland mean 80 over a ring of 40 gives 2.0: pixels beyond 22 px do not count."""
    image, mask = handmade
    assert measure_frame(image, mask)["gland_ring_ratio"] == pytest.approx(2.0)


def test_gland_texture_area_and_bounding_box(handmade):
    """std/mean 20/80, area 2000/20000, bbox 100x20 px in a 200x100 frame."""
    figures = measure_frame(*handmade)
    assert figures["gland_cv"] == pytest.approx(0.25)
    assert figures["area_fraction"] == pytest.approx(0.1)
    assert figures["width_fraction"] == pytest.approx(0.5)
    assert figures["height_fraction"] == pytest.approx(0.2)
    assert figures["aspect"] == pytest.approx(5.0)


def test_speckle_grain_of_blurred_noise():
    """White noise blurred by sigmas (4, 1.5) has autocorrelation HWHM sigma * sqrt(4 ln 2)."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((300, 600)).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), sigmaX=4.0, sigmaY=1.5)
    mask = np.ones(field.shape, bool)
    lateral, axial = speckle_grain(field, mask)
    k = math.sqrt(4 * math.log(2))
    assert lateral == pytest.approx(4.0 * k, rel=0.1)
    assert axial == pytest.approx(1.5 * k, rel=0.1)


def test_empty_mask_gives_nan_gland_figures():
    """Without a gland, the frame figures stand and the gland figures are NaN."""
    figures = measure_frame(np.full((10, 10), 7, np.uint8), np.zeros((10, 10), bool))
    assert figures["mean_grey"] == 7
    assert math.isnan(figures["gland_ring_ratio"]) and math.isnan(figures["aspect"])


def test_mask_of_another_size_is_refused():
    """A mask that does not fit the frame raises ValueError."""
    with pytest.raises(ValueError, match="shape"):
        measure_frame(np.zeros((10, 10), np.uint8), np.zeros((10, 11), bool))


def test_summarise_gives_median_and_range_ignoring_nan():
    """Median, min and max per figure over rows; NaNs are not counted."""
    table = summarise([{"a": 1.0}, {"a": 3.0}, {"a": float("nan")}, {"a": 10.0}])
    assert (table["a"].median, table["a"].low, table["a"].high, table["a"].n) == (3.0, 1.0, 10.0, 3)


def test_comparison_table_lists_every_real_figure():
    """The printed table has one line per docs/SGUS.md figure plus a header."""
    rows = [measure_frame(np.full((10, 10), 5, np.uint8), np.eye(10, dtype=bool))]
    text = format_comparison(summarise(rows))
    assert len(text.splitlines()) == len(REAL_FIGURES) + 1
    assert "0.9 (0.73-1.16)" in text


def test_command_prints_the_comparison(capsys):
    """python -m sgus_core.synthesis.frame_stats prints the table and the grade counts."""
    assert main(["--patients", "1", "--first-seed", "5", "--scanner", "800x555"]) == 0
    out = capsys.readouterr().out
    assert "gland mean / 20 px ring mean" in out and "frames: 4" in out
