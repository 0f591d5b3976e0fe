"""`sgus predict`, `sgus evaluate --json` and `sgus bench --json` as docs/CLI.md promises them."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from sgus_cli.main import main
from sgus_core.synthesis.phantom import generate_frame, write_dataset


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    """A models folder with a tiny untrained U-Net as the default segmenter."""
    from sgus_core.nets import build_model

    models = tmp_path / "models"
    models.mkdir()
    build_model("unet", input_shape=(64, 96, 1), base_filters=4, depth=2).save(
        models / "tiny.keras"
    )
    card = {
        "name": "tiny", "task": "segment", "architecture": "unet",
        "input_shape": [64, 96, 1], "gflops": 0.01,
    }  # fmt: skip
    (models / "tiny.json").write_text(json.dumps(card))
    (models / "default.json").write_text(json.dumps({"segment": "tiny"}))
    monkeypatch.setenv("SGUS_MODELS_DIR", str(models))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return models


def test_predict_writes_masks_overlays_contours_csv_and_video(tmp_path, tiny_models, capsys):
    """Files, folders and a video give one mask, overlay and contour per frame, the CSV and an MP4;
    an untrained network is unsure of every outline, and the CSV and the summary say so."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for seed in (1, 2):
        frame = generate_frame(seed)
        cv2.imwrite(str(folder / f"f{seed}.png"), frame.image)
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(3):
        writer.write(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", str(folder), str(video), "--out", str(out), "--batch", "2"]) == 0
    stems = {"f1", "f2", "clip_00000", "clip_00001", "clip_00002"}
    assert {p.stem for p in (out / "masks").glob("*.png")} == stems
    assert {p.stem for p in (out / "overlays").glob("*.png")} == stems
    assert {p.stem for p in (out / "contours").glob("*.txt")} == stems
    mask = cv2.imread(str(out / "masks" / "f1.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == generate_frame(1).image.shape and set(np.unique(mask)) <= {0, 255}
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:8] == ["image", "model", "grade", "p0", "p1", "p2", "p3", "area_px"]
    assert list(rows[0])[-2:] == ["confidence", "mask"]  # added after the others: last
    assert all((out / r["mask"]).is_file() for r in rows)  # each row names its mask file
    assert len(rows) == 5 and rows[0]["model"] == "tiny"
    assert all(r["confidence"] == "" or float(r["confidence"]) < 0.8 for r in rows)
    assert "unsure of 5 of 5 frames" in capsys.readouterr().out
    assert (out / "clip_overlay.mp4").stat().st_size > 0


def test_evaluate_json_has_the_contract_keys(tmp_path, tiny_models, capsys):
    """`sgus evaluate --json` prints one object with every docs/CLI.md key."""
    folder = tmp_path / "set"
    write_dataset(folder, 1, 9_000)
    assert (
        main(["import", str(folder), "--labels", str(folder / "labels.csv"), "--dataset", "s"]) == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--dataset", "s", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "n",
        "iou_mean",
        "dice_mean",
        "grade_accuracy",
        "kappa_quadratic",
        "auc_per_grade",
        "per_image",
    ):
        assert key in result
    assert result["n"] == 4 and len(result["auc_per_grade"]) == 4


def test_bench_json_has_the_contract_shape(tiny_models, capsys):
    """`sgus bench --json` reports the peak, the default model and one row per model."""
    assert main(["bench", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["peak_gflops"] > 0 and result["default_model"] == "tiny"
    (row,) = result["models"]
    contract = {"name", "runtime", "gflops", "batch", "images_per_s", "fraction_of_peak"}
    assert contract <= set(row)
    # without an ONNX copy only Keras can run it, and that is what the row says
    assert row["runtime"] == "keras" and set(row["runtimes"]) == {"keras"}


@pytest.fixture
def tiny_accelerated(tiny_models):
    from sgus_core.training.export import export_accelerated

    export_accelerated(tiny_models / "tiny.keras", tiny_models / "tiny.onnx")
    return tiny_models


def test_openvino_and_onnx_runtime_give_keras_outputs(tiny_accelerated):
    """The three runtimes of one model agree to float32 round-off, at batch 1 and batch 3."""
    from sgus_core.inference import load_model

    x = np.random.default_rng(3).random((3, 64, 96, 1), dtype=np.float32)
    outputs = {
        runtime: load_model("tiny", tiny_accelerated, runtime=runtime)
        for runtime in ("keras", "onnx", "openvino")
    }
    assert {m.runtime for m in outputs.values()} == {"keras", "onnx", "openvino"}
    reference = outputs["keras"].predict_probabilities(x)
    for model in outputs.values():
        assert model.predict_probabilities(x).shape == (3, 64, 96)
        assert np.abs(model.predict_probabilities(x) - reference).max() < 1e-4
        assert np.abs(model.predict_probabilities(x[:1]) - reference[:1]).max() < 1e-4


def test_bench_record_makes_the_fastest_runtime_the_default(tiny_accelerated, capsys):
    """`sgus bench --record` measures every runtime, writes the fastest into the card, and
    loading the model with runtime "auto" then uses it."""
    from sgus_core.inference import load_model

    assert main(["bench", "--json", "--record", "--rounds", "2"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    assert set(row["runtimes"]) == {"keras", "onnx", "openvino"}
    assert row["images_per_s"] == max(row["runtimes"].values())
    card = json.loads((tiny_accelerated / "tiny.json").read_text())
    assert card["runtime"] == row["runtime"]
    assert load_model("tiny", tiny_accelerated).runtime == row["runtime"]


def test_auto_runtime_without_a_recorded_choice_is_onnx_runtime(tiny_accelerated):
    from sgus_core.inference import load_model

    assert load_model("tiny", tiny_accelerated).runtime == "onnx"
    (tiny_accelerated / "tiny.onnx").unlink()
    assert load_model("tiny", tiny_accelerated).runtime == "keras"


def test_train_input_size_sets_the_network_input(tmp_path, tiny_models, capsys):
    """`sgus train --input-size HxW` trains at that size (the card says so, prediction uses it);
    a size the architecture cannot take is one clear line, not a traceback."""
    folder = tmp_path / "set"
    write_dataset(folder, 4, 9_100)
    assert (
        main(["import", str(folder), "--labels", str(folder / "labels.csv"), "--dataset", "s"]) == 0
    )
    capsys.readouterr()
    common = [
        "train",
        "segment",
        "--dataset",
        "s",
        "--arch",
        "unet",
        "--epochs",
        "1",
        "--folds",
        "0",
    ]
    tiny = ["--option", "base_filters=4", "--option", "depth=2"]
    assert main([*common, *tiny, "--input-size", "64x96", "--out", "small", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["input_shape"] == [64, 96, 1]
    assert json.loads((tiny_models / "small.json").read_text())["input_shape"] == [64, 96, 1]
    assert main([*common, *tiny, "--input-size", "66x96", "--out", "odd"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("training on CPU") or err[0].startswith("training on GPU")
    assert err[1].startswith("sgus train: ") and "66x96" in err[1] and len(err) == 2
    assert not (tiny_models / "odd.keras").exists()
    with pytest.raises(SystemExit) as usage:
        main([*common, "--input-size", "64-96"])
    assert usage.value.code == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_train_grade_compares_designs_and_evaluate_takes_the_grader(tmp_path, tiny_models, capsys):
    """`sgus train grade` cross-validates by patient and writes a feature grader with its CV
    figures; `sgus evaluate --grader` (or the grader's name as --model) grades with it; a
    segmenter given as the grader is one clear line."""
    folder = tmp_path / "set"
    write_dataset(folder, 3, 9_200)
    assert (
        main(["import", str(folder), "--labels", str(folder / "labels.csv"), "--dataset", "s"]) == 0
    )
    capsys.readouterr()
    train = ["train", "grade", "--dataset", "s", "--arch", "grader_features", "--folds", "3"]
    assert main([*train, "--out", "fg", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["architecture"] == "grader_features" and card["cross_validation"]["folds"] == 3
    assert card["masks"]["predicted"] == 0  # the phantoms' outlines were imported with them
    assert len(card["test_metrics"]["kappa_ci95"]) == 2
    assert (tiny_models / "fg.npz").is_file()
    assert card["cross_validation"]["frame_statistics_baseline"]["accuracy"] >= 0
    assert main([*train, "--out", "fg2"]) == 0  # the table says it too
    assert "baseline, frame statistics (no mask): kappa" in capsys.readouterr().out
    for flags in (["--grader", "fg"], ["--model", "fg"]):
        assert main(["evaluate", "--dataset", "s", *flags, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["grader"] == "fg" and result["model"] == "tiny"
        assert result["grade_accuracy"] is not None
        assert all(len(r["probabilities"]) == 4 for r in result["per_image"])
    assert main(["evaluate", "--dataset", "s", "--grader", "tiny"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a grader" in err[0]
    assert main(["evaluate", "--dataset", "s", "--grader", "missing"]) == 1
    assert "No model named 'missing'" in capsys.readouterr().err
