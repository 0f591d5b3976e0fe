"""LinkNet (Chaurasia and Culurciello 2017) with a ResNet-18-style encoder.

Encoder: 7x7 stride-2 stem, 3x3 stride-2 max-pool, four stages of two basic residual blocks
(stride 1, 2, 2, 2 as in ResNet-18, so the net down-samples by 32). Decoder blocks as in the
paper: 1x1 conv to m/4, 3x3 stride-2 transposed conv, 1x1 conv to n, each with BN-ReLU; each
decoder's output is *added* to the encoder features of its resolution. Because ResNet-18's first
stage does not down-sample, one more decoder block brings the /4 features to /2, where they are
added to the stem's output, and the paper's final block (3x3 transposed conv, 3x3 conv, 1x1
classifier) brings them to full resolution. ``width`` scales every channel count.
"""

from __future__ import annotations

import keras
from keras import layers

from sgus_core.nets._layers import check_input_shape, conv_bn_relu, sigmoid_head, width_filters

DEFAULT_INPUT_SHAPE = (192, 256, 1)
RESNET18_STAGES = (64, 128, 256, 512)


def _basic_block(x: keras.KerasTensor, filters: int, strides: int, name: str) -> keras.KerasTensor:
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_bn_relu(
            x, filters, f"{name}_proj", kernel_size=1, strides=strides, relu=False
        )
    y = conv_bn_relu(x, filters, f"{name}_a", strides=strides)
    y = conv_bn_relu(y, filters, f"{name}_b", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _decoder_block(x: keras.KerasTensor, filters_out: int, name: str) -> keras.KerasTensor:
    mid = max(4, x.shape[-1] // 4)
    x = conv_bn_relu(x, mid, f"{name}_reduce", kernel_size=1)
    x = layers.Conv2DTranspose(
        mid, 3, strides=2, padding="same", use_bias=False, name=f"{name}_up_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_up_bn")(x)
    x = layers.Activation("relu", name=f"{name}_up_relu")(x)
    return conv_bn_relu(x, filters_out, f"{name}_expand", kernel_size=1)


def linknet(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    *,
    width: float = 0.25,
) -> keras.Model:
    """Build LinkNet with a ResNet-18-style encoder.

    Args:
        input_shape: (H, W, C); H and W multiples of 32.
        width: multiplier of ResNet-18's channels (1.0 is 64, 128, 256, 512).

    Returns:
        A Keras model mapping float32 (N, H, W, C) in 0..1 to a float32 (N, H, W, 1) gland
        probability (sigmoid).

    Raises:
        ValueError: if H or W is not a multiple of 32.
    """
    check_input_shape(input_shape, 32, "linknet")
    stage_filters = [width_filters(f, width) for f in RESNET18_STAGES]
    inputs = keras.Input(shape=input_shape, name="image")
    stem = conv_bn_relu(inputs, stage_filters[0], "stem", kernel_size=7, strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(stem)
    encoders = []
    for s, filters in enumerate(stage_filters, start=1):
        x = _basic_block(x, filters, 1 if s == 1 else 2, f"enc{s}_block1")
        x = _basic_block(x, filters, 1, f"enc{s}_block2")
        encoders.append(x)

    # Decoder: dec4 takes enc4 (/32) to /16 and adds enc3, ... dec1 takes /4 to /2 and adds the stem.
    targets = [stem, *encoders[:-1]]
    x = encoders[-1]
    for level in range(len(encoders), 0, -1):
        skip = targets[level - 1]
        x = _decoder_block(x, skip.shape[-1], f"dec{level}")
        x = layers.Add(name=f"dec{level}_add")([x, skip])

    final = width_filters(32, width * 2)
    x = layers.Conv2DTranspose(
        final, 3, strides=2, padding="same", use_bias=False, name="final_up_conv"
    )(x)
    x = layers.BatchNormalization(name="final_up_bn")(x)
    x = layers.Activation("relu", name="final_up_relu")(x)
    x = conv_bn_relu(x, final, "final")
    outputs = sigmoid_head(x)
    return keras.Model(inputs, outputs, name="linknet")
