"""The Train page in real Chromium: an administrator fine-tunes the default segmenter on a
rater's outlines, watches it run, and makes the new model the dataset's default."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit select box labelled ``label``."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=False).first.click()


def test_fine_tune_runs_to_completion_and_becomes_the_default(app_url, app_models, page):
    default = json.loads((app_models / "default.json").read_text())["segment"]
    page.goto(f"{app_url}/train")
    page.get_by_role("heading", name="Train").wait_for(timeout=60_000)
    _choose(page, "Learn from the labels of", "reference")
    page.get_by_label("Most epochs").fill("1")
    page.get_by_label("Most epochs").press("Enter")
    _choose(page, "Cross-validation", "one patient split")
    name = page.get_by_label("Name of the new model")
    name.fill("unet-synth-demo-tuned")
    name.press("Enter")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Saved unet-synth-demo-tuned", exact=False).wait_for(timeout=300_000)
    page.get_by_text(f"current default {default}", exact=False).wait_for(timeout=120_000)
    card = json.loads((app_models / "unet-synth-demo-tuned.json").read_text())
    assert card["fine_tuned_from"].endswith(f"{default}.keras") and card["rater"] == "reference"
    page.get_by_role("button", name="Make unet-synth-demo-tuned the default for demo").click()
    page.get_by_text("is now the segment model of demo", exact=False).wait_for(timeout=60_000)
    defaults = json.loads((app_models / "default.json").read_text())
    assert defaults["datasets"]["demo"]["segment"] == "unet-synth-demo-tuned"
    assert defaults["segment"] == default  # the other datasets keep the global default
