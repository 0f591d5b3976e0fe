"""The accelerated CPU runtime: an ONNX copy of each Keras model, verified against Keras.

Measured on this project's 2-core CPU (U-Net 8/4 at 192x256, batch 1, median of 30): ONNX Runtime
19 ms against TensorFlow/Keras 25 ms per frame, outputs equal to 3e-6. The copy is also what
OpenVINO runs; which of the two is faster depends on the model (``sgus bench`` measures both and
``--record`` keeps the faster in the card). Keras stays the fallback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sgus_core.errors import ModelError

MAX_ABS_DIFF = 1e-3


def export_accelerated(keras_path: Path, onnx_path: Path) -> Path:
    """Write the ONNX copy of a saved Keras model and check it gives the same outputs.

    Returns:
        ``onnx_path``.

    Raises:
        ModelError: the conversion fails or the copy's outputs differ by more than 1e-3.
    """
    import onnxruntime as ort

    from sgus_core.inference.runtimes import load_keras_model

    model = load_keras_model(keras_path)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    probe = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    expected = np.asarray(model.predict_on_batch(probe))  # a model must have run once to export
    try:
        model.export(str(onnx_path), format="onnx", verbose=False)
    except Exception as exc:  # the converter raises many types
        raise ModelError(f"Cannot convert {Path(keras_path).name} to ONNX: {exc}") from exc
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: probe})[0]
    diff = float(np.abs(got - expected).max())
    if diff > MAX_ABS_DIFF:
        Path(onnx_path).unlink(missing_ok=True)
        raise ModelError(f"The ONNX copy of {Path(keras_path).name} differs by {diff:.2g}.")
    return Path(onnx_path)
