"""The Deep SGUS architecture family and the grade classifiers, behind one registry.

>>> model = build_model("unet", input_shape=(192, 256, 1), base_filters=8)

Segmenters map a grey field-of-view crop, float32 (N, H, W, 1) scaled 0..1, to a float32
(N, H, W, 1) gland probability; graders map (N, H, W, C) to float32 (N, 4) grade probabilities.
Every model is plain Keras 3 built from stock layers (no custom objects), with deterministic layer
names, so ``keras.saving.load_model`` reads the saved files without help.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from sgus_core.nets.densenet import fcdensenet56, fcdensenet67, fcdensenet103
from sgus_core.nets.fcn import fcn8s
from sgus_core.nets.flops import model_gflops
from sgus_core.nets.grader import CROP_INPUT_SHAPE, FRAME_INPUT_SHAPE, grader_crop, grader_frame
from sgus_core.nets.linknet import linknet
from sgus_core.nets.unet import unet

SEGMENT_INPUT_SHAPE = (192, 256, 1)

_SEGMENTERS: dict[str, Callable[..., keras.Model]] = {
    "fcn8s": fcn8s,
    "fcdensenet56": fcdensenet56,
    "fcdensenet67": fcdensenet67,
    "fcdensenet103": fcdensenet103,
    "unet": unet,
    "linknet": linknet,
}
_GRADERS: dict[str, Callable[..., keras.Model]] = {
    "grader_frame": grader_frame,
    "grader_crop": grader_crop,
}
SEGMENTER_NAMES: tuple[str, ...] = tuple(_SEGMENTERS)
GRADER_NAMES: tuple[str, ...] = tuple(_GRADERS)
MODEL_NAMES: tuple[str, ...] = SEGMENTER_NAMES + GRADER_NAMES
DEFAULT_INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    **{name: SEGMENT_INPUT_SHAPE for name in SEGMENTER_NAMES},
    "grader_frame": FRAME_INPUT_SHAPE,
    "grader_crop": CROP_INPUT_SHAPE,
}


def build_model(
    name: str, input_shape: tuple[int, int, int] | None = None, **kwargs: Any
) -> keras.Model:
    """Build the architecture ``name`` (one of :data:`MODEL_NAMES`), untrained.

    Args:
        name: registry name, e.g. "unet", "fcdensenet103", "grader_crop".
        input_shape: (H, W, C); default :data:`DEFAULT_INPUT_SHAPES` ``[name]``. Segmenters
            need H and W multiples of 32 (U-Net: of 2 ** depth), graders multiples of 16.
        **kwargs: the builder's own options (``width``, ``base_filters``, ``depth``,
            ``growth_rate`` ...); see each builder's docstring.

    Returns:
        An uncompiled Keras model. Segmenters: float32 (N, H, W, C) -> float32 (N, H, W, 1)
        sigmoid. Graders: float32 (N, H, W, C) -> float32 (N, 4) softmax.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names), or the input
            shape or an option does not suit the architecture.
    """
    builders = _SEGMENTERS | _GRADERS
    if name not in builders:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    shape = tuple(int(v) for v in (input_shape or DEFAULT_INPUT_SHAPES[name]))
    return builders[name](shape, **kwargs)


def model_task(name: str) -> str:
    """Return "segment" or "grade" for a registry name; ``ValueError`` if it is unknown."""
    if name in _SEGMENTERS:
        return "segment"
    if name in _GRADERS:
        return "grade"
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


__all__ = [
    "DEFAULT_INPUT_SHAPES",
    "GRADER_NAMES",
    "MODEL_NAMES",
    "SEGMENTER_NAMES",
    "build_model",
    "model_gflops",
    "model_task",
]
