"""The demo dataset: synthetic phantom frames with the generator's labels as rater "reference".

No real SGUS data ships with the project (no licence allows it), so the demo is generated on first
run from a fixed seed range that the shipped models never saw in training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sgus_core.settings import Settings
from sgus_core.store import LabelStore

DEMO_DATASET = "demo"
DEMO_PATIENTS = 40
DEMO_FIRST_SEED = 0  # training sets use seeds from TRAINING_FIRST_SEED up: never these
TRAINING_FIRST_SEED = 100_000
REFERENCE_RATER = "reference"


def ensure_demo(
    store: LabelStore,
    settings: Settings,
    *,
    n_patients: int = DEMO_PATIENTS,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Create the demo dataset if it is missing or incomplete; returns a one-line summary.

    Frames go to ``settings.demo_dir``; labels are stored as rater ``reference``. Running it again
    adds nothing (the import is idempotent by content hash).
    """
    from sgus_core.phantom import write_dataset
    from sgus_core.transfer import import_folder

    expected = n_patients * 4
    existing = store.get_dataset(DEMO_DATASET)
    if existing is not None and len(store.list_images(existing.id)) >= expected:
        return f"demo dataset ready: {expected} frames of {n_patients} patients"
    folder: Path = settings.demo_dir
    labels = folder / "labels.csv"
    if not labels.is_file() or len(list((folder / "images").glob("*.png"))) < expected:
        labels = write_dataset(folder, n_patients, DEMO_FIRST_SEED, progress=progress)
    store.ensure_rater(REFERENCE_RATER, actor="demo")
    report = import_folder(
        store,
        folder,
        labels_csv=labels,
        dataset=DEMO_DATASET,
        rater=REFERENCE_RATER,
        max_pixels=settings.max_pixels,
        actor="demo",
        progress=progress,
    )
    return f"demo dataset ready: {report.summary()}"
