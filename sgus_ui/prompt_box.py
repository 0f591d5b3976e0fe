"""A canvas on which the user drags a box around the gland (Predict page): the prompt for the
prompted segmenter."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from sgus_core.annotate import editing as edit
from sgus_core.annotate.prompting import BOX_COLOUR, read_marks, split_canvas
from sgus_core.annotate.saving import canvas_background
from sgus_core.inference.prompts import Prompt

if TYPE_CHECKING:
    from sgus_core.imaging import Frame

CANVAS_WIDTH = 620


def box_prompt(frame: Frame, key: str = "pred_box") -> Prompt | None:
    """A toggle and, when on, a canvas over the frame to drag a box on; the box as a prompt
    (None until a box is drawn or with the toggle off). The canvas belongs to the frame: a box
    drawn on one frame is not applied to the next."""
    if not st.toggle(
        "Segment from a box (drag one around the gland)",
        key=f"{key}_on",
        help="The prompted model outlines the gland inside the box you drag.",
    ):
        return None
    shape = frame.pixels.shape
    region = edit.crop_zoom(shape, (0, 0, shape[1], shape[0]))
    display = region.fit(CANVAS_WIDTH)
    result = st_canvas(
        fill_color="rgba(0, 0, 0, 0)",
        stroke_width=2,
        stroke_color=BOX_COLOUR,
        background_image=canvas_background(
            frame.shown(), np.zeros(shape, bool), opacity=0.0, region=region, display_size=display
        ),
        width=display[0],
        height=display[1],
        drawing_mode="rect",
        key=f"{key}_canvas_{zlib.crc32(frame.pixels.tobytes())}_{shape[1]}x{shape[0]}",
    )
    _, marks = split_canvas(result.json_data)
    box = read_marks(marks, display_size=display, region=region).box
    if box is None:
        st.caption("Drag a box around the gland on the frame above.")
        return None
    return Prompt(box)
