"""Session state of the Annotate page: the edit in progress survives reruns and page switches.

Session state holds the undo history (packed masks, a few kB each), the canvas's Fabric JSON and
ids; never image arrays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
from streamlit.errors import StreamlitAPIException

from sgus_core.annotate import editing as edit
from sgus_core.annotate.editing import EditHistory, Region
from sgus_core.annotate.prompting import split_canvas
from sgus_core.annotate.saving import SaveOutcome, StartOption
from sgus_core.annotate.strokes import strokes_from_canvas
from sgus_core.inference.prompts import Prompt

ERASE_COLOUR = "#ff3c3c"
_SESSION = "ann_session"
_CANVAS_JSON = "ann_canvas_json"  # the drawing the canvas should hold (tests inject here)
_REPORTED = "ann_canvas_reported"  # the drawing the canvas last reported
_SEED = "ann_canvas_seed"  # the drawing the canvas was last seeded with
_MESSAGES = "ann_messages"
_GEOMETRY = "ann_canvas_geometry"  # (canvas key, region, display size) of the last run


@dataclass(frozen=True)
class Reading:
    """One rater reading one image in one queue (a round, or the whole dataset: ``round_id``
    None). Every widget of the reading is keyed by it, so nothing chosen by another rater, in
    another round or outside it is carried into this one."""

    rater: str
    round_id: int | None
    image_id: int

    @property
    def key(self) -> str:
        """The suffix of this reading's widget keys."""
        return f"{self.image_id}_{self.round_id or 0}_{self.rater}"


@dataclass
class EditSession:
    """The edit of one image from one start option, in one reading."""

    image_id: int
    start_label: str
    history: EditHistory
    parent_id: int | None
    round_id: int | None = None
    rater: str = ""
    generation: int = 0
    prompt: Prompt | None = None  # the last box (and clicks) the model answered
    prompt_depth: int | None = None  # the history depth at which the model's answer was pushed
    failed_prompt: Prompt | None = None  # the last prompt the model could not use

    @property
    def prompted(self) -> bool:
        """The current mask holds (or was edited from) the prompted model's answer: not once
        Undo has stepped back past it, nor after Reset or Clear."""
        return self.prompt_depth is not None and self.history.undo_depth >= self.prompt_depth

    def prompted_mask(self, prompt: Prompt, mask: np.ndarray, current: np.ndarray) -> None:
        """The prompted model answered ``prompt`` with ``mask``: make it the editable state. The
        edit so far (``current``, canvas strokes included) goes into the history first, so Undo
        brings it back."""
        if not np.array_equal(current, self.history.current):
            self.history.push(current)
        self.history.push(mask)
        self.prompt, self.prompt_depth, self.failed_prompt = prompt, self.history.undo_depth, None
        self.commit(None)

    def forget_prompt(self) -> None:
        """The mask no longer comes from the model (Reset, Clear): a new box starts over."""
        self.prompt, self.prompt_depth = None, None

    def commit(self, mask: np.ndarray | None, *, keep_history: bool = False) -> None:
        """Make ``mask`` the current state (None: drop the canvas strokes only) and start a fresh
        canvas (its strokes are now part of the mask)."""
        if mask is not None and not keep_history:
            self.history.push(mask)
        self.generation += 1
        _clear_canvas()
        st.rerun()

    def saved(self, mask: np.ndarray, outcome: SaveOutcome) -> None:
        """After a save: the saved mask is the new start and parent."""
        self.history = EditHistory(mask)
        self.forget_prompt()
        # Messages live outside the edit session: saving changes the start options ("my latest
        # version" appears), which may start a new session on the next run.
        messages: list[str] = []
        st.session_state[_MESSAGES] = (self.image_id, time.monotonic(), messages)
        if outcome.mask is not None:
            self.parent_id = outcome.mask.id
            messages.append(
                f"Saved mask version v{outcome.mask.id}; earlier versions are kept (Browse shows "
                "the history)."
            )
        if outcome.stale_parent:
            messages.append(
                "!A newer version of yours existed (another tab or device): this save is kept as "
                "a new version; compare them in Browse."
            )
        self.generation += 1
        _clear_canvas()


MESSAGE_SECONDS = 20.0


def save_messages(image_id: int) -> list[str]:
    """Messages of this image's last save, shown for a while: the canvas remounts after a save
    and its first report triggers one more rerun, which must not swallow the confirmation."""
    image, at, messages = st.session_state.get(_MESSAGES, (None, 0.0, []))
    if image != image_id or time.monotonic() - at > MESSAGE_SECONDS:
        return []
    return messages


def begin_edit(
    reading: Reading, option: StartOption, make_mask: Callable[[], np.ndarray]
) -> EditSession:
    """The edit session of a reading: kept while the image, the rater, the queue and the start
    option stay the same (so nothing drawn outside a blind round, the model's outline included,
    nor by another rater, is carried into it)."""
    session: EditSession | None = st.session_state.get(_SESSION)
    key = (reading.image_id, option.label, reading.round_id, reading.rater)
    if (
        session is None
        or (session.image_id, session.start_label, session.round_id, session.rater) != key
    ):
        session = EditSession(
            reading.image_id,
            option.label,
            EditHistory(make_mask()),
            option.parent_id,
            reading.round_id,
            reading.rater,
        )
        st.session_state[_SESSION] = session
        _clear_canvas()
    return session


KEPT_WIDGETS = (
    "ann_round", "ann_uncertain", "ann_skip_done", "ann_start_", "ann_mode", "ann_tool",
    "ann_brush", "ann_opacity", "ann_zoom", "ann_bright", "ann_contrast", "ann_devita_", "ann_omeract_", "ann_doppler_", "ann_hoc",
    "ann_conf_", "ann_comment_", "ann_flag_",
)  # fmt: skip
"""Prefixes of the Annotate widgets whose values outlive a visit to another page."""


def keep_widget_state() -> None:
    """Keep the Annotate page's choices (queue, start, tool, pen, grades, comment) while another
    page runs: Streamlit drops the state of widgets a run does not draw, so without this a
    page switch would reset the start option and end the unsaved edit. Called at the start of
    every page run (``state.require_account``): writing a value back makes it the app's own,
    which outlives the run."""
    for key in list(st.session_state.keys()):
        if (
            isinstance(key, str)
            and key.startswith(KEPT_WIDGETS)
            and key[-5:-1] != "_key"  # the grade shortcut buttons hold no value
        ):
            try:
                st.session_state[key] = st.session_state[key]
            except StreamlitAPIException:  # its widget is drawn already this run: kept anyway
                continue


def current_queue_position(queue: list[int]) -> int:
    """Index of the current image in the queue (the first one when none is chosen)."""
    chosen = st.session_state.get("ann_image_id")
    if chosen not in queue:
        chosen = queue[0]
        st.session_state["ann_image_id"] = chosen
    return queue.index(chosen)


def _clear_canvas() -> None:
    for key in (_CANVAS_JSON, _REPORTED, _SEED):
        st.session_state.pop(key, None)


def keep_strokes_across_resize(
    session: EditSession, canvas_key: str, region: Region, display: tuple[int, int]
) -> None:
    """The canvas's geometry (the part of the frame it shows, its size on screen) changed under
    strokes not yet in the mask (zoom switched, window resized): draw them into the mask with
    the geometry they were drawn in, then start a fresh canvas (the page reruns)."""
    previous = st.session_state.get(_GEOMETRY)
    st.session_state[_GEOMETRY] = (canvas_key, region, display)
    if previous is None or previous[0] != canvas_key or previous[1:] == (region, display):
        return
    drawing, _ = split_canvas(st.session_state.get(_CANVAS_JSON))
    strokes = strokes_from_canvas(drawing, mode="add", erase_stroke_color=ERASE_COLOUR)
    if strokes:
        _, old_region, old_display = previous
        session.commit(
            edit.compose(
                session.history.current, strokes, display_size=old_display, region=old_region
            )
        )


def canvas_json(canvas_key: str) -> dict | None:
    """The drawing to seed a canvas with. It changes only on a fresh mount (first show, or back
    from another page) or when the wanted drawing differs from what the canvas last reported
    (set from outside, e.g. by a test), so strokes are not re-seeded on every rerun."""
    wanted = st.session_state.get(_CANVAS_JSON)
    if canvas_key not in st.session_state or wanted != st.session_state.get(_REPORTED):
        st.session_state[_SEED] = wanted
    return st.session_state.get(_SEED)


def resolve_canvas_json(json_data: dict | None) -> dict | None:
    """The drawing to use this run, and remember it (to re-seed the canvas after a page switch).

    What the canvas reports wins when it sent something new; when it did not (its value is the
    one of the previous run) and a different drawing was set in session state from outside (a
    test, a restored session), that one is used.
    """
    before = st.session_state.get(_REPORTED)
    wanted = st.session_state.get(_CANVAS_JSON)
    untouched = before is None or json_data == before
    effective = wanted if wanted is not None and wanted != json_data and untouched else json_data
    st.session_state[_REPORTED] = json_data
    st.session_state[_CANVAS_JSON] = effective
    return effective


def leave_guard(dirty: bool) -> None:
    """Ask the browser to confirm before the tab is closed or reloaded with unsaved edits."""
    script = (
        "window.parent.onbeforeunload = (e) => { e.preventDefault(); e.returnValue = ''; };"
        if dirty
        else "window.parent.onbeforeunload = null;"
    )
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def grade_shortcuts(widget_key: str, label: str, keys: tuple[str, ...]) -> None:
    """Buttons with keyboard shortcuts that set the grade control ``widget_key`` to 0-3 (the
    segmented control itself takes no shortcut). They are drawn out of sight: the keys work, the
    page shows no second row of grades (the keys are named under the grading panel)."""

    def choose(grade: int) -> None:
        st.session_state[widget_key] = grade

    with st.container(key=f"{widget_key}_shortcuts"):
        for grade, key in enumerate(keys):
            st.button(
                str(grade),
                key=f"{widget_key}_key{grade}",
                shortcut=key,
                on_click=choose,
                args=(grade,),
                type="tertiary",
                help=f"{label} {grade} ({key})",
            )


HIDDEN_SHORTCUTS_CSS = (
    "<style>[class*='_shortcuts'][class*='st-key-ann_'] {position: absolute; width: 1px; "
    "height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap;}</style>"
)
"""Keeps the grade shortcut buttons out of sight (still in the page, so their keys work)."""
