"""``sgus bench-live``: end-to-end live throughput, capture to overlay, as ``sgus stream`` runs.

A phantom video (a probe sweeping over a few synthetic frames) is written at the asked size;
each round streams it through :func:`~sgus_core.live.stream.run_stream` with the default (or a
named) segmenter and grader: decode, field of view, network, one region, outline, caption, MP4
encode and a CSV row per frame. The figure is frames per second of wall-clock time; the median
of the rounds is reported, with each round's figure (a shared machine's noise moves single runs).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sgus_core.inference.registry import load_pipeline
from sgus_core.live.segmenter import LiveSegmenter
from sgus_core.live.stream import run_stream
from sgus_core.synthesis.phantom import generate_frame

TARGET_FPS = 24.5
"""The Deep SGUS reference code's GPU figure, which a 2-core CPU should match."""


def write_phantom_video(
    path: Path,
    *,
    frames: int = 100,
    size: tuple[int, int] = (640, 480),
    fps: float = 25.0,
    seed: int = 0,
) -> Path:
    """An MP4 of ``frames`` frames (width x height ``size``): the probe drifts across four
    phantom screenshots, a few pixels a frame, so that every frame differs."""
    width, height = size
    keys = [
        cv2.resize(generate_frame(seed + k).image, size, interpolation=cv2.INTER_AREA)
        for k in range(4)
    ]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    per_key = max(1, frames // len(keys))
    for i in range(frames):
        key = keys[min(len(keys) - 1, i // per_key)]
        phase = (i % per_key) / per_key
        shift = np.array([[1, 0, 12 * np.sin(2 * np.pi * phase)], [0, 1, 4 * phase]], np.float32)
        moved = cv2.warpAffine(key, shift, (width, height), borderMode=cv2.BORDER_REPLICATE)
        writer.write(cv2.cvtColor(moved, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def run_live_bench(
    models_dir: Path,
    *,
    model: str | None = None,
    frames: int = 100,
    size: tuple[int, int] = (640, 480),
    rounds: int = 3,
    grade: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Median end-to-end frames/s of ``sgus stream`` on a phantom video, and each round's."""
    segmenter, grader = load_pipeline(Path(models_dir), model)
    grader = grader if grade else None
    rates = []
    with tempfile.TemporaryDirectory(prefix="sgus-bench-live-") as tmp:
        video = write_phantom_video(Path(tmp) / "sweep.mp4", frames=frames, size=size)
        LiveSegmenter(segmenter, grader).process(np.zeros((size[1], size[0]), np.uint8))  # warm
        for r in range(max(1, rounds)):
            live = LiveSegmenter(segmenter, grader)
            report = run_stream(str(video), Path(tmp) / f"round{r}", live)
            rates.append(report.fps)
            if progress:
                progress(r + 1, max(1, rounds))
    median = statistics.median(rates)
    return {
        "model": segmenter.name,
        "grader": None if grader is None else grader.name,
        "size": list(size),
        "frames": frames,
        "rounds": [round(x, 1) for x in rates],
        "frames_per_s": round(median, 1),
        "target_frames_per_s": TARGET_FPS,
        "meets_target": median >= TARGET_FPS,
    }
