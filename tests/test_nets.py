"""Shape contracts, registry errors and FLOP counts of the architecture family."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sgus_core.nets import (
    GRADER_NAMES,
    MODEL_NAMES,
    SEGMENTER_NAMES,
    build_model,
    model_gflops,
    model_task,
)

TINY = (64, 64, 1)
# Slimmed options so every model builds and runs in well under a second on a tiny input.
TINY_OPTIONS = {
    "fcn8s": {"width": 0.0625},
    "fcdensenet56": {"growth_rate": 4, "stem_filters": 8},
    "fcdensenet67": {"growth_rate": 4, "stem_filters": 8},
    "fcdensenet103": {"growth_rate": 2, "stem_filters": 8},
    "unet": {"base_filters": 4, "depth": 3},
    "linknet": {"width": 0.125},
    "grader_frame": {"width": 4},
    "grader_crop": {"width": 4},
}


def test_registry_covers_every_family():
    """The registry lists the four Deep SGUS families, the three Tiramisu depths and two graders."""
    assert set(MODEL_NAMES) == set(TINY_OPTIONS)
    assert set(SEGMENTER_NAMES) | set(GRADER_NAMES) == set(MODEL_NAMES)


@pytest.mark.parametrize("name", SEGMENTER_NAMES)
def test_segmenter_output_matches_input_size(name):
    """Every segmenter maps a batch of (64, 64, 1) frames to float32 (64, 64, 1) probabilities."""
    model = build_model(name, input_shape=TINY, **TINY_OPTIONS[name])
    x = np.random.default_rng(0).random((2, *TINY), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 64, 64, 1)
    assert y.dtype == np.float32
    assert np.all((y >= 0) & (y <= 1))


@pytest.mark.parametrize("name", GRADER_NAMES)
def test_grader_probabilities_sum_to_one(name):
    """Every grader gives four grade probabilities per frame that sum to 1."""
    channels = 2 if name == "grader_crop" else 1
    model = build_model(name, input_shape=(32, 64, channels), **TINY_OPTIONS[name])
    x = np.random.default_rng(1).random((2, 32, 64, channels), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 4)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_name_lists_the_choices():
    """An unknown model name raises ValueError naming every valid choice."""
    with pytest.raises(ValueError) as info:
        build_model("resnet9000")
    for name in MODEL_NAMES:
        assert name in str(info.value)


def test_input_not_multiple_of_32_is_refused():
    """A segmenter refuses a height that its pooling cannot halve five times."""
    with pytest.raises(ValueError, match="multiples of 32"):
        build_model("fcn8s", input_shape=(50, 64, 1), width=0.0625)


def test_layer_names_are_the_same_on_every_build():
    """Building a model twice gives the same layer names (no global counters leak in)."""
    first = [layer.name for layer in build_model("linknet", TINY, width=0.125).layers]
    second = [layer.name for layer in build_model("linknet", TINY, width=0.125).layers]
    assert first == second


def test_output_stays_float32_under_mixed_precision():
    """Under a mixed_float16 policy the gland probability is still float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("unet", TINY, base_filters=4, depth=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.output.dtype == "float32"


def test_gflops_of_a_hand_counted_net():
    """model_gflops counts 2 x multiply-adds of convolutions, transposed convolutions and dense layers."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 * 3*3*1*4 = 2304 MACs
    x = keras.layers.Conv2D(2, 1, strides=2)(x)  # 4*4 * 1*1*4*2 = 128 MACs
    x = keras.layers.Conv2DTranspose(3, 2, strides=2)(x)  # 4*4 * 2*2*2*3 = 384 MACs
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 8*8 * 3*3*3 = 1728 MACs
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)  # 192*5 = 960 MACs
    model = keras.Model(inputs, outputs)
    assert model_gflops(model) == pytest.approx(2 * (2304 + 128 + 384 + 1728 + 960) / 1e9)


def test_model_task_tells_segmenters_from_graders():
    """model_task names the task of a registry entry."""
    assert model_task("unet") == "segment"
    assert model_task("grader_crop") == "grade"
