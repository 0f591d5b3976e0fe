"""Analytic FLOP count of a Keras model's forward pass.

Counts 2 x multiply-adds (one multiply and one add each) of the layers that dominate the cost:
Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D and Dense. Biases, BatchNorm,
activations, pooling, additions, concatenations and resizing are ignored: together they are a
few per cent of a convolutional net's cost (and BatchNorm folds into the convolution at
inference). The figure is for batch 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from sgus_core.errors import ModelError


def _spatial(shape: Sequence[int | None]) -> int:
    """Product of the dimensions between batch and channels (1 for (N, C))."""
    dims = shape[1:-1]
    size = 1
    for d in dims:
        if d is None:
            raise ModelError(f"Cannot count FLOPs of a layer of unknown size {tuple(shape)}.")
        size *= int(d)
    return size


def _layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-adds of one call of ``layer`` at batch 1 (0 for layers that are not counted)."""
    if isinstance(layer, keras.Model):
        return sum(_layer_macs(inner) for inner in layer.layers)
    if not isinstance(
        layer,
        layers.Conv2D
        | layers.Conv2DTranspose
        | layers.DepthwiseConv2D
        | layers.SeparableConv2D
        | layers.Dense,
    ):
        return 0
    in_shape, out_shape = layer.input.shape, layer.output.shape
    c_in, c_out = int(in_shape[-1]), int(out_shape[-1])
    if isinstance(layer, layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        depthwise = kh * kw * c_in * layer.depth_multiplier * _spatial(out_shape)
        pointwise = c_in * layer.depth_multiplier * c_out * _spatial(out_shape)
        return depthwise + pointwise
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return kh * kw * c_out * _spatial(out_shape)
    if isinstance(layer, layers.Conv2DTranspose):
        # Every input pixel scatters a kh x kw x c_out patch.
        kh, kw = layer.kernel_size
        return kh * kw * c_in * c_out * _spatial(in_shape)
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        return kh * kw * (c_in // layer.groups) * c_out * _spatial(out_shape)
    return c_in * c_out * _spatial(out_shape)  # Dense, applied at every position


def model_gflops(model: keras.Model) -> float:
    """Return the GFLOPs (2 x multiply-adds, 1e9) of one forward pass of ``model`` at batch 1.

    Args:
        model: a built functional or sequential Keras model (nested models are counted).

    Returns:
        The analytic GFLOP count as a float (see the module docstring for what is counted).
    """
    return 2.0 * sum(_layer_macs(layer) for layer in model.layers) / 1e9
