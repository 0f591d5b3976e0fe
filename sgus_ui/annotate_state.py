"""Session state of the Annotate page: the edit in progress survives reruns and page switches.

Session state holds the undo history (packed masks, a few kB each), the canvas's Fabric JSON and
ids; never image arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from sgus_core.annotation import EditHistory
from sgus_core.labelling import SaveOutcome, StartOption

ERASE_COLOUR = "#ff3c3c"
_SESSION = "ann_session"
_CANVAS_JSON = "ann_canvas_json"


@dataclass
class EditSession:
    """The edit of one image from one start option."""

    image_id: int
    start_label: str
    history: EditHistory
    parent_id: int | None
    generation: int = 0
    messages: list[str] = field(default_factory=list)

    def commit(self, mask: np.ndarray | None, *, keep_history: bool = False) -> None:
        """Make ``mask`` the current state (None: drop the canvas strokes only) and start a fresh
        canvas (its strokes are now part of the mask)."""
        if mask is not None and not keep_history:
            self.history.push(mask)
        self.generation += 1
        st.session_state.pop(_CANVAS_JSON, None)
        st.rerun()

    def saved(self, mask: np.ndarray, outcome: SaveOutcome) -> None:
        """After a save: the saved mask is the new start and parent."""
        self.history = EditHistory(mask)
        if outcome.mask is not None:
            self.parent_id = outcome.mask.id
            self.messages.append(
                f"Saved mask version v{outcome.mask.id} in {outcome.seconds * 1000:.0f} ms."
            )
        if outcome.stale_parent:
            self.messages.append(
                "!A newer version of yours existed (another tab or device): this save is kept as "
                "a new version; compare them in Browse."
            )
        self.generation += 1
        st.session_state.pop(_CANVAS_JSON, None)

    def pop_messages(self) -> list[str]:
        """Messages to show once."""
        out, self.messages = self.messages, []
        return out


def begin_edit(
    image_id: int, option: StartOption, make_mask: Callable[[], np.ndarray]
) -> EditSession:
    """The edit session of ``image_id``: kept while the image and start option stay the same."""
    session: EditSession | None = st.session_state.get(_SESSION)
    if session is None or session.image_id != image_id or session.start_label != option.label:
        session = EditSession(image_id, option.label, EditHistory(make_mask()), option.parent_id)
        st.session_state[_SESSION] = session
        st.session_state.pop(_CANVAS_JSON, None)
    return session


def current_queue_position(queue: list[int]) -> int:
    """Index of the current image in the queue (the first one when none is chosen)."""
    chosen = st.session_state.get("ann_image_id")
    if chosen not in queue:
        chosen = queue[0]
        st.session_state["ann_image_id"] = chosen
    return queue.index(chosen)


def canvas_json(canvas_key: str) -> dict | None:
    """The drawing to seed a canvas with: only on a fresh mount (first show, or back from another
    page), so strokes survive page switches without being re-seeded on every rerun."""
    if canvas_key in st.session_state:
        return st.session_state.get(f"{_CANVAS_JSON}_seed")
    seed = st.session_state.get(_CANVAS_JSON)
    st.session_state[f"{_CANVAS_JSON}_seed"] = seed
    return seed


def keep_canvas_json(canvas_key: str, json_data: dict | None) -> None:
    """Remember the canvas's drawing (to re-seed it after a page switch)."""
    if json_data is not None:
        st.session_state[_CANVAS_JSON] = json_data


def leave_guard(dirty: bool) -> None:
    """Ask the browser to confirm before the tab is closed or reloaded with unsaved edits."""
    script = (
        "window.parent.onbeforeunload = (e) => { e.preventDefault(); e.returnValue = ''; };"
        if dirty
        else "window.parent.onbeforeunload = null;"
    )
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
