"""Predict in real Chromium: what the page draws, as the browser paints it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def test_the_heat_map_paints_zero_probability_black(app_url, page):
    """Where the model sees no gland the probability heat map is black (inferno's 0), not the
    violet Streamlit's chart frontend painted over inferno's first colour, #000004, which it
    takes for a theme placeholder."""
    page.goto(f"{app_url}/predict")
    page.get_by_text("Gland probability").first.wait_for(timeout=120_000)
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    shot = Image.open(io.BytesIO(chart.screenshot())).convert("RGB")
    width, height = shot.size
    r, g, b = shot.getpixel((int(0.03 * width), int(0.55 * height)))  # left edge: no gland there
    assert r + g + b < 60, (r, g, b)


def test_a_mask_that_does_not_fit_leaves_the_prediction_and_names_the_file(app_url, page, tmp_path):
    """Upload a frame and a check-mask of the wrong size: the page names the mask file the user
    gave, says the prediction is unchecked, and still shows the prediction."""
    import numpy as np

    from sgus_core.synthesis.phantom import generate_frame

    frame = tmp_path / "scan-0042.png"
    Image.fromarray(generate_frame(3).image).save(frame)
    mask = tmp_path / "wrongmask.png"
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(mask)
    page.goto(f"{app_url}/predict")
    page.get_by_text("upload a file").first.click()
    uploads = page.locator("input[type='file']")
    uploads.first.wait_for(state="attached", timeout=60_000)
    uploads.nth(0).set_input_files(str(frame))
    page.get_by_text("Gland area").first.wait_for(timeout=120_000)
    uploads.nth(1).set_input_files(str(mask))
    page.get_by_text("wrongmask.png is 100 x 100 px").first.wait_for(timeout=120_000)
    page.get_by_text("not checked against a mask").first.wait_for(timeout=10_000)
    page.get_by_text("Gland area").first.wait_for(timeout=120_000)  # the rerun's prediction
