"""Plotly figures of a comparison, shared by the Review page and the study report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from sgus_core import metrics
from sgus_core.review.comparisons import REFERENCE_LINES, Comparison

# Room for the tick labels and axis titles (narrow margins clipped "20" to "0").
_LAYOUT = dict(margin=dict(l=60, r=20, t=60, b=50), height=360)


_BIN = 0.025  # IoU histogram bin width (40 bins over 0-1)
_LINE_STYLES = (("#d62728", "dot"), ("#2ca02c", "dash"), ("#9467bd", "dashdot"))


def iou_histogram(comparison: Comparison) -> go.Figure:
    """Distribution of per-image IoU with the literature's reference lines (named in the legend:
    labels beside lines 0.01 apart ran into each other)."""
    table = comparison.per_image.dropna(subset=["iou"])
    # Plotly's bins are half-open, so an IoU of exactly 1 (an outline accepted as it was) fell
    # past the last one: counted in it, as numpy counts it.
    table = table.assign(iou=table["iou"].clip(upper=1 - _BIN / 100))
    fig = px.histogram(table, x="iou", range_x=[0, 1], hover_data=["image"],
                       labels={"iou": "IoU"})  # fmt: skip
    fig.update_traces(xbins=dict(start=0, end=1, size=_BIN), name="images", showlegend=False)
    for (label, value), (colour, dash) in zip(REFERENCE_LINES.items(), _LINE_STYLES, strict=False):
        fig.add_vline(x=value, line_dash=dash, line_color=colour, showlegend=True,
                      name=f"{label} {value}")  # fmt: skip
    counts, _ = np.histogram(table["iou"], bins=round(1 / _BIN), range=(0, 1))
    tallest = int(counts.max()) if counts.size else 0
    fig.update_layout(
        title=dict(
            text="IoU per image",
            subtitle=dict(text=f"{comparison.a.label} vs {comparison.b.label}"),
        ),
        yaxis_title="images",
        legend=dict(orientation="h", x=0, y=-0.25, yanchor="top", font=dict(size=10)),
        **(_LAYOUT | dict(height=420, margin=dict(l=60, r=20, t=70, b=110))),
    )
    if tallest < 10:  # whole images: no 0.2-image ticks when there are few
        fig.update_yaxes(dtick=1, range=[0, tallest + 0.5])
    return fig


def confusion_heatmap(comparison: Comparison, scale: str = "de Vita") -> go.Figure | None:
    """The confusion matrix of one grade scale (rows: source A, columns: source B): ``"de
    Vita"``, ``"OMERACT"`` or ``"OMERACT Doppler"`` (the images both sides graded on it); None when the
    comparison has no matrix (fewer than two images graded by both sides)."""
    key = {"OMERACT Doppler": "doppler_confusion", "OMERACT": "omeract_confusion"}.get(
        scale, "confusion"
    )
    if key not in comparison.summary:
        return None
    matrix = np.array(comparison.summary[key])
    fig = px.imshow(
        matrix,
        text_auto=True,
        x=[f"B {g}" for g in range(4)],
        y=[f"A {g}" for g in range(4)],
        color_continuous_scale="Blues",
        zmin=0,
    )
    fig.update_layout(title=f"{scale} grades", **_LAYOUT)
    return fig


def roc_figure(comparison: Comparison) -> go.Figure | None:
    """One-vs-rest ROC per grade from source B's probabilities (None without probabilities)."""
    table = comparison.per_image
    cols = [f"p{g}" for g in range(4)]
    if not all(c in table for c in cols):
        return None
    graded = table.dropna(subset=["grade_a", *cols])
    if len(graded) < 2:
        return None
    curves = metrics.roc_per_grade(graded["grade_a"].astype(int), graded[cols].to_numpy(float))
    fig = go.Figure()
    for c in curves:
        name = f"grade {c.grade}" + (f" (AUC {c.auc:.2f})" if c.auc is not None else " (absent)")
        fig.add_scatter(x=c.fpr, y=c.tpr, mode="lines", name=name)
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line_dash="dot", name="chance")
    fig.update_layout(title="ROC per grade (one vs rest)", xaxis_title="1 - specificity",
                      yaxis_title="sensitivity", **_LAYOUT)  # fmt: skip
    return fig


def bland_altman_figure(comparison: Comparison) -> go.Figure | None:
    """Bland-Altman of gland area in mm² (None when spacing or masks are missing)."""
    table = comparison.per_image.dropna(subset=["area_a_mm2", "area_b_mm2"])
    if len(table) < 3:
        return None
    ba = metrics.bland_altman(table["area_a_mm2"], table["area_b_mm2"])
    fig = px.scatter(x=ba.means, y=ba.diffs, hover_name=table["image"],
                     labels={"x": "mean area (mm²)", "y": "B - A (mm²)"})  # fmt: skip
    for value, text in (
        (ba.mean_diff, "bias"),
        (ba.loa_low, "-1.96 SD"),
        (ba.loa_high, "+1.96 SD"),
    ):
        fig.add_hline(
            y=value, line_dash="dash" if text != "bias" else "solid", annotation_text=text
        )
    fig.update_layout(title="Bland-Altman of gland area", **_LAYOUT)
    return fig


def matrix_heatmap(matrix: pd.DataFrame, title: str) -> go.Figure:
    """A rater-by-rater agreement matrix."""
    fig = px.imshow(
        matrix.round(2), text_auto=True, zmin=0, zmax=1, color_continuous_scale="Viridis"
    )
    fig.update_layout(title=title, **_LAYOUT)
    return fig
