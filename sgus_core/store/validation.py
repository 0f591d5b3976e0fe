"""What the store checks before it keeps a mask, and the stored rows that fail those checks.

A mask (a rater's version or a model's prediction) is kept only when its PNG decodes, holds only
the raw grey values 0 and 255 (or 0 and 1, or is a 1-bit PNG), has its frame's width and height,
and its ``area_px`` is its number of mask pixels. Rows written before these checks may fail them:
:func:`stored_mask_problems` finds those, and :func:`judging_status_events` lists the status
changes with who set them, for ``sgus check`` (``sgus_core/check.py``). Nothing here writes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.orm import aliased

from sgus_core.errors import StoreError
from sgus_core.imaging.readers import describe_exception
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase

_GREY_MODES = ("1", "L")


def mask_problem(png: Any, width: int, height: int, area_px: Any) -> str | None:
    """What is wrong with a mask PNG for a frame of ``width`` x ``height`` px, or ``None``.

    The size is checked from the PNG's header before its pixels are decoded, so a PNG that
    declares a huge size is refused without being expanded.
    """
    if not isinstance(png, bytes | bytearray | memoryview):
        return f"it is {type(png).__name__}, not PNG bytes"
    try:
        with Image.open(io.BytesIO(bytes(png)), formats=["PNG"]) as image:
            if image.mode not in _GREY_MODES:
                return (
                    f"it is a PNG of mode {image.mode}, not a grey mask of 0 and 255 (or 0 and 1)"
                )
            if image.size != (width, height):
                return (
                    f"it is {image.size[0]} x {image.size[1]} px but its frame is "
                    f"{width} x {height} px (width x height)"
                )
            raw = np.asarray(image)
    except UnidentifiedImageError:
        return "it is not a PNG image"
    except Exception as exc:  # truncated data, a bad CRC, a decompression bomb ...
        return f"it is not a readable PNG ({describe_exception(exc)})"
    if image.mode == "L":
        values = set(np.unique(raw).tolist())
        if not (values <= {0, 255} or values <= {0, 1}):
            shown = ", ".join(str(v) for v in sorted(values)[:6])
            more = ", ..." if len(values) > 6 else ""
            return (
                f"it is not binary: it holds {len(values)} grey levels ({shown}{more}); "
                "a mask uses 0 and 255, or 0 and 1"
            )
    pixels = int(np.count_nonzero(raw))
    if isinstance(area_px, bool) or not isinstance(area_px, int | np.integer):
        return f"its area {area_px!r} is not a whole number of pixels (the mask has {pixels})"
    if int(area_px) != pixels:
        return f"its area is given as {int(area_px)} px but the mask has {pixels} px"
    return None


def require_valid_mask(
    conn: Connection, image_id: int, png: Any, area_px: Any, what: str = "mask"
) -> None:
    """Refuse a mask that does not decode, is not binary, does not fit image ``image_id``'s
    frame, or whose ``area_px`` is not its pixel count.

    Raises:
        StoreError: one line naming the image and what is wrong; nothing is written.
    """
    size = conn.execute(
        select(t.images.c.width, t.images.c.height).where(t.images.c.id == image_id)
    ).first()
    if size is None:
        raise StoreError(f"No image with id {image_id}; the {what} was not saved.")
    problem = mask_problem(png, int(size.width), int(size.height), area_px)
    if problem is not None:
        raise StoreError(f"The {what} of image {image_id} was not saved: {problem}.")


def same_mask(png_a: bytes, png_b: bytes) -> bool:
    """Whether two mask PNGs hold the same pixels (any encoding of 0/255, 0/1 or 1-bit); a PNG
    that does not decode is the same only as identical bytes."""
    if png_a == png_b:
        return True
    try:
        with Image.open(io.BytesIO(png_a)) as a, Image.open(io.BytesIO(png_b)) as b:
            return bool(np.array_equal(np.asarray(a) > 0, np.asarray(b) > 0))
    except Exception:  # an old row that does not decode: only identical bytes match it
        return False


# ---------------------------------------------------------------- stored rows, for `sgus check`


@dataclass(frozen=True)
class StoredMaskProblem:
    """A stored mask version or prediction that fails the checks new writes get."""

    table: str  # "mask_versions" or "predictions"
    row_id: int
    image_id: int
    owner: str  # the rater (mask versions) or the model (predictions)
    problem: str
    superseded_by: int | None  # a newer row of the same rater or model for the image


@dataclass(frozen=True)
class MaskScan:
    """What :func:`stored_mask_problems` read and found."""

    mask_versions: int
    predictions: int
    problems: list[StoredMaskProblem]


def _newer(conn: Connection, table: Any, row_id: int, same: Sequence[Any]) -> int | None:
    """The newest id of ``table`` among the rows matching ``same``, if newer than ``row_id``."""
    newest = conn.execute(select(func.max(table.c.id)).where(*same)).scalar()
    return int(newest) if newest is not None and newest > row_id else None


def stored_mask_problems(store: StoreBase) -> MaskScan:
    """Every stored mask version and prediction that does not decode, is not binary, does not
    fit its frame, or whose area disagrees with its pixels, oldest first; each says whether a
    newer row (of the same rater, or model, for that image) already supersedes it."""
    mv, pr, im, ra, mo = t.mask_versions, t.predictions, t.images, t.raters, t.models
    masks = (
        select(
            mv.c.id,
            mv.c.image_id,
            mv.c.rater_id,
            ra.c.name,
            mv.c.png,
            mv.c.area_px,
            im.c.width,
            im.c.height,
        )
        .join(im, im.c.id == mv.c.image_id)
        .join(ra, ra.c.id == mv.c.rater_id)
        .order_by(mv.c.id)
    )
    predictions = (
        select(
            pr.c.id,
            pr.c.image_id,
            pr.c.model_id,
            mo.c.name,
            pr.c.png,
            pr.c.area_px,
            im.c.width,
            im.c.height,
        )
        .join(im, im.c.id == pr.c.image_id)
        .join(mo, mo.c.id == pr.c.model_id)
        .order_by(pr.c.id)
    )
    problems: list[StoredMaskProblem] = []
    counts = {"mask_versions": 0, "predictions": 0}
    with store.engine.connect() as conn:
        for table, query, owner_col in ((mv, masks, "rater_id"), (pr, predictions, "model_id")):
            found = []
            rows = conn.execute(query.execution_options(yield_per=256))
            for row in rows:
                counts[table.name] += 1
                problem = mask_problem(row.png, row.width, row.height, row.area_px)
                if problem is not None:
                    found.append((row.id, row.image_id, row[2], row.name, problem))
            for row_id, image_id, owner_id, owner, problem in found:
                same = (table.c.image_id == image_id, table.c[owner_col] == owner_id)
                newer = _newer(conn, table, row_id, same)
                problems.append(
                    StoredMaskProblem(table.name, row_id, image_id, owner, problem, newer)
                )
    return MaskScan(counts["mask_versions"], counts["predictions"], problems)


@dataclass(frozen=True)
class StatusSetter:
    """A stored status change, who set it (from the audit log) and that person's role now."""

    row_id: int
    image_id: int
    rater: str  # whose work the status is about
    status: str
    round_id: int | None
    actor: str | None  # None: no audit entry records who set it
    actor_role: str | None  # None: the actor is not an account (a script, "system" ...)
    superseded_by: int | None  # a newer status of the same rater, image and round


def judging_status_events(
    store: StoreBase, statuses: Sequence[str]
) -> tuple[int, list[StatusSetter]]:
    """``(number of status changes stored, those whose status is one of statuses)``, the latter
    with who set each (oldest first)."""
    se, al = t.status_events, t.audit_log
    owner = aliased(t.raters)
    setter = aliased(t.raters)
    query = (
        select(
            se.c.id,
            se.c.image_id,
            se.c.rater_id,
            owner.c.name.label("rater"),
            se.c.status,
            se.c.round_id,
            al.c.actor,
            setter.c.role,
        )
        .join(owner, owner.c.id == se.c.rater_id)
        .outerjoin(
            al, and_(al.c.entity == "status", al.c.action == "set", al.c.entity_id == se.c.id)
        )
        .outerjoin(setter, setter.c.name == al.c.actor)
        .where(se.c.status.in_(list(statuses)))
        .order_by(se.c.id)
    )
    found: list[StatusSetter] = []
    with store.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(se)).scalar_one())
        for row in conn.execute(query).all():
            in_round = (
                se.c.round_id.is_(None) if row.round_id is None else (se.c.round_id == row.round_id)
            )
            same = (se.c.image_id == row.image_id, se.c.rater_id == row.rater_id, in_round)
            found.append(
                StatusSetter(
                    row.id,
                    row.image_id,
                    row.rater,
                    row.status,
                    row.round_id,
                    row.actor,
                    row.role,
                    _newer(conn, se, row.id, same),
                )
            )
    return total, found
