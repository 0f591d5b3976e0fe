"""The app in real Chromium: it starts, shows the Browse grid, and opens an image."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_app_opens_on_the_browse_page_and_opens_an_image(app_url, page):
    """The start page is Browse with thumbnails; Open shows the detail view with its outline list,
    and so does the same address under ``/browse``."""
    page.goto(app_url)
    page.get_by_role("heading", name="Browse").wait_for(timeout=60_000)
    page.get_by_text("8 images", exact=False).wait_for(timeout=30_000)
    thumbnails = page.locator("[data-testid='stImage'] img")
    expect(thumbnails).to_have_count(8, timeout=30_000)
    # The grid's Open buttons (select boxes have an "open" toggle of their own).
    page.locator("button[data-testid^='stBaseButton']", has_text="Open").first.click()
    page.get_by_role("button", name="Back to the grid").wait_for(timeout=30_000)
    page.get_by_text("Grades", exact=True).wait_for(timeout=30_000)
    assert "image=" in page.url
    # The page's name as an address opens the same image (Browse itself lives at the root).
    page.goto(page.url.replace("/?", "/browse?"))
    page.get_by_role("button", name="Back to the grid").wait_for(timeout=30_000)
    expect(page.get_by_text("Page not found")).to_have_count(0)
