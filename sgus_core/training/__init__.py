"""Training and fine-tuning the segmenters and graders (``sgus train``).

* ``data``: :class:`Sample`, patient splits, data hashes;
* ``augmentation``: random geometry and appearance, the on-the-fly batches;
* ``synthetic``: frames rendered on the fly from the appearance families (zero-shot and prompted);
* ``losses``: BCE + Dice, IoU, class weights, kappa;
* ``run``: one training run for either task (``train_segmenter``, ``train_grader``, and
  ``train_segmenter_synthetic`` on rendered frames);
* ``cards``: saving a model with its model card;
* ``export``: the verified ONNX copy for the accelerated runtimes;
* ``from_store``: training on a dataset of the labels store.

Importing this package imports nothing heavy: the names below load their module (and Keras) on
first use, so the Train page and the job registry (``jobs``) start without TensorFlow. Inference
never imports training (``sgus_core.inference``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentConfig": "augmentation",
    "augment": "augmentation",
    "flip_horizontal": "augmentation",
    "rotate": "augmentation",
    "CARD_FIELDS": "cards",
    "save_model": "cards",
    "training_device": "cards",
    "Sample": "data",
    "data_hash": "data",
    "split_by_patient": "data",
    "class_weights": "losses",
    "DEFAULT_GRADER": "run",
    "DEFAULT_SEGMENTER": "run",
    "TrainResult": "run",
    "predict_masks": "run",
    "train_grader": "run",
    "train_segmenter": "run",
    "train_segmenter_synthetic": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sgus_core.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sgus_core.training.{_EXPORTS[name]}"), name)
