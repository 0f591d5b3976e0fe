"""One inference seam: a Segmenter (and Grader) interface, backends, and the frame pipeline.

A prediction travels: frame -> FOV crop -> ``processing.preprocess`` -> backend forward pass ->
``processing.probability_in_frame`` / ``postprocess`` -> :class:`Prediction`. Backends: Keras
(the shipped ``.keras`` files), ONNX Runtime and OpenVINO (both run the ``.onnx`` copy written at
training time), and the Deep SGUS TensorFlow-1 frozen graph (``frozen_graph.py``). ``auto`` takes
the runtime the model card names as fastest on this kind of machine (``sgus bench --record``
measures and writes it), else ONNX Runtime when the copy exists, else Keras.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sgus_core import imaging
from sgus_core.errors import ModelError
from sgus_core.imaging import Frame, Rect
from sgus_core.inference import processing

RUNTIMES = ("auto", "keras", "onnx", "openvino")
ACCELERATED_RUNTIMES = ("onnx", "openvino")  # both run the .onnx copy


@dataclass(frozen=True)
class Prediction:
    """What a model says about one frame (arrays at the frame's size)."""

    mask: np.ndarray
    probability: np.ndarray
    contour: np.ndarray
    overlay: np.ndarray
    area_px: int
    area_mm2: float | None
    grade: int | None
    grade_probabilities: tuple[float, ...] | None
    model: str
    fov: Rect


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
    input_shape: tuple[int, int, int]
    design: str

    def predict_grades(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) float32 -> (N, 4) grade probabilities."""
        ...


class KerasModel:
    """A saved Keras model as a Segmenter or Grader."""

    runtime = "keras"

    def __init__(self, path: Path, card: dict) -> None:
        from sgus_core.training import load_model

        self._describe(path, card)
        self._model = load_model(self.path)

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


def read_card(models_dir: Path, name: str) -> dict:
    """The model card of ``name`` in ``models_dir``.

    Raises:
        ModelError: no such model (the message lists the ones there are).
    """
    path = Path(models_dir) / f"{name}.json"
    if not path.is_file():
        available = sorted(p.stem for p in Path(models_dir).glob("*.json") if p.stem != "default")
        raise ModelError(
            f"No model named {name!r} in {models_dir} (available: {', '.join(available) or 'none'})."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_model(name: str, models_dir: Path, *, runtime: str = "auto"):
    """Load a shipped or trained model by name with the fastest runtime available.

    ``auto`` uses the runtime the card names (``"runtime"``, written by ``sgus bench --record``)
    on the ``.onnx`` copy, ONNX Runtime when the card names none (or names OpenVINO and it is not
    installed), Keras when there is no copy. A name ending in ``.pb`` (a path) or a ``<name>.pb``
    in the models folder loads a Deep SGUS TensorFlow-1 frozen graph.

    Raises:
        ModelError: unknown model or runtime, or a file that cannot be loaded.
    """
    if runtime not in RUNTIMES:
        raise ModelError(f"Unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}.")
    graph = Path(name) if name.endswith(".pb") else Path(models_dir) / f"{name}.pb"
    if graph.is_file():  # a Deep SGUS frozen graph, by path or dropped into the models folder
        from sgus_core.inference.frozen_graph import FrozenGraphSegmenter

        return FrozenGraphSegmenter(graph)
    card = read_card(models_dir, name)
    onnx_path = Path(models_dir) / f"{name}.onnx"
    if runtime == "auto":
        preferred = card.get("runtime")
        runtime = "keras"
        if onnx_path.is_file():
            runtime = preferred if preferred in ACCELERATED_RUNTIMES else "onnx"
        if runtime == "openvino" and importlib.util.find_spec("openvino") is None:
            runtime = "onnx"
    if runtime in ACCELERATED_RUNTIMES:
        if not onnx_path.is_file():
            raise ModelError(f"{name} has no ONNX copy ({onnx_path.name}).")
        backend = OpenVinoModel if runtime == "openvino" else OnnxModel
        return backend(onnx_path, card)
    return KerasModel(Path(models_dir) / f"{name}.keras", card)


def grader_input(fov_pixels: np.ndarray, fov_mask: np.ndarray | None, grader) -> np.ndarray:
    """The grader's (H, W, C) input for one FOV crop: the whole FOV (``grader_frame``) or the
    padded gland box with its mask as a second channel (``grader_crop``), as in training."""
    from sgus_core.training import gland_crop, preprocess_frame

    height, width, channels = grader.input_shape
    if grader.design == "grader_crop":
        crop, crop_mask = gland_crop(fov_pixels, fov_mask, (height, width))
        layers = [crop, crop_mask.astype(np.float32)][:channels]
        return np.stack(layers, axis=-1)
    return preprocess_frame(fov_pixels, (height, width))[..., np.newaxis]


def segment_frames(
    segmenter,
    frames: Sequence[Frame],
    *,
    grader=None,
    batch_size: int = 8,
    threshold: float = processing.THRESHOLD,
    progress: Callable[[int, int], None] | None = None,
) -> list[Prediction]:
    """Segment (and grade) frames in batches; raw scanner screenshots work through their FOV."""
    out: list[Prediction] = []
    for start in range(0, len(frames), max(1, batch_size)):
        chunk = frames[start : start + batch_size]
        crops = [f.pixels[f.fov.slices] for f in chunk]
        batch = np.concatenate([processing.preprocess(c, segmenter.input_shape) for c in crops])
        probabilities = segmenter.predict_probabilities(batch)
        masks, maps = [], []
        for frame, prob in zip(chunk, probabilities, strict=True):
            full = processing.probability_in_frame(prob, frame.fov, frame.pixels.shape)
            maps.append(full)
            masks.append(processing.postprocess(full, threshold=threshold))
        grades = None
        if grader is not None:
            inputs = np.stack(
                [
                    grader_input(crop, mask[f.fov.slices], grader)
                    for crop, mask, f in zip(crops, masks, chunk, strict=True)
                ]
            )
            grades = grader.predict_grades(inputs)
        for i, (frame, full, mask) in enumerate(zip(chunk, maps, masks, strict=True)):
            area_px, area_mm2 = processing.area(mask, frame.spacing_mm)
            probs = None if grades is None else tuple(float(p) for p in grades[i])
            out.append(
                Prediction(
                    mask=mask,
                    probability=full,
                    contour=imaging.mask_contour(mask),
                    overlay=imaging.draw_overlay(frame.pixels, [(mask, (255, 64, 64))]),
                    area_px=area_px,
                    area_mm2=area_mm2,
                    grade=None if probs is None else int(np.argmax(probs)),
                    grade_probabilities=probs,
                    model=segmenter.name if grader is None else f"{segmenter.name}+{grader.name}",
                    fov=frame.fov,
                )
            )
        if progress:
            progress(min(start + batch_size, len(frames)), len(frames))
    return out
