"""FCN-8s (Long, Shelhamer and Darrell 2015) with a VGG-16-style encoder.

Departures from the paper, all deliberate: there is no ImageNet pre-training (frames are grey and
the gland task is small), so every convolution is followed by BatchNorm to let the net train from
scratch; and a ``width`` multiplier scales every channel count so the shipped net stays small.
"""

from __future__ import annotations

import keras
from keras import layers

from sgus_core.nets._layers import check_input_shape, conv_bn_relu, width_filters

DEFAULT_INPUT_SHAPE = (192, 256, 1)
# VGG-16: (channels, convolutions) per block, each block ends in a 2x2 max-pool.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
FC_CHANNELS = 4096


def fcn8s(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    *,
    width: float = 0.125,
    dropout: float = 0.5,
) -> keras.Model:
    """Build FCN-8s: VGG-16 encoder, fc6/fc7 as convolutions, skip fusion at pool4 and pool3.

    Args:
        input_shape: (H, W, C); H and W multiples of 32 (five 2x2 pools).
        width: multiplier of VGG-16's channel counts (1.0 is the paper's 64...512, 4096).
        dropout: dropout rate after fc6 and fc7, as in the paper.

    Returns:
        A Keras model mapping float32 (N, H, W, C) in 0..1 to a float32 (N, H, W, 1) gland
        probability (sigmoid).

    Raises:
        ValueError: if H or W is not a multiple of 32.
    """
    check_input_shape(input_shape, 32, "fcn8s")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    pools = []
    for b, (channels, n_convs) in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, n_convs + 1):
            x = conv_bn_relu(x, width_filters(channels, width), f"block{b}_conv{c}")
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
        pools.append(x)
    pool3, pool4, pool5 = pools[2], pools[3], pools[4]

    fc = width_filters(FC_CHANNELS, width)
    x = conv_bn_relu(pool5, fc, "fc6", kernel_size=7)
    x = layers.Dropout(dropout, name="fc6_dropout")(x)
    x = conv_bn_relu(x, fc, "fc7", kernel_size=1)
    x = layers.Dropout(dropout, name="fc7_dropout")(x)

    # One score channel: a single gland logit (the paper's per-class scores with two classes
    # are equivalent up to the difference of the two logits).
    score_fr = layers.Conv2D(1, 1, name="score_fr")(x)
    upscore2 = layers.Conv2DTranspose(
        1, 4, strides=2, padding="same", use_bias=False, name="upscore2"
    )(score_fr)
    score_pool4 = layers.Conv2D(1, 1, name="score_pool4")(pool4)
    fuse_pool4 = layers.Add(name="fuse_pool4")([upscore2, score_pool4])
    upscore_pool4 = layers.Conv2DTranspose(
        1, 4, strides=2, padding="same", use_bias=False, name="upscore_pool4"
    )(fuse_pool4)
    score_pool3 = layers.Conv2D(1, 1, name="score_pool3")(pool3)
    fuse_pool3 = layers.Add(name="fuse_pool3")([upscore_pool4, score_pool3])
    logits = layers.Conv2DTranspose(
        1, 16, strides=8, padding="same", use_bias=False, name="upscore8"
    )(fuse_pool3)
    outputs = layers.Activation("sigmoid", dtype="float32", name="gland_probability")(logits)
    return keras.Model(inputs, outputs, name="fcn8s")
