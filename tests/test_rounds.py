"""Study rounds: queues, shuffled orders, repeat rounds and blinding enforced in the core."""

from __future__ import annotations

import numpy as np
import pytest

from sgus_core.errors import PermissionDenied
from sgus_core.imaging import encode_mask_png
from sgus_core.store import NewImage
from sgus_core.study.rounds import (
    create_repeat_round,
    prediction_uncertainty,
    rater_queue,
    round_order,
    visible_labels,
)


@pytest.fixture
def setup(store, tmp_path):
    """A dataset of 12 images, raters ana and ben, a model prediction and labels outside rounds."""
    ds = store.ensure_dataset("d", tmp_path)
    for name in ("ana", "ben", "reference"):
        store.ensure_rater(name)
    ids = [
        store.add_image(ds.id, NewImage(path=f"{i}.png", content_hash=f"h{i}", width=8, height=8))[
            0
        ]
        for i in range(12)
    ]
    store.register_model("m", task="segment", architecture="unet", path="m.keras", card={})
    one_pixel = np.zeros((8, 8), bool)
    one_pixel[4, 4] = True
    png = encode_mask_png(one_pixel)
    store.save_prediction(ids[0], "m", png, area_px=1, grade_probabilities=[0.25, 0.25, 0.3, 0.2])
    store.save_prediction(ids[1], "m", png, area_px=1, grade_probabilities=[0.9, 0.1, 0, 0])
    store.save_grade(ids[0], "reference", devita=2)
    return store, ds, ids


def test_queue_lists_open_images_and_drops_done_ones(setup):
    """A rater's queue holds the round's images until she marks them done."""
    store, ds, ids = setup
    rnd = store.create_round("r1", ds.id, ids[:5], ["ana"])
    store.set_status(ids[0], "ana", "done", round_id=rnd.id)
    store.set_status(ids[1], "ana", "flagged", reason="blurred", round_id=rnd.id)
    queue = rater_queue(store, rnd, "ana")
    assert [q.image_id for q in queue] == ids[1:5]
    assert queue[0].status == "flagged"
    assert len(rater_queue(store, rnd, "ana", include_done=True)) == 5


def test_status_outside_the_round_does_not_count_inside(setup):
    """Marking an image done outside a round leaves it open in the round."""
    store, ds, ids = setup
    rnd = store.create_round("r1", ds.id, ids[:3], ["ana"])
    store.set_status(ids[0], "ana", "done")
    assert ids[0] in [q.image_id for q in rater_queue(store, rnd, "ana")]


def test_shuffled_order_is_stable_and_differs_between_raters_and_repeats(setup):
    """Shuffled rounds give each rater a fixed order; a repeat round reorders the same images."""
    store, ds, ids = setup
    rnd = store.create_round("r1", ds.id, ids, ["ana", "ben"], shuffled=True)
    ana = round_order(rnd, "ana")
    assert ana == round_order(store.get_round("r1"), "ana")
    assert sorted(ana) == sorted(ids) and ana != ids
    assert ana != round_order(rnd, "ben")
    repeat = create_repeat_round(store, rnd, "ana", "r1-repeat")
    assert repeat.repeat_of == rnd.id and repeat.raters == ("ana",)
    again = round_order(repeat, "ana")
    assert sorted(again) == sorted(ana) and again != ana


def test_blind_round_hides_model_and_other_raters(setup):
    """In a blind round a rater sees neither the prediction nor anyone else's labels."""
    store, ds, ids = setup
    rnd = store.create_round("blind", ds.id, ids[:3], ["ana", "ben"], blind=True)
    store.save_grade(ids[0], "ben", devita=1, round_id=rnd.id)
    store.save_grade(ids[0], "ana", devita=3)  # ana's own label from before the round
    store.save_grade(ids[0], "ana", devita=2, round_id=rnd.id)
    seen = visible_labels(store, rnd, "ana", ids[0])
    assert seen.prediction is None
    assert [(g.rater, g.devita) for g in seen.grades] == [("ana", 2)]
    whole_dataset = visible_labels(store, None, "ana", ids[0])  # the round is still open
    assert whole_dataset.prediction is None
    assert [(g.rater, g.devita) for g in whole_dataset.grades] == [("ana", 2)]
    store.close_round("blind")
    closed = visible_labels(store, None, "ana", ids[0])
    assert closed.prediction is not None and len(closed.grades) == 4


def test_blind_round_refuses_outsiders_and_uncertainty_order(setup):
    """Raters outside a round, images outside it and uncertainty order in a blind round are refused."""
    store, ds, ids = setup
    rnd = store.create_round("blind", ds.id, ids[:3], ["ana"], blind=True)
    with pytest.raises(PermissionDenied):
        visible_labels(store, rnd, "ben", ids[0])
    with pytest.raises(PermissionDenied):
        visible_labels(store, rnd, "ana", ids[5])
    with pytest.raises(PermissionDenied, match="blind"):
        rater_queue(store, rnd, "ana", order="uncertainty")


def test_uncertainty_order_puts_the_least_sure_first(setup):
    """Ordering by uncertainty shows the image with the flattest grade probabilities first."""
    store, ds, ids = setup
    rnd = store.create_round("open", ds.id, ids[:3], ["ana"])
    scores = {i: prediction_uncertainty(store.latest_prediction(i)) for i in ids[:3]}
    queue = rater_queue(store, rnd, "ana", order="uncertainty", uncertainty=scores)
    assert [q.image_id for q in queue][:2] == [ids[0], ids[1]]
    assert scores[ids[0]] == pytest.approx(0.7)


def test_a_round_sample_is_seeded_and_spread_over_patients():
    """Six of 20 frames (5 patients x 4 glands): the same seed draws the same six, another
    seed others; no patient gives more than two; not simply the first frames imported."""
    from sgus_core.store import ImageRecord
    from sgus_core.study.rounds import sample_round_images

    images = [
        ImageRecord(i, 1, f"{i}.png", f"h{i}", 0, 8, 8, f"P{i // 4}", None, None, None, None)
        for i in range(20)
    ]
    first = sample_round_images(images, 6, seed=7)
    assert first == sample_round_images(images, 6, seed=7)
    assert first != sample_round_images(images, 6, seed=8)
    assert len(first) == 6 and first != list(range(6))
    per_patient = [sum(1 for i in first if i // 4 == p) for p in range(5)]
    assert max(per_patient) <= 2 and sum(p > 0 for p in per_patient) == 5
    assert sample_round_images(images, 50, seed=1) == list(range(20))
