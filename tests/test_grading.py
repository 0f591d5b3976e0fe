"""The small-data protocol: gland features, the feature grader, patient-grouped CV, both grader
designs compared, and the fine-tuning schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sgus_core.errors import ModelError
from sgus_core.inference.features import FEATURE_NAMES, N_FEATURES, grade_features
from sgus_core.inference.pipeline import grader_input
from sgus_core.inference.registry import load_model
from sgus_core.training import Sample, save_model, train_segmenter
from sgus_core.training.cards import save_grade_run
from sgus_core.training.grading import train_grade
from sgus_core.training.run import encoder_layers, predict_masks
from sgus_core.training.validation import fold_count, grade_report, grouped_folds

H, W = 80, 160


def _gland(rng: np.random.Generator, foci: int) -> tuple[np.ndarray, np.ndarray]:
    """A speckled lens-shaped gland with ``foci`` dark round foci inside it."""
    yy, xx = np.mgrid[:H, :W]
    mask = ((xx - 80) / 62.0) ** 2 + ((yy - 40) / 24.0) ** 2 <= 1.0
    image = rng.gamma(4.0, 14.0, (H, W)) * (0.6 + 0.6 * mask)
    for _ in range(foci):
        cy, cx = 40 + rng.integers(-12, 13), 80 + rng.integers(-45, 46)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] *= 0.25
    return np.clip(image, 0, 255).astype(np.uint8), mask


def _graded(n: int, *, informative: bool = True, masks: bool = True) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        grade = i % 4
        image, mask = _gland(rng, 3 * grade if informative else int(rng.integers(0, 10)))
        out.append(Sample(image, mask if masks else None, grade, None, f"P{i // 2}", f"f{i:03d}"))
    return out


def test_features_are_finite_and_count_the_foci():
    """Every feature is a finite number, and a gland with more dark foci has a higher focus
    density and area fraction."""
    rng = np.random.default_rng(1)
    clear, mask = _gland(rng, 0)
    spotted, _ = _gland(rng, 12)
    a, b = grade_features(clear, mask), grade_features(spotted, mask)
    assert a.shape == (N_FEATURES,) == (len(FEATURE_NAMES),) and np.isfinite(a).all()
    density = FEATURE_NAMES.index("foci55_per_area")
    fraction = FEATURE_NAMES.index("foci70_area_fraction")
    assert b[density] > a[density] and b[fraction] > a[fraction]
    assert np.isfinite(grade_features(clear, None)).all()  # no mask: the whole FOV
    assert not grade_features(np.zeros((4, 4), np.uint8), None).any()  # too small: zeros


def test_grouped_folds_never_split_a_patient():
    groups = [f"P{i // 3}" for i in range(30)]
    labels = [i % 4 for i in range(30)]
    folds = grouped_folds(groups, 5, labels=labels)
    assert len(folds) == 5
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen.tolist()) == list(range(30))
    for tr, te in folds:
        assert not {groups[i] for i in tr} & {groups[i] for i in te}
    assert fold_count(40, 20, None) == 5 and fold_count(400, 200, None) == 0
    with pytest.raises(ModelError):
        fold_count(10, 3, 5)


def test_constant_answers_do_not_beat_the_majority_baseline():
    truth = [0, 0, 0, 1, 2, 3, 0, 0, 2, 3] * 2
    groups = [f"P{i}" for i in range(20)]
    folds = [i % 2 for i in range(20)]
    report = grade_report(truth, [0] * 20, groups, folds, [0, 0])
    assert report["kappa_quadratic"] == 0.0 and not report["beats_baseline"]
    assert report["baseline"]["accuracy"] == pytest.approx(0.5)
    good = grade_report(truth, truth, groups, folds, [0, 0])
    assert good["beats_baseline"] and good["beats_baseline_every_fold"]
    lo, hi = good["kappa_ci95"]
    assert lo <= good["kappa_quadratic"] <= hi


def test_both_designs_are_compared_and_the_better_is_kept(tmp_path):
    """Cross-validation runs the feature grader and the CNN on the same folds, keeps the one
    with the higher kappa, and the saved card carries both with the interval and the baseline;
    the kept feature grader loads by name and grades through the prediction pipeline."""
    samples = _graded(24)
    run = train_grade(
        samples, folds=3, epochs=1, input_shape=(32, 64, 2), model_options={"width": 4}
    )
    assert set(run.reports) == {"grader_features", "grader_crop"}
    best = max(run.reports, key=lambda d: run.reports[d]["kappa_quadratic"])
    assert run.design == best == "grader_features"  # foci counts separate these grades
    assert run.report["kappa_quadratic"] > 0.6 and run.warning is None
    weights, card_path = save_grade_run(run, tmp_path, "g")
    card = json.loads(card_path.read_text())
    cv = card["cross_validation"]
    assert cv["folds"] == 3 and cv["chosen"] == "grader_features"
    for report in cv["designs"].values():
        assert len(report["kappa_ci95"]) == 2 and len(report["recall_per_grade"]) == 4
        assert "accuracy" in report["baseline"] and len(report["folds"]) == 3
    # beside the designs, the same features over the whole frame: the masks beat it here
    frame = cv["frame_statistics_baseline"]
    assert "whole field of view" in frame["rule"] and frame["beaten"] is True
    assert frame["kappa_quadratic"] < run.report["kappa_quadratic"]
    assert weights.suffix == ".npz"
    grader = load_model("g", tmp_path)
    x = np.stack([grader_input(s.image, s.mask, grader) for s in samples[:4]])
    probs = grader.predict_grades(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert probs.argmax(axis=1).tolist() == [0, 1, 2, 3]
    from sgus_core.bench.throughput import run_bench

    (row,) = run_bench(tmp_path, names=["g"], seconds=0.2, record=True)["models"]
    assert row["runtime"] == "numpy" and row["images_per_s"] > 0
    assert load_model("g", tmp_path).predict_grades(x).shape == (
        4,
        4,
    )  # the record keeps it loadable


def test_masks_that_miss_the_gland_lose_to_the_frame_statistics_baseline(tmp_path):
    """Masks beside the gland (none of the foci inside them): the same features over the whole
    frame grade better, and the run and the card say the masks add nothing. Without masks there
    is no such baseline (it would be the feature grader itself)."""
    from dataclasses import replace

    beside = np.zeros((H, W), bool)
    beside[:, :16] = True
    run = train_grade(
        [replace(s, mask=beside) for s in _graded(24)], design="grader_features", folds=3
    )
    assert run.frame_baseline is not None
    assert run.frame_baseline["kappa_quadratic"] > 0.6 > run.report["kappa_quadratic"]
    assert run.warning is not None and "frame-statistics baseline" in run.warning
    _, card_path = save_grade_run(run, tmp_path, "beside")
    card = json.loads(card_path.read_text())
    assert card["cross_validation"]["frame_statistics_baseline"]["beaten"] is False
    assert "frame-statistics baseline" in card["warning"]
    plain = train_grade(_graded(24, masks=False), design="grader_features", folds=3)
    assert plain.frame_baseline is None


def test_a_grader_that_cannot_learn_is_warned_about(tmp_path):
    """Grades unrelated to the image: the card and the run carry a warning that names the
    majority baseline."""
    run = train_grade(_graded(24, informative=False), design="grader_features", folds=3)
    assert run.warning is not None and "majority baseline" in run.warning
    _, card_path = save_grade_run(run, tmp_path, "noise")
    assert "majority baseline" in json.loads(card_path.read_text())["warning"]


def test_fine_tuning_freezes_the_encoder_first(tmp_path, monkeypatch):
    """In the frozen phase the encoder's kernels stay as saved while the decoder learns; then
    every layer trains, both phases at the fine-tuning rate (a tenth of the training rate: the
    full rate made the decoder unlearn)."""
    import keras

    from sgus_core.training import run as run_module

    masked = [
        Sample(s.image[:64, :64], s.mask[:64, :64], 0, None, s.patient, s.key) for s in _graded(8)
    ]
    base = train_segmenter(
        masked, arch="unet", input_shape=(64, 64, 1), epochs=1, batch_size=4,
        model_options={"base_filters": 4, "depth": 2}, val_fraction=0.2, test_fraction=0.0,
    )  # fmt: skip
    path, _ = save_model(base, tmp_path, "base")
    saved = {w.path: w.numpy() for w in base.model.weights}
    models, snapshots = [], []
    original = run_module._start_model

    def capture(*args, **kwargs):
        out = original(*args, **kwargs)
        models.append(out[0])
        return out

    monkeypatch.setattr(run_module, "_start_model", capture)
    rates: list[float] = []
    adam = keras.optimizers.Adam

    def recording_adam(rate, *args, **kwargs):
        rates.append(float(rate))
        return adam(rate, *args, **kwargs)

    monkeypatch.setattr(keras.optimizers, "Adam", recording_adam)
    train_segmenter(
        masked, from_model=path, epochs=2, freeze_encoder_epochs=1, batch_size=4,
        val_fraction=0.2, test_fraction=0.0, patience=5,
        progress=lambda *_: snapshots.append({w.path: w.numpy().copy() for w in models[0].weights}),
    )  # fmt: skip
    kernels = [w.path for w in models[0].weights if w.path.endswith("kernel")]
    enc = [p for p in kernels if p.startswith("enc")]
    dec = [p for p in kernels if p.startswith("dec")]
    assert enc and dec and encoder_layers(models[0])
    first, second = snapshots
    assert all(np.allclose(first[p], saved[p], atol=1e-3) for p in enc)  # float16 storage
    assert any(not np.allclose(first[p], saved[p], atol=1e-3) for p in dec)
    assert any(not np.array_equal(second[p], first[p]) for p in enc)
    assert rates == [run_module.LEARNING_RATE * run_module.FINE_TUNE_LR_FACTOR] * 2


def test_a_prompted_network_fine_tunes_on_outlines(tmp_path):
    """A 4-channel (prompted) segmenter fine-tunes on plain outlines and still predicts."""
    from sgus_core.nets import build_model

    model = build_model("unet", input_shape=(64, 64, 4), base_filters=4, depth=2)
    model.save(tmp_path / "p.keras")
    (tmp_path / "p.json").write_text(
        json.dumps({"architecture": "unet", "model_options": {"base_filters": 4, "depth": 2}})
    )
    masked = [
        Sample(s.image[:64, :64], s.mask[:64, :64], 0, None, s.patient, s.key) for s in _graded(8)
    ]
    result = train_segmenter(
        masked, from_model=tmp_path / "p.keras", epochs=1, batch_size=4,
        val_fraction=0.2, test_fraction=0.0,
    )  # fmt: skip
    assert result.input_shape == (64, 64, 4)
    (mask,) = predict_masks(result.model, [masked[0].image])
    assert mask.shape == masked[0].image.shape


def test_a_saved_fine_tuned_network_carries_no_optimizer_state(tmp_path):
    """A fine-tuned network is saved with its weights only (no Adam moments tripling it)."""
    import io
    import zipfile

    import h5py

    masked = [
        Sample(s.image[:64, :64], s.mask[:64, :64], 0, None, s.patient, s.key) for s in _graded(8)
    ]
    base = train_segmenter(
        masked, arch="unet", input_shape=(64, 64, 1), epochs=1, batch_size=4,
        model_options={"base_filters": 4, "depth": 2}, val_fraction=0.2, test_fraction=0.0,
    )  # fmt: skip
    path, _ = save_model(base, tmp_path, "base")
    tuned = train_segmenter(
        masked, from_model=path, epochs=1, batch_size=4, val_fraction=0.2, test_fraction=0.0
    )
    weights, _ = save_model(tuned, tmp_path, "tuned", weights_dtype="float32")
    with zipfile.ZipFile(weights) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5:
        assert "optimizer" not in h5
    assert load_model("tuned", tmp_path, runtime="keras").input_shape == (64, 64, 1)
