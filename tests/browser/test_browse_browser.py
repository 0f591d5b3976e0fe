"""The app in real Chromium: it starts, shows the Browse grid, and opens an image."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_app_opens_on_the_browse_page_and_opens_an_image(app_url, page):
    """The start page is Browse with thumbnails; Open shows the detail view with its outline list."""
    page.goto(app_url)
    page.get_by_role("heading", name="Browse").wait_for(timeout=60_000)
    page.get_by_text("8 images", exact=False).wait_for(timeout=30_000)
    thumbnails = page.locator("[data-testid='stImage'] img")
    thumbnails.first.wait_for(timeout=30_000)
    assert thumbnails.count() == 8
    page.get_by_role("button", name="Open").first.click()
    page.get_by_role("button", name="Back to the grid").wait_for(timeout=30_000)
    page.get_by_text("Grades", exact=True).wait_for(timeout=30_000)
    assert "image=" in page.url
