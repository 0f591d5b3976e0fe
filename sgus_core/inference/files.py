"""``sgus predict``: segment and grade image files, folders and videos, and write the docs/CLI.md outputs.

Per frame: ``masks/<stem>.png`` (0/255, the frame's size), ``overlays/<stem>.png`` (contour over
the frame), ``contours/<stem>.txt`` (one ``x y`` per line); for all: ``predictions.csv`` with
``image, model, grade, p0, p1, p2, p3, area_px[, area_mm2], confidence, mask``; for a video also
``<stem>_overlay.mp4``. Nothing is written to the labels store.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sgus_core import imaging
from sgus_core.errors import ImageReadError, SgusError
from sgus_core.inference.pipeline import Prediction
from sgus_core.settings import DEFAULT_MAX_PIXELS

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".wmv")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Job:
    """One frame to predict: where it came from and the name its outputs get."""

    stem: str
    frame: imaging.Frame
    source: Path
    video: Path | None = None


def _unique(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return name


def read_video(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[np.ndarray]:
    """Grey frames of a video file (OpenCV's FFmpeg backend).

    Each frame obeys the image limits (``SGUS_MAX_PIXELS``, at least 16 px a side): the size the
    container declares is checked before any frame is decoded.

    Raises:
        ImageReadError: the file cannot be opened as a video, or its frames are too large or too
            small.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ImageReadError(f"{path.name} cannot be opened as a video.")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    try:
        imaging.check_frame_size(path, width, height, max_pixels)
    except ImageReadError:
        capture.release()
        raise
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    finally:
        capture.release()


def video_fps(path: Path) -> float:
    """Frames per second of a video (25 when the file does not say)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    capture.release()
    return float(fps) if fps > 0 else 25.0


def collect_jobs(
    paths: list[Path], *, max_pixels: int, skipped: list[tuple[str, str]]
) -> list[Job]:
    """Every frame under ``paths`` (files, folders, videos), each with a unique output stem.

    Unreadable files are added to ``skipped`` with their reason.
    """
    used: set[str] = set()
    jobs: list[Job] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            skipped.append((str(path), "does not exist"))
            continue
        files = imaging.iter_image_files(path) if path.is_dir() else [path]
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        for file in files:
            try:
                if file.suffix.lower() in VIDEO_SUFFIXES:
                    for index, grey in enumerate(read_video(file, max_pixels=max_pixels)):
                        frame = imaging.Frame(grey, None, imaging.detect_fov(grey), index, {})
                        jobs.append(
                            Job(_unique(f"{file.stem}_{index:05d}", used), frame, file, file)
                        )
                    continue
                frames = imaging.read_frames(file, max_pixels=max_pixels)
            except SgusError as exc:
                skipped.append((str(file), str(exc)))
                continue
            for frame in frames:
                stem = file.stem if len(frames) == 1 else f"{file.stem}_{frame.frame_index:03d}"
                jobs.append(Job(_unique(stem, used), frame, file))
    return jobs


def write_outputs(
    out_dir: Path, job: Job, prediction: Prediction, writer: csv.DictWriter[str]
) -> None:
    """Write one frame's mask, overlay, contour and CSV row."""
    for sub in ("masks", "overlays", "contours"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_dir / "masks" / f"{job.stem}.png"), prediction.mask.astype(np.uint8) * 255)
    cv2.imwrite(
        str(out_dir / "overlays" / f"{job.stem}.png"),
        cv2.cvtColor(prediction.overlay, cv2.COLOR_RGB2BGR),
    )
    np.savetxt(out_dir / "contours" / f"{job.stem}.txt", prediction.contour, fmt="%d")
    probs = list(prediction.grade_probabilities or (None, None, None, None))
    confidence = prediction.confidence
    row = {
        "image": str(job.source) if job.video is None else f"{job.source}#{job.frame.frame_index}",
        "model": prediction.model,
        "grade": "" if prediction.grade is None else prediction.grade,
        "area_px": prediction.area_px,
        "area_mm2": "" if prediction.area_mm2 is None else f"{prediction.area_mm2:.2f}",
        "confidence": "" if confidence is None else f"{confidence:.4f}",
        "mask": f"masks/{job.stem}.png",
    }
    row.update({f"p{i}": "" if p is None else f"{p:.4f}" for i, p in enumerate(probs)})
    writer.writerow(row)


def csv_columns(with_mm: bool) -> list[str]:
    """The columns of ``predictions.csv``: ``area_mm2`` only when some frame has a pixel spacing;
    then (added later, so last) ``confidence``, the mean gland probability inside the mask, and
    ``mask``, the row's mask file under the output folder."""
    area = ["area_px", "area_mm2"] if with_mm else ["area_px"]
    return ["image", "model", "grade", "p0", "p1", "p2", "p3", *area, "confidence", "mask"]


def write_video(path: Path, overlays: list[np.ndarray], source: Path) -> None:
    """An MP4 of the overlays (RGB frames) at the source video's frame rate."""
    height, width = overlays[0].shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"mp4v"), video_fps(source), (width, height)
    )
    try:
        for rgb in overlays:
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
