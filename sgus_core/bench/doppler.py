"""``sgus bench-doppler``: how well import tells Doppler frames from greyscale ones, and how
close the vascular fraction comes to the truth.

Every frame goes through a file and the reader, as an import does (PNG, or JPEG at the
qualities given):

* **false positives**: greyscale frames of every appearance family (phantom, randomised,
  scatter), each as it is and as a colour screenshot with coloured calipers, a dotted outline,
  text, an arrow, a logo and a colour bar (``synthesis.doppler.add_colour_marks``); a frame the
  reader calls Doppler is a false positive. Target: none.
* **vascular fraction**: phantoms with power-Doppler and colour-flow signal painted over them
  (``generate_frame(doppler=True)``); the fraction of the true gland mask covered by the signal
  the reader found, against the fraction painted, in percentage points. Target: within 2.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sgus_core.imaging import read_image
from sgus_core.imaging.doppler import vascular_fraction
from sgus_core.synthesis.doppler import add_colour_marks
from sgus_core.synthesis.families import FAMILIES
from sgus_core.synthesis.phantom import generate_frame

FIRST_SEED = 500_000  # unseen by the demo (0-39) and the training sets (100000 up)
QUALITIES: tuple[int | None, ...] = (None, 90, 75)  # None: PNG (lossless)
TARGET_FALSE_POSITIVES = 0
TARGET_ERROR_PP = 2.0


def _name(quality: int | None) -> str:
    return "png" if quality is None else f"jpeg {quality}"


def _through_a_file(rgb: np.ndarray, quality: int | None, folder: Path) -> Any:
    """The frame as the reader gives it back after writing ``rgb`` as PNG or JPEG."""
    path = folder / ("frame.png" if quality is None else "frame.jpg")
    params = [] if quality is None else [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    bgr = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr, params):
        raise OSError(f"could not write {path}")
    return read_image(path)


def run_doppler_bench(
    *,
    n_grey: int = 20,
    n_doppler: int = 30,
    qualities: Sequence[int | None] = QUALITIES,
    first_seed: int = FIRST_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Detection on greyscale frames and vascular-fraction error on Doppler phantoms.

    Args:
        n_grey: greyscale frames per family (each read plain and with coloured marks).
        n_doppler: Doppler phantoms (power Doppler and colour flow in turn).
        qualities: file formats: ``None`` for PNG, else a JPEG quality 1-100.
        first_seed: the first seed of both sets.
        progress: called as ``progress(done, total)`` after each frame read.

    Returns:
        ``{"false_positives": {format: {family: {"frames", "doppler"}}}, "false_positive_rate":
        {format: rate}, "vascular_error_pp": {format: {"n", "missed", "median", "max"}},
        "targets": {...}, "met": bool}`` (see docs/CLI.md).

    Raises:
        ValueError: a count below 1 or a JPEG quality outside 1-100.
    """
    if n_grey < 1 or n_doppler < 1:
        raise ValueError("n_grey and n_doppler must be at least 1")
    for q in qualities:
        if q is not None and not 1 <= int(q) <= 100:
            raise ValueError(f"a JPEG quality is 1-100, not {q}")
    total = len(qualities) * (2 * n_grey * len(FAMILIES) + n_doppler)
    done = 0
    fp: dict[str, dict[str, dict[str, int]]] = {}
    errors: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sgus-bench-doppler-") as tmp:
        folder = Path(tmp)
        greys = []
        for family, render in FAMILIES.items():
            for seed in range(first_seed, first_seed + n_grey):
                frame = render(seed)
                marked = add_colour_marks(
                    frame.image, frame.mask, frame.fov, np.random.default_rng(seed)
                )
                greys.append((family, frame.image, marked))
        phantoms = [
            generate_frame(seed, doppler=True, doppler_mode="power" if i % 2 == 0 else "colour")
            for i, seed in enumerate(range(first_seed, first_seed + n_doppler))
        ]
        for quality in qualities:
            counts = {f: {"frames": 0, "doppler": 0} for f in FAMILIES}
            for family, grey, marked in greys:
                for rgb in (grey, marked):
                    read = _through_a_file(rgb, quality, folder)
                    counts[family]["frames"] += 1
                    counts[family]["doppler"] += int(bool(read.metadata.get("doppler")))
                    done += 1
                    if progress is not None:
                        progress(done, total)
            fp[_name(quality)] = counts
            pp, missed = [], 0
            for phantom in phantoms:
                assert phantom.rgb is not None and phantom.vascular_fraction is not None
                read = _through_a_file(phantom.rgb, quality, folder)
                done += 1
                if progress is not None:
                    progress(done, total)
                if read.doppler_signal is None:
                    missed += 1
                    continue
                found = vascular_fraction(read.doppler_signal, phantom.mask) or 0.0
                pp.append(100.0 * abs(found - phantom.vascular_fraction))
            errors[_name(quality)] = {
                "n": len(phantoms),
                "missed": missed,
                "median": float(np.median(pp)) if pp else None,
                "max": float(np.max(pp)) if pp else None,
            }
    rates = {
        name: sum(c["doppler"] for c in counts.values()) / sum(c["frames"] for c in counts.values())
        for name, counts in fp.items()
    }
    met = all(
        sum(c["doppler"] for c in counts.values()) <= TARGET_FALSE_POSITIVES
        for counts in fp.values()
    ) and all(
        e["missed"] == 0 and e["max"] is not None and e["max"] <= TARGET_ERROR_PP
        for e in errors.values()
    )
    return {
        "false_positives": fp,
        "false_positive_rate": rates,
        "vascular_error_pp": errors,
        "targets": {"false_positives": TARGET_FALSE_POSITIVES, "error_pp": TARGET_ERROR_PP},
        "met": met,
    }


def format_doppler_bench(result: dict[str, Any]) -> str:
    """The result as the two tables ``sgus bench-doppler`` prints."""
    lines = ["Greyscale frames called Doppler (plain and with coloured marks):"]
    families = list(next(iter(result["false_positives"].values())))
    lines.append(f"{'format':<10}" + "".join(f"{f:>14}" for f in families) + f"{'rate':>10}")
    for name, counts in result["false_positives"].items():
        cells = "".join(f"{counts[f]['doppler']:>7} of {counts[f]['frames']:<4}" for f in families)
        lines.append(f"{name:<10}{cells}{result['false_positive_rate'][name]:>10.1%}")
    lines.append("")
    lines.append("Vascular fraction inside the gland vs the truth, Doppler phantoms (pp):")
    lines.append(f"{'format':<10}{'frames':>8}{'missed':>8}{'median':>9}{'max':>8}")
    for name, e in result["vascular_error_pp"].items():
        median = "-" if e["median"] is None else f"{e['median']:.2f}"
        worst = "-" if e["max"] is None else f"{e['max']:.2f}"
        lines.append(f"{name:<10}{e['n']:>8}{e['missed']:>8}{median:>9}{worst:>8}")
    targets = result["targets"]
    verdict = "met" if result["met"] else "NOT met"
    lines.append(
        f"\nTargets ({verdict}): {targets['false_positives']} false positives; error within "
        f"{targets['error_pp']:g} pp, no Doppler phantom missed."
    )
    return "\n".join(lines)
