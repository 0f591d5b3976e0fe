"""What the Train page and Annotate's "fine-tune on my outlines" share: label counts, the preset
one page hands the other, and the current default's figures on a job's frames (cached)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from sgus_core.browse import label_counts
from sgus_core.errors import SgusError
from sgus_core.inference.registry import set_dataset_default
from sgus_core.training.from_store import default_on_labels
from sgus_core.training.jobs import TrainRequest
from sgus_ui.state import settings, store

PRESET_KEY = "train_preset"
TASKS = {"segment": "Segmenter (gland outlines)", "grade": "Grader (de Vita grades)"}
FINE_TUNE_AFTER = 5  # Annotate offers fine-tuning once a rater has saved this many outlines


def train_preset() -> dict[str, Any]:
    """What Annotate asked the Train page to start with (read once)."""
    preset = st.session_state.pop(PRESET_KEY, None) or {}
    for key, widget in (("task", "train_task"), ("rater", "train_rater")):
        if key in preset:
            st.session_state.pop(widget, None)  # the preset wins over a stale widget value
    return preset


def offer_fine_tune(dataset: str, rater: str, can_manage: bool) -> None:
    """Annotate's offer: once ``rater`` has enough outlines, a button that opens the Train page
    set to fine-tune the default segmenter on them (for an administrator; others are told)."""
    outlines = label_counts(store(), dataset).get(rater, (0, 0))[0]
    if outlines < FINE_TUNE_AFTER:
        return
    if not can_manage:
        st.caption(
            f"{rater} has {outlines} outlines here: an administrator can fine-tune the model on "
            "them (Train page)."
        )
        return
    if st.button(f"Fine-tune on my outlines ({outlines})", key="annotate_fine_tune"):
        st.session_state[PRESET_KEY] = {"task": "segment", "rater": rater}
        st.switch_page("pages/train.py")


@st.cache_data(show_spinner="Measuring the current default on the same frames...", ttl=600)
def _default_figures(task: str, dataset: str, rater: str | None, target: str) -> dict[str, Any]:
    with_store = store()
    return default_on_labels(with_store, settings(), task, dataset, rater=rater, target=target)


def default_figures(request: TrainRequest) -> dict[str, Any]:
    """The current default's figures on the frames ``request`` learnt from."""
    try:
        return _default_figures(request.task, request.dataset, request.rater, request.target)
    except Exception as exc:  # a default that cannot be measured must not hide the new model
        return {"model": None, "error": str(exc)}


def curve_chart(curve: list[dict[str, Any]]) -> None:
    """The validation curve of every stage so far."""
    rows = [
        {"stage": c["stage"], "epoch": c["epoch"], "metric": key, "value": value}
        for c in curve
        for key, value in c.items()
        if key.startswith("val_") and isinstance(value, float)
    ]
    if not rows:
        return
    figure = px.line(
        pd.DataFrame(rows), x="epoch", y="value", color="stage", line_dash="metric", markers=True
    )
    figure.update_layout(height=280, margin={"t": 10, "b": 10}, yaxis_title="validation")
    st.plotly_chart(figure, key="train_curve")


def finished_card(card: dict[str, Any], request: TrainRequest, can_manage: bool) -> None:
    """The new model's figures beside the current default's on the same frames."""
    st.success(f"Saved {card['name']} ({card['architecture']}).")
    if card.get("warning"):
        st.warning(card["warning"])
    metrics = card.get("test_metrics", {})
    default = default_figures(request)
    key = "iou_mean" if request.task == "segment" else "kappa_quadratic"
    label = "mean IoU" if request.task == "segment" else "quadratic kappa"
    protocol = card.get("training_data", {}).get("split", "")
    left, right = st.columns(2)
    left.metric(f"{card['name']}: {label}", _fmt(metrics.get(key)), help=protocol)
    if default.get("model"):
        right.metric(
            f"current default {default['model']}: {label}",
            _fmt(default.get(key)),
            help=f"on the same {default.get('n', 0)} labelled frames",
        )
    designs = (card.get("cross_validation") or {}).get("designs") or {}
    if designs:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "design": d,
                        "kappa": rep["kappa_quadratic"],
                        "95 % interval": rep.get("kappa_ci95"),
                        "accuracy": rep["accuracy"],
                        "majority baseline": rep["baseline"]["accuracy"],
                        "kept": d == card["architecture"],
                    }
                    for d, rep in designs.items()
                ]
                + _frame_baseline_row(card)
            ),
            hide_index=True,
        )
    if can_manage and st.button(
        f"Make {card['name']} the default for {request.dataset}", key="train_make_default"
    ):
        try:
            set_dataset_default(settings().models_dir, request.dataset, request.task, card["name"])
        except SgusError as exc:
            st.error(str(exc))
        else:
            st.cache_resource.clear()
            st.success(f"{card['name']} is now the {request.task} model of {request.dataset}.")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _frame_baseline_row(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The frame-statistics baseline as one more row of the designs' table (none without it)."""
    frame = (card.get("cross_validation") or {}).get("frame_statistics_baseline")
    if not frame:
        return []
    return [
        {
            "design": "baseline: frame statistics (no mask)",
            "kappa": frame["kappa_quadratic"],
            "95 % interval": frame.get("kappa_ci95"),
            "accuracy": frame["accuracy"],
            "majority baseline": None,
            "kept": False,
        }
    ]
