"""Browser-test harness: a real `streamlit run` of the app on a free port, driven by Playwright
in Debian's Chromium (/usr/bin/chromium, installed by the test command; never a downloaded one).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore

CHROMIUM = Path(os.environ.get("SGUS_CHROMIUM", "/usr/bin/chromium"))
# Flags for a closed network and a root user: no sandbox, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    port = _free_port()
    log = (data_dir / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "sgus_ui.launch",
            "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {(data_dir / 'streamlit.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


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
