"""The self-contained HTML study report: figures embedded, methods, numbers, date, versions."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pandas as pd
import plotly.io as pio

from sgus_core import __version__
from sgus_core.review.comparisons import REFERENCE_KAPPAS, REFERENCE_LINES, Comparison
from sgus_core.review.figures import (
    bland_altman_figure,
    confusion_heatmap,
    iou_histogram,
    roc_figure,
)

METHODS = (
    "Masks were compared per image by the intersection over union (IoU = TP / (|A| + |B| - TP)), "
    "the Dice coefficient (2 IoU / (1 + IoU)) and the 95th percentile Hausdorff distance between "
    "outlines. De Vita grades (and OMERACT and OMERACT Doppler grades, each over the frames "
    "both sources gave one) were compared by accuracy, the confusion matrix and Cohen's kappa "
    "(unweighted, linear and quadratic weights) with 95 % percentile-bootstrap confidence "
    "intervals (300 resamples over images). Gland areas (mm², from the pixel spacing) were "
    "compared by Bland-Altman analysis (bias and 95 % limits of agreement, bias +- 1.96 SD) and the "
    "intraclass correlation ICC(2,1) (two-way random, absolute agreement, single rater; Shrout & "
    "Fleiss 1979) with its F-based interval. Where source B is a model with grade probabilities, "
    "one-vs-rest ROC curves and AUC were computed per grade. SGUS supports and does not make a "
    "diagnosis of Sjögren's syndrome."
)


SUMMARY_LABELS = {
    "n": "Images compared",
    "n_masks": "Images with both outlines",
    "iou_mean": "Mean IoU",
    "iou_median": "Median IoU",
    "dice_mean": "Mean Dice",
    "hd95_median": "Median HD95 (95th-percentile outline distance; mm where the frame has a "
    "pixel spacing, else px)",
    "n_graded": "Images with both de Vita grades",
    "grade_accuracy": "de Vita grade accuracy",
    "kappa_unweighted": "Cohen's kappa, unweighted",
    "kappa_linear": "Cohen's kappa, linear weights",
    "kappa_quadratic": "Cohen's kappa, quadratic weights",
    "bland_altman_mm2": "Bland-Altman of gland area (mm², B - A)",
    "icc_area": "ICC(2,1) of gland area",
    "auc_per_grade": "AUC per de Vita grade (0, 1, 2, 3)",
    "omeract_n": "Images with both OMERACT grades",
    "omeract_accuracy": "OMERACT grade accuracy",
    "omeract_kappa_unweighted": "Cohen's kappa of OMERACT, unweighted",
    "omeract_kappa_linear": "Cohen's kappa of OMERACT, linear weights",
    "omeract_kappa_quadratic": "Cohen's kappa of OMERACT, quadratic weights",
    "doppler_n": "Images with both OMERACT Doppler grades",
    "doppler_accuracy": "OMERACT Doppler grade accuracy",
    "doppler_kappa_unweighted": "Cohen's kappa of OMERACT Doppler, unweighted",
    "doppler_kappa_linear": "Cohen's kappa of OMERACT Doppler, linear weights",
    "doppler_kappa_quadratic": "Cohen's kappa of OMERACT Doppler, quadratic weights",
}
"""The plain-language name of each summary figure (the report never shows a raw key)."""
_PART_LABELS = {"bias": "bias", "low": "lower limit", "high": "upper limit", "sd": "SD"}


WORST_COLUMNS = {
    "image": "image",
    "path": "file",
    "iou": "IoU",
    "grade_a": "de Vita (A)",
    "grade_b": "de Vita (B)",
}


def _worst_table(worst: pd.DataFrame) -> str:
    """The lowest-IoU images as an HTML table with plain headings, IoU to three decimals."""
    table = worst[list(WORST_COLUMNS)].rename(columns=WORST_COLUMNS)
    table["IoU"] = table["IoU"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    for column in ("de Vita (A)", "de Vita (B)"):
        table[column] = table[column].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return str(table.to_html(index=False, escape=True))


def _number(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        if len(value) == 3 and all(isinstance(v, float) for v in value):
            return f"{value[0]:.3f} (95 % CI {value[1]:.3f} to {value[2]:.3f})"
        return ", ".join(_number(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{_PART_LABELS.get(k, k)} {_number(v)}" for k, v in value.items())
    return f"{value:.3f}" if isinstance(value, float) else str(value)


FEW_IMAGES = 20  # below this many images compared, the figures are rough (the page says so too)


def _few_note(n: int) -> str:
    if n >= FEW_IMAGES:
        return ""
    return (
        f"<p><b>Only {n} image{'s are' if n != 1 else ' is'} compared: these figures are rough; a "
        "kappa from so few may be 0 or 1 by chance (read its 95 % interval).</b></p>"
    )


def build_report(comparison: Comparison, *, dataset: str, data_note: str = "") -> str:
    """One HTML document (plotly.js inlined once) that opens offline on any machine."""
    figures = [
        f
        for f in (
            iou_histogram(comparison),
            confusion_heatmap(comparison),
            confusion_heatmap(comparison, "OMERACT"),
            confusion_heatmap(comparison, "OMERACT Doppler"),
            roc_figure(comparison),
            bland_altman_figure(comparison),
        )
        if f is not None
    ]
    parts = [
        pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, fig in enumerate(figures)
    ]
    rows = "".join(
        f"<tr><td>{html.escape(SUMMARY_LABELS.get(k, k.replace('_', ' ')))}</td>"
        f"<td>{html.escape(_number(v))}</td></tr>"
        for k, v in comparison.summary.items()
        if not k.endswith("confusion")
    )
    selection = " · ".join(
        f"{html.escape(k)} {html.escape(str(v))}" for k, v in comparison.selection.items()
    )
    refs = "".join(
        f"<li>{html.escape(k)}: {v}</li>"
        for k, v in {**REFERENCE_LINES, **REFERENCE_KAPPAS}.items()
    )
    worst = comparison.per_image.sort_values("iou").head(10)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>SGUS Studio study report: {html.escape(dataset)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head><body>
<h1>SGUS agreement report</h1>
<p><b>Dataset</b> {html.escape(dataset)} · <b>A</b> {html.escape(comparison.a.label)} ·
<b>B</b> {html.escape(comparison.b.label)} · <b>date</b> {now} · SGUS Studio {__version__}</p>
<p><b>Images</b> {selection or "all of the dataset"} ({comparison.summary.get("n", 0)} compared)</p>
<p>{html.escape(data_note)}</p>{_few_note(comparison.summary.get("n", 0))}
<h2>Methods</h2><p>{METHODS}</p>
<h2>Results</h2><table>{rows}</table>
<h3>Reference values from the literature</h3><ul>{refs}</ul>
{"".join(parts)}
<h3>Ten lowest-IoU images</h3>{_worst_table(worst)}
</body></html>"""
