"""Browse: a paged grid of thumbnails with filters, and a detail view of one image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from sgus_core import imaging
from sgus_core.browse import image_detail
from sgus_core.errors import SgusError
from sgus_core.store import SORT_KEYS, ImageFilter
from sgus_core.study.visibility import ReaderStore
from sgus_core.vocabulary import GLANDS, SIDES, STATUSES
from sgus_ui.browse_panels import (
    export_panel,
    grades_table,
    history_table,
    outline_panel,
    outline_table,
)
from sgus_ui.state import page_dataset, reader_store
from sgus_ui.text import count, plain
from sgus_ui.widgets import thumbnail

if TYPE_CHECKING:
    from sgus_core.store import BrowseRow, Dataset, LabelStore

PAGE_SIZES = (12, 24, 48)
COLUMNS = 6
ANY = "any"


def back_to_grid() -> None:
    """The button that leaves the detail view."""
    if st.button("Back to the grid", key="browse_back", icon=":material/arrow_back:"):
        st.session_state.pop("browse_image_id", None)
        st.query_params.pop("image", None)
        st.rerun()


def show_detail(labels_store: LabelStore, image_id: int) -> None:
    """The detail view: full frame, each rater's latest outline, the prediction, the history."""
    with st.container(horizontal=True):
        back_to_grid()
        if st.button("Annotate this image", key="browse_annotate", icon=":material/draw:"):
            st.switch_page("pages/annotate.py", query_params={"image": str(image_id)})
    try:
        detail = image_detail(labels_store, image_id)
    except SgusError as exc:
        st.error(str(exc))
        return
    st.subheader(plain(detail.image.label))
    left, right = st.columns([3, 2])
    with right:
        shown, fill = outline_panel(detail)
    with left:
        layers = [(o.mask, o.colour) for o in detail.overlays if o.label in shown]
        st.image(
            imaging.draw_overlay(detail.pixels, layers, thickness=2, fill_alpha=fill),
            caption=detail.image.path,
            width="stretch",
        )
        outline_table(detail)
    grades_table(detail)
    history_table(detail)


def filters(labels_store: LabelStore, dataset: Dataset) -> tuple[ImageFilter, str, bool, int]:
    """The filter bar; returns the filter, sort key, sort direction and page size."""
    raters = [r.name for r in labels_store.list_raters()]
    with st.container(border=True):
        c = st.columns(6)
        patient = c[0].selectbox(
            "Patient", [ANY, *labels_store.patients(dataset.id)], key="f_patient"
        )
        gland = c[1].selectbox("Gland", [ANY, *GLANDS], key="f_gland")
        side = c[2].selectbox("Side", [ANY, *SIDES], key="f_side")
        grade = c[3].selectbox("de Vita grade", [ANY, 0, 1, 2, 3], key="f_grade")
        status = c[4].selectbox("Status", [ANY, *STATUSES], key="f_status")
        if "f_rater" not in st.session_state and "reference" in raters:
            st.session_state["f_rater"] = "reference"  # the imported ground truth, if any
        rater = c[5].selectbox(
            "Labels of", [ANY, *raters], key="f_rater", help="Grade, status and mask of this rater"
        )
        c = st.columns(6)
        has_mask = c[0].selectbox("Mask", [ANY, "with mask", "without"], key="f_mask")
        has_pred = c[1].selectbox("Prediction", [ANY, "with", "without"], key="f_pred")
        sort = c[2].selectbox("Sort by", SORT_KEYS, key="f_sort")
        descending = c[3].toggle("Descending", key="f_desc")
        page_size = c[4].selectbox("Per page", PAGE_SIZES, index=1, key="f_page_size")
        if rater == ANY:
            st.caption(
                "Labels of any rater: each frame shows the newest grade, status and mask that "
                "anyone saved, so neighbouring frames may show different raters; choose a "
                "rater to see one person's labels."
            )
    flt = ImageFilter(
        dataset_id=dataset.id,
        patient=None if patient == ANY else patient,
        gland=None if gland == ANY else gland,
        side=None if side == ANY else side,
        grade=None if grade == ANY else int(str(grade)),
        status=None if status == ANY else status,
        rater=None if rater == ANY else rater,
        has_mask=None if has_mask == ANY else has_mask == "with mask",
        has_prediction=None if has_pred == ANY else has_pred == "with",
    )
    return flt, sort, descending, page_size


def grid_cell(labels_store: LabelStore, row: BrowseRow) -> None:
    """One thumbnail with its grade and status, and the button that opens it."""
    thumbnail(labels_store, row, name_in_warning=True)
    grade = "–" if row.devita is None else row.devita
    st.caption(f"**{plain(row.image.label)}** · de Vita {grade} · {row.status or 'todo'}")
    if st.button("Open", key=f"open_{row.image.id}", width="stretch"):
        st.session_state["browse_image_id"] = row.image.id
        st.query_params["image"] = str(row.image.id)
        st.rerun()


def _blind_rounds(labels_store: LabelStore) -> tuple[list[str], int]:
    """The names of the reader's open blind rounds and how many frames they hide labels on."""
    if not isinstance(labels_store, ReaderStore) or not labels_store.blinding.image_ids:
        return [], 0
    ids = labels_store.blinding.round_ids
    names = [plain(r.name) for r in labels_store.list_rounds() if r.id in ids]
    return names, len(labels_store.blinding.image_ids)


def _rounds_text(names: list[str]) -> str:
    return f"blind round{'s' if len(names) > 1 else ''} {', '.join(names)}"


def no_match_hint(flt: ImageFilter, names: list[str], hidden: int) -> str:
    """What to say when nothing matches: why, when the reader's blind rounds (``names``, hiding
    labels on ``hidden`` frames) hide the labels the filters ask about (a grade filter finds
    nothing on a blind round's frames, which reads as a lost dataset)."""
    text = "No image matches these filters."
    asks_labels = any(
        v is not None for v in (flt.grade, flt.status, flt.has_mask, flt.has_prediction)
    )
    if hidden and asks_labels:
        text += (
            f" While your {_rounds_text(names)} {'are' if len(names) > 1 else 'is'} open, other "
            f"people's labels and the model's on its {count(hidden, 'frame')} are hidden from you, so "
            "these filters find nothing there: set them to *any* (or **Labels of** to your own "
            "name) to see those frames."
        )
    return text


def show_grid(labels_store: LabelStore, dataset: Dataset) -> None:
    """The filters, the pager and one page of thumbnails."""
    st.title("Browse")
    flt, sort, descending, page_size = filters(labels_store, dataset)
    page = st.session_state.get("browse_page", 1)
    rows, total = labels_store.browse(
        flt, sort=sort, descending=descending, offset=(page - 1) * page_size, limit=page_size
    )
    pages = max(1, -(-total // page_size))
    if page > pages:  # the filters shrank the result: go back to its first page
        st.session_state["browse_page"] = page = 1
        rows, total = labels_store.browse(flt, sort=sort, descending=descending, limit=page_size)
    top = st.columns([1, 3])
    top[0].number_input("Page", 1, pages, key="browse_page")
    top[1].markdown(
        f"**{count(total, 'image')}** in *{plain(dataset.name)}* · page {page} of {pages}"
    )
    names, hidden = _blind_rounds(labels_store)
    if hidden:
        st.caption(
            f"Your {_rounds_text(names)} {'are' if len(names) > 1 else 'is'} open: on its "
            f"{count(hidden, 'frame')} you see only your own labels in it (grades shown as – until you "
            "give one)."
        )
    if not rows:
        st.info(no_match_hint(flt, names, hidden))
        return
    for start in range(0, len(rows), COLUMNS):
        for col, row in zip(st.columns(COLUMNS), rows[start : start + COLUMNS], strict=False):
            with col:
                grid_cell(labels_store, row)


def render() -> None:
    """The detail view of the image chosen (in the session or the URL), else the grid."""
    labels_store = reader_store()
    dataset = page_dataset()
    selected = st.session_state.get("browse_image_id")
    asked = st.query_params.get("image", "")
    if selected is None and asked.isdigit():
        selected = int(asked)
    elif selected is None and asked:
        st.warning(f"The address asks for image {plain(asked)!r}, which is no image number.")
    if selected is not None:
        show_detail(labels_store, int(selected))
    else:
        show_grid(labels_store, dataset)
        export_panel(labels_store, dataset)


render()
