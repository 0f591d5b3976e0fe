"""The learning curve: how many of a clinic's own outlined frames fine-tuning needs.

For an appearance family F, the starting point is the default segmenter's network trained on
every family *but* F (``models/held-out/<default>-without-F.keras``, the leave-one-family-out
network of ``sgus bench-generalisation``, kept beside the default by ``--keep-as``), so F plays the
part of a clinic's scanner the models never saw.
For each N it is fine-tuned (``sgus train segment --from``: frozen encoder, then all layers,
early stopping) on N labelled frames of F, and the feature grader is fitted on the same N
frames; both are tested on fixed frames of F that no training drew (the generalisation test
seeds), through the real prediction pipeline. Row N = 0 is the network before fine-tuning.

The grader figure is the quadratic kappa of the grades on the test frames, read inside the
fine-tuned segmenter's masks (what the app does with an unlabelled frame); beside it the majority
baseline's accuracy (always the commonest grade of the N training frames; its kappa is 0).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sgus_core.bench.generalisation import (
    as_imported,
    evaluate,
    family_test_frames,
    held_out_path,
)
from sgus_core.errors import ModelError
from sgus_core.synthesis.families import family
from sgus_core.synthesis.family import SynthFrame

TRAIN_FIRST_SEED = 9_500_000  # the clinic's labelled frames: seeds no other bench or training uses
DEFAULT_SIZES = (5, 10, 20, 40)
Log = Callable[[str], None]


def held_out_segmenter(models_dir: Path, name: str, start: str | None = None) -> Path:
    """The shipped network of model ``start`` (default: the default segmenter) that never saw
    family ``name`` (:func:`~sgus_core.bench.generalisation.held_out_path`).

    Raises:
        ModelError: none is shipped for it (the message says how to make one).
    """
    from sgus_core.inference.registry import default_model_names

    start = start or default_model_names(models_dir).get("segment")
    if not start:
        raise ModelError(f"No default segmenter in {models_dir}; pass --start or --segmenter.")
    path = held_out_path(models_dir, start, name)
    if not path.is_file():
        raise ModelError(
            f"No network of {start} trained without family {name!r} at {path}; make one with "
            "`sgus bench-generalisation --keep-as NAME`, or pass --start or --segmenter."
        )
    return path


def _training_frames(name: str, n: int) -> list[SynthFrame]:
    """``n`` frames of family ``name`` with the grades dealt in turn 0, 1, 2, 3 (a clinic that
    labels a handful of frames picks some of every grade)."""
    render = family(name)
    return [render(TRAIN_FIRST_SEED + i, devita=i % 4) for i in range(n)]


def _samples(frames: Sequence[SynthFrame]) -> list:
    """Frames as the store would hand them to training: the detected FOV crop, one patient each."""
    from sgus_core.training.data import Sample

    out = []
    for i, frame in enumerate(frames):
        fov = as_imported(frame).fov
        out.append(
            Sample(
                image=frame.image[fov.slices],
                mask=frame.mask[fov.slices],
                devita=frame.devita,
                omeract=None,
                patient=f"clinic-{i}",
                key=f"{frame.family}:{frame.seed}",
            )
        )
    return out


def _grade_figures(
    feature_model: Any, tests: Sequence[SynthFrame], masks: Sequence[np.ndarray], majority: int
) -> dict[str, float]:
    from sgus_core.inference.features import grade_features
    from sgus_core.training.losses import quadratic_kappa

    truth = np.array([f.devita for f in tests])
    x = []
    for frame, mask in zip(tests, masks, strict=True):
        fov = as_imported(frame).fov
        x.append(grade_features(frame.image[fov.slices], mask[fov.slices]))
    predicted = feature_model.probabilities(np.stack(x)).argmax(axis=1)
    return {
        "kappa": round(quadratic_kappa(truth, predicted), 4),
        "grade_accuracy": round(float(np.mean(predicted == truth)), 4),
        "baseline_accuracy": round(float(np.mean(truth == majority)), 4),
    }


def _epoch_log(log: Log, tag: str) -> Callable[[int, int, dict[str, float]], None]:
    def progress(done: int, total: int, logs: dict[str, float]) -> None:
        log(f"{tag}: epoch {done}/{total} val_iou {logs.get('val_iou', 0):.3f}")

    return progress


def learning_curve(
    name: str,
    models_dir: Path,
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    n_test: int = 40,
    epochs: int = 60,
    segmenter: Path | None = None,
    start: str | None = None,
    seed: int = 0,
    log: Log = print,
) -> dict[str, Any]:
    """Fine-tune on N = ``sizes`` frames of family ``name`` and test on ``n_test`` others,
    starting from ``segmenter`` (a ``.keras`` file), else from the network of model ``start``
    (default: the default segmenter) that never saw the family.

    Returns:
        ``{"family", "segmenter", "n_test", "rows": [{"n", "zero_shot", "box_5", "kappa", ...}]}``.

    Raises:
        ModelError: no held-out network for the family, or a size below 3.
    """
    from sgus_core.inference.pipeline import segment_frames
    from sgus_core.inference.registry import load_model
    from sgus_core.training.cards import save_model
    from sgus_core.training.feature_grader import fit_feature_model, sample_features
    from sgus_core.training.run import train_segmenter
    from sgus_core.training.validation import majority_grade

    if any(n < 3 for n in sizes):
        raise ModelError("every size must be at least 3 frames (one to validate on)")
    first = Path(segmenter) if segmenter else held_out_segmenter(models_dir, name, start)
    tests = family_test_frames(name, n_test)
    pool = _samples(_training_frames(name, max(sizes)))
    rows: list[dict[str, Any]] = []
    before = evaluate(load_model(first.stem, first.parent, runtime="keras"), tests)
    rows.append({"n": 0, **before})
    log(f"{name}: before fine-tuning {before}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(sizes):
            part = pool[:n]
            result = train_segmenter(
                part,
                from_model=first,
                epochs=epochs,
                patience=15,
                val_fraction=0.2,
                test_fraction=0.0,
                batch_size=4,
                seed=seed,
                progress=_epoch_log(log, f"{name} N={n}"),
            )
            weights, _ = save_model(result, Path(tmp), f"tuned-{n}")
            tuned = load_model(weights.stem, weights.parent, runtime="keras")
            row: dict[str, Any] = {"n": n, **evaluate(tuned, tests)}
            y = np.array([s.devita for s in part])
            grader = fit_feature_model(sample_features(part), y, [s.patient for s in part])
            masks = [p.mask for p in segment_frames(tuned, [as_imported(f) for f in tests])]
            row |= _grade_figures(grader, tests, masks, majority_grade(y.tolist()))
            row["epochs_run"] = result.epochs_run
            row["kept_start"] = bool(result.test_metrics.get("kept_start", False))
            row["train_seconds"] = round(result.seconds, 1)
            rows.append(row)
            log(f"{name} N={n}: {row}")
    return {"family": name, "segmenter": str(first), "n_test": n_test, "rows": rows}


def format_curve(result: dict[str, Any]) -> str:
    """The curve as text: one row per N."""
    columns = ["zero_shot", "box_5", "box_5_click", "kappa", "grade_accuracy", "baseline_accuracy"]
    lines = [
        f"family {result['family']}: fine-tuned from {Path(result['segmenter']).name}, "
        f"tested on {result['n_test']} other frames",
        f"{'N':>4}" + "".join(f"{c:>18}" for c in columns),
    ]
    for row in result["rows"]:
        cells = [row.get(c) for c in columns]
        lines.append(
            f"{row['n']:>4}" + "".join(f"{'-' if v is None else f'{v:.3f}':>18}" for v in cells)
        )
    return "\n".join(lines)


def grader_benchmark(
    name: str,
    models_dir: Path,
    *,
    n: int = 150,
    folds: int = 5,
    epochs: int = 40,
    segmenter: Path | None = None,
    start: str | None = None,
    masks: str = "predicted",
    seed: int = 0,
    log: Log = print,
) -> dict[str, Any]:
    """Both grader designs cross-validated on ``n`` graded frames of family ``name`` without
    masks, as ``sgus train grade`` runs them on a clinic's set.

    ``masks``: "predicted" (outlined by the network that never saw the family, zero-shot: what
    a clinic without outlines gets), "fov" (none: the whole field of view) or "rater" (the true
    outlines, an upper bound).

    Returns:
        ``{"family", "n", "masks", "designs": {design: report}, "chosen", "frame_baseline"
        (the frame-statistics baseline's report; None with ``masks="fov"``), "warning"}``.
    """
    import dataclasses

    from sgus_core.inference.pipeline import segment_crops
    from sgus_core.inference.registry import load_model
    from sgus_core.training.grading import train_grade

    if masks not in ("predicted", "fov", "rater"):
        raise ModelError(f"masks must be predicted, fov or rater, not {masks!r}")
    render = family(name)
    frames = [render(TRAIN_FIRST_SEED + 100_000 + i) for i in range(n)]
    samples = _samples(frames)
    for i, s in enumerate(samples):  # two frames per patient, as a clinic images both sides
        samples[i] = dataclasses.replace(s, patient=f"clinic-{i // 2}")
    if masks == "fov":
        samples = [dataclasses.replace(s, mask=None) for s in samples]
    elif masks == "predicted":
        first = Path(segmenter) if segmenter else held_out_segmenter(models_dir, name, start)
        model = load_model(first.stem, first.parent, runtime="keras")
        predicted = segment_crops(model, [s.image for s in samples])
        samples = [dataclasses.replace(s, mask=m) for s, m in zip(samples, predicted, strict=True)]

    def say(stage: str, done: int, total: int, logs: dict[str, float]) -> None:
        if done == total:
            log(f"{name} grader: {stage} done")

    run = train_grade(samples, folds=folds, epochs=epochs, seed=seed, progress=say)
    return {
        "family": name,
        "n": n,
        "masks": masks,
        "designs": run.reports,
        "chosen": run.design,
        "frame_baseline": run.frame_baseline,
        "warning": run.warning,
    }


def format_grader(result: dict[str, Any]) -> str:
    """One line per design: CV kappa with its interval, accuracy, baseline, every fold beaten."""
    lines = [
        f"family {result['family']}: {result['n']} graded frames, masks {result['masks']}, "
        f"kept {result['chosen']}"
    ]
    for design, r in result["designs"].items():
        lo, hi = r.get("kappa_ci95") or (float("nan"), float("nan"))
        lines.append(
            f"  {design:<16} kappa {r['kappa_quadratic']:.3f} (95 % {lo:.3f} to {hi:.3f})  "
            f"accuracy {r['accuracy']:.3f}  majority baseline {r['baseline']['accuracy']:.3f}  "
            f"beats it on every fold: {'yes' if r['beats_baseline_every_fold'] else 'no'}  "
            f"recall per grade {' '.join(f'{v:.2f}' for v in r['recall_per_grade'])}"
        )
    frame = result.get("frame_baseline")
    if frame:
        lo, hi = frame.get("kappa_ci95") or (float("nan"), float("nan"))
        lines.append(
            f"  {'frame statistics':<16} kappa {frame['kappa_quadratic']:.3f} (95 % {lo:.3f}-"
            f"{hi:.3f})  accuracy {frame['accuracy']:.3f}  (baseline: the same features over "
            "the whole field of view, no mask)"
        )
    return "\n".join(lines)


GRADER_TRAIN_SEED = 8_100_000  # grader generalisation: training frames of each family
GRADER_TEST_SEED = 8_200_000  # and its test frames


def grader_generalisation(
    models_dir: Path,
    *,
    n_train: int = 150,
    n_test: int = 60,
    shipped: Sequence[str] = ("grader-crop",),
    keep_as: str | None = None,
    make_default: bool = False,
    start: str | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Leave-one-family-out for the feature grader, beside the shipped graders.

    For each family F: the feature grader is fitted on ``n_train`` frames of each other family
    (inside their true outlines) and tested on ``n_test`` frames of F read inside the masks of
    the default segmenter's network that never saw F (:func:`held_out_segmenter`; the default
    itself was trained on F, so its masks there would be in-family), as the app grades an
    imported frame; the shipped graders and the majority
    baseline are scored on the same frames. With ``keep_as`` the feature grader fitted on every
    family (5-fold patient-grouped CV figures on its card, and this table under
    ``"generalisation"``) is saved into the models folder; ``make_default`` makes it the default
    grader.

    Returns:
        ``{"held_out": {family: {"features": {...}, "<shipped>": {...}, "majority_accuracy"}},
        "worst_held_out": {...}, "kept": name or None}``.
    """
    import json

    from sgus_core.inference.features import grade_features
    from sgus_core.inference.pipeline import grader_input, segment_frames
    from sgus_core.inference.registry import DEFAULTS_FILE, load_model
    from sgus_core.synthesis.families import FAMILIES
    from sgus_core.training.cards import save_grade_run
    from sgus_core.training.grading import train_grade
    from sgus_core.training.losses import quadratic_kappa

    networks = {name: held_out_segmenter(models_dir, name, start) for name in FAMILIES}
    graders = {name: load_model(name, models_dir) for name in shipped}
    training: dict[str, list] = {}
    tests: dict[str, tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = {}
    for name in FAMILIES:
        render = family(name)
        training[name] = _samples([render(GRADER_TRAIN_SEED + i) for i in range(n_train)])
        frames = [render(GRADER_TEST_SEED + i) for i in range(n_test)]
        seen = [as_imported(f) for f in frames]
        crops, masks = [], []
        segmenter = load_model(networks[name].stem, networks[name].parent, runtime="keras")
        for frame, prediction in zip(seen, segment_frames(segmenter, seen), strict=True):
            crops.append(frame.pixels[frame.fov.slices])
            masks.append(prediction.mask[frame.fov.slices])
        x = np.stack([grade_features(c, m) for c, m in zip(crops, masks, strict=True)])
        inputs = {
            g: np.stack([grader_input(c, m, model) for c, m in zip(crops, masks, strict=True)])
            for g, model in graders.items()
        }
        tests[name] = (x, inputs, np.array([f.devita for f in frames]))
        log(f"grader generalisation: {name} prepared")

    def score(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        return {
            "kappa": round(quadratic_kappa(truth, predicted), 4),
            "accuracy": round(float(np.mean(truth == predicted)), 4),
        }

    from sgus_core.training.feature_grader import fit_feature_model, sample_features

    features = {name: sample_features(s) for name, s in training.items()}
    held_out: dict[str, dict[str, Any]] = {}
    for name in FAMILIES:
        others = [f for f in FAMILIES if f != name]
        x_fit = np.concatenate([features[f] for f in others])
        y_fit = np.concatenate([[s.devita for s in training[f]] for f in others])
        groups = [f"{f}-{s.patient}" for f in others for s in training[f]]
        model = fit_feature_model(x_fit, y_fit, groups)
        x, inputs, truth = tests[name]
        row: dict[str, Any] = {"features": score(truth, model.probabilities(x).argmax(axis=1))}
        for g, grader in graders.items():
            row[g] = score(truth, np.asarray(grader.predict_grades(inputs[g])).argmax(axis=1))
        row["majority_accuracy"] = round(float(np.mean(truth == np.bincount(y_fit).argmax())), 4)
        held_out[name] = row
        log(f"grader generalisation: held out {name}: {row}")
    designs = ["features", *graders]
    worst = {d: min(held_out[f][d]["kappa"] for f in FAMILIES) for d in designs}
    result: dict[str, Any] = {
        "n_train_per_family": n_train,
        "n_test_per_family": n_test,
        "masks": {name: path.stem for name, path in networks.items()},
        "held_out": held_out,
        "worst_held_out_kappa": worst,
        "kept": None,
    }
    if keep_as:
        everything = [_with_patient(s, f"{f}-{s.patient}") for f in FAMILIES for s in training[f]]
        run = train_grade(everything, design="grader_features", folds=5)
        extra = {
            "training_data_families": list(FAMILIES),
            "generalisation": {k: v for k, v in result.items() if k != "kept"},
        }
        save_grade_run(run, models_dir, keep_as, card_extra=extra)
        result["kept"] = keep_as
        if make_default:
            path = Path(models_dir) / DEFAULTS_FILE
            names = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            names["grade"] = keep_as
            path.write_text(json.dumps(names, indent=2), encoding="utf-8")
    return result


def _with_patient(sample: Any, patient: str) -> Any:
    """The sample with another patient id (families share the ``clinic-<i>`` names)."""
    import dataclasses

    return dataclasses.replace(sample, patient=patient)


def format_grader_generalisation(result: dict[str, Any]) -> str:
    """Rows: held-out family; columns: quadratic kappa (accuracy) per grader, the baseline."""
    designs = list(next(iter(result["held_out"].values())))
    designs = [d for d in designs if d != "majority_accuracy"]
    lines = [
        f"{'held-out family':<16}"
        + "".join(f"{d + ' kappa (acc)':>26}" for d in designs)
        + f"{'majority acc':>14}"
    ]
    for name, row in result["held_out"].items():
        cells = "".join(f"{row[d]['kappa']:>17.3f} ({row[d]['accuracy']:.3f})" for d in designs)
        lines.append(f"{name:<16}{cells}{row['majority_accuracy']:>14.3f}")
    worst = "".join(f"{result['worst_held_out_kappa'][d]:>17.3f}{'':>9}" for d in designs)
    lines.append(f"{'worst held-out':<16}{worst}")
    return "\n".join(lines)
