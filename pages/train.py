"""Train: fine-tune or train a segmenter or grader on this dataset's labels, in the background."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import streamlit as st

from sgus_core.browse import label_counts
from sgus_core.errors import SgusError
from sgus_core.inference.registry import models_default_first
from sgus_core.training.jobs import JOBS, RUNNING, TrainRequest
from sgus_core.training.validation import SMALL_SET
from sgus_ui.state import page_dataset, require_account, settings, store
from sgus_ui.text import count, plain
from sgus_ui.training import TASKS, curve_chart, finished_card, train_preset

ARCHITECTURES = {
    "segment": ["unet", "linknet", "fcn8s", "fcdensenet56", "fcdensenet67", "fcdensenet103"],
    "grade": ["auto", "grader_features", "grader_crop", "grader_frame"],
}
FOLDS = {"auto (5 below 300 frames)": None, "one patient split": 0, "3": 3, "5": 5, "10": 10}


def request_form(dataset: str, account_name: str) -> None:
    """What to train, from whose labels; starts the job."""
    counts = label_counts(store(), dataset)
    if not counts:
        st.info("No rater has saved outlines or grades in this dataset yet: nothing to learn from.")
        return
    preset = train_preset()
    task = st.radio(
        "What to train",
        list(TASKS),
        format_func=TASKS.get,
        horizontal=True,
        key="train_task",
        index=list(TASKS).index(preset.get("task", "segment")),
    )
    raters = sorted(counts, key=lambda r: -counts[r][0 if task == "segment" else 1])
    rater = st.selectbox(
        "Learn from the labels of",
        raters,
        index=raters.index(preset["rater"]) if preset.get("rater") in raters else 0,
        format_func=lambda r: (
            f"{r} ({count(counts[r][0], 'outline')}, {count(counts[r][1], 'grade')})"
        ),
        key="train_rater",
    )
    n = counts[rater][0 if task == "segment" else 1]
    models = models_default_first(settings().models_dir, task)
    keras_models = [m for m in models if (settings().models_dir / f"{m}.keras").is_file()]
    start = st.radio(
        "Start from",
        ["fine-tune a model", "train from scratch"],
        horizontal=True,
        key="train_start",
        index=0 if keras_models else 1,
        help="Fine-tuning freezes the encoder first, then trains every layer, both at a tenth of "
        "the training rate: it pays off after a few outlines.",
    )
    left, right = st.columns(2)
    from_model = arch = None
    if start == "fine-tune a model":
        if not keras_models:
            st.warning("No trainable model of this kind in the models folder; train from scratch.")
            return
        from_model = left.selectbox("Model to fine-tune", keras_models, key="train_from")
    else:
        arch = left.selectbox(
            "Architecture",
            ARCHITECTURES[task],
            key="train_arch",
            help="Graders: auto cross-validates the feature grader and the CNN and keeps the better.",
        )
    epochs = right.number_input("Most epochs", 1, 500, 60 if from_model else 40, key="train_epochs")
    folds_label = left.selectbox(
        "Cross-validation",
        list(FOLDS),
        key="train_folds",
        help=f"Below {SMALL_SET} frames the figures come from patient-grouped folds and the "
        "model is then fitted on every frame.",
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    out = right.text_input(
        "Name of the new model", f"{from_model or arch}-{dataset}-{stamp}", key="train_out"
    )
    st.caption(f"{n} labelled frames of {plain(rater)} will be used.")
    running = (job := JOBS.current()) is not None and job.state == RUNNING
    if st.button("Start training", type="primary", disabled=running or n < 3, key="train_go"):
        request = TrainRequest(
            task=task,
            dataset=dataset,
            rater=rater,
            started_by=account_name,
            out=out.strip(),
            arch=None if arch in (None, "auto") else arch,
            from_model=from_model,
            epochs=int(epochs),
            folds=FOLDS[folds_label],
        )
        try:
            JOBS.start(settings(), request)
        except SgusError as exc:
            st.error(str(exc))
            return
        st.rerun()
    if n < 3:
        st.caption("At least 3 labelled frames are needed.")


def job_status(can_manage: bool, was_running: bool) -> None:
    """The running or last job: progress, curve, cancel; its figures when done (the whole page
    reruns once when a job it watched ends, so the form is free again)."""
    job = JOBS.current()
    if job is None:
        return
    snap = job.snapshot()
    if was_running and snap["state"] != RUNNING:
        st.rerun()
    r = snap["request"]
    st.markdown(f"#### {r.out}")
    st.caption(
        f"{TASKS[r.task]} on {r.dataset}, labels of {r.rater}, started by {r.started_by}"
        + (f", fine-tuning {r.from_model}" if r.from_model else "")
    )
    if snap["state"] == RUNNING:
        total = max(1, snap["total"])
        elapsed = time.time() - snap["started"]
        st.progress(
            min(1.0, snap["done"] / total),
            text=f"{snap['stage']}: {snap['done']} of {snap['total']} ({elapsed:.0f} s so far)",
        )
        curve_chart(snap["curve"])
        if can_manage and st.button(
            "Cancel training", disabled=snap["cancel_requested"], key="train_cancel"
        ):
            JOBS.cancel()
            st.rerun()
        return
    curve_chart(snap["curve"])
    if snap["state"] == "cancelled":
        st.warning("Training was cancelled; nothing was saved.")
    elif snap["state"] == "failed":
        st.error(f"Training failed: {snap['error']}")
    else:
        finished_card(snap["card"], r, can_manage)
    if can_manage and st.button("Clear", key="train_clear"):
        JOBS.clear()
        st.rerun()


def render() -> None:
    """The page: the form for an administrator, the job panel for everyone."""
    account = require_account()
    st.title("Train")
    dataset = page_dataset()
    if account.can_manage:
        request_form(dataset.name, account.name)
    else:
        st.info("Only an administrator can start training. The current job is shown below.")
    job = JOBS.current()
    running = job is not None and job.state == RUNNING
    st.fragment(job_status, run_every=1.0 if running else None)(account.can_manage, running)


render()
