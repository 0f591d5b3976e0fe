"""The Train page through AppTest: an administrator trains in the background and makes the new
model the dataset's default; anyone else only watches; Annotate offers fine-tuning."""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore
from sgus_core.training.jobs import JOBS, RUNNING

APP = str(REPO_ROOT / "streamlit_app.py")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A three-patient demo store and an empty models folder of its own."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "default.json").write_text("{}")
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_MODELS_DIR", str(models))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    monkeypatch.setenv("SGUS_APP_MODE", "demo")
    settings = load_settings()
    with LabelStore(settings.db_url) as store:
        ensure_demo(store, settings, n_patients=3)
    JOBS.clear()
    yield settings
    JOBS.cancel()
    deadline = time.monotonic() + 60
    while (job := JOBS.current()) is not None and job.state == RUNNING:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    JOBS.clear()


def _wait_for_job(at: AppTest, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (job := JOBS.current()) is not None and job.state == RUNNING:
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.5)
    at.run()


def test_an_admin_trains_a_grader_and_makes_it_the_default(env):
    """Start (feature grader, 3-fold CV), watch it finish, read the figures beside the current
    default's, make it the dataset's default; the audit log names the person."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    at.radio(key="train_task").set_value("grade").run()
    at.selectbox(key="train_rater").set_value("reference").run()
    at.radio(key="train_start").set_value("train from scratch").run()
    at.selectbox(key="train_arch").set_value("grader_features").run()
    at.selectbox(key="train_folds").set_value("3").run()
    at.text_input(key="train_out").set_value("clinic-grader").run()
    at.button(key="train_go").click().run()
    assert not at.exception, at.exception
    _wait_for_job(at)
    assert not at.exception, at.exception
    assert any("Saved clinic-grader" in s.value for s in at.success), [e.value for e in at.error]
    assert any("clinic-grader" in m.label and "kappa" in m.label for m in at.metric)
    designs = next(d.value for d in at.dataframe if "design" in d.value)
    assert "baseline: frame statistics (no mask)" in designs["design"].tolist()  # beside them
    at.button(key="train_make_default").click().run()
    defaults = json.loads((env.models_dir / "default.json").read_text())
    assert defaults["datasets"]["demo"]["grade"] == "clinic-grader"
    card = json.loads((env.models_dir / "clinic-grader.json").read_text())
    assert card["cross_validation"]["folds"] == 3
    with LabelStore(env.db_url) as store:
        assert any(e.actor == "demo-rater" and e.entity == "model" for e in store.audit_log())


def test_a_rater_cannot_start_training(env):
    """Anyone but an administrator sees the job panel and no form."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["rater"] = "simulated-rater-A"
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert any("Only an administrator" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "train_go"]


def test_a_job_can_be_cancelled(env):
    """Cancel stops the running job and nothing is saved."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/train.py").run()
    at.radio(key="train_task").set_value("grade").run()
    at.selectbox(key="train_rater").set_value("reference").run()
    at.radio(key="train_start").set_value("train from scratch").run()
    at.selectbox(key="train_arch").set_value("grader_crop").run()
    at.selectbox(key="train_folds").set_value("3").run()
    at.text_input(key="train_out").set_value("never").run()
    at.button(key="train_go").click().run()
    assert JOBS.current() is not None
    JOBS.cancel()  # what the Cancel button calls
    _wait_for_job(at)
    assert JOBS.current().state == "cancelled"
    assert any("cancelled" in w.value for w in at.warning)
    assert not (env.models_dir / "never.json").exists()


def test_annotate_offers_fine_tuning_on_my_outlines(env):
    """A rater with enough outlines is told an administrator can fine-tune on them."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["rater"] = "simulated-rater-A"
    at.switch_page("pages/annotate.py").run()
    assert not at.exception, at.exception
    assert any("fine-tune the model" in c.value for c in at.caption)
