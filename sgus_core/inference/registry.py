"""The model registry: which models there are, their cards, the defaults, and loading by name.

Every face (pages, the ``sgus`` command, the benchmarks) finds and loads models through this one
module. A model ``<name>`` in the models folder is a card ``<name>.json`` beside its weights
(``<name>.keras`` and usually the accelerated copy ``<name>.onnx``); a Deep SGUS frozen graph is
a ``<name>.pb`` without a card. ``default.json`` names the default segmenter and grader.

``load_model`` picks the runtime: ``auto`` takes the one the card names as fastest on this kind of
machine (``sgus bench --record`` measures and writes it), else ONNX Runtime when the copy exists,
else Keras. Nothing here imports TensorFlow unless the Keras runtime is chosen.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgus_core.errors import ModelError
from sgus_core.inference.runtimes import (
    ACCELERATED_RUNTIMES,
    FEATURE_DESIGN,
    RUNTIMES,
    FeatureGrader,
    Grader,
    KerasModel,
    OnnxModel,
    OpenVinoModel,
    Segmenter,
)

if TYPE_CHECKING:
    from sgus_core.store import LabelStore

DEFAULTS_FILE = "default.json"
TASKS = ("segment", "grade")


def read_card_file(path: Path) -> dict[str, Any]:
    """Read a model card JSON file.

    Raises:
        ModelError: it is missing, not JSON, or not a JSON object.
    """
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not read model card {Path(path).name}: {exc}") from exc
    if not isinstance(card, dict):
        raise ModelError(f"model card {Path(path).name} is not a JSON object")
    return card


def model_names(
    models_dir: Path, task: str | None = None, *, cards_only: bool = False
) -> list[str]:
    """Names of the models in ``models_dir`` (cards, plus frozen graphs as segmenters), sorted.

    Args:
        models_dir: the models folder.
        task: "segment" or "grade" to keep one kind; cards that cannot be read are left out then.
        cards_only: leave out the frozen graphs (models without a card).
    """
    folder = Path(models_dir)
    with_graphs = task in (None, "segment") and not cards_only
    names = [graph.stem for graph in folder.glob("*.pb")] if with_graphs else []
    for path in sorted(folder.glob("*.json")):
        if path.stem == Path(DEFAULTS_FILE).stem:
            continue
        if task is not None:
            try:
                if read_card_file(path).get("task") != task:
                    continue
            except ModelError:
                continue
        names.append(path.stem)
    return sorted(set(names))


def read_card(models_dir: Path, name: str) -> dict[str, Any]:
    """The model card of ``name`` in ``models_dir``.

    Raises:
        ModelError: no such model (the message lists the ones there are), or an unreadable card.
    """
    path = Path(models_dir) / f"{name}.json"
    if not path.is_file():
        available = ", ".join(model_names(models_dir)) or "none"
        raise ModelError(f"No model named {name!r} in {models_dir} (available: {available}).")
    return read_card_file(path)


def default_model_names(models_dir: Path) -> dict[str, str]:
    """``{"segment": name, "grade": name}`` from ``default.json`` (empty when missing).

    Raises:
        ModelError: the file is not valid JSON.
    """
    path = Path(models_dir) / DEFAULTS_FILE
    if not path.is_file():
        return {}
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(names, dict):
        raise ModelError(f"{path} is not a JSON object")
    return {str(k): v for k, v in names.items() if isinstance(v, str)}


def dataset_default(models_dir: Path, dataset: str | None, task: str) -> str | None:
    """The model made the default for one dataset (``"datasets"`` in ``default.json``, written
    by the Train page), else None."""
    if not dataset:
        return None
    path = Path(models_dir) / DEFAULTS_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        return None
    chosen = (names.get("datasets") or {}).get(dataset) or {}
    value = chosen.get(task) if isinstance(chosen, dict) else None
    return value if isinstance(value, str) else None


def set_dataset_default(models_dir: Path, dataset: str, task: str, name: str) -> None:
    """Make ``name`` the ``task`` model of ``dataset`` (the other datasets keep the global
    default); ``default.json`` is rewritten atomically.

    Raises:
        ModelError: no such model, a model of another task, or the file cannot be written.
    """
    card = read_card(models_dir, name)
    if card.get("task", "segment") != task:
        raise ModelError(f"{name} is a {card.get('task')} model, not a {task} model.")
    path = Path(models_dir) / DEFAULTS_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from exc
    names.setdefault("datasets", {}).setdefault(dataset, {})[task] = name
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(names, indent=2), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ModelError(f"could not write {path}: {exc}") from exc


def models_default_first(models_dir: Path, task: str = "segment") -> list[str]:
    """:func:`model_names` of one task with the default first (what a model picker offers)."""
    try:
        default = default_model_names(models_dir).get(task)
    except ModelError:
        default = None
    return sorted(model_names(models_dir, task), key=lambda n: (n != default, n))


def load_model(name: str, models_dir: Path, *, runtime: str = "auto") -> Any:
    """Load a shipped or trained model by name with the fastest runtime available.

    ``auto`` uses the runtime the card names (``"runtime"``, written by ``sgus bench --record``)
    on the ``.onnx`` copy, ONNX Runtime when the card names none (or names OpenVINO and it is not
    installed), Keras when there is no copy. A name ending in ``.pb`` (a path) or a ``<name>.pb``
    in the models folder loads a Deep SGUS TensorFlow-1 frozen graph.

    Returns:
        A :class:`~sgus_core.inference.runtimes.Segmenter` or
        :class:`~sgus_core.inference.runtimes.Grader` (by the card's task).

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
    if card.get("architecture") == FEATURE_DESIGN:
        return FeatureGrader(Path(models_dir) / f"{name}.npz", card)
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


def load_pipeline(
    models_dir: Path,
    model: str | None = None,
    grader: str | None = None,
    *,
    dataset: str | None = None,
) -> tuple[Segmenter, Grader | None]:
    """``(segmenter, grader)``: the named models, else the dataset's defaults (the Train page's
    "make it the default for this dataset"), else the global defaults (the grader may be None).

    Raises:
        ModelError: no such model, or no default when none is named.
    """
    defaults = default_model_names(models_dir)
    name = model or dataset_default(models_dir, dataset, "segment") or defaults.get("segment")
    if not name:
        raise ModelError(f"No model named and no default in {Path(models_dir) / DEFAULTS_FILE}.")
    segmenter = load_model(name, models_dir)
    grader_name = grader or dataset_default(models_dir, dataset, "grade") or defaults.get("grade")
    return segmenter, (load_model(grader_name, models_dir) if grader_name else None)


def load_prompted(models_dir: Path, model: str | None = None) -> Segmenter:
    """The segmenter for box and click prompts: ``model`` when it takes prompts, else the one
    ``default.json`` names as ``"prompted"``, else the default segmenter if it takes prompts
    (judged from the cards, before any weights are loaded).

    Raises:
        ModelError: no such model, or none that takes prompts (the message says which to use).
    """
    from sgus_core.inference.prompts import takes_prompts

    defaults = default_model_names(models_dir)
    for name in (model, defaults.get("prompted"), defaults.get("segment")):
        if not name or name.endswith(".pb") or (Path(models_dir) / f"{name}.pb").is_file():
            continue  # frozen graphs take no prompts
        if takes_prompts(tuple(read_card(models_dir, name).get("input_shape", ()))):
            return load_model(name, models_dir)
    doesnt = f" ({model} does not)" if model else ""
    raise ModelError(
        f"No segmenter that takes box or click prompts in {models_dir}{doesnt}: "
        f'name one as "prompted" in {DEFAULTS_FILE}.'
    )


def register(store: LabelStore, models_dir: Path, model: Any) -> None:
    """Register a loaded model (or one of ``models_dir`` by name) in the store if it is not yet."""
    name = model if isinstance(model, str) else model.name
    if store.get_model(name) is None:
        card = read_card(models_dir, name) if isinstance(model, str) else model.card
        store.register_model(
            name,
            task=card.get("task", "segment"),
            architecture=card.get("architecture", name),
            path=str(getattr(model, "path", Path(models_dir) / f"{name}.keras")),
            card=card,
        )
