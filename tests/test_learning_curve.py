"""`sgus bench-learning-curve` end to end on tiny settings: the curve's rows and the grader
cross-validation come out in the docs/CLI.md shape."""

from __future__ import annotations

import json

from sgus_cli.main import main


def test_learning_curve_and_grader_benchmark_print_their_rows(tmp_path, monkeypatch, capsys):
    from sgus_core.nets import build_model

    models = tmp_path / "models"
    models.mkdir()
    build_model("unet", input_shape=(64, 96, 1), base_filters=4, depth=2).save(models / "t.keras")
    card = {"name": "t", "task": "segment", "architecture": "unet", "input_shape": [64, 96, 1],
            "model_options": {"base_filters": 4, "depth": 2}}  # fmt: skip
    (models / "t.json").write_text(json.dumps(card))
    monkeypatch.setenv("SGUS_MODELS_DIR", str(models))
    args = [
        "bench-learning-curve", "--families", "phantom", "--sizes", "3", "--test-frames", "2",
        "--epochs", "1", "--segmenter", str(models / "t.keras"), "--grader-frames", "12",
        "--folds", "3", "--grader-epochs", "1", "--masks", "rater", "--json",
    ]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    (curve,) = result["curves"]
    assert [row["n"] for row in curve["rows"]] == [0, 3]
    assert 0.0 <= curve["rows"][1]["zero_shot"] <= 1.0 and "kappa" in curve["rows"][1]
    (grader,) = result["graders"]
    assert set(grader["designs"]) == {"grader_features", "grader_crop"}
    assert grader["chosen"] in grader["designs"] and grader["n"] == 12


def test_a_family_without_a_held_out_network_is_one_line(tmp_path, monkeypatch, capsys):
    """The default segmenter's network that never saw the family is looked for (and named when
    missing); without a default, --start is asked for; an unknown --start is one line too."""
    monkeypatch.setenv("SGUS_MODELS_DIR", str(tmp_path))
    assert main(["bench-learning-curve", "--families", "scatter"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--start" in err[0]
    (tmp_path / "default.json").write_text(json.dumps({"segment": "zs"}))
    assert main(["bench-learning-curve", "--families", "scatter"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "held-out/zs-without-scatter.keras" in err[0]
    assert main(["bench-learning-curve", "--families", "scatter", "--start", "nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_the_grader_is_tested_inside_masks_of_networks_that_never_saw_the_family(tmp_path):
    """Grader generalisation reads each held-out family inside the zero-shot masks of the
    default segmenter's network trained without that family, and says which."""
    from sgus_core.bench.learning_curve import format_grader_generalisation, grader_generalisation
    from sgus_core.nets import build_model
    from sgus_core.synthesis.families import FAMILIES

    (tmp_path / "default.json").write_text(json.dumps({"segment": "t"}))
    (tmp_path / "held-out").mkdir()
    for name in FAMILIES:
        stem = f"t-without-{name}"
        net = build_model("unet", input_shape=(32, 48, 1), base_filters=2, depth=2)
        net.save(tmp_path / "held-out" / f"{stem}.keras")
        card = {"name": stem, "task": "segment", "architecture": "unet", "input_shape": [32, 48, 1]}
        (tmp_path / "held-out" / f"{stem}.json").write_text(json.dumps(card))
    result = grader_generalisation(tmp_path, n_train=8, n_test=4, shipped=(), log=lambda _m: None)
    assert result["masks"] == {name: f"t-without-{name}" for name in FAMILIES}
    assert set(result["held_out"]) == set(FAMILIES)
    for row in result["held_out"].values():
        assert -1.0 <= row["features"]["kappa"] <= 1.0 and 0.0 <= row["majority_accuracy"] <= 1.0
    assert "worst held-out" in format_grader_generalisation(result)
