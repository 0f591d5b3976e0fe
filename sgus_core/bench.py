"""``sgus bench``: this machine's float32 peak and each shipped model's throughput, in one run.

The peak is the best of several large float32 matrix multiplications (numpy's BLAS on all cores:
2 n^3 FLOPs each). A model's throughput is the median images/s over repeated timed batches after a
warm-up; its fraction of peak is images/s x GFLOPs per image / peak GFLOP/s.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sgus_core.inference import load_model, read_card
from sgus_core.model_training import default_model_names

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


def benchmark_model(model, gflops: float, peak: float, *, batch: int = 1, seconds: float = 3.0):
    """Throughput of a loaded model at ``batch`` (median over ~``seconds`` of timed runs)."""
    shape = (batch, *model.input_shape)
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    grade = model.card.get("task") == "grade"
    forward = model.predict_grades if grade else model.predict_probabilities
    for _ in range(3):
        forward(x)
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 10:
        rates.append(batch / _seconds(lambda: forward(x)))
    images_per_s = statistics.median(rates)
    return {
        "name": model.name,
        "runtime": model.runtime,
        "gflops": round(gflops, 3),
        "batch": batch,
        "images_per_s": round(images_per_s, 1),
        "fraction_of_peak": round(images_per_s * gflops / peak, 3),
    }


def run_bench(models_dir: Path, *, batch: int = 1, seconds: float = 3.0, progress=None) -> dict:
    """Peak and every model's throughput in CLI.md's ``sgus bench --json`` shape."""
    peak = measure_peak_gflops()
    names = sorted(p.stem for p in Path(models_dir).glob("*.json") if p.stem != "default")
    rows = []
    for done, name in enumerate(names, start=1):
        card = read_card(models_dir, name)
        model = load_model(name, models_dir)
        rows.append(
            benchmark_model(model, float(card["gflops"]), peak, batch=batch, seconds=seconds)
        )
        if progress:
            progress(done, len(names))
    return {
        "peak_gflops": round(peak, 1),
        "default_model": default_model_names(models_dir).get("segment", ""),
        "models": rows,
    }
