"""Browser-test harness: a real `streamlit run` of the app on a free port, driven by Playwright
in Debian's Chromium (/usr/bin/chromium, installed by the test command; never a downloaded one).
"""

from __future__ import annotations

import os
import shutil

import pytest

from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore
from sgus_ui.app_server import CHROMIUM, CHROMIUM_ARGS, running_app


@pytest.fixture(scope="session")
def browser_data(tmp_path_factory):
    """The data folder of the app under test."""
    return tmp_path_factory.mktemp("browser-data")


@pytest.fixture(scope="session")
def app_db_url(browser_data):
    """The labels store the app under test writes to."""
    return f"sqlite:///{browser_data / 'sgus.db'}"


@pytest.fixture(scope="session")
def app_models(browser_data):
    """The app's models folder: a copy of the shipped one (the Train page writes into it)."""
    models = browser_data / "models"
    shutil.copytree(REPO_ROOT / "models", models, ignore=shutil.ignore_patterns("held-out"))
    return models


@pytest.fixture(scope="session")
def app_url(browser_data, app_db_url, app_models):
    """URL of a running SGUS Studio on a small demo dataset (two phantom patients)."""
    data_dir = browser_data
    env = {
        **os.environ,
        "SGUS_DATA_DIR": str(data_dir),
        "SGUS_DB_URL": app_db_url,
        "SGUS_MODELS_DIR": str(app_models),
        "SGUS_APP_MODE": "demo",
    }
    settings = load_settings(env)
    with LabelStore(settings.db_url) as store:
        ensure_demo(store, settings, n_patients=2)
    with running_app(env, data_dir / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright (fails loudly when the test command did not install it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run the README's test command (it installs chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh 1280x872 browser page (the size of a large scanner screenshot)."""
    context = browser.new_context(viewport={"width": 1280, "height": 872})
    tab = context.new_page()
    yield tab
    context.close()
