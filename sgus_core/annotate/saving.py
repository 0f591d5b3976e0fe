"""The Annotate workflow without the UI: where an edit starts, what the canvas shows, how a save
is written (mask version, grades and status in one go, under the signed-in account).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sgus_core import imaging
from sgus_core.annotate.editing import Region
from sgus_core.auth import AccountStore
from sgus_core.errors import SgusError
from sgus_core.store import Grade, MaskVersion
from sgus_core.study.rounds import VisibleLabels

START_MODEL = "model prediction"
START_MINE = "my latest version"
START_VERSION = "another version"
START_EMPTY = "empty"
MASK_COLOUR = (0, 220, 120)


@dataclass(frozen=True)
class StartOption:
    """One mask an edit may start from."""

    label: str
    kind: str
    mask_png: bytes | None
    parent_id: int | None


def start_options(visible: VisibleLabels, rater: str) -> list[StartOption]:
    """The masks an edit may start from, best first: my latest, the model's, others, empty.

    ``visible`` already went through the round's blinding, so a blind round offers neither the
    model nor other raters' versions.
    """
    options: list[StartOption] = []
    mine = [m for m in visible.masks if m.rater == rater]
    if mine:
        latest = mine[-1]
        options.append(
            StartOption(f"{START_MINE} (v{latest.id})", START_MINE, latest.png, latest.id)
        )
    if visible.prediction is not None:
        options.append(
            StartOption(
                f"{START_MODEL} ({visible.prediction.model})",
                START_MODEL,
                visible.prediction.png,
                None,
            )
        )
    for version in reversed(visible.masks):
        if mine and version.id == mine[-1].id:
            continue
        label = f"{START_VERSION}: v{version.id} by {version.rater} ({version.source})"
        parent = version.id if version.rater == rater else None
        options.append(StartOption(label, START_VERSION, version.png, parent))
    options.append(StartOption(START_EMPTY, START_EMPTY, None, None))
    return options


def outline_to_save(mask: np.ndarray, start_kind: str, edited: bool) -> np.ndarray | None:
    """The outline a Save stores: the mask as the reader left it when she drew or changed
    anything; an untouched start only when it is the model's prediction (accepting its outline
    as it is). An untouched copy of her own or another rater's version, or an untouched empty
    mask, is not stored: that Save keeps the grades and the status alone (an agreement study
    must not find a rater's outline that is only another rater's, saved unseen)."""
    if edited or start_kind == START_MODEL:
        return mask
    return None


def start_mask(option: StartOption, shape: tuple[int, int]) -> np.ndarray:
    """The bool (H, W) mask of a start option (empty for ``empty``).

    Raises:
        SgusError: the stored mask does not fit the frame.
    """
    if option.mask_png is None:
        return np.zeros(shape, dtype=bool)
    mask = imaging.decode_mask_png(option.mask_png)
    if mask.shape != tuple(shape):
        raise SgusError(
            f"The stored mask is {mask.shape[1]}x{mask.shape[0]}, the frame {shape[1]}x{shape[0]}."
        )
    return mask


def canvas_background(
    pixels: np.ndarray, mask: np.ndarray, *, opacity: float, region: Region, display_size
) -> bytes:
    """PNG bytes of what the canvas shows behind the strokes: the (zoomed) frame ((H, W) grey or
    (H, W, 3) RGB, :meth:`~sgus_core.imaging.Frame.shown`) with the current mask tinted at
    ``opacity`` and outlined, scaled to ``display_size`` (width, height)."""
    crop = region.crop(pixels)  # grey, or RGB (a Doppler frame's flow in colour)
    rgb = (crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB)).astype(np.float32)
    sub = region.crop(mask)
    tint = np.array(MASK_COLOUR, dtype=np.float32)
    rgb[sub] = (1 - opacity) * rgb[sub] + opacity * tint
    out = rgb.astype(np.uint8)
    contours, _ = cv2.findContours(sub.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    scaled = cv2.resize(out, tuple(int(v) for v in display_size), interpolation=cv2.INTER_AREA)
    factor = display_size[0] / region.width
    for contour in contours:
        cv2.polylines(scaled, [np.round(contour * factor).astype(np.int32)], True, MASK_COLOUR, 1)
    ok, data = cv2.imencode(".png", cv2.cvtColor(scaled, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SgusError("Could not draw the canvas background.")
    return data.tobytes()


@dataclass(frozen=True)
class SaveOutcome:
    """What a save wrote."""

    mask: MaskVersion | None
    grade: Grade | None

    @property
    def stale_parent(self) -> bool:
        """A newer version of this rater existed when the edit was saved (kept as a new one)."""
        return bool(self.mask and self.mask.stale_parent)


def save_annotation(
    labels: AccountStore,
    image_id: int,
    rater: str,
    mask: np.ndarray | None,
    *,
    start_kind: str,
    parent_id: int | None,
    devita: int | None,
    omeract: int | None,
    doppler: int | None = None,
    hocevar: tuple[int, ...] | None = None,
    comment: str | None = None,
    confidence: int | None = None,
    round_id: int | None = None,
    status: str = "done",
    reason: str | None = None,
    prompted: bool = False,
) -> SaveOutcome:
    """Save the edited mask (a new version), the grades and the status, under the account.

    The mask's source says where it came from: ``model-prompted`` when the prompted segmenter
    drew it (a box or clicks), ``model-edited`` when the edit started from the model's
    prediction, else ``manual``. ``doppler`` is the OMERACT Doppler grade (Doppler frames).

    Raises:
        PermissionDenied: the account may not save this rater's labels.
        StoreError: invalid grades or status.
    """
    version = None
    if mask is not None:
        source = "model-edited" if start_kind == START_MODEL else "manual"
        if prompted:
            source = "model-prompted"
        version = labels.save_mask(
            image_id,
            rater,
            imaging.encode_mask_png(mask),
            area_px=int(mask.sum()),
            source=source,
            parent_id=parent_id,
            round_id=round_id,
        )
    grade = None
    if any(g is not None for g in (devita, omeract, doppler, hocevar)) or comment:
        values = (devita, omeract, doppler, hocevar, comment or None, confidence)
        grade = _unchanged_grade(labels, image_id, rater, round_id, values)
        if grade is None:
            grade = labels.save_grade(
                image_id,
                rater,
                devita=devita,
                omeract=omeract,
                doppler=doppler,
                hocevar=hocevar,
                comment=comment or None,
                confidence=confidence,
                round_id=round_id,
            )
    labels.set_status(image_id, rater, status, reason=reason, round_id=round_id)
    return SaveOutcome(version, grade)


def _unchanged_grade(
    labels: AccountStore, image_id: int, rater: str, round_id: int | None, values: tuple
) -> Grade | None:
    """The rater's last grade of the image (in this round) when it holds exactly ``values``
    (de Vita, OMERACT, Doppler, Hocevar items, comment, confidence), else None: Save pressed
    again on unchanged grades adds no second, identical row."""
    earlier = [g for g in labels.store.grade_history(image_id, rater) if g.round_id == round_id]
    if not earlier:
        return None
    last = earlier[-1]
    held = (last.devita, last.omeract, last.doppler, last.hocevar, last.comment, last.confidence)
    return last if held == values else None
