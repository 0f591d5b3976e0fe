"""Annotate: correct the gland outline on a canvas, grade the gland, save, and move on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from sgus_core.annotate.saving import save_annotation, start_mask, start_options
from sgus_core.browse import load_frame
from sgus_core.errors import SgusError
from sgus_core.study.rounds import prediction_uncertainty, rater_queue, visible_labels
from sgus_core.study.scoring import CAVEAT
from sgus_ui.annotate_panels import (
    Grading,
    answer_prompt,
    area_caption,
    canvas_editor,
    grading_panel,
    mask_operations,
    pen_settings,
)
from sgus_ui.annotate_state import EditSession, begin_edit, current_queue_position, save_messages
from sgus_ui.state import (
    account_store,
    page_dataset,
    prompted_segmenter,
    reader_store,
    require_account,
)
from sgus_ui.text import plain
from sgus_ui.training import offer_fine_tune
from sgus_ui.widgets import stop_on_error

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from sgus_core.annotate.saving import StartOption
    from sgus_core.auth import Account
    from sgus_core.store import Dataset, ImageRecord, LabelStore, StudyRound
    from sgus_core.study.rounds import VisibleLabels


def choose_queue(
    labels_store: LabelStore, dataset: Dataset, account: Account, top: list[DeltaGenerator]
) -> tuple[list[int], StudyRound | None]:
    """The image ids to work through (a study round I rate in, or the whole dataset)."""
    my_rounds = [
        r for r in labels_store.list_rounds(dataset.id) if account.name in r.raters and r.is_open
    ]
    round_name = top[0].selectbox(
        "Queue", ["(whole dataset)", *[r.name for r in my_rounds]], key="ann_round"
    )
    study_round = next((r for r in my_rounds if r.name == round_name), None)
    if study_round is None:
        return [i.id for i in labels_store.list_images(dataset.id)], None
    order, scores = "round", None
    if study_round.blind:
        top[1].caption("Blind round: the model and other raters are hidden.")
    elif top[1].toggle("Least sure first", key="ann_uncertain", help="By the model's grade"):
        order = "uncertainty"
        scores = {
            i: prediction_uncertainty(labels_store.latest_prediction(i))
            for i in study_round.image_ids
        }
    items = rater_queue(labels_store, study_round, account.name, order=order, uncertainty=scores)
    return [q.image_id for q in items], study_round


def navigation(
    labels_store: LabelStore, queue: list[int], top: list[DeltaGenerator]
) -> ImageRecord:
    """Previous and Next buttons and the place in the queue; returns the image shown."""
    if not queue:
        st.success("Your queue is empty: every image of this round is done.")
        st.stop()
    position = current_queue_position(queue)
    if top[2].button(
        "Previous", key="ann_prev", shortcut="p", disabled=position == 0, width="stretch"
    ):
        st.session_state["ann_image_id"] = queue[position - 1]
        st.rerun()
    if top[3].button(
        "Next", key="ann_next", shortcut="n", disabled=position >= len(queue) - 1, width="stretch"
    ):
        st.session_state["ann_image_id"] = queue[position + 1]
        st.rerun()
    image = labels_store.get_image(queue[position])
    top[1].markdown(f"**{plain(image.label)}** · {position + 1} of {len(queue)} in the queue")
    return image


def choose_start(
    visible: VisibleLabels, rater: str, image_id: int, shape: tuple[int, ...], round_id: int | None
) -> tuple[StartOption, EditSession]:
    """Where the edit starts; a fresh start when the image, the choice or the queue changes."""
    options = start_options(visible, rater)
    choice = st.selectbox("Start from", [o.label for o in options], key=f"ann_start_{image_id}")
    option = next(o for o in options if o.label == choice)
    return option, begin_edit(image_id, option, lambda: start_mask(option, shape), round_id)


def save_panel(
    image_id: int,
    account: Account,
    session: EditSession,
    option: StartOption,
    study_round: StudyRound | None,
    current: np.ndarray,
    grading: Grading,
) -> None:
    """The Save button and the messages of the last save."""
    if st.button("Save", key="ann_save", type="primary", shortcut="ctrl+s", width="stretch"):
        flag = grading.flag.strip()
        try:
            outcome = save_annotation(
                account_store(),
                image_id,
                account.name,
                current,
                start_kind=option.kind,
                parent_id=session.parent_id,
                devita=grading.devita,
                omeract=grading.omeract,
                hocevar=grading.hocevar,
                comment=grading.comment,
                confidence=grading.confidence,
                round_id=study_round.id if study_round else None,
                status="flagged" if flag else "done",
                reason=flag or None,
                prompted=session.prompted,
            )
        except SgusError as exc:
            st.error(str(exc))
        else:
            session.saved(current, outcome)
            st.rerun()
    for message in save_messages(image_id):
        if message.startswith("!"):
            st.warning(message[1:])
        else:
            st.success(message)
    st.caption(CAVEAT)


def render() -> None:
    """The page: queue and navigation on top, the canvas on the left, grading on the right."""
    labels_store = reader_store()
    account = require_account()
    st.title("Annotate")
    dataset = page_dataset()
    if not account.can_label:
        st.warning("Your account can view but not annotate.")
        st.stop()
    top = st.columns([2, 2, 1, 1])
    queue, study_round = choose_queue(labels_store, dataset, account, top)
    image = navigation(labels_store, queue, top)
    image_id = image.id
    with stop_on_error():
        frame = load_frame(labels_store, image)
        visible = visible_labels(labels_store, study_round, account.name, image_id)
    left, right = st.columns([3, 1.3])
    with right:
        round_id = study_round.id if study_round else None
        option, session = choose_start(
            visible, account.name, image_id, frame.pixels.shape, round_id
        )
    # A blind round hides the model, also when its frame is opened from the whole-dataset queue.
    blind = (study_round is not None and study_round.blind) or labels_store.hides(image_id)
    segmenter = None if blind else prompted_segmenter()
    with left:
        pen = pen_settings(prompts=segmenter is not None)
        current, strokes, marks = canvas_editor(frame, image, session, pen)
        if segmenter is not None and not marks.empty:
            answer_prompt(segmenter, frame, session, marks, current)
        area_caption(image, current, mask_operations(session, option, current, strokes))
    with right:
        grading = grading_panel(visible, account.name, image_id)
        save_panel(image_id, account, session, option, study_round, current, grading)
        if not blind:
            offer_fine_tune(dataset.name, account.name, account.can_manage)


render()
