"""The randomised and scatter appearance families: pure, well-formed frames with exact masks."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from scipy import ndimage

from sgus_core.synthesis import randomised, scatter
from sgus_core.synthesis.family import DEVITA_P, SynthFrame, clean_mask, draw_devita
from sgus_core.synthesis.frame_stats import measure_frame

FAMILIES = [randomised, scatter]
SMALL = (256, 192)
REALISTIC_SIZES = {(921, 641), (781, 365), (908, 584), (606, 459)}


def _ids(module: ModuleType) -> str:
    return module.FAMILY


@pytest.fixture(scope="module")
def small_frames() -> dict[str, list[SynthFrame]]:
    """24 frames of each family at 256x192 (shared by the shape and area tests)."""
    return {m.FAMILY: [m.render(s, size=SMALL) for s in range(24)] for m in FAMILIES}


def _inside_fov(frame: SynthFrame) -> np.ndarray:
    x, y, w, h = frame.fov
    box = np.zeros(frame.mask.shape, bool)
    box[y : y + h, x : x + w] = True
    return box


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_same_seed_gives_the_same_frame(module: ModuleType) -> None:
    """Rendering a seed twice gives identical images, masks, grades and FOVs."""
    for seed in (0, 7, 123456):
        a, b = module.render(seed, size=SMALL), module.render(seed, size=SMALL)
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.mask, b.mask)
        assert (a.devita, a.fov, a.seed) == (b.devita, b.fov, b.seed)


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_different_seeds_give_different_frames(module: ModuleType) -> None:
    """Different seeds give different images and different masks."""
    frames = [module.render(s, size=SMALL) for s in range(4)]
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert not np.array_equal(frames[i].image, frames[j].image)
            assert not np.array_equal(frames[i].mask, frames[j].mask)


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_shapes_and_dtypes(module: ModuleType, small_frames: dict[str, list[SynthFrame]]) -> None:
    """A requested size gives an (H, W) uint8 image, an (H, W) bool mask and a FOV in the frame."""
    for f in small_frames[module.FAMILY]:
        assert isinstance(f, SynthFrame) and f.family == module.FAMILY
        assert f.image.shape == (SMALL[1], SMALL[0]) and f.image.dtype == np.uint8
        assert f.mask.shape == f.image.shape and f.mask.dtype == bool
        x, y, w, h = f.fov
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= SMALL[0] and y + h <= SMALL[1]
        assert f.devita in (0, 1, 2, 3)
    odd = module.render(3, size=(97, 61))
    assert odd.image.shape == (61, 97) and odd.mask.any()


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_default_size_is_a_realistic_frame_size(module: ModuleType) -> None:
    """Without a size a frame has a real scanner's size, a screenshot's or an FOV crop's aspect."""
    for seed in range(4):
        f = module.render(seed)
        h, w = f.image.shape
        screenshot = 800 <= w <= 1280 and 1.43 <= w / h <= 1.48
        crop = 1.0 <= w / h <= 2.21 and 300 <= w <= 1000
        assert (w, h) in REALISTIC_SIZES or screenshot or crop, (w, h)


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_mask_is_one_region_without_holes_inside_the_fov(
    module: ModuleType, small_frames: dict[str, list[SynthFrame]]
) -> None:
    """The gland mask is one 4-connected region, has no holes and lies inside the FOV."""
    frames = small_frames[module.FAMILY] + [module.render(s, size=(64, 48)) for s in range(8)]
    for f in frames:
        _, n = ndimage.label(f.mask)
        assert n == 1, (f.seed, n)
        assert np.array_equal(ndimage.binary_fill_holes(f.mask), f.mask)
        assert not (f.mask & ~_inside_fov(f)).any()


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_gland_area_and_shape_are_in_range(
    module: ModuleType, small_frames: dict[str, list[SynthFrame]]
) -> None:
    """The gland covers 2-25 % of a framed frame or 5-45 % of an FOV-only one, a flat wide lens."""
    aspects = []
    for f in small_frames[module.FAMILY]:
        x, y, w, h = f.fov
        ys, xs = np.nonzero(f.mask)
        framed = w * h < 0.8 * f.mask.size
        if framed:
            assert 0.02 <= f.mask.mean() <= 0.25, (f.seed, f.mask.mean())
        else:
            assert 0.05 <= f.mask.sum() / (w * h) <= 0.45, (f.seed, f.mask.sum() / (w * h))
        width = xs.max() - xs.min() + 1
        assert 0.3 <= width / w <= 1.0
        assert 0.05 <= (ys.min() - y) / h <= 0.6  # the top edge: under skin and fat
        aspects.append(width / (ys.max() - ys.min() + 1))
    assert 2.0 <= float(np.median(aspects)) <= 5.0


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_devita_is_respected_and_only_the_parenchyma_changes(module: ModuleType) -> None:
    """A given grade is returned; grades of one seed share the mask and darken the gland more."""
    for seed in (2, 5):
        frames = [module.render(seed, size=SMALL, devita=g) for g in range(4)]
        assert [f.devita for f in frames] == [0, 1, 2, 3]
        for f in frames[1:]:
            assert np.array_equal(f.mask, frames[0].mask)
        gland = frames[0].mask
        level = np.median(frames[0].image[gland])
        dark = [float((f.image[gland] < 0.5 * level).mean()) for f in frames]
        assert dark[3] > dark[0] + 0.03 and dark[2] > dark[0], dark


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_drawn_devita_is_the_one_given_back(module: ModuleType) -> None:
    """Asking for the grade a seed drew by itself gives back the very same frame."""
    for seed in (1, 4):
        free = module.render(seed, size=SMALL)
        fixed = module.render(seed, size=SMALL, devita=free.devita)
        assert np.array_equal(free.image, fixed.image) and np.array_equal(free.mask, fixed.mask)


def test_drawn_grades_follow_the_real_frequencies() -> None:
    """Grades drawn without a request follow the real set's 110:28:55:32 frequencies."""
    rng = np.random.default_rng(0)
    counts = np.bincount([draw_devita(rng) for _ in range(4000)], minlength=4) / 4000
    assert np.allclose(counts, DEVITA_P, atol=0.03)


@pytest.mark.parametrize("module", FAMILIES, ids=_ids)
def test_bad_requests_are_refused(module: ModuleType) -> None:
    """A grade outside 0-3 or a frame under 32 px a side raises ValueError."""
    with pytest.raises(ValueError):
        module.render(0, size=SMALL, devita=4)
    with pytest.raises(ValueError):
        module.render(0, size=(16, 200))


def test_randomised_gland_contrast_spans_darker_to_brighter() -> None:
    """Over 40 seeds the gland is sometimes darker (< 0.85) and sometimes brighter (> 1.1) than its ring."""
    ratios = [
        measure_frame(f.image, f.mask)["gland_ring_ratio"]
        for f in (randomised.render(s, size=SMALL) for s in range(40))
    ]
    assert sum(r < 0.85 for r in ratios) >= 4 and sum(r > 1.1 for r in ratios) >= 4
    assert min(ratios) < 0.7 and max(ratios) > 1.25


def test_randomised_draws_sector_and_ui_framed_frames() -> None:
    """Over 40 seeds both sector (fan) FOVs and UI-framed frames occur, as their pixels show."""
    layouts = [randomised.layout(s, size=SMALL) for s in range(40)]
    assert any(lay.sector for lay in layouts) and any(not lay.sector for lay in layouts)
    assert any(lay.framed for lay in layouts) and any(not lay.framed for lay in layouts)
    for seed, lay in enumerate(layouts[:16]):
        f = randomised.render(seed, size=SMALL)
        assert f.fov == lay.fov
        x, y, w, h = f.fov
        fov = f.image[y : y + h, x : x + w]
        if lay.sector:  # black outside the fan: about a third of its bounding box
            assert (fov <= 12).mean() > 0.1
        if lay.framed:  # something burned in outside the FOV (text, panels, scale)
            outside = ~_inside_fov(f)
            assert (f.image[outside] > 10).mean() > 0.01


def test_randomised_grey_statistics_are_wide() -> None:
    """Frames range from dark to bright and from low to high contrast."""
    means, p99s = [], []
    for s in range(30):
        f = randomised.render(s, size=(128, 96))
        x, y, w, h = f.fov
        fov = f.image[y : y + h, x : x + w].astype(float)
        means.append(fov.mean())
        p99s.append(np.percentile(fov, 99))
    assert min(means) < 40 and max(means) > 90
    assert min(p99s) < 150 and max(p99s) > 230


def test_scatter_frames_are_fov_only_or_inside_black_margins() -> None:
    """The scatter family makes both FOV-only frames and FOVs inside black margins."""
    frames = [scatter.render(s, size=SMALL) for s in range(12)]
    full = [f.fov == (0, 0, SMALL[0], SMALL[1]) for f in frames]
    assert any(full) and not all(full)
    for f in frames:
        if f.fov != (0, 0, SMALL[0], SMALL[1]):
            outside = ~_inside_fov(f)
            assert np.median(f.image[outside]) == 0


def test_scatter_vessels_and_shadow_are_dark() -> None:
    """Anechoic pixels exist in every frame: vessels, foci or the shadow fall near black."""
    for s in range(6):
        f = scatter.render(s, size=SMALL, devita=3)
        gland = f.image[f.mask]
        assert np.percentile(gland, 5) < 0.5 * np.median(gland)


def test_clean_mask_keeps_the_largest_region_and_fills_holes() -> None:
    """clean_mask keeps the largest 4-connected region and fills the holes inside it."""
    m = np.zeros((20, 30), bool)
    m[2:12, 2:20] = True
    m[5:8, 6:9] = False  # a hole
    m[15:18, 25:28] = True  # a smaller island
    out = clean_mask(m)
    assert out[6, 7] and not out[16, 26] and out.sum() == 10 * 18
