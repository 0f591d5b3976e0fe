"""Comparisons of label sources (a model, a rater, a rater's round, the raters' consensus) over a
dataset. Feeds the Review page, the study report and ``sgus evaluate``'s figures alike.

Per-image mask agreement is computed once per pair of mask versions and cached, so an aggregate
over thousands of images is a vectorised pass over per-image numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from sgus_core import imaging, metrics
from sgus_core.store import ImageRecord, LabelStore
from sgus_core.study.visibility import shows_round_labels
from sgus_core.vocabulary import SOURCE_KINDS

KINDS = SOURCE_KINDS
# Literature reference lines (docs/SGUS.md).
REFERENCE_LINES = {
    "Deep SGUS inter-observer IoU": 0.76,
    "Deep SGUS intra-observer IoU": 0.84,
    "Deep SGUS FCN-DenseNet IoU": 0.85,
}
REFERENCE_KAPPAS = {
    "HarmonicSS intra-rater (de Vita)": 0.86,
    "HarmonicSS inter-rater (de Vita)": 0.75,
}
DOPPLER = "doppler"
"""The prefix of the OMERACT Doppler figures in a summary (``doppler_accuracy``, ...)."""
OMERACT = "omeract"
"""The prefix of the OMERACT (B-mode, 0-3) figures in a summary (``omeract_accuracy``, ...)."""


@dataclass(frozen=True)
class Source:
    """A label source: ``rater`` (name), ``model`` (name), ``round`` (rater in round), or
    ``consensus`` (pixel-majority masks and median grades of the human raters)."""

    kind: str
    name: str = ""
    round_id: int | None = None
    round_name: str = ""
    members: tuple[str, ...] = ()
    """The raters a consensus is made of (all the human raters with labels, when empty)."""

    @property
    def label(self) -> str:
        """How the source is shown: the rater and the round by name, a consensus with its
        members."""
        if self.kind == "consensus":
            return f"consensus of {', '.join(self.members)}" if self.members else "consensus"
        if self.kind == "round":
            return f"{self.name} in {self.round_name or f'round {self.round_id}'}"
        return f"{self.kind} {self.name}"

    def leaving_out(self, other: Source) -> Source:
        """This source compared with ``other``: a consensus leaves ``other``'s rater out (a
        rater is not compared with a consensus she is part of); any other source as it is."""
        if self.kind != "consensus" or other.kind not in ("rater", "round"):
            return self
        if other.name not in self.members:
            return self
        return replace(self, members=tuple(m for m in self.members if m != other.name))


@dataclass(frozen=True)
class Labels:
    """One source's labels of one image."""

    key: str  # identifies the mask (for the agreement cache)
    mask_png: bytes | None
    devita: int | None
    probabilities: tuple[float, ...] | None = None
    doppler: int | None = None
    """The OMERACT Doppler grade (raters on Doppler frames; models give none)."""
    omeract: int | None = None
    """The OMERACT (B-mode) grade 0-3 (raters; models give none)."""


def available_sources(store: LabelStore, dataset_id: int) -> list[Source]:
    """Every source with labels in the dataset: raters, models, raters' rounds, consensus."""
    sources: list[Source] = []
    for rater in store.list_raters():
        if store.latest_grades_for_dataset(
            dataset_id, rater.name
        ) or store.latest_masks_for_dataset(dataset_id, rater.name):
            sources.append(Source("rater", rater.name))
    sources += [Source("model", name) for name in store.models_with_predictions(dataset_id)]
    for rnd in store.list_rounds(dataset_id):
        sources += [
            Source("round", r, rnd.id, rnd.name)
            for r in rnd.raters
            if shows_round_labels(store, rnd, r)
        ]
    raters = tuple(s.name for s in sources if s.kind == "rater")
    if len(raters) >= 2:
        sources.append(Source("consensus", members=raters))
    return sources


def load_labels(store: LabelStore, dataset_id: int, source: Source) -> dict[int, Labels]:
    """``{image_id: Labels}`` of a source over a dataset."""
    if source.kind in ("rater", "round"):
        masks = store.latest_masks_for_dataset(dataset_id, source.name)
        grades = store.latest_grades_for_dataset(dataset_id, source.name)
        if source.kind == "round":
            masks = {
                i: m
                for i, m in _round_latest(store, dataset_id, source, "mask").items()
                if m is not None
            }
            grades = _round_latest(store, dataset_id, source, "grade")
        out = {}
        for image_id in set(masks) | set(grades):
            m, g = masks.get(image_id), grades.get(image_id)
            out[image_id] = Labels(
                key=f"m{m.id}" if m else "", mask_png=m.png if m else None,
                devita=g.devita if g else None, doppler=g.doppler if g else None,
                omeract=g.omeract if g else None,
            )  # fmt: skip
        return out
    if source.kind == "model":
        out = {}
        for image in store.list_images(dataset_id):
            p = store.latest_prediction(image.id, source.name)
            if p is not None:
                out[image.id] = Labels(f"p{p.id}", p.png, p.grade, p.grade_probabilities)
        return out
    if source.kind == "consensus":
        return _consensus(store, dataset_id, source.members)
    raise ValueError(f"Unknown source kind {source.kind!r}; use one of {KINDS}.")


def _round_latest(store: LabelStore, dataset_id: int, source: Source, what: str) -> dict[int, Any]:
    out: dict[int, Any] = {}
    if source.round_id is None:  # a round source without its round has no labels
        return out
    rnd = store.get_round(source.round_id)
    for image_id in rnd.image_ids if rnd else ():
        history = (
            store.mask_history(image_id, source.name)
            if what == "mask"
            else store.grade_history(image_id, source.name)
        )
        in_round = [h for h in history if h.round_id == source.round_id]
        if in_round:
            out[image_id] = in_round[-1]
    return out


def _consensus(
    store: LabelStore, dataset_id: int, members: tuple[str, ...] = ()
) -> dict[int, Labels]:
    raters = list(members) or [s.name for s in available_sources_raters(store, dataset_id)]
    per_rater = [load_labels(store, dataset_id, Source("rater", r)) for r in raters]
    out = {}
    for image_id in set().union(*[set(p) for p in per_rater]) if per_rater else ():
        labels = [p[image_id] for p in per_rater if image_id in p]
        masks = [imaging.decode_mask_png(x.mask_png) for x in labels if x.mask_png]
        png = imaging.encode_mask_png(metrics.consensus_mask(np.stack(masks))) if masks else None
        grade = _median_grade([x.devita for x in labels])
        doppler = _median_grade([x.doppler for x in labels])
        omeract = _median_grade([x.omeract for x in labels])
        key = "c" + "-".join(x.key for x in labels)
        out[image_id] = Labels(key, png, grade, doppler=doppler, omeract=omeract)
    return out


def _median_grade(grades: list[int | None]) -> int | None:
    """The raters' consensus grade of one image (``None`` when nobody gave one)."""
    given = [g for g in grades if g is not None]
    if not given:
        return None
    return int(metrics.consensus_grade(np.array([given], dtype=float))[0])


def most_labelled_rater(store: LabelStore, dataset_id: int, sources: list[Source]) -> int:
    """Index in ``sources`` of the rater with labels (an outline or a grade) on the most images:
    the natural reference (0 when no rater is among them)."""

    def labelled(source: Source) -> int:
        masks = store.latest_masks_for_dataset(dataset_id, source.name)
        return len(set(masks) | set(store.latest_grades_for_dataset(dataset_id, source.name)))

    raters = [(labelled(s), -i) for i, s in enumerate(sources) if s.kind == "rater"]
    return -max(raters)[1] if raters else 0


def available_sources_raters(store: LabelStore, dataset_id: int) -> list[Source]:
    """The human raters with labels in the dataset (the consensus is made of them)."""
    return [s for s in available_sources(store, dataset_id) if s.kind == "rater"]


@lru_cache(maxsize=200_000)
def _pair_figures(
    key_a: str, key_b: str, png_a: bytes, png_b: bytes, spacing: float | None
) -> tuple[float, float, float, int, int]:
    a, b = imaging.decode_mask_png(png_a), imaging.decode_mask_png(png_b)
    m = metrics.mask_agreement(a, b, spacing_mm=spacing)
    return m.iou, m.dice, m.hd95, m.area_a_px, m.area_b_px


@dataclass
class Comparison:
    """Source A against source B over a set of images."""

    a: Source
    b: Source
    per_image: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, str] = field(default_factory=dict)
    """The filters the images were chosen by (``{"gland": "parotid", ...}``), for the report."""


def compare(
    store: LabelStore,
    dataset_id: int,
    a: Source,
    b: Source,
    *,
    images: list[ImageRecord] | None = None,
) -> Comparison:
    """Per-image mask and grade agreement of two sources, and the aggregate figures. A
    consensus compared with a rater leaves that rater out of it."""
    a, b = a.leaving_out(b), b.leaving_out(a)
    images = images if images is not None else store.list_images(dataset_id)
    labels_a = load_labels(store, dataset_id, a)
    labels_b = load_labels(store, dataset_id, b)
    rows = []
    for image in images:
        la, lb = labels_a.get(image.id), labels_b.get(image.id)
        if la is None or lb is None:
            continue
        row: dict[str, Any] = {
            "image_id": image.id,
            "image": image.label,
            "path": image.path,
            "gland": image.gland,
            "side": image.side,
            "grade_a": la.devita,
            "grade_b": lb.devita,
            "doppler_a": la.doppler,
            "doppler_b": lb.doppler,
            "omeract_a": la.omeract,
            "omeract_b": lb.omeract,
            "iou": np.nan,
            "dice": np.nan,
            "hd95": np.nan,
            "area_a_mm2": np.nan,
            "area_b_mm2": np.nan,
        }
        if la.mask_png and lb.mask_png:
            iou, dice, hd95, area_a, area_b = _pair_figures(
                la.key, lb.key, la.mask_png, lb.mask_png, image.spacing_mm
            )
            mm2 = (image.spacing_mm or np.nan) ** 2
            row.update(
                iou=iou, dice=dice, hd95=hd95, area_a_mm2=area_a * mm2, area_b_mm2=area_b * mm2
            )
        for g, p in enumerate(lb.probabilities or ()):
            row[f"p{g}"] = p
        rows.append(row)
    table = pd.DataFrame(rows)
    return Comparison(a, b, table, summarize(table))


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """Aggregate figures of a per-image comparison table (vectorised; no mask decoding)."""
    if table.empty:
        return {"n": 0}
    iou = table["iou"].to_numpy(dtype=float)
    grades = table[["grade_a", "grade_b"]].to_numpy(dtype=float)
    graded = np.all(np.isfinite(grades), axis=1)
    ga, gb = grades[graded, 0], grades[graded, 1]
    out: dict[str, Any] = {
        "n": int(len(table)),
        "n_masks": int(np.isfinite(iou).sum()),
        "iou_mean": float(np.nanmean(iou)) if np.isfinite(iou).any() else None,
        "iou_median": float(np.nanmedian(iou)) if np.isfinite(iou).any() else None,
        "dice_mean": float(np.nanmean(table["dice"])) if np.isfinite(iou).any() else None,
        "n_graded": int(graded.sum()),
    }
    hd95 = table["hd95"].to_numpy(dtype=float) if "hd95" in table else np.array([np.nan])
    if np.isfinite(hd95).any():  # inf where one outline is empty: left out
        out["hd95_median"] = float(np.median(hd95[np.isfinite(hd95)]))
    if graded.sum() >= 2:
        out["grade_accuracy"] = metrics.accuracy(ga, gb)
        out["confusion"] = metrics.confusion(ga, gb).tolist()
        for w in (None, "linear", "quadratic"):
            k = metrics.cohen_kappa(ga, gb, weights=w, n_boot=300)
            out[f"kappa_{w or 'unweighted'}"] = [k.kappa, k.ci_low, k.ci_high]
    areas = table[["area_a_mm2", "area_b_mm2"]].to_numpy(dtype=float)
    if np.isfinite(areas).all(axis=1).sum() >= 3:
        ba = metrics.bland_altman(areas[:, 0], areas[:, 1])
        out["bland_altman_mm2"] = {
            "bias": ba.mean_diff,
            "loa": [ba.loa_low, ba.loa_high],
            "n": ba.n,
        }
        icc = metrics.icc_2_1(areas)
        out["icc_area"] = [icc.icc, icc.ci_low, icc.ci_high]
    out.update(_scale_figures(table, "omeract_a", "omeract_b", OMERACT))
    out.update(_scale_figures(table, "doppler_a", "doppler_b", DOPPLER))
    prob_cols = [f"p{g}" for g in range(4)]
    if all(c in table for c in prob_cols) and graded.sum() >= 2:
        probs = table.loc[graded, prob_cols].to_numpy(dtype=float)
        if np.isfinite(probs).all():
            out["auc_per_grade"] = [c.auc for c in metrics.roc_per_grade(ga.astype(int), probs)]
    return out


def _scale_figures(table: pd.DataFrame, col_a: str, col_b: str, prefix: str) -> dict[str, Any]:
    """Agreement on one more grade scale, over the images both sides graded on it:
    ``{prefix}_n``, and with two or more such images ``{prefix}_accuracy``,
    ``{prefix}_confusion`` and ``{prefix}_kappa_{unweighted,linear,quadratic}``. Nothing when
    the table has no such column or no image graded by both (a scale only some frames have)."""
    if col_a not in table or col_b not in table:
        return {}
    grades = table[[col_a, col_b]].to_numpy(dtype=float)
    both = np.all(np.isfinite(grades), axis=1)
    if not both.any():
        return {}
    ga, gb = grades[both, 0], grades[both, 1]
    out: dict[str, Any] = {f"{prefix}_n": int(both.sum())}
    if both.sum() >= 2:
        out[f"{prefix}_accuracy"] = metrics.accuracy(ga, gb)
        out[f"{prefix}_confusion"] = metrics.confusion(ga, gb).tolist()
        for w in (None, "linear", "quadratic"):
            k = metrics.cohen_kappa(ga, gb, weights=w, n_boot=300)
            out[f"{prefix}_kappa_{w or 'unweighted'}"] = [k.kappa, k.ci_low, k.ci_high]
    return out


def restrict(comparison: Comparison, keep: pd.Series) -> Comparison:
    """The comparison over a subset of its rows (a boolean Series), figures recomputed."""
    table = comparison.per_image[keep].reset_index(drop=True)
    return Comparison(comparison.a, comparison.b, table, summarize(table))


def metadata_values(images: list[ImageRecord]) -> set[str]:
    """``"column=value"`` strings of the metadata columns imported with the images (centre...)."""
    return {f"{k}={v}" for image in images for k, v in image.meta.get("csv", {}).items()}


def rater_matrix(
    store: LabelStore, dataset_id: int, sources: list[Source]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise mean IoU and unweighted Cohen's kappa between sources (symmetric matrices)."""
    names = [s.label for s in sources]
    iou = pd.DataFrame(np.eye(len(sources)), index=names, columns=names)
    kappa = iou.copy()
    for i, a in enumerate(sources):
        for j in range(i + 1, len(sources)):
            s = compare(store, dataset_id, a, sources[j]).summary
            iou.iloc[i, j] = iou.iloc[j, i] = s.get("iou_mean") or np.nan
            k = s.get("kappa_unweighted")
            kappa.iloc[i, j] = kappa.iloc[j, i] = k[0] if k else np.nan
    return iou, kappa
