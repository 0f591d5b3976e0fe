"""``sgus bench``: this machine's float32 peak and each shipped model's throughput, in one run.

The peak is the best of several large float32 matrix multiplications (numpy's BLAS on all cores:
2 n^3 FLOPs each). A model's throughput is the median images/s over repeated timed batches after a
warm-up; its fraction of peak is images/s x GFLOPs per image / peak GFLOP/s.

Every model is measured on every runtime it can run on (Keras/TensorFlow, and ONNX Runtime and
OpenVINO on its ``.onnx`` copy); its row reports the fastest, and ``runtimes`` keeps them all.
A prompted segmenter's row also holds ``prompt_ms``: the median time from a box to its mask on a
1280x872 frame on that runtime, pre- and post-processing included.
``record=True`` writes the fastest into each model card (``"runtime"``), which is what
``load_model(..., runtime="auto")`` then uses.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sgus_core.errors import ModelError
from sgus_core.inference.prompts import takes_prompts
from sgus_core.inference.registry import default_model_names, load_model, model_names, read_card
from sgus_core.inference.runtimes import ACCELERATED_RUNTIMES, FEATURE_DESIGN, KerasModel

if TYPE_CHECKING:  # imports TensorFlow only when a frozen graph is loaded
    from sgus_core.inference.frozen_graph import FrozenGraphSegmenter

MATMUL_N = 2048


def measure_peak_gflops(*, repeats: int = 7, n: int = MATMUL_N) -> float:
    """Float32 GFLOP/s of the best of ``repeats`` n x n matrix multiplications."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: threads started, pages touched
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def images_per_second(
    model: KerasModel | FrozenGraphSegmenter, *, batch: int = 1, seconds: float = 3.0
) -> float:
    """Median images/s of a loaded model at ``batch`` over ~``seconds`` of timed runs (at least
    10), after 3 warm-up runs; a segmenter's images include its card's zero-shot test-time
    flip."""
    if getattr(model, "design", "") == FEATURE_DESIGN:  # features of a gland, then the model
        return _feature_grader_rate(model, batch=batch, seconds=seconds)
    shape = (batch, *model.input_shape)
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    grade = model.card.get("task") == "grade"
    # Only the Keras-file runtimes (Keras, ONNX Runtime, OpenVINO) run graders. A segmenter
    # runs as its card reads it zero-shot: with a test-time flip, two passes per image.
    if grade and isinstance(model, KerasModel):
        forward: Callable[[np.ndarray], np.ndarray] = model.predict_grades
    else:
        from sgus_core.inference.pipeline import Reading, probabilities

        flip = Reading.of(model, "zero_shot").flip

        def forward(batch: np.ndarray) -> np.ndarray:
            return probabilities(model, batch, flip=flip)

    return _median_rate(lambda: forward(x), batch=batch, seconds=seconds, warm_up=3)


def _median_rate(run: Callable[[], object], *, batch: int, seconds: float, warm_up: int) -> float:
    """Median images/s of ``run`` (one batch) over ~``seconds`` of timed runs (at least 10),
    after ``warm_up`` untimed ones."""
    for _ in range(warm_up):
        run()
    rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 10:
        rates.append(batch / _seconds(run))
    return statistics.median(rates)


def _feature_grader_rate(model: Any, *, batch: int, seconds: float) -> float:
    """Images/s of a feature grader on a 256x384 field of view with an elliptic gland mask,
    the texture features included (they are most of its time)."""
    from sgus_core.inference.features import grade_features

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (256, 384), dtype=np.uint8)
    yy, xx = np.mgrid[:256, :384]
    mask = ((xx - 192) / 150.0) ** 2 + ((yy - 110) / 50.0) ** 2 <= 1.0

    def forward() -> None:
        model.predict_grades(np.stack([grade_features(image, mask) for _ in range(batch)]))

    return _median_rate(forward, batch=batch, seconds=seconds, warm_up=1)


def prompt_seconds(model: Any, *, repeats: int = 15) -> float:
    """Median seconds from a box to its mask on a 1280x872 phantom screenshot, pre- and
    post-processing included (``segment_prompted``: crop, resize, prompt channels, forward pass,
    probability back at the frame's size, the region the box points at), after 2 warm-up runs."""
    from sgus_core.imaging import Frame, detect_fov
    from sgus_core.inference.pipeline import segment_prompted
    from sgus_core.inference.prompts import Prompt, padded_box
    from sgus_core.synthesis.phantom import generate_frame

    phantom = generate_frame(4321, scanner="1280x872")
    frame = Frame(phantom.image, None, detect_fov(phantom.image))
    prompt = Prompt(padded_box(phantom.mask, 0.05))
    for _ in range(2):
        segment_prompted(model, frame, prompt)
    return statistics.median(
        _seconds(lambda: segment_prompted(model, frame, prompt)) for _ in range(repeats)
    )


def _runtimes(models_dir: Path, name: str) -> tuple[str, ...]:
    if not (Path(models_dir) / f"{name}.onnx").is_file():
        return ("keras",)
    return ("keras", *ACCELERATED_RUNTIMES)


def run_bench(
    models_dir: Path,
    *,
    batch: int = 1,
    seconds: float = 3.0,
    progress: Callable[[int, int], None] | None = None,
    record: bool = False,
    names: list[str] | None = None,
    rounds: int = 1,
) -> dict[str, Any]:
    """Peak and every model's throughput in docs/CLI.md's ``sgus bench --json`` shape.

    Each row is the model on its fastest runtime, plus ``runtimes`` ({runtime: images/s}, every
    runtime measured) and ``unavailable`` ({runtime: why} for those that could not load).
    ``names`` limits the run to those models; ``record`` writes each fastest runtime into its
    model card. With ``rounds`` > 1 the peak and every model x runtime are measured that many
    times, interleaved, and the medians reported (a shared machine's noise moves single runs by
    tens of per cent).
    """
    models_dir = Path(models_dir)
    names = names or model_names(models_dir, cards_only=True)
    cards = {name: read_card(models_dir, name) for name in names}
    jobs = [(name, runtime) for name in names for runtime in _runtimes(models_dir, name)]
    loaded: dict[tuple[str, str], KerasModel | FrozenGraphSegmenter] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    unavailable: dict[str, dict[str, str]] = {name: {} for name in names}
    peaks: list[float] = []
    for round_index in range(max(1, rounds)):
        peaks.append(measure_peak_gflops())
        for done, (name, runtime) in enumerate(jobs, start=1):
            if (name, runtime) not in loaded and runtime not in unavailable[name]:
                try:
                    loaded[name, runtime] = load_model(name, models_dir, runtime=runtime)
                except ModelError as exc:
                    unavailable[name][runtime] = str(exc)
            if (name, runtime) in loaded:
                rate = images_per_second(loaded[name, runtime], batch=batch, seconds=seconds)
                rates.setdefault((name, runtime), []).append(rate)
            if progress:
                progress(round_index * len(jobs) + done, max(1, rounds) * len(jobs))
    peak = statistics.median(peaks)
    rows = []
    for name in names:
        measured = {rt: statistics.median(r) for (n, rt), r in rates.items() if n == name}
        if not measured:
            raise ModelError(f"{name} could not be loaded by any runtime: {unavailable[name]}")
        runtime = max(measured, key=lambda rt: measured[rt])
        gflops = float(cards[name].get("gflops") or 0.0)
        rows.append(
            {
                "name": name,
                "runtime": runtime,
                "gflops": round(gflops, 3),
                "batch": batch,
                "images_per_s": round(measured[runtime], 1),
                "fraction_of_peak": round(measured[runtime] * gflops / peak, 3),
                "runtimes": {rt: round(v, 1) for rt, v in measured.items()},
                "unavailable": unavailable[name],
            }
        )
        if takes_prompts(tuple(cards[name].get("input_shape", ()))):
            rows[-1]["prompt_ms"] = round(1000 * prompt_seconds(loaded[name, runtime]), 1)
        own = getattr(loaded.get((name, runtime)), "runtime", runtime)
        if own != runtime:  # a feature grader runs on numpy whatever was asked
            rows[-1]["runtime"] = own
            rows[-1]["runtimes"] = {own: rows[-1]["images_per_s"]}
        if record:
            card = cards[name] | {"runtime": own}
            (models_dir / f"{name}.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return {
        "peak_gflops": round(peak, 1),
        "default_model": default_model_names(models_dir).get("segment", ""),
        "models": rows,
    }
