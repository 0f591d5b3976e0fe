"""Inputs that must be refused with a message (issue 13, item 9): video frames over
SGUS_MAX_PIXELS, and pictures too small to be an ultrasound frame."""

from __future__ import annotations

import cv2
import numpy as np

from sgus_core import imaging
from sgus_core.inference.files import collect_jobs


def _video(path, width, height, frames=2):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (width, height))
    for _ in range(frames):
        writer.write(np.full((height, width, 3), 90, np.uint8))
    writer.release()


def test_video_frames_obey_the_pixel_limit(tmp_path):
    """A video whose frames are over the limit is skipped with the limit named; one under it is
    read."""
    _video(tmp_path / "big.mp4", 320, 240)
    skipped: list[tuple[str, str]] = []
    assert collect_jobs([tmp_path / "big.mp4"], max_pixels=50_000, skipped=skipped) == []
    ((where, why),) = skipped
    assert where.endswith("big.mp4") and "SGUS_MAX_PIXELS" in why
    skipped.clear()
    jobs = collect_jobs([tmp_path / "big.mp4"], max_pixels=100_000, skipped=skipped)
    assert len(jobs) == 2 and not skipped


def test_a_picture_too_small_for_an_ultrasound_frame_is_refused(tmp_path):
    """A 1x1 or 8x8 picture is refused with a message, not graded."""
    for side in (1, 8):
        cv2.imwrite(str(tmp_path / f"tiny{side}.png"), np.full((side, side), 128, np.uint8))
        skipped: list[tuple[str, str]] = []
        assert collect_jobs([tmp_path / f"tiny{side}.png"], max_pixels=10**7, skipped=skipped) == []
        assert "too small to be an ultrasound frame" in skipped[0][1]
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((64, 64), 128, np.uint8))
    assert len(imaging.read_frames(tmp_path / "ok.png")) == 1
