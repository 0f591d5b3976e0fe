"""The published Deep SGUS model format: a TensorFlow-1 frozen graph, behind the Segmenter seam.

Tensor names and preprocessing as published (docs/SGUS.md): input ``input_image:0`` float
[N, 224, 224, 3] RGB with raw 0-255 values, ``keep_probabilty:0`` (spelled so) fed 1.0,
``TRAINING:0`` fed False, output ``inference/prediction:0`` [N, 224, 224] class indices
(0 background, 1 gland). The class index serves as the probability (0 or 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sgus_core.errors import ModelError

INPUT = "input_image:0"
KEEP_PROBABILITY = "keep_probabilty:0"
TRAINING = "TRAINING:0"
OUTPUT = "inference/prediction:0"
INPUT_SIZE = 224


class FrozenGraphSegmenter:
    """A Deep SGUS ``frozen_graph.pb`` as a :class:`~sgus_core.inference.runtimes.Segmenter`.

    Our pipeline hands it (N, H, W, 1) grey frames scaled 0..1 at ``input_shape``; they are turned
    back into the graph's RGB 0-255 input here.

    Raises:
        ModelError: the file is missing, not a GraphDef, or lacks one of the published tensors.
    """

    runtime = "frozen_graph"
    input_shape = (INPUT_SIZE, INPUT_SIZE, 1)

    def __init__(self, path: Path, name: str | None = None) -> None:
        import tensorflow as tf

        self.path = Path(path)
        self.name = name or f"deep-sgus-{self.path.stem}"
        self.card = {"name": self.name, "task": "segment", "architecture": "deep-sgus-frozen-graph"}
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(self.path.read_bytes())
        except (OSError, Exception) as exc:  # protobuf raises DecodeError
            raise ModelError(f"{self.path.name} is not a TensorFlow frozen graph: {exc}") from exc
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        names = {op.name + ":0" for op in self._graph.get_operations()}
        missing = [t for t in (INPUT, KEEP_PROBABILITY, TRAINING, OUTPUT) if t not in names]
        if missing:
            raise ModelError(f"{self.path.name} lacks the Deep SGUS tensors {', '.join(missing)}.")
        self._session = tf.compat.v1.Session(graph=self._graph)

    def predict_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 1) grey 0..1 -> (N, 224, 224) float32 class index (0 or 1)."""
        rgb = np.repeat(np.asarray(batch, np.float32) * 255.0, 3, axis=-1)
        out = self._session.run(OUTPUT, {INPUT: rgb, KEEP_PROBABILITY: 1.0, TRAINING: False})
        return np.asarray(out, dtype=np.float32)
