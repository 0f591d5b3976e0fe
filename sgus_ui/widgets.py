"""Widgets shared by several pages: error boundaries, thumbnails, tables, mask checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from sgus_core.browse import ensure_thumbnail
from sgus_core.errors import SgusError
from sgus_core.metrics import mask_agreement
from sgus_core.store import BrowseRow, LabelStore
from sgus_ui.state import thumbnail_cache
from sgus_ui.text import plain

if TYPE_CHECKING:
    import numpy as np

    from sgus_core.imaging import Frame
    from sgus_core.inference import Prediction

DASH = "–"  # shown for a value that is not there (no grade, no figure)


def _browser_zone() -> tzinfo:
    """The reader's time zone as the browser reports it (UTC when it does not say)."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_time(when: datetime | None) -> str:
    """A stored time (UTC) in the reader's own time zone, to the minute: ``2026-12-07 19:04
    CET`` (empty for None). The store keeps UTC; a clinic reads its own clock."""
    if when is None:
        return ""
    if when.tzinfo is None:  # stored times are UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(_browser_zone()).strftime("%Y-%m-%d %H:%M %Z")


@contextmanager
def stop_on_error() -> Iterator[None]:
    """Show a core error raised inside the block as ``st.error`` and end the page run there.

    Raises:
        StopException: through ``st.stop()``, after a ``SgusError`` in the block.
    """
    try:
        yield
    except SgusError as exc:
        st.error(str(exc))
        st.stop()


def or_dash(value: Any) -> Any:
    """``value``, or a dash when it is ``None``."""
    return DASH if value is None else value


def thumbnail(labels_store: LabelStore, row: BrowseRow, *, name_in_warning: bool = False) -> None:
    """A thumbnail of ``row`` (with its outline), or a warning when the frame cannot be read.

    Args:
        labels_store: the store the frame and its mask come from.
        row: the image, its grade and its mask version.
        name_in_warning: start the warning with the image's file path.
    """
    try:
        st.image(str(ensure_thumbnail(labels_store, thumbnail_cache(), row)), width="stretch")
    except SgusError as exc:
        st.warning(plain(f"{row.image.path}: {exc}" if name_in_warning else str(exc)))


def records_table(records: Sequence[Mapping[str, Any]], key: str) -> None:
    """A table of ``records`` (one dict a row, its keys the columns) without the index."""
    st.dataframe(pd.DataFrame(records), hide_index=True, key=key)


def mask_check(frame: Frame, prediction: Prediction, truth: np.ndarray) -> None:
    """How the model's mask agrees with the user's mask."""
    check = mask_agreement(truth, prediction.mask, spacing_mm=frame.spacing_mm)
    st.markdown("#### Check against your mask")
    figures = {
        "Dice": check.dice,
        "IoU": check.iou,
        "sensitivity": check.recall,
        "specificity": check.specificity,
        "accuracy": check.accuracy,
    }
    st.dataframe(
        pd.DataFrame({"figure": list(figures), "value": list(figures.values())}).round(3),
        hide_index=True,
        key="pred_check",
    )
