"""Training a segmenter the small-data way (``sgus train segment`` on a clinic's outlines).

Below :data:`~sgus_core.training.validation.SMALL_SET` outlined frames the patients are dealt
into ``k`` folds; each fold's frames are segmented by a network trained (or fine-tuned) on the
others, with early stopping on a validation part of those training patients. The out-of-fold IoU
(with its patient-bootstrap interval) is what the card reports; the saved network is then trained
on every frame for the median of the folds' best epochs. With more frames, or ``folds=0``, one
patient split (train / validation / test) is used as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgus_core.errors import ModelError
from sgus_core.metrics import batch_iou_dice
from sgus_core.training.data import Sample
from sgus_core.training.run import TrainResult, predict_masks, train_segmenter
from sgus_core.training.validation import fold_count, grouped_folds, iou_report

StageProgress = Callable[[str, int, int, dict[str, float]], None]


@dataclass
class SegmentRun:
    """The network trained on every frame, and the figures that judge it."""

    result: TrainResult
    report: dict[str, Any]
    protocol: dict[str, Any]
    best_epochs: list[int]


def _stage(say: StageProgress, stage: str):
    return lambda done, total, logs: say(stage, done, total, logs)


def train_segment(
    samples: Sequence[Sample],
    *,
    folds: int | None = None,
    progress: StageProgress | None = None,
    **options: Any,
) -> SegmentRun:
    """Cross-validate and train a segmenter on the masked samples.

    ``options`` go to :func:`~sgus_core.training.run.train_segmenter` (``arch``, ``epochs``,
    ``from_model``, ``seed`` ...). ``progress(stage, done, total, logs)`` may raise to stop.

    Raises:
        ModelError: fewer than 3 masked frames, or too few patients for the folds.
    """
    masked = [s for s in samples if s.mask is not None]
    if len(masked) < 3:
        raise ModelError(f"need at least 3 frames with a gland mask to train, got {len(masked)}")
    say = progress or (lambda *_: None)
    groups = [s.patient for s in masked]
    k = fold_count(len(masked), len(set(groups)), folds)
    if k < 2:
        few = len(set(groups)) < 3  # no test patient to spare: validation only, said on the card
        fractions: dict[str, Any] = {"val_fraction": 0.3, "test_fraction": 0.0} if few else {}
        result = train_segmenter(masked, progress=_stage(say, "training"), **fractions, **options)
        split = {
            "split": "by patient" + (" (too few patients for a test part)" if few else ""),
            "train": result.n_train,
            "val": result.n_val,
            "test": result.n_test,
        }
        return SegmentRun(result, dict(result.test_metrics), split, [result.best_epoch])
    seed = int(options.get("seed", 0))
    ious = np.zeros(len(masked))
    best_epochs = []
    for f, (tr, te) in enumerate(grouped_folds(groups, k, seed=seed)):
        fit = train_segmenter(
            [masked[i] for i in tr],
            val_fraction=0.2,
            test_fraction=0.0,
            progress=_stage(say, f"fold {f + 1}/{k}"),
            **options,
        )
        best_epochs.append(fit.best_epoch)
        held = [masked[i] for i in te]
        for i, s, predicted in zip(te, held, _predict(fit, held), strict=True):
            ious[i] = float(batch_iou_dice(np.asarray(s.mask, dtype=bool), predicted)[0])
    epochs = max(1, int(np.median(best_epochs)))
    final = options | {"epochs": epochs, "patience": epochs}
    if options.get("from_model") is not None:
        final["freeze_encoder_epochs"] = min(
            epochs - 1, options.get("freeze_encoder_epochs") or epochs // 4
        )
    result = train_segmenter(
        masked,
        val_fraction=0.0,
        test_fraction=0.0,
        progress=_stage(say, "on every frame"),
        **final,
    )
    report = iou_report(ious.tolist(), groups, seed=seed)
    report["float16_delta"] = result.test_metrics.get("float16_delta", 0.0)
    protocol = {"folds": k, "grouping": "by patient", "best_epochs": best_epochs}
    return SegmentRun(result, report, protocol, best_epochs)


def _predict(fit: TrainResult, samples: Sequence[Sample]) -> list[np.ndarray]:
    """Masks of a just-trained network for FOV crops (prompt channels zero)."""
    return predict_masks(fit.model, [s.image for s in samples])


def save_segment_run(run: SegmentRun, models_dir: Path, name: str, card_extra: dict[str, Any]):
    """Save the network with its card: ``test_metrics`` are the out-of-fold figures and
    ``cross_validation`` the protocol. Returns (weights_path, card_path)."""
    import json

    from sgus_core.training.cards import save_model

    weights, card_path = save_model(run.result, models_dir, name, card_extra=card_extra)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if "folds" in run.protocol:
        card["test_metrics"] = run.report
        card["cross_validation"] = run.protocol | {"report": run.report}
        card["training_data"]["split"] = (
            f"{run.protocol['folds']}-fold cross-validation by patient; trained on every frame"
        )
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    return weights, card_path
