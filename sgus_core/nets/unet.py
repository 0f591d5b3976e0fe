"""U-Net (Ronneberger, Fischer and Brox 2015) with BatchNorm and 'same' padding.

'Same' padding (the paper uses 'valid' and crops) keeps the output the size of the input, which
is what the gland masks need; BatchNorm lets the small net train quickly from scratch.
"""

from __future__ import annotations

import keras
from keras import layers

from sgus_core.nets._layers import check_input_shape, conv_bn_relu, sigmoid_head

DEFAULT_INPUT_SHAPE = (192, 256, 1)


def unet(
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    *,
    base_filters: int = 8,
    depth: int = 4,
    dropout: float = 0.1,
) -> keras.Model:
    """Build a U-Net: ``depth`` down-sampling levels, channels doubling per level.

    Args:
        input_shape: (H, W, C); H and W multiples of ``2 ** depth``.
        base_filters: channels of the first level (the paper uses 64).
        depth: number of 2x2 max-pools (the paper uses 4).
        dropout: dropout rate in the bottleneck.

    Returns:
        A Keras model mapping float32 (N, H, W, C) in 0..1 to a float32 (N, H, W, 1) gland
        probability (sigmoid).

    Raises:
        ValueError: if depth < 1, base_filters < 1, or H or W is not a multiple of ``2 ** depth``.
    """
    if depth < 1 or base_filters < 1:
        raise ValueError(f"unet: depth and base_filters must be >= 1, got {depth}, {base_filters}")
    check_input_shape(input_shape, 2**depth, "unet")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        filters = base_filters * 2**level
        x = conv_bn_relu(x, filters, f"enc{level + 1}_a")
        x = conv_bn_relu(x, filters, f"enc{level + 1}_b")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level + 1}_pool")(x)
    filters = base_filters * 2**depth
    x = conv_bn_relu(x, filters, "bottleneck_a")
    x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    x = conv_bn_relu(x, filters, "bottleneck_b")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", name=f"dec{level + 1}_up"
        )(x)
        x = layers.Concatenate(name=f"dec{level + 1}_concat")([x, skips[level]])
        x = conv_bn_relu(x, filters, f"dec{level + 1}_a")
        x = conv_bn_relu(x, filters, f"dec{level + 1}_b")
    outputs = sigmoid_head(x)
    return keras.Model(inputs, outputs, name="unet")
