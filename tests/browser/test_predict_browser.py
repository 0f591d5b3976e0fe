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
