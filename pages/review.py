"""Review: how two label sources agree (model vs rater, rater vs rater, rater vs self)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import streamlit as st

from sgus_core.demo import DEMO_DATASET, DEMO_NOTE
from sgus_core.review.comparisons import (
    REFERENCE_KAPPAS,
    available_sources,
    compare,
    metadata_values,
    most_labelled_rater,
    rater_matrix,
    restrict,
)
from sgus_core.review.figures import (
    bland_altman_figure,
    confusion_heatmap,
    iou_histogram,
    matrix_heatmap,
    roc_figure,
)
from sgus_core.review.report import FEW_IMAGES, build_report
from sgus_core.vocabulary import GLANDS, SIDES
from sgus_ui.state import app_link, page_dataset, reader_store, thumbnail_data_uri
from sgus_ui.text import plain

if TYPE_CHECKING:
    from sgus_core.review.comparisons import Comparison, Source
    from sgus_core.store import Dataset, LabelStore

WORST_SHOWN = 12


def require_sources(labels_store: LabelStore, dataset: Dataset) -> list[Source]:
    """The dataset's label sources; stops unless there are two to compare."""
    sources = available_sources(labels_store, dataset.id)
    if len(sources) < 2:
        st.info(
            "Review needs two label sources: raters' labels or a model's predictions (Predict page)."
        )
        st.stop()
    return sources


def compared_selection(
    labels_store: LabelStore, dataset: Dataset, sources: list[Source]
) -> Comparison:
    """The sources and filters chosen and their comparison; stops when they share no image."""
    labels = [s.label for s in sources]
    left, right = st.columns(2)  # a row of their own: source names (a consensus) are long
    chosen = st.session_state.get("rev_a")  # a choice already made: no need to count labels
    a_default = (
        labels.index(chosen)
        if chosen in labels
        else most_labelled_rater(labels_store, dataset.id, sources)
    )
    a_label = left.selectbox(
        "Source A (the standard compared against)", labels, index=a_default, key="rev_a"
    )
    others = [i for i in range(len(sources)) if i != a_default]
    b_default = next((i for i in others if sources[i].kind == "model"), others[0])
    b_label = right.selectbox("Source B (compared with A)", labels, index=b_default, key="rev_b")
    cols = st.columns([1, 1, 1, 2])
    gland = cols[0].selectbox("Gland", ["any", *GLANDS], key="rev_gland")
    side = cols[1].selectbox("Side", ["any", *SIDES], key="rev_side")
    grade = cols[2].selectbox("Grade (A)", ["any", 0, 1, 2, 3], key="rev_grade")
    all_images = labels_store.list_images(dataset.id)
    meta_values = sorted(metadata_values(all_images))
    meta = cols[3].selectbox("Metadata (e.g. centre)", ["any", *meta_values], key="rev_meta")
    a = sources[labels.index(a_label)]
    b = sources[labels.index(b_label)]
    images = [
        i
        for i in all_images
        if gland in ("any", i.gland)
        and side in ("any", i.side)
        and (meta == "any" or meta in metadata_values([i]))
    ]
    with st.spinner("Comparing..."):
        comparison = compare(labels_store, dataset.id, a, b, images=images)
        if grade != "any":
            comparison = restrict(comparison, comparison.per_image["grade_a"] == grade)
    for chosen_source, compared, other in ((a, comparison.a, b), (b, comparison.b, a)):
        if compared != chosen_source:  # the option's label lists a rater the comparison left out
            st.caption(
                f"Compared with {plain(other.name)}, the consensus is that of "
                f"{plain(', '.join(compared.members)) or 'nobody else'}: a rater is not compared "
                "with a consensus she is part of."
            )
    chosen = {"gland": gland, "side": side, "grade of A": grade, "metadata": meta}
    comparison = replace(comparison, selection={k: str(v) for k, v in chosen.items()})
    if comparison.summary["n"] == 0:
        st.warning("The two sources share no labelled image in this selection.")
        st.stop()
    return comparison


def _fmt(value: float | None) -> str:
    """A figure to three decimals, or a dash."""
    return "–" if value is None else f"{value:.3f}"


def summary_metrics(summary: dict[str, Any]) -> None:
    """The headline figures: images, mean IoU and Dice, grade accuracy, quadratic kappa."""
    kq = summary.get("kappa_quadratic")
    if summary["n"] < FEW_IMAGES:
        grades = (
            "a kappa from so few may be 0 or 1 by chance (its 95 % interval is under the ? beside it)"
            if kq
            else "grade figures need at least two images graded by both sides"
        )
        st.warning(
            f"Only {summary['n']} image{'s are' if summary['n'] != 1 else ' is'} compared: these "
            f"figures are rough, and {grades}."
        )
    m = st.columns(5)
    m[0].metric("Images", summary["n"])
    m[1].metric("Mean IoU", _fmt(summary.get("iou_mean")))
    m[2].metric("Mean Dice", _fmt(summary.get("dice_mean")))
    m[3].metric("Grade accuracy", _fmt(summary.get("grade_accuracy")))
    m[4].metric("Quadratic kappa", _fmt(kq[0] if kq else None),
                help=f"95 % CI {kq[1]:.2f} to {kq[2]:.2f}" if kq else None)  # fmt: skip


def agreement_figures(comparison: Comparison) -> None:
    """IoU histogram, grade confusion, ROC and Bland-Altman plots, and every kappa."""
    figures = {
        "rev_hist": iou_histogram(comparison),
        "rev_confusion": confusion_heatmap(comparison),  # None: said so in its place
        "rev_roc": roc_figure(comparison),
        "rev_ba": bland_altman_figure(comparison),
    }
    shown = [
        (key, fig) for key, fig in figures.items() if fig is not None or key == "rev_confusion"
    ]
    for row in range(0, len(shown), 2):  # two a row, filled in order: no empty half-rows
        for column, (key, fig) in zip(st.columns(2), shown[row : row + 2], strict=False):
            if fig is None:
                column.info("No grade matrix yet: fewer than two images are graded by both sides.")
            else:
                column.plotly_chart(fig, key=key)
    summary = comparison.summary
    kappas = {k: summary[k] for k in summary if k.startswith("kappa_")}
    if kappas:
        st.caption(
            " · ".join(f"{k[6:]} kappa {v[0]:.3f} ({v[1]:.2f} to {v[2]:.2f})" for k, v in kappas.items())
            + " · literature: " + ", ".join(f"{k} {v}" for k, v in REFERENCE_KAPPAS.items())
        )  # fmt: skip


SCALES = (  # (summary prefix, heading, the frames, the grade's short name, figure scale, key)
    ("omeract", "#### OMERACT (B-mode, 0-3)", "Images", "OMERACT", "OMERACT", "rev_omeract"),
    ("doppler", "#### OMERACT Doppler (vascularity)", "Doppler frames", "Doppler",
     "OMERACT Doppler", "rev_doppler"),
)  # fmt: skip


def scale_agreement(comparison: Comparison) -> None:
    """OMERACT and OMERACT Doppler agreement, each over the images both sources graded on that
    scale (each shown only when there are such images)."""
    summary = comparison.summary
    for prefix, heading, frames, name, scale, key in SCALES:
        if f"{prefix}_n" not in summary:
            continue
        st.markdown(heading)
        m = st.columns(3)
        m[0].metric(f"{frames} graded by both", summary[f"{prefix}_n"])
        m[1].metric(f"{name} grade accuracy", _fmt(summary.get(f"{prefix}_accuracy")))
        kq = summary.get(f"{prefix}_kappa_quadratic")
        m[2].metric(f"{name} quadratic kappa", _fmt(kq[0] if kq else None),
                    help=f"95 % CI {kq[1]:.2f} to {kq[2]:.2f}" if kq else None)  # fmt: skip
        figure = confusion_heatmap(comparison, scale)
        if figure is not None:  # half the width, as the de Vita matrix above
            st.columns(2)[0].plotly_chart(figure, key=key)


def worst_cases(comparison: Comparison) -> None:
    """The images the sources agree on least, with a thumbnail and a link to Browse."""
    st.markdown("#### Worst cases")
    worst = comparison.per_image.sort_values("iou").head(WORST_SHOWN).copy()
    worst["open"] = [app_link(image=i) for i in worst["image_id"]]
    worst["thumbnail"] = [thumbnail_data_uri(i) for i in worst["image_id"]]
    st.dataframe(
        worst[["thumbnail", "image", "iou", "dice", "hd95", "grade_a", "grade_b", "open"]],
        column_config={
            "open": st.column_config.LinkColumn("open in Browse", display_text="open"),
            "thumbnail": st.column_config.ImageColumn("frame"),
            "hd95": st.column_config.NumberColumn(
                "HD95",
                format="%.1f",
                help="95th-percentile distance between the two outlines: mm where the frame "
                "has a pixel spacing, else pixels",
            ),
        },
        row_height=60,
        hide_index=True,
        key="rev_worst",
    )


def downloads(comparison: Comparison, dataset: Dataset) -> None:
    """The per-image table (CSV) and the study report (HTML)."""
    cols = st.columns(2)
    cols[0].download_button(
        "Per-image table (CSV)",
        comparison.per_image.to_csv(index=False),
        file_name=f"review_{dataset.name}.csv",
        key="rev_csv",
        on_click="ignore",
    )
    cols[1].download_button(
        "Study report (HTML)",
        build_report(
            comparison,
            dataset=dataset.name,
            data_note=DEMO_NOTE if dataset.name == DEMO_DATASET else "",
        ),
        file_name=f"sgus_report_{dataset.name}.html",
        key="rev_report",
        on_click="ignore",
    )


def rater_matrices(labels_store: LabelStore, dataset: Dataset, sources: list[Source]) -> None:
    """Mean IoU and Cohen's kappa between every pair of the chosen raters and models."""
    with st.expander("Rater-by-rater agreement"):
        people = [s for s in sources if s.kind in ("rater", "model")]
        chosen = st.multiselect("Sources", [s.label for s in people],
                                default=[s.label for s in people][:4], key="rev_matrix")  # fmt: skip
        if len(chosen) >= 2 and st.button("Compute the matrices", key="rev_matrix_go"):
            iou, kappa = rater_matrix(
                labels_store, dataset.id, [s for s in people if s.label in chosen]
            )
            c = st.columns(2)
            c[0].plotly_chart(matrix_heatmap(iou, "mean IoU"), key="rev_iou_matrix")
            c[1].plotly_chart(
                matrix_heatmap(kappa, "Cohen's kappa (de Vita)"), key="rev_kappa_matrix"
            )


def render() -> None:
    """The page: choices, headline figures, plots, worst cases, downloads, rater matrices."""
    labels_store = reader_store()
    st.title("Review")
    dataset = page_dataset()
    sources = require_sources(labels_store, dataset)
    comparison = compared_selection(labels_store, dataset, sources)
    summary_metrics(comparison.summary)
    agreement_figures(comparison)
    scale_agreement(comparison)
    worst_cases(comparison)
    downloads(comparison, dataset)
    rater_matrices(labels_store, dataset, sources)


render()
