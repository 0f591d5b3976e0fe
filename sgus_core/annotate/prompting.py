"""Prompted editing on the canvas: a dragged box and clicks become a prompt for the model.

The Annotate canvas holds mask strokes and prompt marks side by side; prompt marks are told
apart by their stroke colour: a box (:data:`BOX_COLOUR`, drawn with the rectangle tool), clicks
on the gland (:data:`INCLUDE_COLOUR`) and clicks beside it (:data:`EXCLUDE_COLOUR`, both drawn
with the point tool). :func:`split_canvas` separates them; :func:`prompt_from_marks` turns the
marks into a :class:`~sgus_core.inference.prompts.Prompt` in frame pixels, which the prompted
segmenter answers with a mask the rater then edits and saves (source ``model-prompted``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgus_core.annotate.editing import Region
from sgus_core.annotate.strokes import strokes_from_canvas
from sgus_core.inference.prompts import Point, Prompt

BOX_COLOUR = "#ffd000"
INCLUDE_COLOUR = "#00b4ff"
EXCLUDE_COLOUR = "#ff00c8"
CALIPER_COLOUR = "#ff8c00"
"""Caliper lines (the line tool): measured, never part of the mask."""
_KINDS = {
    BOX_COLOUR: "box",
    INCLUDE_COLOUR: "include",
    EXCLUDE_COLOUR: "exclude",
    CALIPER_COLOUR: "caliper",
}


def _colour(obj: Any) -> str:
    colour = obj.get("stroke") if isinstance(obj, Mapping) else None
    return colour.replace(" ", "").lower() if isinstance(colour, str) else ""


def split_canvas(json_data: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``(mask drawing, marks)``: the canvas JSON without the marks, and the marks by kind
    (``"box"``, ``"include"``, ``"exclude"``, ``"caliper"``), each in drawing order."""
    marks: dict[str, list[Any]] = {kind: [] for kind in _KINDS.values()}
    objects = json_data.get("objects") if isinstance(json_data, Mapping) else None
    if not isinstance(objects, list):
        return {"objects": []}, marks
    rest = []
    for obj in objects:
        kind = _KINDS.get(_colour(obj))
        if kind is None:
            rest.append(obj)
        else:
            marks[kind].append(obj)
    return {**json_data, "objects": rest}, marks


@dataclass(frozen=True)
class Marks:
    """Prompt marks read off the canvas, in frame pixels."""

    box: tuple[int, int, int, int] | None
    include: tuple[Point, ...]
    exclude: tuple[Point, ...]
    calipers: tuple[tuple[Point, Point], ...] = ()
    """The ends of each caliper line, in frame pixels (not a prompt: measured only)."""

    @property
    def empty(self) -> bool:
        """No box and no click (calipers prompt nothing)."""
        return self.box is None and not self.include and not self.exclude

    def caliper_lengths(self, spacing_mm: float | None) -> list[tuple[float, str]]:
        """Each caliper's length and its unit: mm with the frame's pixel spacing, else px."""
        out = []
        for (x0, y0), (x1, y1) in self.calipers:
            pixels = float(np.hypot(x1 - x0, y1 - y0))
            out.append((pixels * spacing_mm, "mm") if spacing_mm else (pixels, "px"))
        return out


def read_marks(
    marks: Mapping[str, list[Any]], *, display_size: tuple[int, int], region: Region
) -> Marks:
    """The last box and every click of the canvas marks, mapped to frame pixels."""

    def frame_points(objects: list[Any]) -> list[np.ndarray]:
        strokes = strokes_from_canvas({"objects": objects}, mode="add")
        return [region.to_frame(s.points, display_size) for s in strokes]

    boxes = frame_points(marks.get("box", []))
    box = None
    if boxes:
        corners = boxes[-1]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) - 1
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            box = (int(x0), int(y0), int(x1), int(y1))

    def centres(kind: str) -> tuple[Point, ...]:
        # Continuous canvas coordinates -> pixel indices (pixel i covers [i, i + 1)).
        return tuple(
            (float(p[:, 0].mean()) - 0.5, float(p[:, 1].mean()) - 0.5)
            for p in frame_points(marks.get(kind, []))
        )

    calipers = tuple(
        ((float(p[0, 0]), float(p[0, 1])), (float(p[-1, 0]), float(p[-1, 1])))
        for p in frame_points(marks.get("caliper", []))
        if len(p) >= 2
    )
    return Marks(box, centres("include"), centres("exclude"), calipers)


def next_prompt(previous: Prompt | None, marks: Marks) -> Prompt | None:
    """The prompt after new marks: a new box starts over; clicks add to the previous box's
    prompt. None when there is no box yet (clicks need one first)."""
    if marks.box is not None:
        return Prompt(marks.box, marks.include, marks.exclude)
    if previous is None or (not marks.include and not marks.exclude):
        return previous
    return Prompt(previous.box, previous.include + marks.include, previous.exclude + marks.exclude)
