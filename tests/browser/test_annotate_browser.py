"""Annotate in real Chromium: draw on the canvas, erase part of it, save, find it in the store."""

from __future__ import annotations

import time

import numpy as np
import pytest
from playwright.sync_api import expect

from sgus_core import imaging
from sgus_core.store import LabelStore

pytestmark = pytest.mark.browser


def _settle(page):
    """Wait until the app has finished its rerun (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(500)
    expect(page.locator("[data-testid='stStatusWidget']")).to_have_count(0, timeout=30_000)


def _steady_box(page, locator, timeout_ms=15_000):
    """The locator's box once the page has stopped re-fitting it (two looks 500 ms apart agree)."""
    box = locator.bounding_box()
    for _ in range(timeout_ms // 500):
        page.wait_for_timeout(500)
        again = locator.bounding_box()
        if again == box:
            return box
        box = again
    return box


def _drag(page, box, points):
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


def _unzoom(page):
    """Show the whole frame (View -> Zoom into the field of view off), then close the popover."""
    page.get_by_role("button", name="View").click()
    page.get_by_text("Zoom into the field of view").click()
    _settle(page)
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)


def test_draw_erase_and_save_a_mask(app_url, app_db_url, page, tmp_path):
    """A drawn stroke minus an erased part is saved as a new version with those pixels."""
    artifacts = tmp_path
    page.goto(f"{app_url}/annotate")  # a direct link works: st.navigation owns routing
    page.get_by_role("heading", name="Annotate").wait_for(timeout=60_000)
    # Start from an empty mask, on the whole frame (no zoom), so display -> frame is a plain scale.
    start = page.locator("[data-testid='stSelectbox']", has_text="Start from")
    start.click()
    page.keyboard.type("empty")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)
    _unzoom(page)
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1000)
    box = canvas.bounding_box()
    _drag(page, box, [(100, 150), (400, 150)])  # a horizontal brush stroke
    page.get_by_text("unsaved edits", exact=False).wait_for(timeout=30_000)
    page.get_by_role("radio", name="erase").or_(
        page.get_by_role("button", name="erase")
    ).first.click()
    _settle(page)  # the pen must be on erase before the next stroke (slow on a loaded machine)
    page.wait_for_timeout(1000)
    box = canvas.bounding_box()
    _drag(page, box, [(250, 100), (250, 200)])  # a vertical erase across it
    _settle(page)
    _settle(page)
    page.screenshot(path=str(artifacts / "annotate_before_save.png"))
    started = time.perf_counter()
    page.locator("button[data-testid='stBaseButton-primary']", has_text="Save").click()
    try:
        page.get_by_text("Saved mask version").wait_for(timeout=30_000)
    finally:
        page.screenshot(path=str(artifacts / "annotate_after_save.png"), full_page=True)
    seconds = time.perf_counter() - started
    print(f"save-to-confirmation {seconds:.2f} s")  # the figure the annotate issue asks for
    with LabelStore(app_db_url) as store:
        latest = [m for m in store.mask_history(1, "demo-rater")]
        assert latest, "no version saved"
        mask = imaging.decode_mask_png(latest[-1].png)
        image = store.get_image(1)
    print(f"frame {image.width}x{image.height}")
    scale = image.width / box["width"]
    row = int(150 * scale)
    painted = np.flatnonzero(mask[row])
    assert painted.size > 0
    left_part = painted[painted < 250 * scale]
    right_part = painted[painted > 250 * scale]
    assert left_part.size and right_part.size  # the stroke on both sides of the erase
    assert not mask[row, int(250 * scale)]  # erased where the two strokes cross


def test_drag_a_box_and_save_the_model_outline(app_url, app_db_url, page, tmp_path):
    """The box tool: a box dragged around the gland gives the prompted model's outline as an
    editable mask at once; saved, it is a new version with source model-prompted and its parent."""
    with LabelStore(app_db_url) as store:
        image = store.get_image(1)
        truth = imaging.decode_mask_png(store.latest_masks(1)["reference"].png)
        before = len(store.mask_history(1, "demo-rater"))
    rows, cols = np.nonzero(truth)
    page.goto(f"{app_url}/annotate")
    page.get_by_role("heading", name="Annotate").wait_for(timeout=60_000)
    start = page.locator("[data-testid='stSelectbox']", has_text="Start from")
    start.click()
    page.keyboard.type("empty")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)
    _unzoom(page)
    tool = page.locator("[data-testid='stSelectbox']", has_text="Tool")
    tool.click()
    page.keyboard.type("box (model)")
    page.keyboard.press("Enter")
    _settle(page)
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1000)  # the canvas component mounts its new tool after it shows
    box = canvas.bounding_box()
    scale = box["width"] / image.width
    pad_x, pad_y = 0.05 * (cols.max() - cols.min()), 0.05 * (rows.max() - rows.min())
    corner_a = ((cols.min() - pad_x) * scale, (rows.min() - pad_y) * scale)
    corner_b = ((cols.max() + pad_x) * scale, (rows.max() + pad_y) * scale)
    started = time.perf_counter()
    _drag(page, box, [corner_a, corner_b])
    page.get_by_text("unsaved edits", exact=False).wait_for(timeout=30_000)
    print(f"box-to-mask {time.perf_counter() - started:.2f} s")
    _settle(page)
    page.screenshot(path=str(tmp_path / "annotate_box.png"))
    page.locator("button[data-testid='stBaseButton-primary']", has_text="Save").click()
    page.get_by_text("Saved mask version").wait_for(timeout=30_000)
    with LabelStore(app_db_url) as store:
        history = store.mask_history(1, "demo-rater")
    assert len(history) == before + 1
    saved = history[-1]
    assert saved.source == "model-prompted"
    mask = imaging.decode_mask_png(saved.png)
    iou = (mask & truth).sum() / max((mask | truth).sum(), 1)
    print(f"box-prompted IoU with the reference {iou:.3f}")
    assert iou > 0.5


def test_a_polygon_closed_on_its_first_corner_joins_the_mask(app_url, page):
    """The polygon tool says how to close a polygon; five corners and a click on the first one
    give a mask (the area under the canvas is no longer 0 px)."""
    page.goto(f"{app_url}/annotate")
    page.get_by_role("heading", name="Annotate").wait_for(timeout=60_000)
    for label, choice in (("Start from", "empty"), ("Tool", "polygon")):
        page.locator("[data-testid='stSelectbox']", has_text=label).click()
        page.keyboard.type(choice)
        page.keyboard.press("Enter")
        _settle(page)
    page.get_by_text("click the first corner again to close it").wait_for(timeout=30_000)
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    _settle(page)  # the hint moved the canvas down: it is fitted to the window again
    page.wait_for_timeout(1000)
    box = canvas.bounding_box()
    assert box["y"] + box["height"] <= 872  # still on screen with the hint above it
    corners = [(0.2, 0.25), (0.6, 0.25), (0.7, 0.5), (0.5, 0.75), (0.2, 0.6), (0.2, 0.25)]
    for fx, fy in corners:
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_timeout(300)
    page.get_by_text("unsaved edits", exact=False).wait_for(timeout=30_000)
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="Gland area").first
    area = int(caption.inner_text().split("Gland area ")[1].split(" px")[0])
    assert area > 1000


def test_the_canvas_fits_the_screen_and_zooms_with_the_wheel(app_url, page, tmp_path):
    """At 1280 x 800 the whole canvas and the Save button are on screen without scrolling, the
    canvas as wide as the column allows; the wheel zooms about the pointer, a stroke drawn
    zoomed lands where it was drawn, and Fit shows the whole view again."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{app_url}/annotate")
    page.get_by_role("heading", name="Annotate").wait_for(timeout=60_000)
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    _settle(page)
    whole = _steady_box(page, canvas)  # the page has reported its size and the canvas was fitted
    assert whole["y"] + whole["height"] <= 800 and whole["width"] >= 400
    save = page.locator("button[data-testid='stBaseButton-primary']", has_text="Save")
    saved_at = save.bounding_box()
    assert saved_at["y"] + saved_at["height"] <= 800
    centre = (whole["x"] + whole["width"] / 2, whole["y"] + whole["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, -600)
    page.wait_for_timeout(300)
    zoomed = canvas.bounding_box()
    assert zoomed["width"] > 2 * whole["width"]  # zoomed about the pointer: the centre stays
    assert abs(zoomed["x"] + zoomed["width"] / 2 - centre[0]) < 0.1 * zoomed["width"]
    # Space-drag pans, also while the Tool select still has the keyboard focus; nothing drawn.
    page.locator("[data-testid='stSelectbox']", has_text="Tool").click()
    page.keyboard.press("Escape")
    page.mouse.move(*centre)
    page.keyboard.down("Space")
    _drag(page, {"x": 0, "y": 0}, [centre, (centre[0] + 60, centre[1] + 30)])
    page.keyboard.up("Space")
    page.wait_for_timeout(500)
    panned = canvas.bounding_box()
    assert abs(panned["x"] - zoomed["x"] - 60) < 5 and abs(panned["y"] - zoomed["y"] - 30) < 5
    assert page.get_by_text("unsaved edits", exact=False).count() == 0
    start = page.get_by_text("Gland area", exact=False).first.inner_text()
    _drag(page, {"x": 0, "y": 0}, [(centre[0] - 20, centre[1]), (centre[0] + 20, centre[1])])
    page.get_by_text("unsaved edits", exact=False).wait_for(timeout=30_000)
    assert page.get_by_text("Gland area", exact=False).first.inner_text() != start
    page.get_by_role("button", name="Fit").click()
    _settle(page)
    fitted = _steady_box(page, canvas)
    # Unzoomed (drawn at its own size), where it was and as large as before, whole on screen.
    natural = canvas.evaluate("c => [c.offsetWidth, c.offsetHeight]")
    assert abs(fitted["width"] - natural[0]) < 2 and abs(fitted["height"] - natural[1]) < 2
    assert abs(fitted["width"] - whole["width"]) < 2 and abs(fitted["x"] - whole["x"]) < 2
    assert fitted["y"] + fitted["height"] <= 800
    page.screenshot(path=str(tmp_path / "annotate_zoom.png"))
