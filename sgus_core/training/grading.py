"""Training a grader the small-data way: two designs compared on every run, the better kept.

``sgus train grade`` (``--arch auto``, the default) cross-validates both designs on the same
patient-grouped folds (:mod:`sgus_core.training.validation`):

* ``grader_features``: texture features inside the gland + logistic regression
  (:mod:`sgus_core.training.feature_grader`);
* ``grader_crop``: the CNN on the gland box with its mask channel, trained with the appearance
  augmentation (:mod:`sgus_core.training.augmentation`), early stopping on a validation part of
  each fold's training patients.

The design with the higher out-of-fold quadratic kappa is refitted on every frame (the CNN for
the median of the folds' best epochs) and saved; both designs' figures go on the card, beside two
baselines on the same folds: always the commonest grade (the *majority* baseline, in every
design's report) and, when some frames have a gland mask, the same texture features over the
whole field of view with the same logistic regression (the *frame-statistics* baseline: what a
grader that ignores the gland would do; :data:`FRAME_BASELINE`). With
:data:`~sgus_core.training.validation.SMALL_SET` frames or more (or ``folds=0``) one patient split
(train / validation / test) replaces the folds, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sgus_core.errors import ModelError
from sgus_core.training import feature_grader as fg
from sgus_core.training.data import Sample, data_hash, split_by_patient
from sgus_core.training.run import TrainResult, grade_probabilities, train_grader
from sgus_core.training.validation import (
    fold_count,
    grade_report,
    grouped_folds,
    majority_grade,
)
from sgus_core.vocabulary import GRADE_TARGETS, N_GRADES

CNN_DESIGN = "grader_crop"
AUTO = "auto"
COMPARED = (fg.DESIGN, CNN_DESIGN)
FRAME_BASELINE = (
    "the same texture features over the whole field of view (no gland mask), logistic regression"
)

StageProgress = Callable[[str, int, int, dict[str, float]], None]
"""``progress(stage, done, total, logs)``: a stage ("features", "grader_crop fold 2/5" ...)
and how far it is."""


@dataclass
class GradeRun:
    """What a grade training run produced.

    Attributes:
        design: the design kept.
        reports: per design compared, its out-of-fold (or test-split) figures.
        protocol: ``{"folds": k}`` or ``{"split": "by patient", ...}``.
        feature_model: the fitted feature grader when it was kept.
        cnn: the CNN's :class:`TrainResult` when it was kept.
        n_samples: graded frames used; data_hash: their hash; seconds: wall time.
        warning: set when the kept model does not beat the majority baseline or the
            frame-statistics baseline.
        frame_baseline: the frame-statistics baseline's figures on the same folds (or test
            split); None when no frame has a mask (it would be the feature grader itself).
    """

    design: str
    reports: dict[str, dict[str, Any]]
    protocol: dict[str, Any]
    n_samples: int
    data_hash: str
    target: str
    seed: int
    feature_model: fg.FeatureModel | None = None
    cnn: TrainResult | None = None
    warning: str | None = None
    seconds: float = 0.0
    best_epochs: list[int] = field(default_factory=list)
    frame_baseline: dict[str, Any] | None = None

    @property
    def report(self) -> dict[str, Any]:
        """The kept design's figures."""
        return self.reports[self.design]

    @property
    def beats_frame_baseline(self) -> bool | None:
        """Whether the kept design's kappa is above the frame-statistics baseline's (None
        without that baseline)."""
        if self.frame_baseline is None:
            return None
        return bool(self.report["kappa_quadratic"] > self.frame_baseline["kappa_quadratic"])


def _designs(design: str | None, from_model: Path | None) -> tuple[str, ...]:
    if from_model is not None:
        return (CNN_DESIGN,) if design in (None, AUTO) else (design,)
    if design in (None, AUTO):
        return COMPARED
    return (design,)


def baseline_warning(report: dict[str, Any], design: str) -> str | None:
    """The warning to print when a model does not beat always answering the commonest grade."""
    if report.get("beats_baseline", True):
        return None
    base = report.get("baseline", {})
    return (
        f"WARNING: the {design} grader does not beat the majority baseline (always the commonest "
        f"grade: accuracy {base.get('accuracy', 0):.2f}, kappa 0); its quadratic kappa is "
        f"{report.get('kappa_quadratic', 0):.2f} (95 % interval {report.get('kappa_ci95')}). "
        "Label more frames, or add masks, before trusting it."
    )


def frame_baseline_warning(run: GradeRun) -> str | None:
    """The warning to print when the kept grader does not beat reading the whole frame."""
    base = run.frame_baseline
    if base is None or run.beats_frame_baseline:
        return None
    return (
        f"WARNING: the {run.design} grader (kappa {run.report['kappa_quadratic']:.2f}) does not "
        f"beat the frame-statistics baseline (kappa {base['kappa_quadratic']:.2f}: the same "
        "features over the whole field of view): the gland masks add nothing here. Check the "
        "masks, or label more frames."
    )


def _cnn_options(options: dict[str, Any]) -> dict[str, Any]:
    keep = ("epochs", "seed", "input_shape", "model_options", "from_model", "patience")
    return {k: v for k, v in options.items() if k in keep and v is not None}


def train_grade(
    samples: Sequence[Sample],
    *,
    design: str | None = AUTO,
    target: str = "devita",
    folds: int | None = None,
    epochs: int = 40,
    seed: int = 0,
    from_model: Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    model_options: dict[str, Any] | None = None,
    progress: StageProgress | None = None,
) -> GradeRun:
    """Cross-validate the grader design(s) on ``samples`` and fit the better on all of them.

    Frames without a mask are measured over their whole field of view unless the caller filled
    in a predicted mask (``from_store`` does, with the default segmenter). ``progress`` may raise
    (the Train page's cancel button does) to stop the run.

    Raises:
        ModelError: too few graded frames or patients, an unknown design or target.
    """
    started = time.perf_counter()
    if target not in GRADE_TARGETS:
        raise ModelError(f"unknown grade target {target!r}; use one of {', '.join(GRADE_TARGETS)}")
    designs = _designs(design, from_model)
    graded = [s for s in samples if getattr(s, target) is not None]
    if len(graded) < 3:
        raise ModelError(
            f"need at least 3 frames with a {target} grade to train, got {len(graded)}"
        )
    y = np.array([int(getattr(s, target)) for s in graded], dtype=np.int64)
    if np.any((y < 0) | (y >= N_GRADES)):
        raise ModelError(f"{target} grades must be 0-3")
    groups = [s.patient for s in graded]
    k = fold_count(len(graded), len(set(groups)), folds)
    say = progress or (lambda *_: None)
    x = None
    if fg.DESIGN in designs:
        x = _features(graded, say)
    cnn_options = _cnn_options(
        {
            "epochs": epochs,
            "seed": seed,
            "input_shape": input_shape,
            "model_options": model_options,
            "from_model": from_model,
        }
    )
    run = GradeRun(
        design=designs[0],
        reports={},
        protocol={},
        n_samples=len(graded),
        data_hash=data_hash(graded),
        target=target,
        seed=seed,
    )
    if k >= 2:
        _cross_validate(run, graded, y, groups, x, designs, k, cnn_options, say)
    else:
        _single_split(run, graded, y, x, designs, cnn_options, say)
    warnings = (baseline_warning(run.report, run.design), frame_baseline_warning(run))
    run.warning = "\n".join(w for w in warnings if w) or None
    run.seconds = time.perf_counter() - started
    return run


def _features(graded: Sequence[Sample], say: StageProgress, stage: str = "features") -> np.ndarray:
    rows = []
    for i, s in enumerate(graded, start=1):
        rows.append(fg.sample_features([s])[0])
        say(stage, i, len(graded), {})
    return np.stack(rows)


def _frame_statistics(graded: Sequence[Sample], say: StageProgress) -> np.ndarray | None:
    """The frame-statistics baseline's features (None when no frame has a mask: then they are
    the feature grader's own)."""
    if all(s.mask is None for s in graded):
        return None
    return _features([replace(s, mask=None) for s in graded], say, "baseline features")


def _fold_logits(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    fit: np.ndarray,
    test: np.ndarray,
    seed: int,
) -> np.ndarray:
    """(len(test), 4) grade logits of ``x[test]`` from the feature model fitted on ``x[fit]``;
    when the fitted part has one grade only, that grade (logit 0, every other -inf)."""
    if len(np.unique(y[fit])) < 2:
        logits = np.full((len(test), N_GRADES), -np.inf)
        logits[:, y[fit][0]] = 0.0
        return logits
    model = fg.fit_feature_model(x[fit], y[fit], [groups[i] for i in fit], seed=seed)
    return fg.four_grade_logits(model, x[test])


def _cross_validate(run, graded, y, groups, x, designs, k, cnn_options, say) -> None:
    folds = grouped_folds(groups, k, labels=y.tolist(), seed=run.seed)
    fold_of = np.zeros(len(y), dtype=np.int64)
    for f, (_, te) in enumerate(folds):
        fold_of[te] = f
    majority = [majority_grade(y[tr]) for tr, _ in folds]
    logits: np.ndarray | None = None
    for design in designs:
        predicted = np.zeros_like(y)
        if design == fg.DESIGN:
            assert x is not None
            logits = np.full((len(y), N_GRADES), -np.inf)
            for f, (tr, te) in enumerate(folds):
                logits[te] = _fold_logits(x, y, groups, tr, te, run.seed)
                predicted[te] = np.argmax(logits[te], axis=1)
                if len(np.unique(y[tr])) > 1:  # a fold of one grade fitted nothing to report
                    say(f"{design} folds", f + 1, k, {})
        else:
            for f, (tr, te) in enumerate(folds):
                part = [graded[i] for i in tr]
                fit = train_grader(
                    part,
                    design=design,
                    target=run.target,
                    val_fraction=0.2,
                    test_fraction=0.0,
                    progress=_fold_progress(say, f"{design} fold {f + 1}/{k}"),
                    **cnn_options,
                )
                run.best_epochs.append(fit.best_epoch)
                probs = grade_probabilities(fit.model, [graded[i] for i in te], fit.architecture)
                predicted[te] = probs.argmax(axis=1)
        run.reports[design] = grade_report(y, predicted, groups, fold_of, majority, seed=run.seed)
    frame = _frame_statistics(graded, say)
    if frame is not None:
        predicted = np.zeros_like(y)
        for tr, te in folds:
            predicted[te] = np.argmax(_fold_logits(frame, y, groups, tr, te, run.seed), axis=1)
        run.frame_baseline = grade_report(y, predicted, groups, fold_of, majority, seed=run.seed)
    run.protocol = {"folds": k, "grouping": "by patient", "stratified_by": run.target}
    run.design = max(
        designs,
        key=lambda d: (run.reports[d]["kappa_quadratic"], run.reports[d]["accuracy"]),
    )
    if run.design == fg.DESIGN:
        assert x is not None and logits is not None
        temperature = fg.fit_temperature(logits, np.arange(N_GRADES), y)
        run.feature_model = fg.fit_feature_model(
            x, y, groups, seed=run.seed, temperature=temperature
        )
        return
    epochs = int(np.median(run.best_epochs)) if run.best_epochs else cnn_options.get("epochs", 40)
    options = cnn_options | {"epochs": max(1, epochs), "patience": max(1, epochs)}
    run.cnn = train_grader(
        graded,
        design=run.design,
        target=run.target,
        val_fraction=0.0,
        test_fraction=0.0,
        progress=_fold_progress(say, f"{run.design} on every frame"),
        **options,
    )


def _single_split(run, graded, y, x, designs, cnn_options, say) -> None:
    """Large sets: one patient split; the CNN keeps its own train/validation/test parts and the
    feature grader is fitted on train + validation and tested on the same test patients."""
    train, val, test = split_by_patient(graded, seed=run.seed)
    index = {id(s): i for i, s in enumerate(graded)}
    fit_idx = np.array([index[id(s)] for s in train + val])
    test_idx = np.array([index[id(s)] for s in test])
    groups = np.array([s.patient for s in graded])
    fold_of = np.zeros(len(test_idx), dtype=np.int64)
    majority = [majority_grade(y[fit_idx])]
    for design in designs:
        if design == fg.DESIGN:
            assert x is not None
            model = fg.fit_feature_model(x[fit_idx], y[fit_idx], groups[fit_idx].tolist())
            predicted = np.argmax(fg.four_grade_logits(model, x[test_idx]), axis=1)
            run.feature_model = model
        else:
            run.cnn = train_grader(
                graded,
                design=design,
                target=run.target,
                progress=_fold_progress(say, design),
                **cnn_options,
            )
            predicted = grade_probabilities(run.cnn.model, test, run.cnn.architecture).argmax(1)
        run.reports[design] = grade_report(
            y[test_idx], predicted, groups[test_idx].tolist(), fold_of, majority, seed=run.seed
        )
    frame = _frame_statistics(graded, say)
    if frame is not None:
        logits = _fold_logits(frame, y, groups.tolist(), fit_idx, test_idx, run.seed)
        predicted = np.argmax(logits, axis=1)
        run.frame_baseline = grade_report(
            y[test_idx], predicted, groups[test_idx].tolist(), fold_of, majority, seed=run.seed
        )
    run.protocol = {"split": "by patient", "train": len(train), "val": len(val), "test": len(test)}
    run.design = max(
        designs, key=lambda d: (run.reports[d]["kappa_quadratic"], run.reports[d]["accuracy"])
    )
    if run.design != fg.DESIGN:
        run.feature_model = None
    else:
        run.cnn = None


def _fold_progress(say: StageProgress, stage: str):
    def progress(done: int, total: int, logs: dict[str, float]) -> None:
        say(stage, done, total, logs)

    return progress
