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
    monkeypatch.setenv("SGUS_MODELS_DIR", str(tmp_path))
    assert main(["bench-learning-curve", "--families", "scatter"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unet-synth-without-scatter" in err[0]
