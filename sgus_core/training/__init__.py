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

Importing this package imports Keras: inference never does (``sgus_core.inference``).
"""

from sgus_core.training.augmentation import AugmentConfig, augment, flip_horizontal, rotate
from sgus_core.training.cards import CARD_FIELDS, save_model, training_device
from sgus_core.training.data import Sample, data_hash, split_by_patient
from sgus_core.training.losses import class_weights
from sgus_core.training.run import (
    DEFAULT_GRADER,
    DEFAULT_SEGMENTER,
    TrainResult,
    predict_masks,
    train_grader,
    train_segmenter,
    train_segmenter_synthetic,
)

__all__ = [
    "CARD_FIELDS",
    "DEFAULT_GRADER",
    "DEFAULT_SEGMENTER",
    "AugmentConfig",
    "Sample",
    "TrainResult",
    "augment",
    "class_weights",
    "data_hash",
    "flip_horizontal",
    "predict_masks",
    "rotate",
    "save_model",
    "split_by_patient",
    "train_grader",
    "train_segmenter",
    "train_segmenter_synthetic",
    "training_device",
]
