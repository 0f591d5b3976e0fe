"""Prompts for the prompted segmenter: a box around the gland, and optional include / exclude clicks.

A prompt is given in frame pixels. The network sees the part of the frame around the box (the box
padded by :data:`PROMPT_MARGIN` on each side, clipped to the frame), resized to its input size,
with three more channels that encode the prompt in that crop's coordinates:

* channel 1, the box: 1 inside the box, 0 outside;
* channel 2, include clicks: a Gaussian bump (sigma :data:`CLICK_SIGMA_PX` network pixels) at
  each click, maximum 1;
* channel 3, exclude clicks: the same for clicks on what is not gland.

The zero-shot path gives the same network its field-of-view crop with all three channels zero,
so one network serves both. Training draws prompts the way people give them (boxes up to 20 %
loose or tight, clicks anywhere inside the gland) with the same encoding (``training.synthetic``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sgus_core.errors import PromptError
from sgus_core.imaging import Rect

PROMPT_MARGIN = 0.25  # the crop around a box: this share of its width / height on each side
CLICK_SIGMA_PX = 5.0  # click bumps, in network-input pixels
PROMPT_CHANNELS = 3
Point = tuple[float, float]


@dataclass(frozen=True)
class Prompt:
    """A box (``x0, y0, x1, y1``, frame pixels, inclusive) and optional clicks (``(x, y)``)."""

    box: tuple[int, int, int, int]
    include: tuple[Point, ...] = field(default_factory=tuple)
    exclude: tuple[Point, ...] = field(default_factory=tuple)

    def checked(self, frame_shape: tuple[int, ...]) -> Prompt:
        """This prompt with its box clipped to a frame of ``(H, W)``.

        Raises:
            PromptError: the box is empty, inverted or outside the frame, or a click is outside
                the frame.
        """
        height, width = int(frame_shape[0]), int(frame_shape[1])
        x0, y0, x1, y1 = (int(round(v)) for v in self.box)
        if x1 <= x0 or y1 <= y0:
            raise PromptError(
                f"box {self.box} is empty or inverted: x1 must exceed x0 and y1 must exceed y0."
            )
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width - 1, x1), min(height - 1, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            where = (
                "lies outside"
                if x1 < 0 or y1 < 0 or x0 >= width or y0 >= height
                else "is too small in"
            )
            raise PromptError(f"box {self.box} {where} the {width} x {height} frame.")
        for x, y in (*self.include, *self.exclude):
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(f"click ({x:g}, {y:g}) is outside the {width} x {height} frame.")
        return Prompt((x0, y0, x1, y1), tuple(self.include), tuple(self.exclude))


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The inclusive bounding box ``(x0, y0, x1, y1)`` of a mask (the prompt convention), None
    when it is empty."""
    rows = np.flatnonzero(np.asarray(mask).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(np.asarray(mask).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def padded_box(mask: np.ndarray, pad: float) -> tuple[int, int, int, int]:
    """The mask's inclusive bounding box with each side moved out by ``pad`` of its width or
    height, clipped to the mask (how the benchmarks give a box a person would drag).

    Raises:
        PromptError: the mask is empty.
    """
    box = mask_box(mask)
    if box is None:
        raise PromptError("an empty mask has no box")
    x0, y0, x1, y1 = box
    px, py = pad * (x1 - x0 + 1), pad * (y1 - y0 + 1)
    h, w = np.asarray(mask).shape[:2]
    return (
        max(0, int(round(x0 - px))),
        max(0, int(round(y0 - py))),
        min(w - 1, int(round(x1 + px))),
        min(h - 1, int(round(y1 + py))),
    )


PRIOR_SOFTNESS = 0.15
"""Width of the box prior's edge, as a fraction of the ellipse's radius."""


def box_prior(
    box: tuple[int, int, int, int], region: Rect, frame_shape: tuple[int, ...]
) -> np.ndarray:
    """(H, W) float32 at the frame's size: a soft ellipse inscribed in the box (1 at its centre,
    0.5 on the ellipse, falling off outside it), inside ``region`` only (0 elsewhere): where a
    box says the gland is before the network has looked."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax, ay = max(1.0, (x1 - x0) / 2), max(1.0, (y1 - y0) / 2)
    yy, xx = np.mgrid[region.y : region.y + region.height, region.x : region.x + region.width]
    radius = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2).astype(np.float32)
    out = np.zeros(frame_shape[:2], np.float32)
    out[region.slices] = 1 / (1 + np.exp(-(1 - radius) / PRIOR_SOFTNESS))
    return out


def prompt_region(
    box: tuple[int, int, int, int], frame_shape: tuple[int, ...], margin: float = PROMPT_MARGIN
) -> Rect:
    """The part of the frame the network sees for a box: the box padded by ``margin`` of its
    width and height on each side, clipped to the frame."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    x0, y0, x1, y1 = box
    pad_x, pad_y = margin * (x1 - x0 + 1), margin * (y1 - y0 + 1)
    left, top = max(0, int(round(x0 - pad_x))), max(0, int(round(y0 - pad_y)))
    right = min(width, int(round(x1 + 1 + pad_x)))
    bottom = min(height, int(round(y1 + 1 + pad_y)))
    return Rect(left, top, right - left, bottom - top)


def _bumps(
    points: tuple[Point, ...], scale: tuple[float, float], size: tuple[int, int]
) -> np.ndarray:
    height, width = size
    out = np.zeros(size, np.float32)
    if not points:
        return out
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    for x, y in points:
        cx, cy = x * scale[0], y * scale[1]
        bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * CLICK_SIGMA_PX**2))
        np.maximum(out, bump, out=out)
    return out


def encode_prompt(prompt: Prompt | None, region: Rect, size: tuple[int, int]) -> np.ndarray:
    """The three prompt channels for a crop ``region`` of the frame resized to ``size`` (H, W).

    Returns:
        (H, W, 3) float32 in 0..1: box, include clicks, exclude clicks (all 0 without a prompt).
    """
    height, width = size
    out = np.zeros((height, width, PROMPT_CHANNELS), np.float32)
    if prompt is None:
        return out
    sx, sy = width / max(region.width, 1), height / max(region.height, 1)
    x0, y0, x1, y1 = prompt.box
    c0 = int(np.clip(np.floor((x0 - region.x) * sx), 0, width))
    c1 = int(np.clip(np.ceil((x1 + 1 - region.x) * sx), 0, width))
    r0 = int(np.clip(np.floor((y0 - region.y) * sy), 0, height))
    r1 = int(np.clip(np.ceil((y1 + 1 - region.y) * sy), 0, height))
    out[r0:r1, c0:c1, 0] = 1.0

    def local(points: tuple[Point, ...]) -> tuple[Point, ...]:
        return tuple((x - region.x + 0.5, y - region.y + 0.5) for x, y in points)

    out[..., 1] = _bumps(local(prompt.include), (sx, sy), size)
    out[..., 2] = _bumps(local(prompt.exclude), (sx, sy), size)
    return out


def takes_prompts(input_shape: tuple[int, ...]) -> bool:
    """Whether a segmenter with this (H, W, C) input takes the prompt channels."""
    return len(input_shape) == 3 and int(input_shape[2]) == 1 + PROMPT_CHANNELS


def parse_points(text: str | None) -> tuple[Point, ...]:
    """Clicks written as ``"x y;x y"`` (blank: none).

    Raises:
        PromptError: a point is not two numbers.
    """
    points = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        values = part.replace(",", " ").split()
        try:
            x, y = (float(v) for v in values)
        except ValueError:
            raise PromptError(f"click {part.strip()!r} is not 'x y' (two numbers)") from None
        points.append((x, y))
    return tuple(points)


def read_prompts_csv(path: Path) -> dict[str, Prompt]:
    """``{image file name: Prompt}`` from a CSV with ``image, x0, y0, x1, y1`` and optional
    ``include`` and ``exclude`` columns (docs/CLI.md, ``sgus predict --prompts``).

    Raises:
        PromptError: the file cannot be read, lacks a column, or a row is malformed (the
            message names the line).
    """
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PromptError(f"cannot read the prompts CSV {Path(path).name}: {exc}") from exc
    needed = ("image", "x0", "y0", "x1", "y1")
    columns = set(rows[0]) if rows else set()
    missing = [c for c in needed if c not in columns]
    if rows and missing:
        raise PromptError(
            f"the prompts CSV {Path(path).name} lacks the column(s) {', '.join(missing)}"
        )
    prompts: dict[str, Prompt] = {}
    for line, row in enumerate(rows, start=2):
        name = (row.get("image") or "").strip()
        if not name:
            raise PromptError(f"line {line} of {Path(path).name}: the image column is empty")
        try:
            box = tuple(int(round(float(row[c] or ""))) for c in ("x0", "y0", "x1", "y1"))
        except ValueError:
            raise PromptError(
                f"line {line} of {Path(path).name}: x0, y0, x1, y1 must be numbers"
            ) from None
        try:
            include, exclude = parse_points(row.get("include")), parse_points(row.get("exclude"))
        except PromptError as exc:
            raise PromptError(f"line {line} of {Path(path).name}: {exc}") from None
        prompts[Path(name).name] = Prompt((box[0], box[1], box[2], box[3]), include, exclude)
    return prompts
