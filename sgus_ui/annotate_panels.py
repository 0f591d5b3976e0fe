"""Panels of the Annotate page: the drawing tools, the canvas editor and the grading panel.

Each panel draws its widgets where it is called (inside a column of the page) and returns what
the user chose; saving stays with the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from sgus_core import imaging
from sgus_core.annotate import editing as edit
from sgus_core.annotate.prompting import (
    BOX_COLOUR,
    CALIPER_COLOUR,
    EXCLUDE_COLOUR,
    INCLUDE_COLOUR,
    Marks,
    next_prompt,
    read_marks,
    split_canvas,
)
from sgus_core.annotate.saving import canvas_background, start_mask
from sgus_core.annotate.strokes import Stroke, strokes_from_canvas
from sgus_core.errors import SgusError
from sgus_core.inference.pipeline import segment_prompted
from sgus_core.study.scoring import DEVITA_GRADES, DOPPLER_GRADES, HOCEVAR_ITEMS, OMERACT_GRADES
from sgus_core.vocabulary import CONFIDENCES
from sgus_ui.annotate_state import (
    ERASE_COLOUR,
    HIDDEN_SHORTCUTS_CSS,
    EditSession,
    Reading,
    canvas_json,
    grade_shortcuts,
    keep_strokes_across_resize,
    leave_guard,
    resolve_canvas_json,
)
from sgus_ui.canvas_view import PageSize, canvas_view

if TYPE_CHECKING:
    from sgus_core.annotate.saving import StartOption
    from sgus_core.imaging import Frame
    from sgus_core.inference.runtimes import Segmenter
    from sgus_core.store import ImageRecord
    from sgus_core.study.rounds import VisibleLabels

CANVAS_MAX_WIDTH = 620  # before the browser has said how wide the column is
CANVAS_MIN_SIDE = 240  # px: a canvas never shrinks below this, however small the window
CANVAS_BOTTOM_MARGIN = 44  # px under a canvas fitted to the window: the area line stays on screen
GRADES = [0, 1, 2, 3]
ADD_COLOUR = "#00dc78"
PEN_BACK_TO_ADD = "ann_pen_back_to_add"


PROMPT_TOOLS = {  # tool label -> (Fabric drawing mode, stroke colour)
    "box (model)": ("rect", BOX_COLOUR),
    "click: gland": ("point", INCLUDE_COLOUR),
    "click: not gland": ("point", EXCLUDE_COLOUR),
}
MEASURE_TOOLS = {"caliper (mm)": ("line", CALIPER_COLOUR)}  # measured, never in the mask


TOOL_LABELS = {"freedraw": "freehand", "rect": "rectangle"}  # the canvas's names, in words
TOOL_HINTS = {
    "polygon": "Polygon: click each corner, then click the first corner again to close it; "
    "it joins the mask (or, on erase, leaves it) once closed. Click a corner to remove it.",
    "rect": "Rectangle: drag from one corner to the opposite one.",
    "circle": "Circle: drag from the centre outwards.",
    "caliper (mm)": "Caliper: drag a line; its length shows under the canvas (not part of "
    "the mask, not saved).",
}


@dataclass(frozen=True)
class Pen:
    """How the canvas draws: ``add`` or ``erase``, the Fabric tool, brush px, overlay opacity."""

    mode: str
    kind: str
    width: int
    opacity: float

    @property
    def prompting(self) -> bool:
        """The tool draws prompt marks for the model (a box or clicks), not mask strokes."""
        return self.kind in PROMPT_TOOLS

    @property
    def marking(self) -> bool:
        """The tool draws marks (prompts or calipers), not mask strokes."""
        return self.kind in PROMPT_TOOLS or self.kind in MEASURE_TOOLS


@dataclass(frozen=True)
class View:
    """How the frame is shown (display only; the frame and the mask never change): zoomed into
    the field of view, brightness and contrast."""

    zoom: bool
    brightness: float
    contrast: float


@dataclass(frozen=True)
class Grading:
    """What the grading panel holds: grades, optional Hocevar items, confidence, comment, flag."""

    devita: int | None
    omeract: int | None
    hocevar: tuple[int, ...] | None
    confidence: int | None
    comment: str
    flag: str
    doppler: int | None = None
    """The OMERACT Doppler grade (offered on Doppler frames only)."""


def pen_settings(*, prompts: bool = False, has_fov: bool = True) -> tuple[Pen, View]:
    """The row above the canvas: pen, tool (with the model's box and click tools when a prompted
    segmenter may be used), brush, and a View popover (zoom into the field of view, overlay
    opacity, brightness, contrast). One row, so that the canvas starts high on the page."""
    tools = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
    if st.session_state.pop(PEN_BACK_TO_ADD, False):  # a new frame starts with the pen on add
        st.session_state["ann_mode"] = "add"
    mode = tools[0].segmented_control(
        "Pen", ["add", "erase"], default="add", key="ann_mode", required=True
    )
    kinds = [
        "freedraw",
        "polygon",
        "rect",
        "circle",
        *MEASURE_TOOLS,
        *(PROMPT_TOOLS if prompts else ()),
    ]
    if st.session_state.get("ann_tool") not in kinds:  # the model's tools went (a blind round)
        st.session_state["ann_tool"] = "freedraw"
    kind = tools[1].selectbox(
        "Tool",
        kinds,
        key="ann_tool",
        format_func=lambda k: TOOL_LABELS.get(k, k),
        help="box (model): drag a box around the gland and the model outlines it; "
        "then click on the gland or beside it to correct the outline",
    )
    width = tools[2].slider("Brush px", 1, 60, 12, key="ann_brush")
    with tools[3].popover("View", width="stretch"):
        zoom = st.toggle("Zoom into the field of view", key="ann_zoom", value=has_fov)
        opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.35, 0.05, key="ann_opacity")
        brightness = st.slider("Brightness", -100, 100, 0, 5, key="ann_bright")
        contrast = st.slider("Contrast", 0.5, 3.0, 1.0, 0.1, key="ann_contrast")
        st.caption("Display only: the frame and the saved mask do not change.")
    if kind in TOOL_HINTS:
        st.caption(TOOL_HINTS[kind])
    return Pen(mode, kind, width, opacity), View(zoom, brightness, contrast)


def canvas_limits(page: PageSize | None) -> tuple[int, int | None]:
    """The canvas's largest display width and height: the column's width, and the window's
    height below the canvas's top (so the whole canvas is on screen); before the browser has
    reported, :data:`CANVAS_MAX_WIDTH` wide."""
    if page is None:
        return CANVAS_MAX_WIDTH, None
    height = page.window_height - page.canvas_top - CANVAS_BOTTOM_MARGIN
    return max(CANVAS_MIN_SIDE, page.column_width), max(CANVAS_MIN_SIDE, height)


def canvas_editor(
    frame: Frame, image: ImageRecord, session: EditSession, pen: Pen, view: View
) -> tuple[np.ndarray, list[Stroke], Marks]:
    """The canvas over the frame and the mask being edited, sized to the page (see
    :mod:`sgus_ui.canvas_view`: it fills the column and fits the window, with wheel zoom and pan).

    Returns:
        The edited mask ((H, W) bool at the frame's size: the session's mask with the canvas
        strokes drawn in), the strokes not yet committed to the session's history, and the
        prompt marks (box, clicks) drawn for the model, in frame pixels.
    """
    shape = frame.pixels.shape
    canvas_slot, view_slot = st.container(), st.container()  # the view line under the canvas
    with view_slot:
        page = canvas_view()
    rect = image.fov if view.zoom and image.fov else (0, 0, shape[1], shape[0])
    region = edit.crop_zoom(shape, rect)
    display = region.fit(*canvas_limits(page))
    canvas_key = f"ann_canvas_{image.id}_{session.generation}"
    keep_strokes_across_resize(session, canvas_key, region, display)
    adding = pen.mode == "add"
    fill = "rgba(0, 220, 120, 0.3)" if adding else "rgba(255, 60, 60, 0.3)"
    stroke, drawing_mode = (ADD_COLOUR if adding else ERASE_COLOUR), pen.kind
    if pen.marking:
        drawing_mode, stroke = {**PROMPT_TOOLS, **MEASURE_TOOLS}[pen.kind]
        fill = "rgba(0, 0, 0, 0)" if drawing_mode == "rect" else stroke
    with canvas_slot:
        result = st_canvas(
            fill_color=fill,
            stroke_width=2 if pen.marking else pen.width,
            stroke_color=stroke,
            background_image=canvas_background(
                imaging.display_window(frame.shown(), view.brightness, view.contrast),
                session.history.current,
                opacity=pen.opacity,
                region=region,
                display_size=display,
            ),
            width=display[0],
            height=display[1],
            drawing_mode=drawing_mode,
            point_display_radius=4,
            initial_drawing=canvas_json(canvas_key),
            key=canvas_key,
        )
    drawing, marks = split_canvas(resolve_canvas_json(result.json_data))
    strokes = strokes_from_canvas(drawing, mode="add", erase_stroke_color=ERASE_COLOUR)
    current = edit.compose(session.history.current, strokes, display_size=display, region=region)
    return current, strokes, read_marks(marks, display_size=display, region=region)


def area_caption(
    image: ImageRecord,
    current: np.ndarray,
    dirty: bool,
    marks: Marks | None = None,
    doppler_signal: np.ndarray | None = None,
) -> None:
    """The gland area (the calipers' lengths, and on a Doppler frame the vascular fraction inside
    the outline being edited) under the canvas; guards the tab against closing with unsaved
    edits."""
    leave_guard(dirty)
    area = int(current.sum())
    mm2 = f" · {area * image.spacing_mm**2:.0f} mm²" if image.spacing_mm else ""
    st.caption(f"Gland area {area} px{mm2}" + (" · unsaved edits" if dirty else ""))
    if doppler_signal is not None:
        st.caption(imaging.vascular_caption(doppler_signal, current) or "Doppler frame: outline "
                   "the gland to see its vascular fraction")  # fmt: skip
    lengths = marks.caliper_lengths(image.spacing_mm) if marks is not None else []
    if lengths:
        st.caption(
            "Calipers: " + ", ".join(f"{value:.1f} {unit}" for value, unit in lengths)
            + ("" if image.spacing_mm else " (no pixel spacing known for this frame)")
        )  # fmt: skip


def grade_control(
    scale: str, key: str, default: int | None, shortcuts: tuple[str, ...], meanings: dict[int, str]
) -> int | None:
    """One 0-3 grade with its shortcut buttons and, once chosen, what the grade means."""
    grade = st.segmented_control(f"{scale} grade", GRADES, default=default, key=key)
    grade_shortcuts(key, scale, shortcuts)
    if grade is not None:
        st.caption(f"{scale} {grade}: {meanings[grade]}")
    return grade


def hocevar_items(reading_key: str, last: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The optional Hocevar items in an expander, starting from the rater's ``last`` items (a
    Save must not drop items she saved before); None unless scoring them is switched on."""
    with st.expander("Hocevar items (optional)", expanded=last is not None):
        use_items = st.toggle(
            "Score Hocevar items", value=last is not None, key=f"ann_hoc_on_{reading_key}"
        )
        starts = last or tuple(item.low for item in HOCEVAR_ITEMS)
        values = [
            st.slider(item.name, item.low, item.high, start, key=f"ann_hoc_{i}_{reading_key}")
            for i, (item, start) in enumerate(zip(HOCEVAR_ITEMS, starts, strict=True))
        ]
    return tuple(values) if use_items else None


GRADE_SCALES = (  # label, Grade field, shortcut modifier of the keys 0-3, what each grade means
    ("de Vita", "devita", "", DEVITA_GRADES),
    ("OMERACT", "omeract", "shift+", OMERACT_GRADES),
    ("OMERACT Doppler", "doppler", "alt+", DOPPLER_GRADES),
)


def grading_panel(visible: VisibleLabels, reading: Reading, *, doppler: bool = False) -> Grading:
    """Grades, Hocevar items, confidence, comment and flag; starts from the rater's last grade
    in this queue (in a round: of this round only; in the whole dataset: outside any round).
    On a Doppler frame (``doppler``) the OMERACT Doppler grade too."""
    last = next(
        (
            g
            for g in reversed(visible.grades)
            if g.rater == reading.rater and g.round_id == reading.round_id
        ),
        None,
    )
    key = reading.key
    chosen: dict[str, int | None] = {}
    for label, field, modifier, meanings in GRADE_SCALES:
        if field == "doppler" and not doppler:
            chosen[field] = None
            continue
        chosen[field] = grade_control(
            label,
            f"ann_{field}_{key}",
            getattr(last, field) if last else None,
            tuple(f"{modifier}{g}" for g in GRADES),
            meanings,
        )
    cleared = [
        f"{label} {getattr(last, field)}"
        for label, field, _, _ in GRADE_SCALES
        if last is not None and getattr(last, field) is not None and chosen[field] is None
    ]
    if cleared:  # a click on the chosen grade clears it; saving cannot delete a saved grade
        st.caption(
            f"No grade chosen where you saved {', '.join(cleared)} before: Save keeps that earlier "
            "grade (saved labels are never deleted). Pick a grade to replace it."
        )
    st.html(HIDDEN_SHORTCUTS_CSS)
    st.caption(
        "Keys: 0-3 de Vita grade, Shift+0-3 OMERACT grade, "
        + ("Alt+0-3 OMERACT Doppler grade, " if doppler else "")
        + "Ctrl+S save, N / P next / previous."
    )
    hocevar = hocevar_items(key, last.hocevar if last else None)
    confidence = st.segmented_control(  # none until chosen: an untouched default is no opinion
        "Confidence (optional)",
        list(CONFIDENCES),
        default=last.confidence if last else None,
        key=f"ann_conf_{key}",
        help="How sure you are of these grades, 1 (guess) to 5 (certain).",
    )
    comment = st.text_area(
        "Comment", value=(last.comment or "") if last else "", key=f"ann_comment_{key}", height=68
    )
    flag = st.text_input("Flag with a reason (optional)", key=f"ann_flag_{key}")
    return Grading(
        chosen["devita"], chosen["omeract"], hocevar, confidence, comment, flag, chosen["doppler"]
    )


def has_unsaved_edits(session: EditSession, strokes: list[Stroke]) -> bool:
    """Strokes on the canvas, or steps in the history since the start or the last save."""
    return bool(strokes) or session.history.can_undo


def mask_operations(
    session: EditSession, option: StartOption, current: np.ndarray, strokes: list[Stroke]
) -> None:
    """The buttons under the canvas and its area line: clean-up, undo, redo, reset, clear."""
    history = session.history
    ops = [*st.columns(3), *st.columns(4)]  # two rows: clean-up, then undo / redo / reset / clear
    actions = {
        "Fill holes": edit.fill_holes,
        "Largest region": edit.keep_largest_region,
        "Smooth": lambda m: edit.smooth(m, 3.0),
    }
    for col, (label, op) in zip(ops, actions.items(), strict=False):
        if col.button(label, key=f"ann_op_{label}", width="stretch"):
            session.commit(op(current))
    dirty = has_unsaved_edits(session, strokes)
    if ops[3].button(
        "Undo", key="ann_undo", shortcut="ctrl+z", disabled=not dirty, width="stretch"
    ):
        # Undo drops the strokes not yet part of the mask first, then steps back in history.
        session.commit(None if strokes else history.undo(), keep_history=True)
    if ops[4].button(
        "Redo", key="ann_redo", shortcut="ctrl+y", disabled=not history.can_redo, width="stretch"
    ):
        session.commit(history.redo(), keep_history=True)
    if ops[5].button("Reset", key="ann_reset", width="stretch"):
        session.forget_prompt()
        session.commit(start_mask(option, current.shape))
    if ops[6].button("Clear", key="ann_clear", width="stretch"):
        session.forget_prompt()
        session.commit(current & False)


def answer_prompt(
    segmenter: Segmenter, frame: Frame, session: EditSession, marks: Marks, current: np.ndarray
) -> None:
    """Send the box and clicks drawn on the canvas to the prompted segmenter; its mask becomes
    the editable state (the page reruns). Clicks before any box get a hint instead; a prompt the
    model could not use is not sent again on every rerun."""
    prompt = next_prompt(session.prompt, marks)
    if prompt is None:
        st.info("Drag a box around the gland first (tool: box (model)); clicks then correct it.")
        return
    if prompt == session.failed_prompt:
        st.error("The model could not use this box: drag another one, or Undo.")
        return
    try:
        with st.spinner("The model outlines the gland in the box..."):
            prediction = segment_prompted(segmenter, frame, prompt)
    except SgusError as exc:
        session.failed_prompt = prompt
        st.error(f"The model could not use this box: {exc}")
        return
    session.prompted_mask(prompt, prediction.mask, current)
