"""Saving a trained model: the ``.keras`` file (float16 weights when they cost nothing) and its
model card, the JSON that says what the model is, what it was trained on and how well it did."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from sgus_core.errors import ModelError
from sgus_core.inference.processing import CROP_PAD, THRESHOLD
from sgus_core.inference.registry import read_card_file
from sgus_core.nets import model_gflops
from sgus_core.training.run import TrainResult

if TYPE_CHECKING:
    from sgus_core.training.grading import GradeRun
from sgus_core.vocabulary import N_GRADES

FLOAT16_TOLERANCE = 0.002  # largest test-metric change that float16 storage may cost
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _preprocessing(result: TrainResult) -> dict[str, Any]:
    height, width, channels = result.input_shape
    common = {
        "input": "field-of-view crop of the frame, grey (H, W) uint8",
        "scale": "divide by 255 -> float32 0..1",
        "layout": f"NHWC float32 (N, {height}, {width}, {channels})",
    }
    if result.task == "segment":
        return common | {
            "resize": f"cv2.resize to {width}x{height} (width x height), INTER_AREA",
            "output": f"sigmoid gland probability (N, {height}, {width}, 1); resize back to the "
            f"FOV size bilinearly, mask = probability > {THRESHOLD}",
        }
    if result.architecture == "grader_crop":
        return common | {
            "resize": f"bounding box of the largest connected region of the gland mask (the "
            f"rater's, else the segmenter's), padded by {CROP_PAD:.0%} of its width and height "
            f"on each side and clipped to the FOV, cv2.resize to {width}x{height}, INTER_AREA "
            "(no mask or an empty one: the whole FOV)",
            "channels": "0: grey crop; 1: the crop's gland mask (0/1), area-resized, >= 0.5"
            if channels == 2
            else "0: grey crop",
            "output": "softmax over grades 0-3 (N, 4)",
        }
    return common | {
        "resize": f"cv2.resize to {width}x{height} (width x height), INTER_AREA",
        "output": "softmax over grades 0-3 (N, 4)",
    }


def _clean_keras_file(source: Path, destination: Path, *, half: bool) -> None:
    """Copy a ``.keras`` zip without any optimizer state (a fine-tuned network carries its
    optimizer's moments, twice the weights again), storing every float32 weight array of its
    HDF5 part as float16 when ``half``.

    Keras casts the arrays back to the variables' float32 when it loads them, so the file stays
    readable by a plain ``keras.saving.load_model``.
    """
    import h5py

    def copy(src, dst, top: bool = False) -> None:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key, item in src.items():
            if top and key == "optimizer":
                continue
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(key))
                continue
            array = item[()]
            if half and isinstance(array, np.ndarray) and array.dtype == np.float32:
                array = array.astype(np.float16)
            out = dst.create_dataset(key, data=array)
            for a, v in item.attrs.items():
                out.attrs[a] = v

    with (
        zipfile.ZipFile(source) as zin,
        zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for entry in zin.namelist():
            data = zin.read(entry)
            if entry.endswith(".weights.h5"):
                buffer = io.BytesIO()
                with h5py.File(io.BytesIO(data), "r") as src, h5py.File(buffer, "w") as dst:
                    copy(src, dst, top=True)
                data = buffer.getvalue()
            zout.writestr(entry, data)


def check_model_name(name: str) -> None:
    """Raise ``ModelError`` unless ``name`` is a safe file stem for a model (letters, digits,
    ".", "_", "-", up to 100, not starting with a dot)."""
    if not _NAME_RE.match(name):
        raise ModelError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (max 100)")


def save_model(
    result: TrainResult,
    models_dir: Path,
    name: str,
    *,
    card_extra: dict[str, Any] | None = None,
    weights_dtype: str = "auto",
) -> tuple[Path, Path]:
    """Write ``<name>.keras`` and its model card ``<name>.json`` into ``models_dir``.

    The saved model is an uncompiled copy made of stock layers only, so ``keras.saving.
    load_model`` reads it anywhere. Weights are stored as float16 when ``weights_dtype`` is
    "float16", or when it is "auto" and rounding them changed the test metrics by at most
    ``FLOAT16_TOLERANCE`` (``result.test_metrics["float16_delta"]``); they load back as float32.

    Args:
        result: what :func:`train_segmenter` or :func:`train_grader` returned.
        models_dir: folder (created if missing).
        name: file stem: letters, digits, ".", "_", "-" (up to 100, not starting with a dot).
        card_extra: more card fields (e.g. dataset name, rater); they override computed ones.
        weights_dtype: "auto", "float16" or "float32".

    Returns:
        (weights_path, card_path).

    Raises:
        ModelError: if the name is not a safe file stem or the files cannot be written.
        ValueError: if ``weights_dtype`` is not one of the three.
    """
    check_model_name(name)
    if weights_dtype not in ("auto", "float16", "float32"):
        raise ValueError(f"weights_dtype must be auto, float16 or float32, got {weights_dtype!r}")
    delta = result.test_metrics.get("float16_delta")
    half = weights_dtype == "float16" or (
        weights_dtype == "auto" and delta is not None and delta <= FLOAT16_TOLERANCE
    )
    models_dir = Path(models_dir)
    weights_path = models_dir / f"{name}.keras"
    card_path = models_dir / f"{name}.json"
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        clean = keras.models.clone_model(result.model)  # uncompiled: no loss to deserialise
        clean.set_weights(result.model.get_weights())
        with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
            plain = Path(tmp) / "plain.keras"
            clean.save(plain)
            final = Path(tmp) / "final.keras"
            _clean_keras_file(plain, final, half=half)
            os.replace(final, weights_path)
        card = _card(result, name, "float16" if half else "float32", weights_path.stat().st_size)
        card |= card_extra or {}
        tmp_card = card_path.with_suffix(".json.tmp")
        tmp_card.write_text(json.dumps(card, indent=2, default=_json_default), encoding="utf-8")
        os.replace(tmp_card, card_path)
    except OSError as exc:
        raise ModelError(f"could not write model {name!r} to {models_dir}: {exc}") from exc
    return weights_path, card_path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def training_device() -> str:
    """What TensorFlow trains on here: ``"GPU (<name>)"`` when it sees one (a CUDA build of
    TensorFlow on a machine with a GPU places every layer there by itself), else
    ``"CPU (<n> cores)"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)})"
    return f"CPU ({os.cpu_count()} cores)"


def _inherited_zero_shot_reading(parent: str | None) -> dict[str, Any] | None:
    """The zero-shot reading (test-time flip, threshold) of the network a fine-tune started
    from, so that the tuned network is read as its parent was chosen to be read; None when the
    parent's card has none or cannot be read. (A prompted reading is left out: its box prior
    and threshold were calibrated on the parent's own weights; without one the tuned network
    reads prompts plainly.)"""
    if parent is None:
        return None
    try:
        card = read_card_file(Path(parent).with_suffix(".json"))
    except ModelError:
        return None
    block = (card.get("reading") or {}).get("zero_shot")
    if not isinstance(block, dict):
        return None
    return {**block, "chosen_by": f"inherited from {Path(parent).stem}"}


def _card(result: TrainResult, name: str, weights_dtype: str, file_bytes: int) -> dict[str, Any]:
    import tensorflow as tf

    validation_key = "val_iou" if result.task == "segment" else "val_kappa"
    validation = result.history.get(validation_key, [])
    card: dict[str, Any] = {
        "name": name,
        "task": result.task,
        "architecture": result.architecture,
        "model_options": result.model_options,
        "input_shape": list(result.input_shape),
        "parameters": int(result.model.count_params()),
        "gflops": round(model_gflops(result.model), 4),
        "training_data": {
            "hash": result.data_hash,
            "n_samples": result.n_samples,
            "split": "by patient",
        },
        "split_sizes": {"train": result.n_train, "val": result.n_val, "test": result.n_test},
        "validation": {
            "metric": validation_key,
            "best": max(validation) if validation else None,
            "best_epoch": result.best_epoch,
        },
        "test_metrics": result.test_metrics,
        "epochs_run": result.epochs_run,
        "seed": result.seed,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "preprocessing": _preprocessing(result),
        "weights_dtype": weights_dtype,
        "file_bytes": file_bytes,
        "fine_tuned_from": result.fine_tuned_from,
        "train_seconds": round(result.seconds, 1),
        "trained_on": training_device(),
    }
    if result.warning:
        card["warning"] = result.warning
    inherited = _inherited_zero_shot_reading(result.fine_tuned_from)
    if inherited:
        card["reading"] = {"zero_shot": inherited}
    if result.task == "segment":
        card["threshold"] = THRESHOLD
    else:
        card["target"] = result.target
        card["classes"] = list(range(N_GRADES))
    return card


CARD_FIELDS = (
    "name",
    "task",
    "architecture",
    "input_shape",
    "parameters",
    "gflops",
    "training_data",
    "split_sizes",
    "test_metrics",
    "epochs_run",
    "seed",
    "date",
    "keras_version",
    "tensorflow_version",
    "preprocessing",
)
"""Fields every model card has (more may follow)."""


def _write_card(card_path: Path, card: dict[str, Any]) -> None:
    tmp_card = card_path.with_suffix(".json.tmp")
    tmp_card.write_text(json.dumps(card, indent=2, default=_json_default), encoding="utf-8")
    os.replace(tmp_card, card_path)


def save_grade_run(
    run: GradeRun, models_dir: Path, name: str, *, card_extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write the grader a :func:`~sgus_core.training.grading.train_grade` run kept, with a card
    that holds every compared design's cross-validated figures.

    A CNN is saved by :func:`save_model` (``<name>.keras``); a feature grader as
    ``<name>.npz``. The card's ``test_metrics`` are the kept design's out-of-fold figures (or its
    test-split figures without folds), ``cross_validation`` holds the protocol and every design's
    figures and the frame-statistics baseline's, ``warning`` is set when the model does not beat
    the majority baseline or the frame-statistics one.

    Returns:
        (weights_path, card_path).

    Raises:
        ModelError: a bad name, or the files cannot be written.
    """
    check_model_name(name)
    models_dir = Path(models_dir)
    validation = {
        **run.protocol,
        "chosen": run.design,
        "chosen_by": "highest out-of-fold quadratic kappa",
        "designs": run.reports,
        "frame_statistics_baseline": _frame_baseline(run),
    }
    extra = {
        "test_metrics": run.report,
        "cross_validation": validation,
        "warning": run.warning,
        **(card_extra or {}),
    }
    if run.cnn is not None:
        weights, card_path = save_model(run.cnn, models_dir, name)
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["training_data"]["split"] = _split_text(run)
        card |= extra
        _write_card(card_path, card)
        return weights, card_path
    model = run.feature_model
    if model is None:
        raise ModelError("the run kept no model")
    weights = models_dir / f"{name}.npz"
    card_path = models_dir / f"{name}.json"
    try:
        from sgus_core.training.feature_grader import save_feature_model

        save_feature_model(model, weights)
        card = {
            "name": name,
            "task": "grade",
            "architecture": run.design,
            "model_options": {"C": model.c},
            "input_shape": [int(model.mean.shape[0])],
            "parameters": int(model.coef.size + model.intercept.size),
            "gflops": 0.0,
            "training_data": {
                "hash": run.data_hash,
                "n_samples": run.n_samples,
                "split": _split_text(run),
            },
            "split_sizes": {"train": run.n_samples, "val": 0, "test": 0},
            "epochs_run": 0,
            "seed": run.seed,
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "keras_version": None,
            "tensorflow_version": None,
            "preprocessing": {
                "input": "field-of-view crop of the frame, grey (H, W) uint8, and the gland mask "
                "(the rater's, else the segmenter's, else the whole field of view)",
                "features": "sgus_core.inference.features.grade_features: first-order, GLCM, "
                "LBP, hypoechoic foci, bright bands, border clarity",
                "model": "standardised features -> multinomial logistic regression "
                f"(L2, C={model.c}, balanced class weights) -> softmax(logits / "
                f"{model.temperature:.3f})",
                "output": "probabilities over grades 0-3 (N, 4)",
            },
            "calibration": {"temperature": model.temperature},
            "weights_dtype": "float64",
            "file_bytes": weights.stat().st_size,
            "fine_tuned_from": None,
            "train_seconds": round(run.seconds, 1),
            "trained_on": f"CPU ({os.cpu_count()} cores)",
            "target": run.target,
            "classes": list(range(N_GRADES)),
        } | extra
        models_dir.mkdir(parents=True, exist_ok=True)
        _write_card(card_path, card)
    except OSError as exc:
        raise ModelError(f"could not write model {name!r} to {models_dir}: {exc}") from exc
    return weights, card_path


def _frame_baseline(run: GradeRun) -> dict[str, Any] | None:
    """The card's frame-statistics baseline: its rule, figures, and whether the kept grader
    beats it (None when no frame had a mask)."""
    from sgus_core.training.grading import FRAME_BASELINE

    base = run.frame_baseline
    if base is None:
        return None
    return {
        "rule": FRAME_BASELINE,
        "kappa_quadratic": base["kappa_quadratic"],
        "kappa_ci95": base["kappa_ci95"],
        "accuracy": base["accuracy"],
        "beaten": run.beats_frame_baseline,
    }


def _split_text(run: GradeRun) -> str:
    if "folds" in run.protocol:
        return f"{run.protocol['folds']}-fold cross-validation by patient; fitted on every frame"
    return "by patient"
