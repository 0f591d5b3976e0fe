"""Annotate: correct the gland outline on a canvas, grade the gland, save, and move on."""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from sgus_core import annotation as edit
from sgus_core.browsing import load_frame
from sgus_core.errors import SgusError
from sgus_core.labelling import canvas_background, save_annotation, start_mask, start_options
from sgus_core.rounds import prediction_uncertainty, rater_queue, visible_labels
from sgus_core.scoring import CAVEAT, DEVITA_GRADES, HOCEVAR_ITEMS, OMERACT_GRADES
from sgus_ui.annotate_state import (
    ERASE_COLOUR,
    begin_edit,
    canvas_json,
    current_queue_position,
    grade_shortcuts,
    leave_guard,
    resolve_canvas_json,
    save_messages,
)
from sgus_ui.state import account_store, page_dataset, require_account, store

CANVAS_MAX_WIDTH = 620  # fits the left column of a 1280 px wide window
labels_store = store()
account = require_account()
st.title("Annotate")
dataset = page_dataset()
if not account.can_label:
    st.warning("Your account can view but not annotate.")
    st.stop()

# ---- queue: a study round I rate in, or the whole dataset
my_rounds = [r for r in labels_store.list_rounds(dataset.id) if account.name in r.raters]
round_names = ["(whole dataset)", *[r.name for r in my_rounds]]
top = st.columns([2, 2, 1, 1])
round_name = top[0].selectbox("Queue", round_names, key="ann_round")
study_round = next((r for r in my_rounds if r.name == round_name), None)
if study_round is not None:
    order, scores = "round", None
    if study_round.blind:
        top[1].caption("Blind round: the model and other raters are hidden.")
    elif top[1].toggle("Least sure first", key="ann_uncertain", help="By the model's grade"):
        order = "uncertainty"
        scores = {
            i: prediction_uncertainty(labels_store.latest_prediction(i))
            for i in study_round.image_ids
        }
    queue = [
        q.image_id
        for q in rater_queue(
            labels_store, study_round, account.name, order=order, uncertainty=scores
        )
    ]
else:
    queue = [i.id for i in labels_store.list_images(dataset.id)]
if not queue:
    st.success("Your queue is empty: every image of this round is done.")
    st.stop()
position = current_queue_position(queue)
if top[2].button("Previous", key="ann_prev", shortcut="p", disabled=position == 0, width="stretch"):
    st.session_state["ann_image_id"] = queue[position - 1]
    st.rerun()
if top[3].button(
    "Next", key="ann_next", shortcut="n", disabled=position >= len(queue) - 1, width="stretch"
):
    st.session_state["ann_image_id"] = queue[position + 1]
    st.rerun()
image_id = queue[position]
image = labels_store.get_image(image_id)
top[1].markdown(f"**{image.label}** · {position + 1} of {len(queue)} in the queue")

try:
    frame = load_frame(labels_store, image)
    visible = visible_labels(labels_store, study_round, account.name, image_id)
except SgusError as exc:
    st.error(str(exc))
    st.stop()
shape = frame.pixels.shape

# ---- where the edit starts (a fresh start only when the image or the choice changes)
options = start_options(visible, account.name)
left, right = st.columns([3, 1.3])
with right:
    choice = st.selectbox("Start from", [o.label for o in options], key=f"ann_start_{image_id}")
option = next(o for o in options if o.label == choice)
session = begin_edit(image_id, option, lambda: start_mask(option, shape))
history = session.history

with left:
    tools = st.columns([3, 2, 2, 2])
    mode = tools[0].segmented_control(
        "Pen", ["add", "erase"], default="add", key="ann_mode", required=True
    )
    kind = tools[1].selectbox("Tool", ["freedraw", "polygon", "rect", "circle"], key="ann_tool")
    width = tools[2].slider("Brush px", 1, 60, 12, key="ann_brush")
    opacity = tools[3].slider("Overlay opacity", 0.0, 1.0, 0.35, 0.05, key="ann_opacity")
    zoom = st.toggle("Zoom into the field of view", key="ann_zoom", value=image.fov is not None)
    rect = image.fov if zoom and image.fov else (0, 0, shape[1], shape[0])
    region = edit.crop_zoom(shape, rect)
    display = region.fit(CANVAS_MAX_WIDTH)
    canvas_key = f"ann_canvas_{image_id}_{session.generation}"
    result = st_canvas(
        fill_color="rgba(0, 220, 120, 0.3)" if mode == "add" else "rgba(255, 60, 60, 0.3)",
        stroke_width=width,
        stroke_color="#00dc78" if mode == "add" else ERASE_COLOUR,
        background_image=canvas_background(
            frame.pixels, history.current, opacity=opacity, region=region, display_size=display
        ),
        width=display[0],
        height=display[1],
        drawing_mode=kind,
        initial_drawing=canvas_json(canvas_key),
        key=canvas_key,
    )
    drawing = resolve_canvas_json(result.json_data)
    strokes = edit.strokes_from_canvas(drawing, mode="add", erase_stroke_color=ERASE_COLOUR)
    current = edit.compose(history.current, strokes, display_size=display, region=region)

    ops = st.columns(7)
    actions = {
        "Fill holes": edit.fill_holes,
        "Largest region": edit.keep_largest_region,
        "Smooth": lambda m: edit.smooth(m, 3.0),
    }
    for col, (label, op) in zip(ops, actions.items(), strict=False):
        if col.button(label, key=f"ann_op_{label}", width="stretch"):
            session.commit(op(current))
    if ops[3].button(
        "Undo",
        key="ann_undo",
        shortcut="ctrl+z",
        disabled=not (strokes or history.can_undo),
        width="stretch",
    ):
        # Undo drops the strokes not yet part of the mask first, then steps back in history.
        session.commit(None if strokes else history.undo(), keep_history=True)
    if ops[4].button(
        "Redo", key="ann_redo", shortcut="ctrl+y", disabled=not history.can_redo, width="stretch"
    ):
        session.commit(history.redo(), keep_history=True)
    if ops[5].button("Reset", key="ann_reset", width="stretch"):
        session.commit(start_mask(option, shape))
    if ops[6].button("Clear", key="ann_clear", width="stretch"):
        session.commit(current & False)
    dirty = bool(strokes) or history.can_undo
    leave_guard(dirty)
    area = int(current.sum())
    mm2 = f" · {area * image.spacing_mm**2:.0f} mm²" if image.spacing_mm else ""
    st.caption(f"Gland area {area} px{mm2}" + (" · unsaved edits" if dirty else ""))

# ---- grading panel
with right:
    last = next((g for g in reversed(visible.grades) if g.rater == account.name), None)
    devita = st.segmented_control(
        "de Vita grade",
        [0, 1, 2, 3],
        default=last.devita if last else None,
        key=f"ann_devita_{image_id}",
    )
    grade_shortcuts(f"ann_devita_{image_id}", "de Vita", ("0", "1", "2", "3"))
    if devita is not None:
        st.caption(f"de Vita {devita}: {DEVITA_GRADES[devita]}")
    omeract = st.segmented_control(
        "OMERACT grade",
        [0, 1, 2, 3],
        default=last.omeract if last else None,
        key=f"ann_omeract_{image_id}",
    )
    grade_shortcuts(
        f"ann_omeract_{image_id}", "OMERACT", ("shift+0", "shift+1", "shift+2", "shift+3")
    )
    if omeract is not None:
        st.caption(f"OMERACT {omeract}: {OMERACT_GRADES[omeract]}")
    hocevar = None
    with st.expander("Hocevar items (optional)"):
        use_items = st.toggle("Score Hocevar items", key=f"ann_hoc_on_{image_id}")
        values = [
            st.slider(item.name, item.low, item.high, item.low, key=f"ann_hoc_{i}_{image_id}")
            for i, item in enumerate(HOCEVAR_ITEMS)
        ]
        hocevar = tuple(values) if use_items else None
    confidence = st.slider("Confidence", 1, 5, 4, key=f"ann_conf_{image_id}")
    comment = st.text_area("Comment", key=f"ann_comment_{image_id}", height=68)
    flag = st.text_input("Flag with a reason (optional)", key=f"ann_flag_{image_id}")
    if st.button("Save", key="ann_save", type="primary", shortcut="ctrl+s", width="stretch"):
        try:
            outcome = save_annotation(
                account_store(),
                image_id,
                account.name,
                current,
                start_kind=option.kind,
                parent_id=session.parent_id,
                devita=devita,
                omeract=omeract,
                hocevar=hocevar,
                comment=comment,
                confidence=confidence,
                round_id=study_round.id if study_round else None,
                status="flagged" if flag.strip() else "done",
                reason=flag.strip() or None,
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
