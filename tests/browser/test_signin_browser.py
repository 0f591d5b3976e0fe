"""`sgus serve` in real Chromium: a reload keeps the sign-in, Sign out ends it for good."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from sgus_core.auth import add_user
from sgus_core.store import LabelStore
from sgus_ui.app_server import running_app

PASSWORD = "a-long-enough-password"


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory):
    """A served app (sign-in required) on an empty store with the rater ``ana``."""
    data = tmp_path_factory.mktemp("serve-data")
    url = f"sqlite:///{data / 'sgus.db'}"
    with LabelStore(url) as store:
        add_user(store, "ana", "rater", PASSWORD)
    env = {**os.environ, "SGUS_DATA_DIR": str(data), "SGUS_DB_URL": url,
           "SGUS_APP_MODE": "serve"}  # fmt: skip
    with running_app(env, data / "streamlit.log") as app:
        yield app


def test_a_reload_keeps_the_sign_in_and_sign_out_ends_it(serve_url, page):
    """Signed in, the tab survives a reload and a page switch; after Sign out the old address
    shows the sign-in form with the reason instead of resuming."""
    page.goto(serve_url)
    page.get_by_role("textbox", name="Name").fill("ana")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    signed_in = page.get_by_text("Signed in as")
    signed_in.wait_for(timeout=60_000)
    page.wait_for_function("location.search.includes('session=')", timeout=10_000)
    page.reload()
    signed_in.wait_for(timeout=60_000)
    page.get_by_role("link", name="Review").first.click()  # a page switch keeps it too
    page.get_by_role("heading", name="Review").wait_for(timeout=60_000)
    page.wait_for_function("location.search.includes('session=')", timeout=10_000)
    address = page.url
    page.reload()
    signed_in.wait_for(timeout=60_000)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    page.goto(address)  # the old address, from the history
    page.get_by_text("sign-in has ended").wait_for(timeout=60_000)
    expect(page.get_by_text("Signed in as")).to_have_count(0)
