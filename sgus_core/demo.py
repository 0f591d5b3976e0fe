"""The demo dataset: synthetic phantom frames with the generator's labels as rater "reference".

No real SGUS data ships with the project (no licence allows it), so the demo is generated on first
run from a fixed seed range that the shipped models never saw in training.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from sgus_core.settings import Settings
from sgus_core.store import LabelStore

if TYPE_CHECKING:  # numpy is imported where it is used: the demo module loads fast
    import numpy as np

DEMO_DATASET = "demo"
DEMO_PATIENTS = 40
DEMO_FIRST_SEED = 0  # training sets use seeds from TRAINING_FIRST_SEED up: never these
TRAINING_FIRST_SEED = 100_000
REFERENCE_RATER = "reference"
DEMO_NOTE = (
    "Synthetic demo data: phantoms rendered by SGUS Studio, not patients; the raters "
    "simulated-rater-A and simulated-rater-B are simulated."
)
DEMO_DOPPLER_PATIENTS = (38, 39)  # the last two patients are scanned with power Doppler


def ensure_demo(
    store: LabelStore,
    settings: Settings,
    *,
    n_patients: int = DEMO_PATIENTS,
    with_predictions: bool = False,
    progress: Callable[[int, int], None] | None = None,
    doppler_patients: Collection[int] = DEMO_DOPPLER_PATIENTS,
) -> str:
    """Create the demo dataset if it is missing or incomplete; returns a one-line summary.

    Frames go to ``settings.demo_dir``; labels are stored as rater ``reference``, plus two
    simulated raters; ``with_predictions`` also stores the default models' predictions. The
    patients whose index is in ``doppler_patients`` (of the full demo: the last two) are power
    Doppler frames with an OMERACT Doppler grade. Running it again adds nothing (the import is
    idempotent by content hash).
    """
    from sgus_core.synthesis.phantom import write_dataset
    from sgus_core.transfer import import_folder

    expected = n_patients * 4
    existing = store.get_dataset(DEMO_DATASET)
    if existing is not None and len(store.list_images(existing.id)) >= expected:
        simulate_raters(store, DEMO_DATASET)
        predicted = _predict_demo(store, settings, progress) if with_predictions else ""
        return f"demo dataset ready: {expected} frames of {n_patients} patients {predicted}"
    folder: Path = settings.demo_dir
    labels = folder / "labels.csv"
    if not labels.is_file() or len(list((folder / "images").glob("*.png"))) < expected:
        labels = write_dataset(
            folder,
            n_patients,
            DEMO_FIRST_SEED,
            progress=progress,
            doppler_patients=doppler_patients,
        )
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
    simulate_raters(store, DEMO_DATASET)
    predicted = _predict_demo(store, settings, progress) if with_predictions else ""
    return (
        f"demo dataset ready: {report.summary()}; labels of {len(SIMULATED_RATERS)} simulated "
        f"raters added for Review; {predicted}"
    )


def _predict_demo(
    store: LabelStore, settings: Settings, progress: Callable[[int, int], None] | None
) -> str:
    """Predictions of the default models on the demo, so Review can show model vs raters."""
    from sgus_core.errors import SgusError
    from sgus_core.inference.dataset import predict_dataset

    try:
        done, _ = predict_dataset(store, DEMO_DATASET, settings.models_dir, progress=progress)
    except SgusError as exc:  # no shipped model (e.g. a fresh training run): the demo still works
        return f"no model predictions ({exc})"
    return f"{done} frames predicted by the default model"


SIMULATED_RATERS = ("simulated-rater-A", "simulated-rater-B")
# How far each simulated rater strays from the reference: boundary noise (px) and the chance that
# a grade moves by one step. Chosen so agreement lands near the published inter-observer figures.
_RATER_NOISE = {"simulated-rater-A": (14.0, 0.15), "simulated-rater-B": (20.0, 0.25)}


def perturb_mask(mask: np.ndarray, rng: np.random.Generator, noise_px: float) -> np.ndarray:
    """A plausible second outline of the same gland: the reference boundary moved in and out by
    smooth random amounts up to about ``noise_px`` pixels (bool (H, W) in and out)."""
    import cv2
    import numpy as np

    height, width = mask.shape
    coarse = rng.normal(0, 1, (max(2, height // 40), max(2, width // 40))).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    signed = inside - outside  # > 0 inside the gland
    return signed + noise_px * field > 0


def simulate_raters(store: LabelStore, dataset: str, *, seed: int = 7) -> int:
    """Add labels of two SIMULATED raters (perturbed reference masks and grades) to ``dataset``
    so Review has rater-vs-rater and model-vs-rater comparisons to show. Their names say
    "simulated"; nothing here is a real reader's opinion. Returns the images labelled.
    """
    import numpy as np

    from sgus_core import imaging

    ds = store.require_dataset(dataset)
    masks = store.latest_masks_for_dataset(ds.id, REFERENCE_RATER)
    grades = store.latest_grades_for_dataset(ds.id, REFERENCE_RATER)
    done = 0
    for rater, (noise_px, flip) in _RATER_NOISE.items():
        store.ensure_rater(rater, actor="demo")
        if store.latest_grades_for_dataset(ds.id, rater):
            continue  # already simulated
        rng = np.random.default_rng([seed, SIMULATED_RATERS.index(rater)])
        for image_id, version in masks.items():
            mask = perturb_mask(imaging.decode_mask_png(version.png), rng, noise_px)
            grade = grades.get(image_id)
            devita = omeract = doppler = None
            if grade is not None:
                step = int(rng.choice([-1, 1])) if rng.random() < flip else 0
                devita = None if grade.devita is None else int(np.clip(grade.devita + step, 0, 3))
                omeract = (
                    None if grade.omeract is None else int(np.clip(grade.omeract + step, 0, 3))
                )
                doppler = (
                    None if grade.doppler is None else int(np.clip(grade.doppler + step, 0, 3))
                )
            store.save_labels(
                image_id,
                rater,
                mask_png=imaging.encode_mask_png(mask),
                area_px=int(mask.sum()),
                source="manual",
                devita=devita,
                omeract=omeract,
                doppler=doppler,
                actor="demo (simulated)",
            )
            done += 1
    return done
