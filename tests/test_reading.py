"""How a segmenter's probability becomes a mask: the card's reading (test-time flip, threshold),
and the calibration that chooses it on the network's own training families."""

from __future__ import annotations

import numpy as np

from sgus_core.bench.generalisation import calibrate
from sgus_core.imaging import Frame, Rect
from sgus_core.inference.pipeline import Reading, segment_frames


class Constant:
    """A stand-in network: the same probability map whatever it is shown."""

    runtime = "test"

    def __init__(self, probability: np.ndarray, channels: int = 1, card: dict | None = None):
        self.name = "constant"
        self.input_shape = (*probability.shape, channels)
        self.card = card or {}
        self._p = probability.astype(np.float32)

    def predict_probabilities(self, batch: np.ndarray) -> np.ndarray:
        return np.repeat(self._p[None], len(batch), axis=0)


def _frame() -> Frame:
    pixels = np.random.default_rng(0).integers(0, 255, (40, 60), dtype=np.uint8)
    return Frame(pixels, None, Rect(0, 0, 60, 40))


def test_without_a_reading_the_mask_is_the_probability_above_one_half():
    left = np.zeros((20, 30))
    left[:, :15] = 0.9
    (pred,) = segment_frames(Constant(left), [_frame()])
    assert pred.mask[:, :28].all() and not pred.mask[:, 32:].any()


def test_the_cards_flip_averages_the_mirrored_input():
    """A network that always says "left half" says "everywhere 0.45" once its mirror image is
    averaged in: the card's threshold then decides between everything and nothing."""
    left = np.zeros((20, 30))
    left[:, :15] = 0.9
    flip_low = {"reading": {"zero_shot": {"flip": True, "threshold": 0.4}}}
    flip_plain = {"reading": {"zero_shot": {"flip": True, "threshold": 0.5}}}
    assert segment_frames(Constant(left, card=flip_low), [_frame()])[0].mask.all()
    assert not segment_frames(Constant(left, card=flip_plain), [_frame()])[0].mask.any()
    override = segment_frames(Constant(left, card=flip_low), [_frame()], reading=Reading())
    assert not override[0].mask[:, 32:].any()


def test_calibration_chooses_the_prompted_reading_that_serves_its_training_families():
    """A prompted network that is 0.45 sure everywhere finds nothing at threshold 0.5;
    calibration on its training families picks a reading that finds the gland (the box's
    prior, or a lower threshold), says what the plain reading scored, and leaves the zero-shot
    reading plain."""
    net = Constant(np.full((24, 32), 0.45), channels=4)
    block = calibrate(net, ["phantom", "scatter"], n=2)
    assert set(block) == {"prompted"}
    chosen = block["prompted"]
    assert chosen["prior"] > 0 or chosen["threshold"] < 0.45
    assert chosen["chosen_on"] == ["phantom", "scatter"]
    assert chosen["worst_iou"] > chosen["plain_worst_iou"] == 0.0
    assert chosen["flip"] is False  # a flip changes nothing here: the plainer reading is kept
    assert calibrate(Constant(np.full((24, 32), 0.45)), ["phantom"], n=1) == {}


def test_the_box_prior_makes_a_network_that_knows_nothing_answer_the_box_s_ellipse():
    """With the card's prior, a prompted network that is sure of nothing (0 everywhere) still
    answers a box with the ellipse inscribed in it; without it, with nothing."""
    from sgus_core.bench.generalisation import ellipse_in_box
    from sgus_core.inference.pipeline import segment_prompted
    from sgus_core.inference.prompts import Prompt

    frame = Frame(np.zeros((120, 160), np.uint8), None, Rect(0, 0, 160, 120))
    box = (40, 30, 119, 79)
    blind = np.zeros((24, 32))
    with_prior = {"reading": {"prompted": {"prior": 0.6, "threshold": 0.3}}}  # 0.6 x 0.5: its rim
    mask = segment_prompted(Constant(blind, 4, with_prior), frame, Prompt(box)).mask
    ellipse = ellipse_in_box(frame.pixels.shape, box)
    assert (mask & ellipse).sum() / (mask | ellipse).sum() > 0.9
    assert not segment_prompted(Constant(blind, 4), frame, Prompt(box)).mask.any()


def test_the_shipped_default_is_sure_of_a_phantom_gland_and_flags_noise():
    """The default segmenter's outline of one of its own phantoms carries no warning; on frames
    of noise, which are no ultrasound, every outline it draws is flagged as unsure."""
    from sgus_core.imaging import detect_fov
    from sgus_core.inference.pipeline import LOW_CONFIDENCE
    from sgus_core.inference.registry import load_pipeline
    from sgus_core.settings import REPO_ROOT
    from sgus_core.synthesis.phantom import generate_frame

    segmenter, _ = load_pipeline(REPO_ROOT / "models")
    phantom = generate_frame(5).image
    rng = np.random.default_rng(0)
    noise = [(rng.random((300, 400)) * 255).astype(np.uint8) for _ in range(3)]
    frames = [Frame(image, None, detect_fov(image)) for image in [phantom, *noise]]
    sure, *unsure = segment_frames(segmenter, frames)
    assert sure.confidence is not None and sure.confidence >= LOW_CONFIDENCE
    assert sure.confidence_warning() is None
    for prediction in unsure:
        text = prediction.confidence_warning()
        assert text is not None and ("unsure" in text or "no gland" in text)


def test_a_picture_that_is_no_ultrasound_is_said_to_be_none():
    """Frames of every rendered family pass; a white page with red writing (which the network
    outlined confidently) and a black frame are called what they are, noise is left to the
    model's confidence."""
    import cv2

    from sgus_core.bench.generalisation import as_imported, family_test_frames
    from sgus_core.imaging import detect_fov

    for family in ("phantom", "randomised", "scatter"):
        assert all(
            as_imported(f).unlike_ultrasound() is None for f in family_test_frames(family, 20)
        )
    page = np.full((480, 640, 3), 255, np.uint8)
    cv2.putText(page, "HELLO", (60, 280), cv2.FONT_HERSHEY_SIMPLEX, 5, (0, 0, 255), 12)
    grey = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    black = np.zeros((480, 640), np.uint8)
    noise = (np.random.default_rng(0).random((480, 640)) * 255).astype(np.uint8)
    said = [Frame(p, None, detect_fov(p)).unlike_ultrasound() for p in (grey, black, noise)]
    assert said[0] is not None and "does not look like a B-mode" in said[0]
    assert said[1] is not None and "nearly blank" in said[1]
    assert said[2] is None
