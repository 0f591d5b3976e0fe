"""FC-DenseNet / "Tiramisu" (Jégou, Drozdzal, Vazquez, Romero and Bengio 2017).

Follows the paper and its reference code: a 3x3 stem of 48 channels; dense blocks of
BN-ReLU-Conv3x3-Dropout(0.2) layers, each adding ``growth_rate`` channels; transition down =
BN-ReLU-Conv1x1-Dropout + 2x2 max-pool; transition up = 3x3 stride-2 transposed convolution of
only the *new* feature maps of the block below, concatenated with the skip connection. On the up
path a dense block passes on only its new maps, except the last one, whose whole stack feeds the
1x1 classifier. Batch normalisation keeps its running statistics with momentum 0.9 (Lasagne's
alpha 0.1 in the reference code), not Keras's 0.99: with a few hundred small batches the slower
average lags the weights so far that validation IoU collapses while training IoU climbs.

| model          | layers per dense block (down ... bottleneck ... up) | growth |
|----------------|-----------------------------------------------------|--------|
| FC-DenseNet56  | 4 everywhere                                        | 12     |
| FC-DenseNet67  | 5 everywhere                                        | 16     |
| FC-DenseNet103 | 4, 5, 7, 10, 12 / 15 / 12, 10, 7, 5, 4              | 16     |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers

from sgus_core.nets._layers import check_input_shape, sigmoid_head

DEFAULT_INPUT_SHAPE = (192, 256, 1)
STEM_FILTERS = 48
DROPOUT = 0.2
BN_MOMENTUM = 0.9


def _bn_relu_conv(
    x: keras.KerasTensor, filters: int, kernel_size: int, dropout: float, name: str
) -> keras.KerasTensor:
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(
        filters, kernel_size, padding="same", kernel_initializer="he_uniform", name=f"{name}_conv"
    )(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def _dense_block(
    x: keras.KerasTensor, n_layers: int, growth_rate: int, dropout: float, name: str
) -> tuple[keras.KerasTensor, list[keras.KerasTensor]]:
    """Return (stack with the new maps appended, list of the new maps)."""
    new_maps: list[keras.KerasTensor] = []
    for i in range(1, n_layers + 1):
        m = _bn_relu_conv(x, growth_rate, 3, dropout, f"{name}_layer{i}")
        new_maps.append(m)
        x = layers.Concatenate(name=f"{name}_concat{i}")([x, m])
    return x, new_maps


def fc_densenet(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    *,
    down_layers: Sequence[int] = (4, 5, 7, 10, 12),
    bottleneck_layers: int = 15,
    growth_rate: int = 16,
    stem_filters: int = STEM_FILTERS,
    dropout: float = DROPOUT,
    name: str = "fcdensenet103",
) -> keras.Model:
    """Build an FC-DenseNet with ``len(down_layers)`` pooling levels and a mirrored up path.

    Args:
        input_shape: (H, W, C); H and W multiples of ``2 ** len(down_layers)``.
        down_layers: layers per dense block on the way down (mirrored on the way up).
        bottleneck_layers: layers of the dense block at the lowest resolution.
        growth_rate: channels each dense layer adds.
        stem_filters: channels of the first 3x3 convolution.
        dropout: dropout after every convolution in the blocks (0 disables it).
        name: the model's name.

    Returns:
        A Keras model mapping float32 (N, H, W, C) in 0..1 to a float32 (N, H, W, 1) gland
        probability (sigmoid).

    Raises:
        ValueError: if H or W is not a multiple of ``2 ** len(down_layers)``.
    """
    n_pool = len(down_layers)
    check_input_shape(input_shape, 2**n_pool, name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(
        stem_filters, 3, padding="same", kernel_initializer="he_uniform", name="stem_conv"
    )(inputs)
    n_filters = stem_filters
    skips: list[keras.KerasTensor] = []
    for level, n_layers in enumerate(down_layers, start=1):
        x, _ = _dense_block(x, n_layers, growth_rate, dropout, f"down{level}")
        n_filters += n_layers * growth_rate
        skips.append(x)
        x = _bn_relu_conv(x, n_filters, 1, dropout, f"td{level}")
        x = layers.MaxPooling2D(2, name=f"td{level}_pool")(x)

    x, new_maps = _dense_block(x, bottleneck_layers, growth_rate, dropout, "bottleneck")
    up_layers = list(reversed(down_layers))
    previous_layers = bottleneck_layers
    for level, n_layers in enumerate(up_layers, start=1):
        block = (
            new_maps[0]
            if len(new_maps) == 1
            else layers.Concatenate(name=f"tu{level}_gather")(new_maps)
        )
        up = layers.Conv2DTranspose(
            previous_layers * growth_rate,
            3,
            strides=2,
            padding="same",
            kernel_initializer="he_uniform",
            name=f"tu{level}_conv",
        )(block)
        x = layers.Concatenate(name=f"tu{level}_concat")([up, skips[n_pool - level]])
        x, new_maps = _dense_block(x, n_layers, growth_rate, dropout, f"up{level}")
        previous_layers = n_layers
    outputs = sigmoid_head(x)
    return keras.Model(inputs, outputs, name=name)


def fcdensenet56(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, **kwargs: Any
) -> keras.Model:
    """FC-DenseNet56: 4 layers per dense block, growth rate 12 (see :func:`fc_densenet`)."""
    options: dict[str, Any] = {
        "down_layers": (4,) * 5,
        "bottleneck_layers": 4,
        "growth_rate": 12,
    } | kwargs
    return fc_densenet(input_shape, name="fcdensenet56", **options)


def fcdensenet67(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, **kwargs: Any
) -> keras.Model:
    """FC-DenseNet67: 5 layers per dense block, growth rate 16 (see :func:`fc_densenet`)."""
    options: dict[str, Any] = {
        "down_layers": (5,) * 5,
        "bottleneck_layers": 5,
        "growth_rate": 16,
    } | kwargs
    return fc_densenet(input_shape, name="fcdensenet67", **options)


def fcdensenet103(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, **kwargs: Any
) -> keras.Model:
    """FC-DenseNet103: blocks of 4, 5, 7, 10, 12 / 15 / 12, 10, 7, 5, 4 layers, growth 16."""
    options: dict[str, Any] = {
        "down_layers": (4, 5, 7, 10, 12),
        "bottleneck_layers": 15,
        "growth_rate": 16,
    } | kwargs
    return fc_densenet(input_shape, name="fcdensenet103", **options)
