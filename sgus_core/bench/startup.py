"""Cold start: how long one frame takes through a fresh ``sgus predict`` process, and its peak
memory (what a clinic's script pays per call, and what the Predict page pays for its first frame).

Each run starts a new Python process (``python -m sgus_cli predict FRAME --out DIR``) on one
phantom screenshot with the default models on their recorded runtime, and reads the child's
wall time and peak resident memory (``os.wait4``). Medians over the runs, because a shared
machine's noise moves single runs a lot.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from sgus_core.errors import SgusError


def _one_run(frame: Path, out: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak MB and stderr of one fresh ``sgus predict`` process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "sgus_cli", "predict", str(frame), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    error = child.stderr.read().decode(errors="replace") if child.stderr else ""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SgusError(f"sgus predict failed (exit {child.returncode}): {error.strip()[-300:]}")
    return seconds, usage.ru_maxrss / 1024.0, error  # ru_maxrss is in KiB on Linux


def run_startup_bench(
    models_dir: Path, *, runs: int = 5, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Median (and worst) wall time and peak memory of a cold one-frame ``sgus predict``.

    Returns:
        ``{"runs": n, "seconds_median": s, "seconds_max": s, "peak_mb_median": mb,
        "peak_mb_max": mb, "frame": "WxH"}``.

    Raises:
        SgusError: ``sgus predict`` failed.
    """
    from sgus_core.synthesis.phantom import generate_frame

    frame = generate_frame(1234, scanner="1280x872")
    env = dict(os.environ, SGUS_MODELS_DIR=str(models_dir), TF_CPP_MIN_LOG_LEVEL="2")
    seconds, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="sgus-startup-") as tmp:
        path = Path(tmp) / "frame.png"
        cv2.imwrite(str(path), frame.image)
        for i in range(runs):
            wall, peak, _ = _one_run(path, Path(tmp) / f"out{i}", env)
            seconds.append(wall)
            peaks.append(peak)
            if progress:
                progress(i + 1, runs)
    return {
        "runs": runs,
        "frame": f"{frame.image.shape[1]}x{frame.image.shape[0]}",
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        "peak_mb_median": round(statistics.median(peaks), 1),
        "peak_mb_max": round(max(peaks), 1),
    }
