"""Grade classifiers: per-frame softmax over the four grades of de Vita (or OMERACT) 0-3.

Two designs, to be compared on the same split:

* ``grader_frame`` sees the whole field of view, resized (default 192x256, one grey channel). It
  needs no mask at all, neither in training nor at inference, but the gland is only ~10-20 % of
  what it sees.
* ``grader_crop`` sees the gland's bounding box (padded), resized to a flat 96x256 window that
  matches the gland's ~3.4:1 lens shape, with the gland mask as a second channel so that the net
  knows which pixels are parenchyma. The box comes from the rater's mask when a frame has one and
  from a segmentation model otherwise (see ``sgus_core.inference.processing.gland_crop``).

Both share one backbone: stages of two Conv-BN-ReLU and a 2x2 max-pool, then global average *and*
global max pooling concatenated (hypoechoic foci are local: max pooling keeps a few strong
responses from being averaged away), dropout, and a dense softmax kept in float32.
Class imbalance (grade 1 is rare) is handled in training by class-weighted cross-entropy, not
here.
"""

from __future__ import annotations

import keras
from keras import layers

from sgus_core.nets._layers import check_input_shape, conv_bn_relu

N_GRADES = 4
FRAME_INPUT_SHAPE = (192, 256, 1)
CROP_INPUT_SHAPE = (96, 256, 2)
STAGE_MULTIPLIERS = (1, 2, 4, 8, 8)


def _grader(
    input_shape: tuple[int, int, int], width: int, dropout: float, n_classes: int, name: str
) -> keras.Model:
    check_input_shape(input_shape, 2 ** (len(STAGE_MULTIPLIERS) - 1), name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for s, mult in enumerate(STAGE_MULTIPLIERS, start=1):
        x = conv_bn_relu(x, width * mult, f"stage{s}_a")
        x = conv_bn_relu(x, width * mult, f"stage{s}_b")
        if s < len(STAGE_MULTIPLIERS):
            x = layers.MaxPooling2D(2, name=f"stage{s}_pool")(x)
    pooled = layers.Concatenate(name="pool_concat")(
        [
            layers.GlobalAveragePooling2D(name="avg_pool")(x),
            layers.GlobalMaxPooling2D(name="max_pool")(x),
        ]
    )
    pooled = layers.Dropout(dropout, name="head_dropout")(pooled)
    logits = layers.Dense(n_classes, name="grade_logits")(pooled)
    outputs = layers.Activation("softmax", dtype="float32", name="grade_probabilities")(logits)
    return keras.Model(inputs, outputs, name=name)


def grader_frame(
    input_shape: tuple[int, int, int] = FRAME_INPUT_SHAPE,
    *,
    width: int = 12,
    dropout: float = 0.3,
    n_classes: int = N_GRADES,
) -> keras.Model:
    """Build the whole-field-of-view grade classifier.

    Args:
        input_shape: (H, W, C); H and W multiples of 16. C is 1 (grey frame scaled 0..1).
        width: channels of the first stage (later stages have 2, 4, 8, 8 times as many).
        dropout: dropout before the dense layer.
        n_classes: number of grades (4 for de Vita or OMERACT 0-3).

    Returns:
        A Keras model mapping float32 (N, H, W, C) to float32 (N, n_classes) softmax
        probabilities (each row sums to 1).

    Raises:
        ValueError: if H or W is not a multiple of 16.
    """
    return _grader(input_shape, width, dropout, n_classes, "grader_frame")


def grader_crop(
    input_shape: tuple[int, int, int] = CROP_INPUT_SHAPE,
    *,
    width: int = 12,
    dropout: float = 0.3,
    n_classes: int = N_GRADES,
) -> keras.Model:
    """Build the gland-crop grade classifier.

    Args:
        input_shape: (H, W, C); H and W multiples of 16. Channel 0 is the grey crop scaled 0..1,
            channel 1 (when C == 2) the gland mask of the crop (0 or 1).
        width: channels of the first stage (later stages have 2, 4, 8, 8 times as many).
        dropout: dropout before the dense layer.
        n_classes: number of grades (4 for de Vita or OMERACT 0-3).

    Returns:
        A Keras model mapping float32 (N, H, W, C) to float32 (N, n_classes) softmax
        probabilities (each row sums to 1).

    Raises:
        ValueError: if H or W is not a multiple of 16.
    """
    return _grader(input_shape, width, dropout, n_classes, "grader_crop")
