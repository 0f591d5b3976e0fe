"""Small building blocks shared by the architecture modules.

Every helper takes an explicit ``name`` prefix so that a model built twice has the same layer
names (Keras' automatic names depend on a global counter and change between builds).
"""

from __future__ import annotations

import keras
from keras import layers


def conv_bn_relu(
    x: keras.KerasTensor,
    filters: int,
    name: str,
    *,
    kernel_size: int | tuple[int, int] = 3,
    strides: int = 1,
    relu: bool = True,
) -> keras.KerasTensor:
    """Conv2D (no bias: BatchNorm supplies it) -> BatchNorm -> optional ReLU, all named ``name_*``."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def sigmoid_head(x: keras.KerasTensor, name: str = "gland_probability") -> keras.KerasTensor:
    """1x1 convolution to one logit, then a sigmoid kept in float32 under mixed precision."""
    x = layers.Conv2D(1, 1, padding="same", name="logits")(x)
    return layers.Activation("sigmoid", dtype="float32", name=name)(x)


def check_input_shape(input_shape: tuple[int, int, int], multiple: int, model: str) -> None:
    """Raise ``ValueError`` unless ``input_shape`` is (H, W, C) with H, W multiples of ``multiple``."""
    if len(input_shape) != 3 or any(int(v) <= 0 for v in input_shape):
        raise ValueError(
            f"{model}: input_shape must be (H, W, C) with positive sizes, got {input_shape}"
        )
    height, width, _ = input_shape
    if height % multiple or width % multiple:
        raise ValueError(
            f"{model}: height and width must be multiples of {multiple}, got {height}x{width}"
        )


def width_filters(base: int, width: float) -> int:
    """``base`` channels scaled by ``width``, at least 4 and a multiple of 4 (cheap on CPUs)."""
    return max(4, int(round(base * width / 4.0)) * 4)
