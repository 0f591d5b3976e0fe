"""Training data: labelled frames as :class:`Sample` values, patient splits and data hashes.

Pure numpy: the caller (``from_store``, the benchmarks) reads the labels store or a generator and
hands over samples; nothing here touches the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sgus_core.errors import ModelError


@dataclass(frozen=True)
class Sample:
    """One labelled frame, as training sees it.

    Attributes:
        image: (H, W) uint8 grey field-of-view crop of the frame.
        mask: (H, W) bool gland mask of the same crop, or None when the frame has no outline.
        devita: de Vita grade 0-3, or None.
        omeract: OMERACT grade 0-3, or None.
        patient: patient identifier; the split never puts one patient in two parts.
        key: unique, stable identifier of the frame (e.g. its content hash).
    """

    image: np.ndarray
    mask: np.ndarray | None
    devita: int | None
    omeract: int | None
    patient: str
    key: str


def _patient_rank(seed: int, patient: str) -> str:
    # A hash rather than a shuffle: a patient's place in the order does not depend on which other
    # patients are present, so the segment and grade tasks put most patients in the same part.
    return hashlib.sha256(f"{seed}:{patient}".encode()).hexdigest()


def split_by_patient(
    samples: Sequence[Sample],
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Split samples into train, validation and test parts with no patient in two parts.

    Patients are ordered by a seeded hash and taken into the test part until it holds at least
    ``test_fraction`` of the samples, then into validation likewise; the rest train. A part with a
    positive fraction gets at least one patient, and training always keeps one.

    Args:
        samples: the samples (any order; each part keeps the input order).
        val_fraction: share of samples wanted in validation (0 for none).
        test_fraction: share of samples wanted in test (0 for none).
        seed: changes which patients land where.

    Returns:
        (train, val, test) lists of samples.

    Raises:
        ValueError: if a fraction is negative or they sum to 1 or more.
        ModelError: if there are too few patients to fill every part that was asked for.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"fractions must be >= 0 and sum below 1, got {val_fraction}, {test_fraction}"
        )
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.patient] = counts.get(s.patient, 0) + 1
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(counts) < needed:
        raise ModelError(
            f"need frames of at least {needed} patients to split into train/validation/test, "
            f"got {len(counts)}"
        )
    order = sorted(counts, key=lambda p: _patient_rank(seed, p))
    total = len(samples)
    test_p: set[str] = set()
    val_p: set[str] = set()
    n_test = n_val = 0
    for i, patient in enumerate(order):
        left = len(order) - i - 1  # patients still to place after this one
        val_still_empty = val_fraction > 0 and not val_p
        if test_fraction > 0 and n_test < test_fraction * total and left >= 1 + val_still_empty:
            test_p.add(patient)
            n_test += counts[patient]
        elif val_fraction > 0 and n_val < val_fraction * total and left >= 1:
            val_p.add(patient)
            n_val += counts[patient]
    train = [s for s in samples if s.patient not in test_p and s.patient not in val_p]
    val = [s for s in samples if s.patient in val_p]
    test = [s for s in samples if s.patient in test_p]
    return train, val, test


def data_hash(samples: Sequence[Sample]) -> str:
    """Return the sha256 hex digest over the samples' keys and labels, sorted by key.

    Per sample: key, patient, de Vita, OMERACT and the mask's shape and packed bits, so the
    hash changes when any label changes but not when the samples come in another order.
    """
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.key):
        digest.update(f"{s.key}\0{s.patient}\0{s.devita}\0{s.omeract}\0".encode())
        if s.mask is None:
            digest.update(b"no-mask\0")
        else:
            digest.update(f"{s.mask.shape}".encode())
            digest.update(np.packbits(np.asarray(s.mask, dtype=bool)).tobytes())
    return digest.hexdigest()
