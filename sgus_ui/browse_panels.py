"""Panels of Browse's detail view: the outlines and facts of one image, its grades, its history.

Each panel draws its widgets where it is called (inside a column of the page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from sgus_ui.widgets import local_time, records_table

if TYPE_CHECKING:
    from sgus_core.browse import ImageDetail
    from sgus_core.store import Dataset, LabelStore


def outline_panel(detail: ImageDetail) -> tuple[list[str], float]:
    """Outlines and fill, the Doppler line and the image's facts; returns outlines shown and
    fill (their areas go under the image: :func:`outline_table`)."""
    image = detail.image
    names = [o.label for o in detail.overlays]
    shown = st.multiselect("Outlines", names, default=names, key=f"browse_layers_{image.id}")
    fill = st.slider("Fill opacity", 0.0, 0.6, 0.15, 0.05, key="browse_fill")
    for text in detail.vascular_captions(shown):
        st.caption(text)
    facts = {
        "file": image.path,
        "frame": image.frame_index,
        "size": f"{image.width} x {image.height} px",
        "pixel spacing": f"{image.spacing_mm:.3f} mm" if image.spacing_mm else "unknown",
        "field of view": "x {}, y {}, {} x {}".format(*image.fov) if image.fov else "whole frame",
    }
    st.dataframe(
        pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}),
        hide_index=True,
        key="browse_facts",
    )
    return shown, fill


def outline_table(detail: ImageDetail) -> None:
    """Each outline's colour and area, under the image (beside it, the table was cut off at a
    laptop's width)."""
    rows = []
    for o in detail.overlays:
        mm2 = detail.area_mm2(o.area_px)
        rows.append(
            {
                "outline": o.label,
                "colour": o.colour_name,
                "area px": o.area_px,
                "area mm²": None if mm2 is None else round(mm2, 1),
            }
        )
    if rows:
        swatches = ["background-color: #{:02x}{:02x}{:02x}; color: black".format(*o.colour)
                    for o in detail.overlays]  # fmt: skip
        table = (
            pd.DataFrame(rows)
            .style.apply(lambda _: swatches, subset=["colour"])
            .format(precision=1, subset=["area mm²"], na_rep="")
        )
        st.dataframe(table, hide_index=True, key="browse_outline_table")
    else:
        st.caption("No mask or prediction for this image yet.")


def grades_table(detail: ImageDetail) -> None:
    """Every grade of the image, newest first."""
    st.markdown("#### Grades")
    if not detail.grades:
        st.caption("No grades yet.")
        return
    rows = [
        {
            "when": local_time(g.created_at),
            "rater": g.rater,
            "de Vita": g.devita,
            "OMERACT": g.omeract,
            **({"Doppler": g.doppler} if detail.doppler_signal is not None else {}),
            "Hocevar items": " ".join(map(str, g.hocevar)) + f" (sum {sum(g.hocevar)})"
            if g.hocevar
            else "",
            "confidence": "" if g.confidence is None else f"{g.confidence} of 5",
            "comment": g.comment or "",
        }
        for g in reversed(detail.grades)
    ]
    records_table(rows, key="browse_grades")


def history_table(detail: ImageDetail) -> None:
    """Mask versions and status changes of the image, newest first."""
    st.markdown("#### History of masks and status")
    history = [
        {
            "when": m.created_at,
            "rater": m.rater,
            "what": f"mask v{m.id} ({m.source})",
            "area px": f"{m.area_px:,}",
        }
        for m in detail.masks
    ] + [
        {"when": s.created_at, "rater": s.rater, "what": f"status: {s.status}", "area px": ""}
        for s in detail.statuses
    ]
    if not history:
        st.caption("No history yet.")
        return
    table = pd.DataFrame(history).sort_values("when", ascending=False)  # by the stored time
    table["when"] = table["when"].map(local_time)
    st.dataframe(table, hide_index=True, key="browse_history")


EXPORT_FORMAT_NAMES = {
    "masks": "frames, masks and labels.csv (re-importable)",
    "csv": "labels.csv only",
    "coco": "COCO annotations.json",
}


def export_panel(labels_store: LabelStore, dataset: Dataset) -> None:
    """Download one rater's latest labels of the dataset as a ZIP (what ``sgus export`` writes;
    the blinding of the reader's open blind rounds applies)."""
    from sgus_core.browse import label_counts
    from sgus_core.errors import SgusError
    from sgus_core.transfer import export_zip

    with st.expander("Export this dataset's labels"):
        raters = sorted(label_counts(labels_store, dataset.name))
        if not raters:
            st.caption("No labels to export yet.")
            return
        cols = st.columns(2)
        rater = cols[0].selectbox("Whose labels", raters, key="browse_export_rater")
        formats: list[str] = list(EXPORT_FORMAT_NAMES)
        fmt = cols[1].selectbox("Format", formats, format_func=lambda f: EXPORT_FORMAT_NAMES[f],
                                key="browse_export_fmt")  # fmt: skip
        if not st.button("Prepare the download", key="browse_export_go"):
            return
        try:
            with st.spinner("Exporting..."):
                data = export_zip(labels_store, dataset.name, fmt=str(fmt), rater=rater)
        except SgusError as exc:
            st.error(str(exc))
            return
        st.download_button(
            f"Download {dataset.name}_{rater}_{fmt}.zip ({len(data) / 1e6:.1f} MB)",
            data,
            file_name=f"{dataset.name}_{rater}_{fmt}.zip",
            mime="application/zip",
            key="browse_export_download",
            on_click="ignore",  # no rerun: the button stays for a second download
        )
