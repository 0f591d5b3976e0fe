"""Inference: running a segmenter and a grader on frames, on any runtime, without training code.

* ``registry``: which models there are, cards, defaults, loading by name;
* ``runtimes``: Keras, ONNX Runtime, OpenVINO behind the Segmenter / Grader interface;
* ``frozen_graph``: the published Deep SGUS TensorFlow-1 format;
* ``processing``: pre- and post-processing as pure functions;
* ``pipeline``: a frame -> a :class:`~sgus_core.inference.pipeline.Prediction`;
* ``dataset``: predicting a dataset of the labels store; ``files``: ``sgus predict`` over files.

Nothing here imports training, nor TensorFlow unless the Keras runtime is chosen.
"""

from sgus_core.inference.pipeline import Prediction, grader_input, segment_frames
from sgus_core.inference.registry import load_model, load_pipeline, read_card

__all__ = [
    "Prediction",
    "grader_input",
    "load_model",
    "load_pipeline",
    "read_card",
    "segment_frames",
]
