"""Inference: the Segmenter/Grader seam, pre/post-processing, runtimes (Keras, ONNX Runtime,
OpenVINO, Deep SGUS frozen graph)."""

from sgus_core.inference.export import export_accelerated
from sgus_core.inference.segmenter import (
    Prediction,
    grader_input,
    load_model,
    read_card,
    segment_frames,
)

__all__ = [
    "Prediction",
    "export_accelerated",
    "grader_input",
    "load_model",
    "read_card",
    "segment_frames",
]
