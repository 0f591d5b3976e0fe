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


def iou_histogram(comparison: Comparison) -> go.Figure:
    """Distribution of per-image IoU with the literature's reference lines."""
    table = comparison.per_image.dropna(subset=["iou"])
    fig = px.histogram(table, x="iou", nbins=40, range_x=[0, 1], hover_data=["image"],
                       labels={"iou": "IoU"})  # fmt: skip
    for i, (label, value) in enumerate(REFERENCE_LINES.items()):
        # Labels stacked one under another, right of their line: close values do not overlap.
        fig.add_vline(x=value, line_dash="dot", line_color="#555")
        fig.add_annotation(x=value, y=0.97 - 0.09 * i, yref="paper", text=f"{label} {value}",
                           showarrow=False, xanchor="right", font=dict(size=10))  # fmt: skip
    fig.update_layout(
        title=f"IoU per image ({comparison.a.label} vs {comparison.b.label})",
        yaxis_title="images",
        **_LAYOUT,
    )
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
