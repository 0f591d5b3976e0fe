"""Live sources ``sgus stream`` reads with OpenCV: a capture device by index (a UVC capture card
shows up as one), an RTSP or HTTP(S) stream address, or a video file."""

from __future__ import annotations

from pathlib import Path

import cv2

from sgus_core.errors import ImageReadError, SourceError
from sgus_core.imaging import check_frame_size
from sgus_core.settings import DEFAULT_MAX_PIXELS

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
"""Address prefixes read as network streams (OpenCV's FFmpeg backend)."""


def describe(source: str) -> str:
    """What a ``--source`` value is, in words (for messages)."""
    if source.isdigit():
        return f"capture device {source}"
    if source.lower().startswith(STREAM_SCHEMES):
        return f"stream {source}"
    return f"video file {source}"


def is_live(source: str) -> bool:
    """Whether the source plays in real time (a device or a stream; a file plays as fast as it
    can be read)."""
    return source.isdigit() or source.lower().startswith(STREAM_SCHEMES)


def open_source(source: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` for a device index, a stream address or a video file.

    Frames obey ``SGUS_MAX_PIXELS`` and the smallest-frame rule from the size the source
    declares, before any frame is processed.

    Raises:
        SourceError: nothing by that name, or OpenCV cannot open or read it.
    """
    if not source.isdigit() and not is_live(source) and not Path(source).is_file():
        raise SourceError(f"No such video file, device or stream address: {source}")
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"Cannot open {describe(source)} (OpenCV could not read it).")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width and height:
        try:
            check_frame_size(Path(source), width, height, max_pixels)
        except ImageReadError as exc:
            capture.release()
            raise SourceError(str(exc)) from exc
    return capture


def source_fps(capture: cv2.VideoCapture, default: float = 25.0) -> float:
    """The frame rate a source declares (``default`` when it declares none or nonsense)."""
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 1.0 <= fps <= 240.0 else default
