"""Live scanning: the scanner's video segmented frame by frame as it streams (the Live page's
WebRTC callback and ``sgus stream``), and captured frames stored in a dataset for annotation.

- :mod:`~sgus_core.live.segmenter`: :class:`LiveSegmenter`, one frame in, outline, area, grade
  and the achieved frames per second out; the field of view is found once a second, not per frame.
- :mod:`~sgus_core.live.sources`: open a device index, an RTSP/HTTP address or a video file.
- :mod:`~sgus_core.live.stream`: ``sgus stream``'s loop: overlay video and per-frame CSV.
- :mod:`~sgus_core.live.capture`: store the current frame and its prediction in a dataset.
"""

from sgus_core.live.capture import CaptureDetails, capture_frame
from sgus_core.live.segmenter import LiveResult, LiveSegmenter
from sgus_core.live.sources import open_source
from sgus_core.live.stream import CSV_COLUMNS, StreamReport, run_stream

__all__ = [
    "CSV_COLUMNS",
    "CaptureDetails",
    "LiveResult",
    "LiveSegmenter",
    "StreamReport",
    "capture_frame",
    "open_source",
    "run_stream",
]
