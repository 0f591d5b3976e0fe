"""How the default models hold on phantoms outside their training range.

``python -m sgus_core.bench.robustness [--patients N]`` generates unseen phantom patients (seeds from
400000) under each variation of the generator (brightness, depth attenuation, gland size and
shape, speckle size, noise, frame layout), runs the default segmenter and grader through their
fields of view, and prints mean IoU, de Vita accuracy and quadratic kappa per variation.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from sgus_core import metrics
from sgus_core.imaging import Frame, Rect
from sgus_core.inference import segment_frames
from sgus_core.inference.registry import load_pipeline
from sgus_core.inference.runtimes import Grader, Segmenter
from sgus_core.settings import load_settings
from sgus_core.synthesis.phantom import PhantomConfig, generate_patient

FIRST_SEED = 400_000
VARIATIONS: dict[str, PhantomConfig] = {
    "as trained": PhantomConfig(),
    "darker (-8 dB gain)": PhantomConfig(gain_db=-8.0),
    "brighter (+8 dB gain)": PhantomConfig(gain_db=8.0),
    "strong attenuation (x2)": PhantomConfig(depth_attenuation=2.0),
    "no attenuation": PhantomConfig(depth_attenuation=0.0),
    "small gland (x0.7)": PhantomConfig(gland_scale=0.7),
    "large gland (x1.3)": PhantomConfig(gland_scale=1.3),
    "rounder gland (aspect x0.6)": PhantomConfig(gland_aspect=0.6),
    "coarse speckle (x1.8)": PhantomConfig(speckle_size=1.8),
    "fine speckle (x0.6)": PhantomConfig(speckle_size=0.6),
    "noisy (x3 noise)": PhantomConfig(noise=3.0),
    "no scanner UI": PhantomConfig(show_ui=False, show_text=False),
    "FOV-only frames": PhantomConfig(crop_to_fov=True),
}


def evaluate_variation(
    config: PhantomConfig, n_patients: int, segmenter: Segmenter, grader: Grader | None
) -> dict[str, float]:
    """Mean IoU, de Vita accuracy and quadratic kappa of the models on one variation."""
    frames: list[Frame] = []
    truth_masks: list[np.ndarray] = []
    truth_grades: list[int] = []
    for i in range(n_patients):
        for ph in generate_patient(FIRST_SEED + i, f"R{i:04d}", config):
            frames.append(Frame(ph.image, ph.spacing_mm, Rect(*ph.fov)))
            truth_masks.append(ph.mask)
            truth_grades.append(ph.devita)
    predictions = segment_frames(segmenter, frames, grader=grader)
    ious = [
        metrics.mask_agreement(t, p.mask).iou for t, p in zip(truth_masks, predictions, strict=True)
    ]
    grades = np.array([p.grade for p in predictions])
    truth = np.array(truth_grades)
    return {
        "n": len(frames),
        "iou_mean": float(np.mean(ious)),
        "accuracy": metrics.accuracy(truth, grades),
        "kappa_quadratic": metrics.cohen_kappa(truth, grades, weights="quadratic", n_boot=0).kappa,
    }


def main() -> None:
    """Print the robustness table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--patients", type=int, default=10, help="patients per variation (x4 frames)"
    )
    args = parser.parse_args()
    segmenter, grader = load_pipeline(load_settings().models_dir)
    print(f"models: {segmenter.name} + {grader.name if grader else 'no grader'}")
    print("| variation | frames | mean IoU | de Vita accuracy | quadratic kappa |")
    print("|---|---|---|---|---|")
    for name, config in VARIATIONS.items():
        r = evaluate_variation(replace(config), args.patients, segmenter, grader)
        print(
            f"| {name} | {r['n']} | {r['iou_mean']:.3f} | {r['accuracy']:.3f} | {r['kappa_quadratic']:.3f} |"
        )


if __name__ == "__main__":
    main()
