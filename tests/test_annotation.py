"""Mask editing: canvas objects to strokes, exact rasterizing, composition, clean-up, undo."""

from __future__ import annotations

import numpy as np
import pytest

from sgus_core.annotate.editing import (
    EditHistory,
    compose,
    crop_zoom,
    fill_holes,
    keep_largest_region,
    rasterize,
    smooth,
)
from sgus_core.annotate.strokes import Stroke, strokes_from_canvas
from sgus_core.errors import MaskError


def _canvas(*objects: dict) -> dict:
    return {"version": "7.4.0", "objects": list(objects)}


def _rect(left, top, width, height, stroke_width=0, **extra) -> dict:
    """A Rect as the component's rect tool makes it (origin left/top, uniform stroke)."""
    obj = {
        "type": "Rect",
        "originX": "left",
        "originY": "top",
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "strokeWidth": stroke_width,
        "strokeUniform": True,
        "stroke": "#00ff00",
        "fill": "rgba(0,255,0,0.3)",
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }
    return {**obj, **extra}


def _path(commands: list, width: float, **extra) -> dict:
    """A Path as the pencil brush leaves it: absolute commands, centred on its bounding box."""
    xs = [c[i] for c in commands for i in range(1, len(c), 2)]
    ys = [c[i] for c in commands for i in range(2, len(c), 2)]
    obj = {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": (min(xs) + max(xs)) / 2,
        "top": (min(ys) + max(ys)) / 2,
        "path": commands,
        "strokeWidth": width,
        "stroke": "#00ff00",
        "fill": None,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }
    return {**obj, **extra}


def _pixels(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)}


def _block(rows: range, cols: range) -> set[tuple[int, int]]:
    return {(r, c) for r in rows for c in cols}


def test_add_stroke_then_erase_part_gives_exact_pixels():
    """A 1-px free-draw line with its right half erased by a rect leaves exactly the left pixels."""
    add = strokes_from_canvas(_canvas(_path([["M", 1.5, 4.5], ["L", 6.5, 4.5]], 1)), mode="add")
    erase = strokes_from_canvas(_canvas(_rect(4, 0, 4, 8)), mode="erase")
    mask = compose(np.zeros((8, 8), bool), add, erase, display_size=(8, 8))
    assert _pixels(mask) == {(4, 1), (4, 2), (4, 3)}


def test_rect_then_erase_rect_leaves_the_difference():
    """An added 6x6 block minus an erased block to its right leaves the exact remaining columns."""
    add = strokes_from_canvas(_canvas(_rect(1, 1, 6, 6)), mode="add")
    erase = strokes_from_canvas(_canvas(_rect(5, 0, 5, 10)), mode="erase")
    mask = compose(np.zeros((10, 10), bool), add, erase, display_size=(10, 10))
    assert _pixels(mask) == _block(range(1, 7), range(1, 5))


def test_later_add_stroke_wins_over_earlier_erase():
    """Strokes compose in drawing order: an add after an erase paints the pixels back."""
    first = Stroke("erase", "rect", [[0, 0], [4, 0], [4, 4], [0, 4]], 0)
    second = Stroke("add", "rect", [[1, 1], [3, 1], [3, 3], [1, 3]], 0)
    mask = compose(np.ones((4, 4), bool), [first, second], display_size=(4, 4))
    assert _pixels(mask) == _block(range(1, 3), range(1, 3))


def test_canvas_half_the_frame_size_scales_strokes_to_frame_pixels():
    """A 2x2 rect on a canvas half the frame's size covers a 4x4 block of frame pixels."""
    strokes = strokes_from_canvas(_canvas(_rect(1, 1, 2, 2)), mode="add")
    add, erase = rasterize(strokes, display_size=(8, 6), mask_shape=(12, 16))
    assert _pixels(add) == _block(range(2, 6), range(2, 6))
    assert not erase.any()


def test_brush_width_scales_with_the_frame():
    """A 1-px brush on a half-size canvas paints a 2-px-wide line on the frame."""
    strokes = strokes_from_canvas(_canvas(_path([["M", 1, 3], ["L", 5, 3]], 1)), mode="add")
    add, _ = rasterize(strokes, display_size=(8, 6), mask_shape=(12, 16))
    assert _pixels(add) == _block(range(5, 7), range(1, 11))


def test_polygon_object_is_filled():
    """The polygon tool's closed Polygon fills every pixel whose centre lies inside it."""
    points = [{"x": 1, "y": 1}, {"x": 7, "y": 1}, {"x": 7, "y": 3}, {"x": 3, "y": 3}]
    points += [{"x": 3, "y": 6}, {"x": 1, "y": 6}]
    polygon = {"type": "Polygon", "left": 4, "top": 3.5, "points": points, "strokeWidth": 0}
    strokes = strokes_from_canvas(_canvas(polygon), mode="add")
    add, _ = rasterize(strokes, display_size=(8, 8), mask_shape=(8, 8))
    assert [s.kind for s in strokes] == ["polygon"]
    assert _pixels(add) == _block(range(1, 3), range(1, 7)) | _block(range(3, 6), range(1, 3))


def test_closed_path_from_older_canvases_is_a_filled_polygon():
    """A path of M/L commands ending in z is read as a filled polygon."""
    commands = [["M", 1, 1], ["L", 5, 1], ["L", 5, 4], ["L", 1, 4], ["z"]]
    strokes = strokes_from_canvas(_canvas(_path(commands, 0, type="path")), mode="add")
    add, _ = rasterize(strokes, display_size=(6, 6), mask_shape=(6, 6))
    assert [s.kind for s in strokes] == ["polygon"]
    assert _pixels(add) == _block(range(1, 4), range(1, 5))


def test_rect_includes_its_stroke_band():
    """A rect drawn with a 2-px stroke covers its fill plus the band Fabric paints around it."""
    strokes = strokes_from_canvas(_canvas(_rect(2, 2, 4, 3, stroke_width=2)), mode="add")
    add, _ = rasterize(strokes, display_size=(10, 10), mask_shape=(10, 10))
    assert _pixels(add) == _block(range(2, 7), range(2, 8))


def test_rotated_rect_turns_about_its_origin():
    """A rect rotated 90 degrees about its top-left origin lands where Fabric draws it."""
    strokes = strokes_from_canvas(_canvas(_rect(5, 1, 4, 2, angle=90)), mode="add")
    add, _ = rasterize(strokes, display_size=(8, 8), mask_shape=(8, 8))
    assert _pixels(add) == _block(range(1, 5), range(3, 5))


def test_circle_tool_object_fills_a_disc():
    """The circle tool's Circle (origin left/centre) fills the disc between drag start and end."""
    circle = {
        "type": "Circle",
        "originX": "left",
        "originY": "center",
        "left": 2,
        "top": 5,
        "radius": 3,
        "strokeWidth": 0,
        "angle": 0,
    }
    strokes = strokes_from_canvas(_canvas(circle), mode="add")
    add, _ = rasterize(strokes, display_size=(10, 10), mask_shape=(10, 10))
    rows, cols = np.mgrid[0:10, 0:10] + 0.5
    assert np.array_equal(add, (rows - 5) ** 2 + (cols - 5) ** 2 <= 9)


def test_moved_path_follows_left_and_top():
    """A free-draw path moved in edit mode is drawn at its new left/top, not its raw commands."""
    moved = _path([["M", 1.5, 2.5], ["L", 3.5, 2.5]], 1)
    moved["left"] += 3
    moved["top"] += 2
    add, _ = rasterize(
        strokes_from_canvas(_canvas(moved), mode="add"), display_size=(8, 8), mask_shape=(8, 8)
    )
    assert _pixels(add) == {(4, 4), (4, 5), (4, 6)}


def test_scaled_path_scales_about_its_centre():
    """A path scaled 2x horizontally about its centre doubles its length around that centre."""
    scaled = _path([["M", 3.5, 2.5], ["L", 5.5, 2.5]], 1, scaleX=2, strokeUniform=True)
    add, _ = rasterize(
        strokes_from_canvas(_canvas(scaled), mode="add"), display_size=(10, 6), mask_shape=(6, 10)
    )
    assert _pixels(add) == {(2, c) for c in range(2, 7)}


# Objects serialised by the Fabric 7.4 bundled in streamlit-drawable-canvas 0.13 (run under Node),
# with the display positions Fabric's calcTransformMatrix gives their geometry points.
_FABRIC_PATH = {
    "type": "Path", "originX": "center", "originY": "center", "left": 26.7, "top": 24.4505,
    "width": 32.816, "height": 12.917, "stroke": "#0f0", "strokeWidth": 8, "scaleX": 1.7,
    "scaleY": 0.6, "angle": 33, "flipX": True, "skewX": 0, "skewY": 0,
    "path": [["M", 10.292, 20.092], ["Q", 10.3, 20.1, 12.5, 21.5], ["Q", 14.7, 22.9, 17.95, 26.65],
             ["Q", 21.2, 30.4, 26, 30.75], ["Q", 30.8, 31.1, 35.5, 28.3],
             ["Q", 40.2, 25.5, 41.65, 21.75], ["L", 43.108, 17.992]],
}  # fmt: skip
_FABRIC_PATH_ENDS = [[51.518, 37.449], [47.91, 36.113], [38.456, 33.659], [25.639, 28.269],
                     [12.896, 18.24], [6.268, 9.25], [5.417, 6.009]]  # fmt: skip
_FABRIC_POLYGON = {
    "type": "Polygon", "originX": "center", "originY": "center", "left": 60, "top": 50,
    "width": 38, "height": 30, "stroke": "#000", "strokeWidth": 3, "scaleX": 1.3, "angle": -20,
    "points": [{"x": 12, "y": 10}, {"x": 50, "y": 14}, {"x": 44, "y": 40}, {"x": 20, "y": 33}],
}  # fmt: skip
_FABRIC_POLYGON_VERTICES = [[31.659, 44.353], [79.448, 31.215], [81.011, 58.315], [49.299, 62.408]]
_FABRIC_CIRCLE = {
    "type": "Circle", "originX": "left", "originY": "center", "left": 20, "top": 30, "radius": 9,
    "width": 18, "height": 18, "stroke": "#000", "strokeWidth": 5, "angle": 40,
}  # fmt: skip
_FABRIC_CIRCLE_QUADRANTS = [[35.704, 43.177], [23.024, 44.286], [21.915, 31.607], [34.595, 30.498]]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_FABRIC_PATH, _FABRIC_PATH_ENDS),
        (_FABRIC_POLYGON, _FABRIC_POLYGON_VERTICES),
        (_FABRIC_CIRCLE, _FABRIC_CIRCLE_QUADRANTS),
    ],
    ids=["scaled-rotated-flipped-path", "moved-scaled-polygon", "circle-tool"],
)
def test_transformed_objects_land_where_fabric_draws_them(obj, expected):
    """Moved, scaled, rotated and flipped objects map to the display points Fabric 7.4 renders."""
    (stroke,) = strokes_from_canvas(_canvas(obj), mode="add")
    distances = np.hypot(*(np.array(expected)[:, None, :] - stroke.points[None]).transpose(2, 0, 1))
    assert distances.min(axis=1).max() < 2e-3


def test_freedraw_curve_passes_through_brush_samples():
    """A pencil-brush Q path is drawn through its sample points, without any shift."""
    commands = [["M", 2, 5], ["Q", 2, 5, 5, 5], ["Q", 8, 5, 11, 5], ["L", 14, 5]]
    add, _ = rasterize(
        strokes_from_canvas(_canvas(_path(commands, 2)), mode="add"),
        display_size=(16, 10),
        mask_shape=(10, 16),
    )
    assert _pixels(add) == _block(range(4, 6), range(1, 15))


def test_erase_colour_marks_erase_strokes_on_one_canvas():
    """With erase_stroke_color, objects painted in that colour are read as erase strokes."""
    objects = [_rect(0, 0, 4, 4), _rect(2, 0, 2, 4, stroke="#FF0000")]
    strokes = strokes_from_canvas(_canvas(*objects), mode="add", erase_stroke_color="#ff0000")
    assert [s.mode for s in strokes] == ["add", "erase"]
    mask = compose(np.zeros((4, 4), bool), strokes, display_size=(4, 4))
    assert _pixels(mask) == _block(range(0, 4), range(0, 2))


@pytest.mark.parametrize(
    "json_data",
    [
        None,
        "objects",
        [],
        {},
        {"objects": "not a list"},
        {"objects": [5, None, "x", {"type": "image", "left": 1}]},
        {"objects": [{"type": "path", "path": "M 0 0 L 1 1"}, {"type": "path", "path": []}]},
        {"objects": [{"type": "path", "path": [["M", 0, "a"]]}, {"type": "rect", "left": "a"}]},
        {"objects": [{"type": "Polygon", "points": [{"x": 1}]}, {"type": "circle", "radius": -1}]},
        {"objects": [{"type": "Rect", "left": float("nan"), "width": 2, "height": 2}]},
        {"objects": [{"type": "Rect", "left": 1e300, "width": 2, "height": 2, "scaleX": 1e300}]},
        {
            "objects": [
                {"type": "Path", "path": [["X", 1, 2]]},
                {"type": "Path", "path": [["L", 1]]},
            ]
        },
    ],
)
def test_malformed_canvas_json_gives_no_strokes(json_data):
    """Input that is not a readable canvas gives an empty list, never an exception."""
    assert strokes_from_canvas(json_data, mode="add") == []


def test_one_bad_object_does_not_drop_the_good_ones():
    """A malformed object is skipped and the readable ones are kept, in order."""
    objects = [_rect(0, 0, 2, 2), {"type": "rect", "left": None, "width": "x"}, _rect(2, 2, 1, 1)]
    strokes = strokes_from_canvas(_canvas(*objects), mode="erase")
    assert [(s.kind, s.mode) for s in strokes] == [("rect", "erase"), ("rect", "erase")]


def test_unknown_mode_is_refused():
    """A mode other than add or erase is a programming error and raises ValueError."""
    with pytest.raises(ValueError, match="add"):
        strokes_from_canvas(_canvas(), mode="paint")


def test_compose_leaves_its_inputs_untouched():
    """compose returns a new mask and does not modify the base mask."""
    base = np.zeros((4, 4), bool)
    stroke = Stroke("add", "rect", [[0, 0], [2, 0], [2, 2], [0, 2]], 0)
    result = compose(base, [stroke], display_size=(4, 4))
    assert result.any() and not base.any()


def test_zoomed_region_maps_display_back_to_frame():
    """Strokes on a canvas showing a zoomed region land on that region's frame pixels."""
    region = crop_zoom((20, 30), (10, 4, 8, 6))
    strokes = strokes_from_canvas(_canvas(_rect(2, 2, 4, 4)), mode="add")
    add, _ = rasterize(strokes, display_size=(16, 12), mask_shape=(20, 30), region=region)
    assert _pixels(add) == _block(range(5, 7), range(11, 13))


def test_crop_zoom_clips_to_the_frame():
    """A zoom rectangle reaching past the frame is clipped to it."""
    region = crop_zoom((20, 30), (-5, 15, 10, 10))
    assert (region.x, region.y, region.width, region.height) == (0, 15, 5, 5)
    with pytest.raises(ValueError):
        crop_zoom((20, 30), (40, 0, 5, 5))


def test_fill_holes_fills_a_ring():
    """A ring becomes a filled square."""
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    filled = fill_holes(ring)
    assert _pixels(filled) == _block(range(1, 6), range(1, 6))
    assert not ring[3, 3]


def test_keep_largest_region_drops_smaller_islands():
    """Only the largest connected region survives."""
    mask = np.zeros((8, 8), bool)
    mask[0:2, 0:2] = True
    mask[4:8, 3:8] = True
    mask[0, 7] = True
    assert _pixels(keep_largest_region(mask)) == _block(range(4, 8), range(3, 8))
    assert not keep_largest_region(np.zeros((3, 3), bool)).any()


def test_smooth_keeps_area_within_tolerance():
    """Smoothing a gland-sized lens with a ragged outline changes its area by under 3 %."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:120, 0:200]
    radius2 = ((cols - 100) / 80) ** 2 + ((rows - 60) / 30) ** 2
    jagged = radius2 <= 1 + rng.uniform(-0.15, 0.15, radius2.shape)
    smoothed = smooth(jagged, 3)
    assert abs(int(smoothed.sum()) - int(jagged.sum())) / jagged.sum() < 0.03
    assert smoothed.dtype == bool and smoothed.shape == jagged.shape


def test_smooth_removes_specks_and_keeps_the_disc():
    """Specks smaller than the radius vanish while a disc keeps its area within 2 %."""
    rows, cols = np.mgrid[0:80, 0:80]
    disc = (rows - 40) ** 2 + (cols - 40) ** 2 <= 25**2
    noisy = disc.copy()
    noisy[5, 5] = noisy[70, 10] = True
    smoothed = smooth(noisy, 2.5)
    assert not smoothed[5, 5] and not smoothed[70, 10]
    assert abs(int(smoothed.sum()) - int(disc.sum())) / disc.sum() < 0.02


def test_history_undo_redo_sequence():
    """Undo walks back, redo walks forward, and a new push clears the redo steps."""
    masks = [np.zeros((4, 5), bool) for _ in range(4)]
    for i, m in enumerate(masks):
        m[0, :i] = True
    history = EditHistory(masks[0])
    assert not history.can_undo and not history.can_redo
    assert history.push(masks[1]) and history.push(masks[2])
    assert np.array_equal(history.undo(), masks[1])
    assert np.array_equal(history.undo(), masks[0])
    assert not history.can_undo and history.can_redo
    assert np.array_equal(history.redo(), masks[1])
    history.push(masks[3])
    assert not history.can_redo
    assert np.array_equal(history.current, masks[3])
    assert np.array_equal(history.undo(), masks[1])


def test_history_ignores_repeated_push_and_empty_undo():
    """Pushing the current mask again records nothing; undo with nothing to undo is a no-op."""
    mask = np.eye(3, dtype=bool)
    history = EditHistory(mask)
    assert history.push(mask.copy()) is False
    assert np.array_equal(history.undo(), mask) and not history.can_undo


def test_history_depth_is_bounded():
    """Only the last max_depth steps can be undone."""
    history = EditHistory(np.zeros((2, 2), bool), max_depth=3)
    for i in range(6):
        m = np.zeros((2, 2), bool)
        m.flat[i % 4] = True
        m[1, 1] = i >= 4
        history.push(m)
    assert history.undo_depth == 3
    for _ in range(5):
        history.undo()
    assert not history.can_undo


def test_history_refuses_a_mask_of_another_shape_and_reset_starts_over():
    """A mask of another size raises MaskError; reset starts a fresh history for a new image."""
    history = EditHistory(np.zeros((4, 4), bool))
    history.push(np.ones((4, 4), bool))
    with pytest.raises(MaskError):
        history.push(np.zeros((5, 4), bool))
    history.reset(np.ones((5, 4), bool))
    assert history.shape == (5, 4) and not history.can_undo and not history.can_redo


def test_history_stores_masks_compressed():
    """A large smooth mask costs far less than one byte per pixel in the history."""
    mask = np.zeros((872, 1280), bool)
    mask[300:500, 200:900] = True
    history = EditHistory(mask)
    for shift in range(1, 6):
        history.push(np.roll(mask, shift, axis=1))
    assert history.nbytes < 20_000
    assert np.array_equal(history.undo(), np.roll(mask, 4, axis=1))


def test_masks_must_be_two_dimensional():
    """A 3-D array where a mask is expected raises MaskError."""
    with pytest.raises(MaskError):
        fill_holes(np.zeros((2, 2, 3), bool))


def test_an_untouched_start_is_stored_only_when_it_is_the_models_outline():
    """Save stores what the reader drew or changed, or the model's outline she accepts as it
    is; never an untouched copy of a version (hers or another rater's) or an empty mask."""
    from sgus_core.annotate.saving import (
        START_EMPTY,
        START_MINE,
        START_MODEL,
        START_VERSION,
        outline_to_save,
    )

    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:6] = True
    assert outline_to_save(mask, START_MODEL, edited=False) is mask
    for kind in (START_EMPTY, START_MINE, START_VERSION):
        assert outline_to_save(mask, kind, edited=False) is None
        assert outline_to_save(mask, kind, edited=True) is mask
