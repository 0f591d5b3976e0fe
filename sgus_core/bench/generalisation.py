"""The generalisation benchmark: train on all appearance families but one, test on the one left out.

A segmenter that scores well on frames of the renderer it was trained on may only have learnt
that renderer. So every candidate is judged on families it never saw: for each family F, a
network is trained on the other families (on the fly, ``training.synthetic``) and tested on
frames of F through the real prediction pipeline (field of view detected on the full frame,
exactly as for an imported scanner frame). The table holds the zero-shot IoU, the prompted IoU
(box = the true outline's bounding box padded by 5 %; padded by 15 %; 5 % box plus one include
click) and model-free baselines on the same frames (a prior ellipse in the field of view, an
ellipse inscribed in the box, OpenCV GrabCut from the box). The recipe is chosen by its worst
held-out IoU, never by the in-family one.

Trained networks are cached in the work folder by their settings, so a second run only tests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sgus_core import metrics
from sgus_core.errors import ModelError
from sgus_core.imaging import Frame, Rect, detect_fov
from sgus_core.inference.pipeline import (
    prompted_mask,
    prompted_probability,
    segment_frames,
    segment_prompted,
)
from sgus_core.inference.processing import THRESHOLD
from sgus_core.inference.prompts import (
    Prompt,
    box_prior,
    padded_box,
    prompt_region,
    takes_prompts,
)
from sgus_core.inference.runtimes import Segmenter
from sgus_core.synthesis.families import FAMILIES, family
from sgus_core.synthesis.family import SynthFrame

TEST_FIRST_SEED = 9_000_000  # test frames: far from every training and validation seed
CALIBRATION_FIRST_SEED = 8_000_000  # frames a network's reading is chosen on (never test frames)
# The readings calibration tries for the prompted mode: (test-time flip, weight of the box's
# ellipse prior, threshold). Only the prompted mode is calibrated: choosing the zero-shot reading
# the same way raised the training families' IoU but lowered the held-out families' (phantom
# 0.508 -> 0.433, randomised 0.401 -> 0.392, scatter equal). Flip and threshold raised all three
# held-out prompted figures (5 % box 0.817 -> 0.858, 0.769 -> 0.778, 0.667 -> 0.696); the prior,
# chosen the same way on the training families, raised the worst held-out family (scatter: mean
# of the 5 % and 15 % boxes 0.664 -> 0.719; randomised 0.763 -> 0.776; phantom 0.841 -> 0.838).
PROMPTED_READINGS = tuple(
    (flip, prior, t)
    for flip in (False, True)
    for prior in (0.0, 0.2, 0.4, 0.6)
    for t in (0.4, 0.5, 0.6, 0.7, 0.8)
)
PROMPT_PADS = {"box_5": 0.05, "box_15": 0.15}
HELD_OUT_DIR = "held-out"  # under the models folder: the networks that never saw one family
Progress = Callable[[str], None]


def held_out_path(models_dir: Path, name: str, family_name: str) -> Path:
    """Where the leave-one-family-out network of model ``name`` that never saw
    ``family_name`` is kept: ``<models>/held-out/<name>-without-<family>.keras``."""
    return Path(models_dir) / HELD_OUT_DIR / f"{name}-without-{family_name}.keras"


@dataclass(frozen=True)
class Recipe:
    """How a candidate network is trained (what the cache key covers)."""

    arch: str = "unet"
    base_filters: int = 8
    input_size: tuple[int, int] = (192, 256)
    prompted: bool = True
    epochs: int = 14
    steps_per_epoch: int = 140
    batch_size: int = 8
    seed: int = 0
    # Then continue the trained network this many more epochs at this rate (a fresh Adam and
    # early stopping): the longer schedule without retraining the first part, which is cached.
    then_epochs: int = 0
    then_learning_rate: float = 5e-4
    # During the continuation, send this share of the examples through a random grey-level
    # curve that may invert contrast (``AugmentConfig.remap_p``).
    then_remap: float = 0.0
    # ... and this share through a random shallow convolutional network (new texture and
    # grey-level response, ``AugmentConfig.random_conv_p``).
    then_random_conv: float = 0.0
    # Read the zero-shot mode with a test-time flip (mean of the frame's and its mirror's
    # probability). Not part of the key: it changes how a network is read, not how it is trained.
    zero_shot_flip: bool = False

    def key(self, families: Sequence[str]) -> str:
        """File stem of the network trained with this recipe on ``families``."""
        h, w = self.input_size
        mode = "p" if self.prompted else "z"
        then = f"-then-e{self.then_epochs}lr{self.then_learning_rate:g}" if self.then_epochs else ""
        if self.then_epochs and self.then_remap:
            then += f"rm{self.then_remap:g}"
        if self.then_epochs and self.then_random_conv:
            then += f"rc{self.then_random_conv:g}"
        return (
            f"{self.arch}{self.base_filters}-{h}x{w}{mode}-e{self.epochs}s{self.steps_per_epoch}"
            f"b{self.batch_size}{then}-seed{self.seed}-on-{'_'.join(sorted(families))}"
        )


def family_test_frames(name: str, n: int) -> list[SynthFrame]:
    """``n`` frames of family ``name`` at the family's realistic sizes, from fixed test seeds."""
    render = family(name)
    return [render(TEST_FIRST_SEED + i) for i in range(n)]


def as_imported(frame: SynthFrame) -> Frame:
    """A synthetic frame as an imported scanner frame: grey pixels, field of view detected."""
    return Frame(frame.image, None, detect_fov(frame.image))


def include_click(mask: np.ndarray, seed: int) -> tuple[float, float]:
    """One click inside the gland, away from its border (as a person would place it)."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    ys, xs = np.nonzero(inner if inner.any() else mask)
    i = int(np.random.default_rng(seed).integers(len(xs)))
    return float(xs[i]), float(ys[i])


def ellipse_in_box(shape: tuple[int, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    """Baseline: the ellipse inscribed in a box (bool mask of ``shape``)."""
    x0, y0, x1, y1 = box
    out = np.zeros(shape[:2], np.uint8)
    centre = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
    cv2.ellipse(out, centre, (max(1, (x1 - x0) // 2), max(1, (y1 - y0) // 2)), 0, 0, 360, 1, -1)
    return out > 0


def prior_ellipse(shape: tuple[int, ...], fov: Rect) -> np.ndarray:
    """Zero-shot baseline: where glands usually are, an ellipse in the middle band of the FOV
    (centre at 50 % of its width and 45 % of its height, 60 % wide and 25 % high)."""
    cx, cy = fov.x + 0.5 * fov.width, fov.y + 0.45 * fov.height
    half_w, half_h = 0.3 * fov.width, 0.125 * fov.height
    box = (int(cx - half_w), int(cy - half_h), int(cx + half_w), int(cy + half_h))
    return ellipse_in_box(shape, box)


def grabcut_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Baseline: OpenCV GrabCut (5 iterations) from a box, on the box's neighbourhood downscaled
    to at most 400 px wide. Grey frames give GrabCut's colour models little to go on from a bare
    rectangle (it then often keeps nothing), so it starts from a mask: outside the box certain
    background, the ellipse inscribed in the box probable gland, the rest of the box probable
    background (the rectangle argument is ignored in that mode). On grey phantoms its colour
    models often cannot tell gland from border and it keeps nothing: that is its score."""
    h, w = image.shape
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) // 4 + 2, (y1 - y0) // 4 + 2
    cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    crop = image[cy0:cy1, cx0:cx1]
    scale = min(1.0, 400.0 / crop.shape[1])
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    local = (
        int((x0 - cx0) * scale),
        int((y0 - cy0) * scale),
        int((x1 - cx0) * scale),
        int((y1 - cy0) * scale),
    )
    labels = np.full(small.shape, cv2.GC_BGD, np.uint8)
    labels[local[1] : local[3] + 1, local[0] : local[2] + 1] = cv2.GC_PR_BGD
    labels[ellipse_in_box(small.shape, local)] = cv2.GC_PR_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR), labels, (0, 0, 1, 1), bgd, fgd, 5,
                    cv2.GC_INIT_WITH_MASK)  # fmt: skip
    except cv2.error:
        return ellipse_in_box(image.shape, box)
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    out = np.zeros(image.shape, bool)
    size = (cx1 - cx0, cy1 - cy0)
    out[cy0:cy1, cx0:cx1] = cv2.resize(fg, size, interpolation=cv2.INTER_NEAREST) > 0
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iou, _ = metrics.batch_iou_dice(a[None], b[None])
    return float(iou[0])


def evaluate(
    segmenter: Segmenter | None, frames: Sequence[SynthFrame], *, baselines: bool = False
) -> dict[str, float]:
    """Mean IoU on ``frames`` of every mode the segmenter has (and of the baselines).

    Keys: ``zero_shot``; with prompts ``box_5``, ``box_15``, ``box_5_click``; with
    ``baselines`` also ``prior_ellipse``, ``ellipse_box_5``, ``grabcut_box_5``. Values are mean
    IoU over the frames; ``zero_shot_min`` is the worst frame."""
    scores: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        scores.setdefault(key, []).append(value)

    imported = [as_imported(f) for f in frames]
    if segmenter is not None:
        for frame, pred in zip(frames, segment_frames(segmenter, imported), strict=True):
            add("zero_shot", _iou(pred.mask, frame.mask))
        if takes_prompts(segmenter.input_shape):
            for i, (frame, seen) in enumerate(zip(frames, imported, strict=True)):
                for key, pad in PROMPT_PADS.items():
                    box = padded_box(frame.mask, pad)
                    add(key, _iou(segment_prompted(segmenter, seen, Prompt(box)).mask, frame.mask))
                box = padded_box(frame.mask, 0.05)
                click = Prompt(box, (include_click(frame.mask, i),))
                add("box_5_click", _iou(segment_prompted(segmenter, seen, click).mask, frame.mask))
    if baselines:
        for frame, seen in zip(frames, imported, strict=True):
            box = padded_box(frame.mask, 0.05)
            add("prior_ellipse", _iou(prior_ellipse(frame.image.shape, seen.fov), frame.mask))
            add("ellipse_box_5", _iou(ellipse_in_box(frame.image.shape, box), frame.mask))
            add("grabcut_box_5", _iou(grabcut_box(frame.image, box), frame.mask))
    out = {key: round(float(np.mean(v)), 4) for key, v in scores.items()}
    if "zero_shot" in scores:
        out["zero_shot_min"] = round(float(np.min(scores["zero_shot"])), 4)
    return out


def calibrate(
    segmenter: Segmenter, families: Sequence[str], *, n: int = 24
) -> dict[str, dict[str, Any]]:
    """Choose a prompted segmenter's prompted :class:`~sgus_core.inference.pipeline.Reading`
    on ``n`` calibration frames of each of ``families`` (the families it was trained on:
    choosing on a held-out family would be choosing by the test): of
    :data:`PROMPTED_READINGS`, the reading whose worst family mean IoU over the 5 % and 15 %
    boxes is highest; ties keep the plainer reading (no flip, no prior, threshold 0.5 first).
    The network runs once per frame, box and flip; the readings share its output.

    Returns:
        The card's ``"reading"`` block: ``{"prompted": {"flip", "prior", "threshold",
        "chosen_on", "frames_per_family", "worst_iou", "plain_worst_iou"}}`` (``plain``: no
        flip, no prior, threshold 0.5), empty for a zero-shot-only segmenter.
    """
    if not takes_prompts(segmenter.input_shape):
        return {}
    scores: dict[tuple[bool, float, float], dict[str, list[float]]] = {}
    for name in families:
        for i in range(n):
            frame = family(name)(CALIBRATION_FIRST_SEED + i)
            seen = as_imported(frame)
            for pad in PROMPT_PADS.values():
                prompt = Prompt(padded_box(frame.mask, pad)).checked(seen.pixels.shape)
                for flip in (False, True):
                    network = prompted_probability(segmenter, seen, prompt, flip=flip)
                    prior_map = box_prior(
                        prompt.box, prompt_region(prompt.box, seen.pixels.shape), seen.pixels.shape
                    )
                    for f, prior, t in PROMPTED_READINGS:
                        if f != flip:
                            continue
                        blended = (1 - prior) * network + prior * prior_map if prior else network
                        iou = _iou(prompted_mask(blended, prompt, t), frame.mask)
                        scores.setdefault((f, prior, t), {}).setdefault(name, []).append(iou)
    worst = {
        reading: min(float(np.mean(v)) for v in by_family.values())
        for reading, by_family in scores.items()
    }
    plain = (False, 0.0, THRESHOLD)
    best = max(sorted(worst, key=lambda k: (k != plain, k)), key=lambda k: worst[k])
    return {
        "prompted": {
            "flip": best[0],
            "prior": best[1],
            "threshold": best[2],
            "chosen_on": sorted(families),
            "frames_per_family": n,
            "worst_iou": round(worst[best], 4),
            "plain_worst_iou": round(worst[plain], 4),
        }
    }


def calibrated(weights: Path, families: Sequence[str], log: Progress) -> Path:
    """Make sure the card beside ``weights`` holds a reading chosen on ``families``; returns
    ``weights``."""
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    reading = card.get("reading") or {}
    prompted = reading.get("prompted")
    current = prompted is None or (
        prompted.get("chosen_on") == sorted(families) and "prior" in prompted
    )
    if "reading" in card and current:  # chosen on these families, from today's readings
        return weights
    log(f"{weights.stem}: choosing its reading (flip, prior, threshold) on {', '.join(families)}")
    others = {mode: block for mode, block in reading.items() if mode != "prompted"}
    card["reading"] = others | calibrate(load_candidate(weights), families)
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    log(f"{weights.stem}: reading {card['reading']}")
    return weights


def read_zero_shot(weights: Path, flip: bool) -> Path:
    """Write the recipe's zero-shot reading (test-time flip or not, threshold 0.5) into the card
    beside ``weights``; returns ``weights``."""
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    block = {
        "flip": flip,
        "threshold": THRESHOLD,
        "chosen_by": "the recipe (worst held-out family)",
    }
    card["reading"] = (card.get("reading") or {}) | {"zero_shot": block}
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    return weights


def train_candidate(recipe: Recipe, families: Sequence[str], work_dir: Path, log: Progress) -> Path:
    """Train (or find in ``work_dir``) the network of ``recipe`` on ``families``; returns its
    ``.keras`` path (an ONNX copy and a card lie beside it)."""
    from sgus_core.training.cards import save_model
    from sgus_core.training.export import export_accelerated
    from sgus_core.training.run import train_segmenter_synthetic
    from sgus_core.training.synthetic import SynthConfig

    name = recipe.key(families)
    weights = Path(work_dir) / f"{name}.keras"
    if weights.is_file() and weights.with_suffix(".onnx").is_file():
        log(f"{name}: trained before, reusing it")
        return weights
    start = None
    if recipe.then_epochs:  # the first part of the schedule, trained (or found) first
        start = train_candidate(replace(recipe, then_epochs=0), families, work_dir, log)
    channels = 4 if recipe.prompted else 1
    config = SynthConfig(tuple(sorted(families)), input_shape=(*recipe.input_size, channels))
    if start and (recipe.then_remap or recipe.then_random_conv):
        config = replace(
            config,
            augmentation=replace(
                config.augmentation,
                remap_p=recipe.then_remap,
                random_conv_p=recipe.then_random_conv,
            ),
        )

    def on_epoch(done: int, total: int, logs: dict[str, float]) -> None:
        log(f"{name}: epoch {done}/{total} loss {logs.get('loss', 0):.3f} "
            f"val_iou {logs.get('val_iou', 0):.3f}")  # fmt: skip

    result = train_segmenter_synthetic(
        config,
        arch=recipe.arch,
        epochs=recipe.then_epochs or recipe.epochs,
        steps_per_epoch=recipe.steps_per_epoch,
        batch_size=recipe.batch_size,
        seed=recipe.seed + (1 if start else 0),  # the continuation sees new frames
        model_options={"base_filters": recipe.base_filters, "depth": 4},
        from_model=start,
        learning_rate=recipe.then_learning_rate if start else None,
        progress=on_epoch,
    )
    extra = {
        "training_data": {"hash": config.digest(), **config.describe()},
        "continued_from": start.stem if start else None,
        "prompts": recipe.prompted,
        "prompting": {
            "channels": "1: box (1 inside), 2: include clicks, 3: exclude clicks (Gaussian bumps, "
            "sigma 5 network px); all 0 for zero-shot",
            "crop": "the box padded by 25 % of its width and height on each side, clipped to "
            "the frame, resized like the field of view",
            "boxes": "inclusive frame pixels (x0, y0, x1, y1)",
        }
        if recipe.prompted
        else None,
    }
    weights, _ = save_model(result, Path(work_dir), name, card_extra=extra)
    export_accelerated(weights, weights.with_suffix(".onnx"))
    return weights


def load_candidate(weights: Path) -> Segmenter:
    """A trained candidate on ONNX Runtime (as the app would run it)."""
    from sgus_core.inference.registry import load_model

    return load_model(weights.stem, weights.parent, runtime="onnx")


def leave_one_family_out(
    recipe: Recipe,
    work_dir: Path,
    *,
    families: Sequence[str] = tuple(FAMILIES),
    n_test: int = 40,
    log: Progress = print,
) -> dict[str, Any]:
    """Train on all families but one, test on the one left out, for each family.

    Returns:
        ``{"recipe": ..., "held_out": {family: {mode: IoU}}, "in_family": {family: {...}},
        "baselines": {family: {...}}, "worst_held_out": {mode: IoU}}``. ``in_family`` is the
        network trained on every family tested on each (never a basis for choosing).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tests = {name: family_test_frames(name, n_test) for name in families}
    held_out: dict[str, dict[str, float]] = {}
    held_out_models: dict[str, str] = {}
    baselines: dict[str, dict[str, float]] = {}

    def ready(trained_on: list[str]) -> Path:
        weights = calibrated(train_candidate(recipe, trained_on, work_dir, log), trained_on, log)
        return read_zero_shot(weights, recipe.zero_shot_flip)

    for name in families:
        weights = ready([f for f in families if f != name])
        held_out_models[name] = str(weights)
        model = load_candidate(weights)
        held_out[name] = evaluate(model, tests[name])
        baselines[name] = evaluate(None, tests[name], baselines=True)
        log(f"held out {name}: {held_out[name]}  baselines {baselines[name]}")
    everything_path = ready(list(families))
    everything = load_candidate(everything_path)
    in_family = {name: evaluate(everything, tests[name]) for name in families}
    modes = sorted({m for row in held_out.values() for m in row})
    worst = {m: min(row[m] for row in held_out.values() if m in row) for m in modes}
    return {
        "recipe": recipe.__dict__ | {"input_size": list(recipe.input_size)},
        "n_test_per_family": n_test,
        "held_out": held_out,
        "in_family": in_family,
        "baselines": baselines,
        "worst_held_out": worst,
        "all_families_model": str(everything_path),
        "held_out_models": held_out_models,
    }


def evaluate_shipped(
    names: Sequence[str], models_dir: Path, *, families: Sequence[str] = tuple(FAMILIES),
    n_test: int = 40,
) -> dict[str, dict[str, dict[str, float]]]:  # fmt: skip
    """Shipped models on every family's test frames: ``{model: {family: {mode: IoU}}}``."""
    from sgus_core.inference.registry import load_model

    tests = {name: family_test_frames(name, n_test) for name in families}
    return {
        model: {
            name: evaluate(load_model(model, models_dir), frames) for name, frames in tests.items()
        }
        for model in names
    }


def format_table(result: dict[str, Any]) -> str:
    """The leave-one-family-out table as text (rows: held-out family; columns: modes)."""
    modes = ["zero_shot", "zero_shot_min", "box_5", "box_15", "box_5_click"]
    base = ["prior_ellipse", "ellipse_box_5", "grabcut_box_5"]

    def cells(values: list[float | None]) -> str:
        return "".join(f"{c:>14.3f}" if c is not None else f"{'-':>14}" for c in values)

    lines = [f"{'held-out family':<16}" + "".join(f"{m:>14}" for m in modes + base)]
    for name, row in result["held_out"].items():
        values = [row.get(m) for m in modes] + [result["baselines"][name].get(m) for m in base]
        lines.append(f"{name:<16}" + cells(values))
    worst = result["worst_held_out"]
    lines.append(f"{'worst held-out':<16}" + "".join(
        f"{worst[m]:>14.3f}" if m in worst else f"{'-':>14}" for m in modes))  # fmt: skip
    lines.append("")
    lines.append("in-family (trained on every family; not a basis for choosing):")
    for name, row in result["in_family"].items():
        lines.append(f"{name:<16}" + cells([row.get(m) for m in modes]))  # "-": mode not run
    return "\n".join(lines)


def keep_model(
    result: dict[str, Any], models_dir: Path, name: str, *, make_default: bool = False
) -> Path:
    """Copy the network trained on every family into ``models_dir`` as ``name`` (weights, ONNX
    copy, card), with the benchmark's table in its card under ``"generalisation"``, and each
    network that never saw a family beside it (:func:`held_out_path`: weights and card, what
    ``sgus bench-learning-curve`` starts from); with ``make_default`` it becomes the default
    segmenter in ``default.json`` (and the prompted one, when it takes prompts).
    Returns the card's path.

    Raises:
        ModelError: ``name`` is not a safe model name, or a model of that name exists already.
    """
    from sgus_core.training.cards import check_model_name

    check_model_name(name)
    models_dir = Path(models_dir)
    if (models_dir / f"{name}.json").exists():
        raise ModelError(f"a model named {name!r} exists already in {models_dir}; choose another")
    models_dir.mkdir(parents=True, exist_ok=True)
    source = Path(result["all_families_model"])
    for suffix in (".keras", ".onnx", ".json"):
        shutil.copyfile(source.with_suffix(suffix), models_dir / f"{name}{suffix}")
    card_path = Path(models_dir) / f"{name}.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    keys = ("recipe", "n_test_per_family", "held_out", "in_family", "baselines", "worst_held_out")
    card |= {"name": name, "generalisation": {k: result[k] for k in keys if k in result}}
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    for family_name, weights in result.get("held_out_models", {}).items():
        target = held_out_path(models_dir, name, family_name)
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(weights, target)
        held_card = json.loads(Path(weights).with_suffix(".json").read_text(encoding="utf-8"))
        held_card["name"] = target.stem
        target.with_suffix(".json").write_text(json.dumps(held_card, indent=2), encoding="utf-8")
    if make_default:
        from sgus_core.inference.registry import DEFAULTS_FILE, default_model_names

        chosen = {"segment": name}
        if result["recipe"].get("prompted", True):
            chosen["prompted"] = name
        defaults = default_model_names(models_dir) | chosen
        (models_dir / DEFAULTS_FILE).write_text(json.dumps(defaults, indent=2) + "\n")
    return card_path


def write_json(result: dict[str, Any], path: Path) -> None:
    """Keep a run's figures beside its networks."""
    Path(path).write_text(json.dumps(result, indent=2), encoding="utf-8")
