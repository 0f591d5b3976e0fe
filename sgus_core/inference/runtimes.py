"""The runtimes a network runs on, behind one Segmenter / Grader interface.

Keras (the ``.keras`` file; TensorFlow is imported only when this runtime is chosen), ONNX
Runtime and OpenVINO (both on the ``.onnx`` copy written at training time). The Deep SGUS
TensorFlow-1 frozen graph is the fourth (``frozen_graph.py``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sgus_core.errors import ModelError

RUNTIMES = ("auto", "keras", "onnx", "openvino")
ACCELERATED_RUNTIMES = ("onnx", "openvino")  # both run the .onnx copy


class Segmenter(Protocol):
    """A gland segmentation network behind any runtime."""

    name: str
    runtime: str
    input_shape: tuple[int, int, int]

    def predict_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 1) float32 0..1 -> (N, H, W) float32 gland probability."""
        ...


class Grader(Protocol):
    """A de Vita / OMERACT grade classifier behind any runtime."""

    name: str
    input_shape: tuple[int, ...]
    design: str

    def predict_grades(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) float32 (a feature grader: (N, F) features) -> (N, 4) probabilities."""
        ...


class KerasModel:
    """A saved Keras model as a Segmenter or Grader."""

    runtime = "keras"

    def __init__(self, path: Path, card: dict) -> None:
        self._describe(path, card)
        self._model = load_keras_model(self.path)

    def _describe(self, path: Path, card: dict) -> None:
        self.path = Path(path)
        self.card = card
        self.name = card.get("name", self.path.stem)
        self.design = card.get("architecture", "")
        self.input_shape = tuple(card["input_shape"])

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict_on_batch(batch.astype(np.float32)))

    def predict_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """See :class:`Segmenter`."""
        return self._forward(batch)[..., 0]

    def predict_grades(self, batch: np.ndarray) -> np.ndarray:
        """See :class:`Grader`."""
        return self._forward(batch)


class OnnxModel(KerasModel):
    """The ONNX Runtime copy (``<name>.onnx``) of a model, all cores, full graph optimisation."""

    runtime = "onnx"

    def __init__(self, path: Path, card: dict) -> None:
        import os

        import onnxruntime as ort

        self._describe(path, card)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = os.cpu_count() or 1
        try:
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path.name} cannot be loaded by ONNX Runtime: {exc}") from exc
        self._input = self._session.get_inputs()[0].name

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch.astype(np.float32)})[0]


class OpenVinoModel(KerasModel):
    """The ``.onnx`` copy compiled by OpenVINO for the CPU (latency hint, float32 precision).

    OpenVINO runs fastest on static shapes, so the network is compiled once per batch size it
    meets; a lock keeps concurrent callers (Streamlit sessions share a cached model) apart.
    """

    runtime = "openvino"

    def __init__(self, path: Path, card: dict) -> None:
        self._describe(path, card)
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError("OpenVINO is not installed (pip install openvino).") from exc
        self._core = ov.Core()
        self._compiled: dict[int, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        self._compile(1)  # fail here, at load time, on a file OpenVINO cannot read

    def _compile(self, batch: int) -> tuple[Any, Any]:
        if batch not in self._compiled:
            try:
                network = self._core.read_model(str(self.path))
                network.reshape({network.inputs[0].get_any_name(): (batch, *self.input_shape)})
                compiled = self._core.compile_model(
                    network,
                    "CPU",
                    {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
                )
            except Exception as exc:  # openvino raises RuntimeError subclasses of its own
                raise ModelError(f"{self.path.name} cannot be loaded by OpenVINO: {exc}") from exc
            self._compiled[batch] = (compiled, compiled.create_infer_request())
        return self._compiled[batch]

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            compiled, request = self._compile(len(batch))
            result = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
            return np.array(result[compiled.outputs[0]])


FEATURE_DESIGN = "grader_features"


class FeatureGrader:
    """The feature grader (``<name>.npz``: standardisation, logistic-regression weights and a
    calibration temperature) evaluated with numpy: (N, F) features of
    :func:`sgus_core.inference.features.grade_features` -> (N, 4) grade probabilities."""

    runtime = "numpy"
    design = FEATURE_DESIGN

    def __init__(self, path: Path, card: dict) -> None:
        from sgus_core.inference.features import FEATURE_NAMES

        self.path = Path(path)
        self.card = card
        self.name = card.get("name", self.path.stem)
        try:
            with np.load(self.path, allow_pickle=False) as arrays:
                self._arrays = {k: np.asarray(arrays[k]) for k in arrays.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"could not load feature grader {self.path.name}: {exc}") from exc
        names = tuple(str(n) for n in self._arrays.get("feature_names", ()))
        if names != FEATURE_NAMES:
            raise ModelError(
                f"{self.path.name} was fitted on other features than this version measures; "
                "retrain it (`sgus train grade`)."
            )
        self.input_shape = (len(names),)

    def predict_grades(self, batch: np.ndarray) -> np.ndarray:
        """See :class:`Grader`."""
        a = self._arrays
        logits = feature_logits(batch, a["mean"], a["scale"], a["coef"], a["intercept"])
        return grade_softmax(logits / float(a["temperature"]), a["classes"]).astype(np.float32)


def feature_logits(
    features: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
) -> np.ndarray:
    """(N, K) logits of the feature grader's standardised logistic regression."""
    return ((np.asarray(features, dtype=np.float64) - mean) / scale) @ coef.T + intercept


def grade_softmax(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N, 4) probabilities from (N, K) logits over the grades ``classes`` (0 for the rest)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    out = np.zeros((len(p), 4))
    out[:, np.asarray(classes, dtype=np.int64)] = p
    return out


def load_keras_model(path: Path) -> Any:
    """Load a saved ``.keras`` model, uncompiled (float16-stored weights come back as float32).

    Imports Keras (and so TensorFlow) on first use: only the Keras runtime and training pay it.

    Raises:
        ModelError: if the file is missing or is not a readable Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"could not load model {path.name}: {exc}") from exc
