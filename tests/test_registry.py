"""The model registry: what models there are, the defaults, and the prompted segmenter."""

from __future__ import annotations

import json

import pytest

from sgus_core.errors import ModelError
from sgus_core.inference.registry import (
    default_model_names,
    load_prompted,
    model_names,
    models_default_first,
    read_card,
)


def _card(folder, name, task, channels=1):
    card = {"name": name, "task": task, "architecture": "unet", "input_shape": [64, 96, channels]}
    (folder / f"{name}.json").write_text(json.dumps(card))


def test_models_are_listed_by_task_with_the_default_first(tmp_path):
    """Cards and frozen graphs are listed; a task keeps its kind; the default comes first."""
    _card(tmp_path, "b-seg", "segment")
    _card(tmp_path, "a-seg", "segment")
    _card(tmp_path, "grader", "grade")
    (tmp_path / "deep.pb").write_bytes(b"graph")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "default.json").write_text(json.dumps({"segment": "b-seg", "grade": "grader"}))
    assert model_names(tmp_path, "grade") == ["grader"]
    assert models_default_first(tmp_path, "segment") == ["b-seg", "a-seg", "deep"]
    assert "deep" not in model_names(tmp_path, cards_only=True)
    assert default_model_names(tmp_path) == {"segment": "b-seg", "grade": "grader"}


def test_an_unknown_model_lists_the_ones_there_are(tmp_path):
    """Asking for a missing model names the available ones."""
    _card(tmp_path, "unet", "segment")
    with pytest.raises(ModelError, match="available: unet"):
        read_card(tmp_path, "linknet")


def test_a_broken_defaults_file_is_a_clear_error(tmp_path):
    """default.json that is not a JSON object is a ModelError naming the file."""
    (tmp_path / "default.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="default.json"):
        default_model_names(tmp_path)


def test_the_prompted_segmenter_is_the_one_that_takes_prompts(tmp_path):
    """load_prompted takes the named model when it takes prompts, else the default prompted one,
    and says what to do when there is none."""
    from sgus_core.nets import build_model

    for name, channels in (("plain", 1), ("boxed", 4)):
        build_model("unet", input_shape=(64, 96, channels), base_filters=2, depth=2).save(
            tmp_path / f"{name}.keras"
        )
        _card(tmp_path, name, "segment", channels)
    (tmp_path / "default.json").write_text(json.dumps({"segment": "plain", "prompted": "boxed"}))
    assert load_prompted(tmp_path).name == "boxed"
    assert load_prompted(tmp_path, "plain").name == "boxed"  # falls back to the default one
    (tmp_path / "default.json").write_text(json.dumps({"segment": "plain"}))
    with pytest.raises(ModelError, match=r"No segmenter that takes box .* \(plain does not\)"):
        load_prompted(tmp_path, "plain")


def test_dataset_defaults_are_per_dataset_and_checked(tmp_path):
    """A dataset's own default wins for that dataset only; a model of the wrong task or a
    missing one is refused, and the global defaults are left as they were."""
    import json

    import pytest

    from sgus_core.errors import ModelError
    from sgus_core.inference.registry import (
        dataset_default,
        default_model_names,
        set_dataset_default,
    )

    (tmp_path / "seg.json").write_text(json.dumps({"task": "segment"}))
    (tmp_path / "gr.json").write_text(json.dumps({"task": "grade"}))
    (tmp_path / "default.json").write_text(json.dumps({"segment": "seg"}))
    set_dataset_default(tmp_path, "clinic-a", "grade", "gr")
    assert dataset_default(tmp_path, "clinic-a", "grade") == "gr"
    assert dataset_default(tmp_path, "clinic-b", "grade") is None
    assert default_model_names(tmp_path) == {"segment": "seg"}
    with pytest.raises(ModelError, match="not a segment model"):
        set_dataset_default(tmp_path, "clinic-a", "segment", "gr")
    with pytest.raises(ModelError, match="No model named"):
        set_dataset_default(tmp_path, "clinic-a", "segment", "missing")
