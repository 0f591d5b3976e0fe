"""Annotate: correct the gland outline on a canvas, grade the gland, save, and move on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from sgus_core.annotate.saving import (
    outline_to_save,
    save_annotation,
    start_mask,
    start_options,
)
from sgus_core.browse import load_frame
from sgus_core.errors import SgusError
from sgus_core.study.rounds import prediction_uncertainty, rater_queue, visible_labels
from sgus_core.study.scoring import CAVEAT
from sgus_core.vocabulary import OPEN_STATUSES
from sgus_ui.annotate_panels import (
    PEN_BACK_TO_ADD,
    Grading,
    answer_prompt,
    area_caption,
    canvas_editor,
    grading_panel,
    has_unsaved_edits,
    mask_operations,
    pen_settings,
)
from sgus_ui.annotate_state import (
    EditSession,
    Reading,
    begin_edit,
    current_queue_position,
    save_messages,
)
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

    from sgus_core.annotate.saving import SaveOutcome, StartOption
    from sgus_core.auth import Account
    from sgus_core.store import Dataset, ImageRecord, LabelStore, StudyRound
    from sgus_core.study.rounds import VisibleLabels


@dataclass(frozen=True)
class Queue:
    """The frames to work through and where the reader stands in them."""

    ids: list[int]
    study_round: StudyRound | None
    done: int
    total: int
    open_ids: frozenset[int] = frozenset()
    """The frames not done yet."""
    hides_done: bool = True
    """A frame marked done leaves the queue (a round, or the dataset with "Skip done" on)."""

    def after_leaving(self, image_id: int) -> int | None:
        """The frame to show once ``image_id`` leaves the queue: the next one, else the one
        before (``None`` when it was the last)."""
        rest = [i for i in self.ids if i != image_id]
        if not rest:
            return None
        position = self.ids.index(image_id) if image_id in self.ids else 0
        return rest[min(position, len(rest) - 1)]


def choose_queue(
    labels_store: LabelStore, dataset: Dataset, account: Account, top: list[DeltaGenerator]
) -> Queue:
    """The frames to work through: a study round I rate in, or the whole dataset (optionally
    without the frames I have done), with the done and remaining counts."""
    my_rounds = [
        r for r in labels_store.list_rounds(dataset.id) if account.name in r.raters and r.is_open
    ]
    round_name = top[0].selectbox(
        "Queue", ["(whole dataset)", *[r.name for r in my_rounds]], key="ann_round"
    )
    study_round = next((r for r in my_rounds if r.name == round_name), None)
    if study_round is None:
        every = [i.id for i in labels_store.list_images(dataset.id)]
        statuses = labels_store.latest_statuses(account.name, None)
        done = {i for i in every if statuses.get(i, "todo") not in OPEN_STATUSES}
        skip = top[0].toggle("Skip done", key="ann_skip_done", help="Hide the frames you have done")
        ids = [i for i in every if i not in done] if skip else every
        still_open = frozenset(every) - done
        return Queue(ids, None, len(done), len(every), still_open, hides_done=skip)
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
    total = len(study_round.image_ids)
    ids = [q.image_id for q in items]
    return Queue(ids, study_round, total - len(items), total, frozenset(ids))


def go_to(image_id: int) -> None:
    """Show another frame next run, the pen back on "add" (an eraser left on surprises)."""
    st.session_state["ann_image_id"] = image_id
    st.session_state[PEN_BACK_TO_ADD] = True


def open_asked_image(queue: Queue) -> None:
    """``?image=<id>`` (Browse's "Annotate this image", or a link a colleague sent) opens that
    frame once; the address then drops it, so Previous and Next work as usual."""
    asked = st.query_params.get("image", "")
    if not asked:
        return
    st.query_params.pop("image", None)
    if asked.isdigit() and int(asked) in queue.ids:
        go_to(int(asked))
    else:
        where = "this round's queue" if queue.study_round else "this queue (is Skip done on?)"
        st.info(f"Image {asked} is not in {where}: showing the queue from where you were.")


def navigation(labels_store: LabelStore, queue: Queue, top: list[DeltaGenerator]) -> ImageRecord:
    """Previous and Next buttons and the place in the queue; returns the image shown."""
    ids = queue.ids
    if not ids:
        last_save_message()
        where = "this round" if queue.study_round else "this dataset"
        st.success(f"Your queue is empty: every frame of {where} is done ({queue.done}).")
        st.stop()
    position = current_queue_position(ids)
    if top[2].button(
        "Previous", key="ann_prev", shortcut="p", disabled=position == 0, width="stretch"
    ):
        go_to(ids[position - 1])
        st.rerun()
    if top[3].button(
        "Next", key="ann_next", shortcut="n", disabled=position >= len(ids) - 1, width="stretch"
    ):
        go_to(ids[position + 1])
        st.rerun()
    image = labels_store.get_image(ids[position])
    top[1].markdown(f"**{plain(image.label)}** · {position + 1} of {len(ids)} in the queue")
    top[1].caption(f"{queue.done} done · {queue.total - queue.done} to do")
    return image


def choose_start(
    visible: VisibleLabels, reading: Reading, shape: tuple[int, int]
) -> tuple[StartOption, EditSession]:
    """Where the edit starts; a fresh start when the reading or the choice changes."""
    options = start_options(visible, reading.rater)
    labels = [o.label for o in options]
    key = f"ann_start_{reading.key}"
    if st.session_state.get(key) not in labels:  # kept from before, but no longer offered
        st.session_state.pop(key, None)
    choice = st.selectbox("Start from", labels, key=key)
    option = next(o for o in options if o.label == choice)
    return option, begin_edit(reading, option, lambda: start_mask(option, shape))


def save_buttons(queue: Queue) -> tuple[bool, bool, DeltaGenerator]:
    """Save and (outside rounds) Save & next, at the top of the grading column so that they are
    on screen beside the canvas; returns which was pressed and the place for the save messages."""
    save = st.button("Save", key="ann_save", type="primary", shortcut="ctrl+s", width="stretch")
    save_next = queue.study_round is None and st.button(
        "Save & next", key="ann_save_next", shortcut="ctrl+enter", width="stretch"
    )
    return save, save_next, st.container()


def save_action(
    pressed: tuple[bool, bool, DeltaGenerator],
    image: ImageRecord,
    account: Account,
    session: EditSession,
    option: StartOption,
    queue: Queue,
    current: np.ndarray,
    grading: Grading,
    edited: bool,
) -> None:
    """What Save or Save & next does once the mask and the grades of this run are known (the
    outline only when the reader changed it, or accepts the model's: ``outline_to_save``), then
    the confirmation (in the place under the buttons) that names the frame and what remains; a
    frame that leaves the round's queue hands its place to the next one."""
    save, save_next, messages = pressed
    if save or save_next:
        flag = grading.flag.strip()
        study_round = queue.study_round
        try:
            outcome = save_annotation(
                account_store(),
                image.id,
                account.name,
                outline_to_save(current, option.kind, edited),
                start_kind=option.kind,
                parent_id=session.parent_id,
                devita=grading.devita,
                omeract=grading.omeract,
                doppler=grading.doppler,
                hocevar=grading.hocevar,
                comment=grading.comment,
                confidence=grading.confidence,
                round_id=study_round.id if study_round else None,
                status="flagged" if flag else "done",
                reason=flag or None,
                prompted=session.prompted,
            )
        except SgusError as exc:
            messages.error(str(exc))
        else:
            session.saved(current, outcome)
            leaves = queue.hides_done and not flag
            remember_last_save(image.label, outcome, queue, not flag and image.id in queue.open_ids)
            following = queue.after_leaving(image.id) if leaves or save_next else None
            if save_next and not leaves:
                position = queue.ids.index(image.id)
                following = queue.ids[min(position + 1, len(queue.ids) - 1)]
            if following is not None:
                go_to(following)
            st.rerun()
    for message in save_messages(image.id):
        if message.startswith("!"):
            messages.warning(message[1:])
        else:
            messages.success(message)


_LAST_SAVE = "ann_last_save"
LAST_SAVE_SECONDS = 20.0


def remember_last_save(label: str, outcome: SaveOutcome, queue: Queue, newly_done: bool) -> None:
    """The confirmation shown (:func:`last_save_message`) on the run after a save."""
    saved = []
    if outcome.mask is not None:
        saved.append(f"outline v{outcome.mask.id}")
    grade = outcome.grade
    if grade is not None:
        parts = [f"de Vita {grade.devita}" if grade.devita is not None else "",
                 f"OMERACT {grade.omeract}" if grade.omeract is not None else "",
                 f"Doppler {grade.doppler}" if grade.doppler is not None else "",
                 f"Hocevar items (sum {sum(grade.hocevar)})" if grade.hocevar else "",
                 f"confidence {grade.confidence}" if grade.confidence is not None else "",
                 "a comment" if grade.comment else ""]  # fmt: skip
        saved.append(", ".join(p for p in parts if p) or "grades")
    left = queue.total - queue.done - (1 if newly_done else 0)
    where = f'the round "{queue.study_round.name}"' if queue.study_round else "the dataset"
    text = f"Saved {label}: {' and '.join(saved) or 'status'}. {left} of {queue.total} to do in {where}."
    st.session_state[_LAST_SAVE] = (time.monotonic(), text)


def last_save_message() -> None:
    """The last save's confirmation, once, as a toast over the page (a banner on top pushed
    the canvas down and narrowed it while it showed); it outlives the reruns that follow."""
    at, text = st.session_state.pop(_LAST_SAVE, (0.0, ""))
    if text and time.monotonic() - at < LAST_SAVE_SECONDS:
        st.toast(plain(text), icon=":material/check_circle:", duration="long")


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
    queue = choose_queue(labels_store, dataset, account, top)
    study_round = queue.study_round
    open_asked_image(queue)
    image = navigation(labels_store, queue, top)
    last_save_message()
    image_id = image.id
    with stop_on_error():
        frame = load_frame(labels_store, image)
        visible = visible_labels(labels_store, study_round, account.name, image_id)
    left, right = st.columns([3, 1.3])
    reading = Reading(account.name, study_round.id if study_round else None, image_id)
    with right:
        pressed = save_buttons(queue)
        option, session = choose_start(
            visible, reading, (frame.pixels.shape[0], frame.pixels.shape[1])
        )
    # A blind round hides the model, also when its frame is opened from the whole-dataset queue.
    blind = (study_round is not None and study_round.blind) or labels_store.hides(image_id)
    segmenter = None if blind else prompted_segmenter()
    with left:
        pen, view = pen_settings(prompts=segmenter is not None, has_fov=image.fov is not None)
        current, strokes, marks = canvas_editor(frame, image, session, pen, view)
        if segmenter is not None and not marks.empty:
            answer_prompt(segmenter, frame, session, marks, current)
        area_caption(
            image, current, has_unsaved_edits(session, strokes), marks, frame.doppler_signal
        )
        mask_operations(session, option, current, strokes)
    with right:
        grading = grading_panel(visible, reading, doppler=frame.doppler_signal is not None)
        edited = has_unsaved_edits(session, strokes)
        save_action(pressed, image, account, session, option, queue, current, grading, edited)
        st.caption(CAVEAT)
        if not blind:
            offer_fine_tune(dataset.name, account.name, account.can_manage)


render()
