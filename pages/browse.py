"""Browse: a paged grid of thumbnails with filters, and a detail view of one image."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sgus_core import imaging
from sgus_core.browsing import ensure_thumbnail, image_detail
from sgus_core.errors import SgusError
from sgus_core.store import ImageFilter
from sgus_core.store.repository import SORT_KEYS
from sgus_core.store.schema import GLANDS, SIDES, STATUSES
from sgus_ui.state import page_dataset, store, thumbnail_cache

PAGE_SIZES = (12, 24, 48)
COLUMNS = 6
ANY = "any"

labels_store = store()
dataset = page_dataset()


def _show_detail(image_id: int) -> None:
    """The detail view: full frame, each rater's latest outline, the prediction, the history."""
    if st.button("Back to the grid", key="browse_back", icon=":material/arrow_back:"):
        st.session_state.pop("browse_image_id", None)
        st.query_params.pop("image", None)
        st.rerun()
    try:
        detail = image_detail(labels_store, image_id)
    except SgusError as exc:
        st.error(str(exc))
        return
    image = detail.image
    st.subheader(image.label)
    left, right = st.columns([3, 2])
    with right:
        names = [o.label for o in detail.overlays]
        shown = st.multiselect("Outlines", names, default=names, key=f"browse_layers_{image_id}")
        fill = st.slider("Fill opacity", 0.0, 0.6, 0.15, 0.05, key="browse_fill")
        rows = []
        for o in detail.overlays:
            mm2 = detail.area_mm2(o.area_px)
            rows.append(
                {
                    "outline": o.label,
                    "colour": "#{:02x}{:02x}{:02x}".format(*o.colour),
                    "area px": o.area_px,
                    "area mm²": None if mm2 is None else round(mm2, 1),
                }
            )
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="browse_outline_table")
        else:
            st.caption("No mask or prediction for this image yet.")
        facts = {
            "file": image.path,
            "frame": image.frame_index,
            "size": f"{image.width} x {image.height} px",
            "pixel spacing": f"{image.spacing_mm:.3f} mm" if image.spacing_mm else "unknown",
            "field of view": "x {}, y {}, {} x {}".format(*image.fov)
            if image.fov
            else "whole frame",
        }
        st.dataframe(
            pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}),
            hide_index=True,
            key="browse_facts",
        )
    with left:
        layers = [(o.mask, o.colour) for o in detail.overlays if o.label in shown]
        st.image(
            imaging.draw_overlay(detail.pixels, layers, thickness=2, fill_alpha=fill),
            caption=image.path,
            width="stretch",
        )
    st.markdown("#### Grades")
    if detail.grades:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": g.created_at,
                        "rater": g.rater,
                        "de Vita": g.devita,
                        "OMERACT": g.omeract,
                        "comment": g.comment or "",
                    }
                    for g in reversed(detail.grades)
                ]
            ),
            hide_index=True,
            key="browse_grades",
        )
    else:
        st.caption("No grades yet.")
    st.markdown("#### History of masks and status")
    history = [
        {
            "when": m.created_at,
            "rater": m.rater,
            "what": f"mask v{m.id} ({m.source})",
            "area px": m.area_px,
        }
        for m in detail.masks
    ] + [
        {"when": s.created_at, "rater": s.rater, "what": f"status: {s.status}", "area px": None}
        for s in detail.statuses
    ]
    if history:
        st.dataframe(
            pd.DataFrame(history).sort_values("when", ascending=False),
            hide_index=True,
            key="browse_history",
        )
    else:
        st.caption("No history yet.")


def _filters() -> tuple[ImageFilter, str, bool, int]:
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
            st.session_state["f_rater"] = (
                "reference"  # the imported ground truth, when there is one
            )
        rater = c[5].selectbox(
            "Labels of", [ANY, *raters], key="f_rater", help="Grade, status and mask of this rater"
        )
        c = st.columns(6)
        has_mask = c[0].selectbox("Mask", [ANY, "with mask", "without"], key="f_mask")
        has_pred = c[1].selectbox("Prediction", [ANY, "with", "without"], key="f_pred")
        sort = c[2].selectbox("Sort by", SORT_KEYS, key="f_sort")
        descending = c[3].toggle("Descending", key="f_desc")
        page_size = c[4].selectbox("Per page", PAGE_SIZES, index=1, key="f_page_size")
    flt = ImageFilter(
        dataset_id=dataset.id,
        patient=None if patient == ANY else patient,
        gland=None if gland == ANY else gland,
        side=None if side == ANY else side,
        grade=None if grade == ANY else int(grade),
        status=None if status == ANY else status,
        rater=None if rater == ANY else rater,
        has_mask=None if has_mask == ANY else has_mask == "with mask",
        has_prediction=None if has_pred == ANY else has_pred == "with",
    )
    return flt, sort, descending, page_size


def _show_grid() -> None:
    st.title("Browse")
    flt, sort, descending, page_size = _filters()
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
    top[1].markdown(f"**{total}** images in *{dataset.name}* · page {page} of {pages}")
    if not rows:
        st.info("No image matches these filters.")
        return
    cache = thumbnail_cache()
    for start in range(0, len(rows), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, row in zip(cols, rows[start : start + COLUMNS], strict=False):
            with col:
                try:
                    st.image(str(ensure_thumbnail(labels_store, cache, row)), width="stretch")
                except SgusError as exc:
                    st.warning(f"{row.image.path}: {exc}")
                grade = "–" if row.devita is None else row.devita
                st.caption(f"**{row.image.label}** · de Vita {grade} · {row.status or 'todo'}")
                if st.button("Open", key=f"open_{row.image.id}", width="stretch"):
                    st.session_state["browse_image_id"] = row.image.id
                    st.query_params["image"] = str(row.image.id)
                    st.rerun()


selected = st.session_state.get("browse_image_id")
if selected is None and st.query_params.get("image", "").isdigit():
    selected = int(st.query_params["image"])
if selected is not None:
    _show_detail(int(selected))
else:
    _show_grid()
