"""User text never becomes markdown that loads anything (issue 13, item 9): a patient ID or a
dataset name holding a markdown image shows as typed."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore, NewImage
from sgus_ui.text import plain

APP = str(REPO_ROOT / "streamlit_app.py")
EVIL = "![x](https://evil.example/x.png)"


def test_plain_escapes_every_markdown_construct():
    assert plain(EVIL) == r"\!\[x\]\(https\://evil\.example/x\.png\)"
    assert plain("P_01 *bold* <b>") == r"P\_01 \*bold\* \<b\>"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    monkeypatch.setenv("SGUS_APP_MODE", "demo")
    settings = load_settings()
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "f.png"), np.full((64, 64), 90, np.uint8))
    with LabelStore(settings.db_url) as store:
        ds = store.ensure_dataset(EVIL, tmp_path)
        store.add_image(
            ds.id,
            NewImage(path="f.png", content_hash="h", width=64, height=64, patient=EVIL),
        )
    return settings


def test_browse_shows_a_hostile_patient_id_as_text(env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert any(r"\!\[x\]" in v for v in shown)
    assert not any("![x](https://" in v for v in shown)
