"""Training on frames rendered on the fly, and the leave-one-family-out benchmark's pieces."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from sgus_core.bench.generalisation import (
    Recipe,
    ellipse_in_box,
    evaluate,
    family_test_frames,
    format_table,
    include_click,
)
from sgus_core.inference.prompts import mask_box, padded_box
from sgus_core.synthesis.families import FAMILIES, family
from sgus_core.training.synthetic import (
    SynthConfig,
    SyntheticBatches,
    draw_example,
    jitter_box,
    validation_set,
)

SMALL = SynthConfig(("phantom", "randomised", "scatter"), input_shape=(64, 96, 4))


def test_every_family_renders_a_frame_with_its_gland():
    """Each named family gives a grey frame and a non-empty mask of the same size."""
    for name in FAMILIES:
        frame = family(name)(3, size=(200, 150))
        assert frame.image.shape == frame.mask.shape == (150, 200)
        assert frame.image.dtype == np.uint8 and frame.mask.any()


def test_an_unknown_family_lists_the_known_ones():
    """Asking for a family that does not exist names the choices."""
    with pytest.raises(ValueError, match="phantom, randomised, scatter"):
        family("mri")
    with pytest.raises(ValueError):
        SynthConfig(("phantom", "mri"))


def test_batches_are_a_pure_function_of_seed_epoch_and_index():
    """The same (seed, epoch, batch) renders the same batch; another index another one."""
    a = SyntheticBatches(SMALL, steps=2, batch_size=2, seed=5, workers=1)
    b = SyntheticBatches(SMALL, steps=2, batch_size=2, seed=5, workers=1)
    x1, y1 = a[0]
    x2, y2 = b[0]
    assert x1.shape == (2, 64, 96, 4) and y1.shape == (2, 64, 96, 1)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(a[1][0], x1)


def test_examples_are_zero_shot_or_prompted_with_a_box_over_the_gland():
    """Zero-shot examples have empty prompt channels; prompted ones a box that overlaps the
    gland; every target mask is binary and not empty."""
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(12):
        x, y = draw_example(SMALL, rng)
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and y.any()
        prompted = x[..., 1].any()
        kinds.add(prompted)
        if prompted:
            assert (x[..., 1] > 0.5)[y].mean() > 0.5  # most of the gland lies in the box
        else:
            assert not x[..., 1:].any()
    assert kinds == {True, False}


def test_prompted_examples_get_the_grey_level_curve_too():
    """With the curve on, a prompted example is the same box, clicks and mask on other greys
    (the curve used to reach the zero-shot examples only)."""
    from sgus_core.training.synthetic import prompted_example

    frame = family("phantom")(3, size=(320, 240))
    curved = replace(SMALL, augmentation=replace(SMALL.augmentation, remap_p=1.0))
    changed = 0
    for seed in range(4):
        plain = prompted_example(frame, np.random.default_rng(seed), SMALL)
        other = prompted_example(frame, np.random.default_rng(seed), curved)
        assert plain is not None and other is not None
        assert np.array_equal(plain[0][..., 1:], other[0][..., 1:])  # the prompt channels
        assert np.array_equal(plain[1], other[1])  # the mask
        changed += int(np.abs(plain[0][..., 0] - other[0][..., 0]).mean() > 0.02)
    assert changed >= 3


def test_jittered_boxes_stay_boxes_within_the_jitter():
    """A jittered box keeps x1 > x0 and y1 > y0 and moves each side at most 20 % of the box."""
    rng = np.random.default_rng(1)
    for _ in range(50):
        x0, y0, x1, y1 = jitter_box((100, 50, 299, 99), rng)
        assert x1 > x0 and y1 > y0
        assert abs(x0 - 100) <= 40 and abs(x1 - 299) <= 40 and abs(y0 - 50) <= 10


def test_validation_frames_are_fixed():
    """The validation set is the same on every call with the same seed."""
    xa, ya = validation_set(SMALL, 4)
    xb, yb = validation_set(SMALL, 4)
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_padded_boxes_and_the_ellipse_baseline():
    """The 5 % box contains the mask; the ellipse inscribed in a box stays inside it."""
    mask = np.zeros((100, 200), bool)
    mask[40:60, 50:150] = True
    box = padded_box(mask, 0.05)
    assert box == (45, 39, 154, 60) and mask_box(mask) == (50, 40, 149, 59)
    ellipse = ellipse_in_box(mask.shape, box)
    rows, cols = np.nonzero(ellipse)
    assert rows.min() >= 39 and rows.max() <= 60 and cols.min() >= 45 and cols.max() <= 154
    x, y = include_click(mask, 0)
    assert mask[int(y), int(x)]


def test_baselines_score_between_zero_and_one_on_a_held_out_family():
    """The model-free baselines give a mean IoU in [0, 1] on a family's test frames."""
    scores = evaluate(None, family_test_frames("scatter", 2), baselines=True)
    assert set(scores) == {"prior_ellipse", "ellipse_box_5", "grabcut_box_5"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_recipe_keys_name_the_training_families():
    """A cached network's name says what it was trained on, in a stable order."""
    key = Recipe(epochs=2, steps_per_epoch=3).key(["scatter", "phantom"])
    assert key.endswith("-on-phantom_scatter") and "e2s3" in key
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", key)  # a valid model name


def test_the_table_has_a_row_per_held_out_family_and_the_worst():
    """The printed table names each held-out family and the worst row."""
    row = {"zero_shot": 0.5, "zero_shot_min": 0.1, "box_5": 0.8, "box_15": 0.7, "box_5_click": 0.8}
    base = {"prior_ellipse": 0.3, "ellipse_box_5": 0.7, "grabcut_box_5": 0.6}
    result = {
        "held_out": {"phantom": row, "scatter": row},
        "baselines": {"phantom": base, "scatter": base},
        "worst_held_out": row,
        "in_family": {"phantom": row, "scatter": row},
    }
    text = format_table(result)
    assert "phantom" in text and "scatter" in text and "worst held-out" in text


@pytest.mark.slow
def test_a_tiny_network_trains_on_rendered_frames(tmp_path):
    """Two short epochs on rendered frames give a model, its history and a validation IoU."""
    from sgus_core.training.run import train_segmenter_synthetic

    result = train_segmenter_synthetic(
        SMALL,
        epochs=2,
        steps_per_epoch=2,
        batch_size=2,
        validation_frames=4,
        model_options={"base_filters": 2, "depth": 2},
        workers=1,
    )
    assert result.epochs_run == 2 and len(result.history["val_iou"]) == 2
    assert 0.0 <= result.test_metrics["val_iou"] <= 1.0
    assert result.input_shape == (64, 96, 4) and result.n_train == 8


def test_keeping_a_zero_shot_network_leaves_the_prompted_default_alone(tmp_path):
    """A zero-shot-only network kept as the default segmenter does not become the prompted
    one (it cannot take a box); its card carries the benchmark's table."""
    import json

    from sgus_core.bench.generalisation import keep_model

    work, models = tmp_path / "work", tmp_path / "models"
    work.mkdir()
    models.mkdir()
    for suffix in (".keras", ".onnx"):
        (work / f"net{suffix}").write_bytes(b"weights")
    (work / "net.json").write_text(json.dumps({"name": "net", "task": "segment"}))
    (models / "default.json").write_text(json.dumps({"segment": "old", "prompted": "boxy"}))
    (work / "without-phantom.keras").write_bytes(b"held-out weights")
    (work / "without-phantom.json").write_text(json.dumps({"name": "x", "task": "segment"}))
    result = {"recipe": {"prompted": False}, "held_out": {"phantom": {"zero_shot": 0.4}},
              "worst_held_out": {"zero_shot": 0.4}, "all_families_model": str(work / "net.keras"),
              "held_out_models": {"phantom": str(work / "without-phantom.keras")}}  # fmt: skip
    keep_model(result, models, "zs", make_default=True)
    assert json.loads((models / "default.json").read_text()) == {
        "segment": "zs",
        "prompted": "boxy",
    }
    assert json.loads((models / "zs.json").read_text())["generalisation"]["worst_held_out"] == {
        "zero_shot": 0.4
    }
    # the network that never saw phantom ships beside it, for the learning curve to start from
    held = models / "held-out" / "zs-without-phantom.keras"
    assert held.read_bytes() == b"held-out weights"
    assert json.loads(held.with_suffix(".json").read_text())["name"] == "zs-without-phantom"


def test_a_zero_shot_flip_reading_survives_the_prompted_calibration(tmp_path):
    """The recipe's zero-shot reading goes into the card and the app reads the network that
    way; a card whose prompted reading was chosen on the same families is not chosen again."""
    from sgus_core.bench.generalisation import calibrated, read_zero_shot
    from sgus_core.inference.pipeline import Reading
    from sgus_core.inference.registry import load_model
    from sgus_core.nets import build_model

    build_model("unet", input_shape=(32, 48, 4), base_filters=2, depth=2).save(tmp_path / "n.keras")
    prompted = {"flip": False, "prior": 0.2, "threshold": 0.6, "chosen_on": ["phantom"]}
    card = {"name": "n", "task": "segment", "architecture": "unet", "input_shape": [32, 48, 4],
            "reading": {"prompted": prompted}}  # fmt: skip
    (tmp_path / "n.json").write_text(json.dumps(card))
    said: list[str] = []
    weights = read_zero_shot(calibrated(tmp_path / "n.keras", ["phantom"], said.append), True)
    assert said == []  # the prompted reading was current: nothing recalibrated
    model = load_model("n", tmp_path, runtime="keras")
    assert Reading.of(model, "zero_shot") == Reading(flip=True, threshold=0.5)
    assert Reading.of(model, "prompted") == Reading(flip=False, threshold=0.6, prior=0.2)
    assert calibrated(weights, ["phantom"], said.append) == weights and said == []


@pytest.mark.slow
def test_a_continued_recipe_reuses_its_first_part_and_says_so(tmp_path):
    """``then_epochs`` trains (or finds) the recipe's first part, continues it under a name of
    its own (with the shares of the grey-level curve and the random convolution when on), and the card names
    the network it continued and the curve's share; a second call reuses both."""
    from sgus_core.bench.generalisation import train_candidate

    first = Recipe(base_filters=2, input_size=(32, 48), prompted=False, epochs=1,
                   steps_per_epoch=2, batch_size=2)  # fmt: skip
    longer = replace(first, then_epochs=1, then_remap=0.5, then_random_conv=0.25)
    said: list[str] = []
    weights = train_candidate(longer, ["scatter"], tmp_path, said.append)
    base = tmp_path / f"{first.key(['scatter'])}.keras"
    assert (
        weights.stem == longer.key(["scatter"]) and "-then-e1lr0.0005rm0.5rc0.25-" in weights.stem
    )
    assert base.is_file() and weights.with_suffix(".onnx").is_file()
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["continued_from"] == base.stem
    assert card["training_data"]["intensity_remap"] == 0.5
    assert card["training_data"]["random_convolution"] == 0.25
    assert (
        "intensity_remap" not in json.loads(base.with_suffix(".json").read_text())["training_data"]
    )
    said.clear()
    assert train_candidate(longer, ["scatter"], tmp_path, said.append) == weights
    assert said == [f"{weights.stem}: trained before, reusing it"]
