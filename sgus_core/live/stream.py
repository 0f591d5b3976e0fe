"""``sgus stream``: segment a live source frame by frame, writing the overlay video and one CSV
row per frame as it goes, so that whatever was written survives Ctrl+C or a lost stream.

Outputs in ``--out``: ``overlay.mp4`` (the frames with the outline and caption, at the source's
frame rate) and ``frames.csv`` with :data:`CSV_COLUMNS` (``time_s`` is the source's own clock
for a file, seconds since the start for a device or a stream).
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from sgus_core.errors import SourceError
from sgus_core.live.segmenter import LiveResult, LiveSegmenter
from sgus_core.live.sources import describe, is_live, open_source, source_fps
from sgus_core.settings import DEFAULT_MAX_PIXELS
from sgus_core.vocabulary import N_GRADES

CSV_COLUMNS: tuple[str, ...] = (
    "frame",
    "time_s",
    "area_px",
    "area_mm2",
    "grade",
    *(f"p{g}" for g in range(N_GRADES)),
    "fps",
)
"""``frames.csv``'s columns: grade and p0-p3 are the latest the grader gave (it runs every few
frames; empty without a grader), ``fps`` the frames processed per second over the last two seconds."""

VIDEO_NAME = "overlay.mp4"
CSV_NAME = "frames.csv"

Progress = Callable[[int, float], None]
"""``progress(frames done, seconds so far)``."""


@dataclass
class StreamReport:
    """What a run of :func:`run_stream` did."""

    source: str
    frames: int = 0
    seconds: float = 0.0
    stopped_by: str = "end of source"
    outputs: list[Path] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames segmented per second of wall-clock time, end to end."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _row(result: LiveResult, time_s: float) -> list[object]:
    pred = result.prediction
    probs = pred.grade_probabilities or (None,) * N_GRADES
    return [
        result.index,
        f"{time_s:.3f}",
        pred.area_px,
        "" if pred.area_mm2 is None else f"{pred.area_mm2:.2f}",
        "" if pred.grade is None else pred.grade,
        *("" if p is None else f"{p:.4f}" for p in probs),
        f"{result.fps:.2f}",
    ]


def run_stream(
    source: str,
    out_dir: Path,
    live: LiveSegmenter,
    *,
    seconds: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> StreamReport:
    """Segment ``source`` (see :func:`~sgus_core.live.sources.open_source`) into ``out_dir``
    until it ends, ``seconds`` have passed, ``stop`` is set or Ctrl+C (KeyboardInterrupt) is
    pressed; every file is closed properly in each case and the report says which it was.

    Raises:
        SourceError: the source cannot be opened, or gives no frame at all.
    """
    capture = open_source(source, max_pixels=max_pixels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = StreamReport(source=source)
    fps = source_fps(capture)
    live_source = is_live(source)
    writer: cv2.VideoWriter | None = None
    start = clock()
    csv_path = out_dir / CSV_NAME
    try:
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            table = csv.writer(handle)
            table.writerow(CSV_COLUMNS)
            report.outputs.append(csv_path)
            while True:
                if stop is not None and stop.is_set():
                    report.stopped_by = "stop requested"
                    break
                if seconds is not None and clock() - start >= seconds:
                    report.stopped_by = f"{seconds:g} s limit"
                    break
                ok, bgr = capture.read()
                if not ok:
                    break
                stamp = clock() - start if live_source else capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
                result = live.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                if writer is None:
                    height, width = result.overlay.shape[:2]
                    video = out_dir / VIDEO_NAME
                    writer = cv2.VideoWriter(
                        str(video), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height)
                    )
                    report.outputs.insert(0, video)
                writer.write(cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR))
                table.writerow(_row(result, stamp))
                handle.flush()
                report.frames += 1
                if progress:
                    progress(report.frames, clock() - start)
    except KeyboardInterrupt:
        report.stopped_by = "Ctrl+C"
    finally:
        report.seconds = clock() - start
        capture.release()
        if writer is not None:
            writer.release()
    if report.frames == 0 and report.stopped_by == "end of source":
        raise SourceError(f"{describe(source)} gave no frame.")
    return report
