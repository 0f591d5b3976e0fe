"""Capture: the frame on screen, with the model's prediction, stored in a dataset for annotation
later, as if it had been imported (its file written next to the dataset's frames).

A new dataset's frames go under ``<SGUS_DATA_DIR>/captures/<dataset>/``; an existing dataset's
under ``captures/`` in its own folder. The file is the frame as the scanner sent it (colour kept,
so a Doppler frame stays one); the store gets it through the permission layer, audited under the
person capturing. Capture only adds frames: no round, label or blinding changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from sgus_core import imaging
from sgus_core.auth import AccountStore
from sgus_core.errors import SgusError
from sgus_core.imaging.privacy import BLANK_KEY
from sgus_core.inference.runtimes import Segmenter
from sgus_core.live.segmenter import LiveResult
from sgus_core.store import NewImage
from sgus_core.vocabulary import GLANDS, SIDES

CAPTURE_FOLDER = "captures"


@dataclass(frozen=True)
class CaptureDetails:
    """What a capture session asks once: the patient and the gland being scanned."""

    patient: str
    gland: str
    side: str
    spacing_mm: float | None = None

    def check(self) -> None:
        """Raises SgusError with a message naming the field when one is missing or unknown."""
        if not self.patient.strip():
            raise SgusError("Give the patient's ID before capturing.")
        if self.gland not in GLANDS:
            raise SgusError(f"Gland must be one of {', '.join(GLANDS)}, not {self.gland!r}.")
        if self.side not in SIDES:
            raise SgusError(f"Side must be one of {', '.join(SIDES)}, not {self.side!r}.")
        if self.spacing_mm is not None and not 0 < self.spacing_mm < 10:
            raise SgusError("Pixel spacing must be between 0 and 10 mm per pixel.")


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def capture_root(writer: AccountStore, dataset: str, data_dir: Path) -> Path:
    """Where a capture into ``dataset`` is written (the dataset's root for an existing one)."""
    existing = writer.store.get_dataset(dataset)
    if existing is not None:
        return Path(existing.root_path)
    return Path(data_dir) / CAPTURE_FOLDER / _folder_name(dataset)


def capture_frame(
    writer: AccountStore,
    dataset: str,
    result: LiveResult,
    details: CaptureDetails,
    *,
    segmenter: Segmenter,
    data_dir: Path,
    models_dir: Path,
    now: datetime | None = None,
) -> tuple[int, bool]:
    """Store a live frame and its prediction in ``dataset``; returns ``(image id, created)``.
    The very same frame captured again (same bytes) is the image already stored: its file is
    not kept twice and ``created`` is False.

    Raises:
        PermissionDenied: the person may only view.
        SgusError: the details are incomplete, or the file cannot be written.
    """
    from sgus_core.inference.registry import register

    writer.require_may_write()
    details.check()
    if not dataset.strip():
        raise SgusError("Choose or name a dataset to capture into.")
    root = capture_root(writer, dataset.strip(), data_dir)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S-%f")
    relative = f"{CAPTURE_FOLDER}/{_folder_name(details.patient)}_{stamp}_{result.index}.png"
    path = root / relative
    image = np.asarray(result.image)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr):
            raise OSError("OpenCV wrote nothing")
    except OSError as exc:
        raise SgusError(f"Could not write the captured frame to {path}: {exc}") from exc
    frame = imaging.read_frames(path)[0]
    new = NewImage(
        path=relative,
        content_hash=imaging.file_hash(path),
        width=frame.pixels.shape[1],
        height=frame.pixels.shape[0],
        patient=details.patient.strip(),
        gland=details.gland,
        side=details.side,
        spacing_mm=details.spacing_mm,
        fov=result.frame.fov.as_tuple(),
        meta={**frame.metadata, "frames": 1, "captured": "live", BLANK_KEY: False},
    )
    [(image_id, created)] = writer.add_frames(dataset.strip(), root, [new])
    if not created:
        path.unlink(missing_ok=True)
        return image_id, False
    register(writer.store, models_dir, segmenter)
    pred = result.prediction
    writer.save_prediction(
        image_id, segmenter.name, imaging.encode_mask_png(pred.mask), **pred.store_fields()
    )
    return image_id, True
