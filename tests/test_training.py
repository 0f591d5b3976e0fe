"""The training core: patient splits, augmentation, training, fine-tuning, saving and cards."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from sgus_core.errors import ModelError
from sgus_core.inference.processing import gland_box
from sgus_core.inference.runtimes import load_keras_model
from sgus_core.training import (
    CARD_FIELDS,
    AugmentConfig,
    Sample,
    augment,
    class_weights,
    data_hash,
    flip_horizontal,
    rotate,
    save_model,
    split_by_patient,
    train_grader,
    train_segmenter,
)

SIZE = 64
TINY_UNET = {"base_filters": 4, "depth": 2}
TINY_SHAPE = (SIZE, SIZE, 1)


def _sample(i: int, patient: str, *, with_mask: bool = True) -> Sample:
    """A 64x64 frame: a bright lens-shaped 'gland' on speckle, its mask, and a grade."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    cy, cx = 24 + rng.integers(-6, 7), 32 + rng.integers(-8, 9)
    mask = ((xx - cx) / 22.0) ** 2 + ((yy - cy) / 8.0) ** 2 <= 1.0
    image = rng.normal(50, 15, (SIZE, SIZE)) + 110 * mask
    return Sample(
        image=np.clip(image, 0, 255).astype(np.uint8),
        mask=mask if with_mask else None,
        devita=i % 4,
        omeract=(i + 1) % 4,
        patient=patient,
        key=f"frame{i:03d}",
    )


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    """Twelve frames of six patients, two each."""
    return [_sample(i, f"P{i // 2}") for i in range(12)]


@pytest.fixture(scope="module")
def trained(samples):
    """A tiny U-Net trained for one epoch."""
    return train_segmenter(
        samples, arch="unet", input_shape=TINY_SHAPE, epochs=1, batch_size=4, seed=0,
        model_options=TINY_UNET, patience=1,
    )  # fmt: skip


def test_split_keeps_each_patient_in_one_part(samples):
    """No patient has frames in two of train, validation and test, and no frame is lost."""
    train, val, test = split_by_patient(samples, val_fraction=0.2, test_fraction=0.2, seed=3)
    parts = [{s.patient for s in part} for part in (train, val, test)]
    assert parts[0] and parts[1] and parts[2]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(s.key for s in train + val + test) == sorted(s.key for s in samples)


def test_split_needs_enough_patients(samples):
    """Two patients cannot fill train, validation and test."""
    with pytest.raises(ModelError, match="at least 3 patients"):
        split_by_patient(samples[:4])


def test_data_hash_ignores_order_but_sees_labels(samples):
    """The data hash is the same for any order and changes when a grade changes."""
    assert data_hash(samples) == data_hash(list(reversed(samples)))
    changed = [*samples[:-1], Sample(**{**samples[-1].__dict__, "devita": 0})]
    assert data_hash(changed) != data_hash(samples)


def test_flip_moves_image_and_mask_together():
    """A horizontal flip sends one marked pixel of image and mask to the same mirrored place."""
    image = np.zeros((5, 7), np.float32)
    mask = np.zeros((5, 7), bool)
    image[1, 2], mask[1, 2] = 1.0, True
    flipped, flipped_mask = flip_horizontal(image, mask)
    assert flipped[1, 4] == 1.0 and flipped_mask[1, 4]
    assert flipped_mask.sum() == 1


def test_rotation_keeps_image_and_mask_aligned():
    """A rotation moves a bright block in the image and in the mask to the same pixels."""
    mask = np.zeros((40, 40), bool)
    mask[8:16, 24:32] = True
    image, rotated_mask = rotate(mask.astype(np.float32), mask, 9.0)
    iou = ((image > 0.5) & rotated_mask).sum() / ((image > 0.5) | rotated_mask).sum()
    assert iou > 0.85


def test_augment_keeps_image_and_mask_aligned():
    """Any draw of the full augmentation leaves the bright image region on the mask."""
    mask = np.zeros((48, 64), bool)
    mask[10:30, 12:50] = True
    config = AugmentConfig(flip_p=0.5, crop_p=1.0, gain=(1.0, 1.0), gamma=(1.0, 1.0), max_speckle=0)
    for seed in range(5):
        image, out_mask = augment(
            mask.astype(np.float32), mask, np.random.default_rng(seed), config
        )
        bright = image > 0.5
        assert (bright & out_mask).sum() / (bright | out_mask).sum() > 0.85
        assert image.dtype == np.float32 and out_mask.dtype == bool


def test_the_grey_level_curve_can_make_the_gland_darker_than_its_surroundings():
    """With ``remap_p`` the gland is sometimes darker than the tissue around it (as on some
    real frames), and the mask stays where it was."""
    mask = np.zeros((48, 64), bool)
    mask[10:30, 12:50] = True
    image = np.where(mask, 0.7, 0.3).astype(np.float32)
    still = AugmentConfig(flip_p=0, max_rotation_deg=0, crop_p=0, gain=(1, 1), gamma=(1, 1),
                          max_speckle=0)  # fmt: skip
    darker = 0
    for seed in range(20):
        out, out_mask = augment(image, mask, np.random.default_rng(seed), replace(still, remap_p=1))
        assert out_mask is not None and (out_mask == mask).all()
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        assert np.ptp(out[mask]) == 0 and np.ptp(out[~mask]) == 0  # one grey in, one grey out
        darker += int(out[mask][0] < out[~mask][0])
    assert 3 <= darker <= 17


def test_the_random_convolution_changes_texture_but_keeps_the_gland_in_place():
    """``random_conv_p`` gives each draw another texture and grey-level response (frames differ
    from draw to draw and from the input), in 0..1, while the gland's outline stays where it
    was: the grey step at the gland's border survives in the output."""
    mask = np.zeros((48, 64), bool)
    mask[10:30, 12:50] = True
    rng = np.random.default_rng(0)
    image = np.where(mask, 0.7, 0.3).astype(np.float32) + rng.normal(0, 0.05, mask.shape)
    image = image.astype(np.float32)
    still = AugmentConfig(flip_p=0, max_rotation_deg=0, crop_p=0, gain=(1, 1), gamma=(1, 1),
                          max_speckle=0, random_conv_p=1)  # fmt: skip
    outs = [augment(image, mask, np.random.default_rng(seed), still) for seed in range(12)]
    for out, out_mask in outs:
        assert out_mask is not None and (out_mask == mask).all()
        assert out.dtype == np.float32 and out.shape == mask.shape
        assert out.min() >= 0 and out.max() <= 1
    inside = [float(out[12:28, 14:48].mean()) for out, _ in outs]
    outside = [float(out[36:46, :].mean()) for out, _ in outs]
    steps = [abs(i - o) for i, o in zip(inside, outside, strict=True)]
    assert np.median(steps) > 0.02  # the gland still stands out from its surroundings
    assert np.ptp(inside) > 0.1  # and its grey changes from draw to draw
    assert not np.allclose(outs[0][0], outs[1][0])


def test_gland_box_pads_the_largest_region():
    """The gland box is the largest region's bounding box, padded by 10 % of its size."""
    mask = np.zeros((50, 100), bool)
    mask[20:30, 30:70] = True
    mask[2:4, 2:4] = True  # a speck that must not widen the box
    assert gland_box(mask) == (26, 19, 74, 31)


def test_class_weights_favour_the_rare_grade():
    """The rare grade gets the largest weight and the per-sample mean weight is 1."""
    grades = np.array([0] * 10 + [1] * 2 + [2] * 6 + [3] * 4)
    weights = class_weights(grades)
    assert weights.argmax() == 1
    assert weights[grades].mean() == pytest.approx(1.0)


def test_train_segmenter_reports_metrics_in_range(trained):
    """One epoch of training returns a history and test IoU/Dice in [0, 1]."""
    assert trained.epochs_run == 1
    assert set(trained.history) >= {"loss", "iou", "val_iou"}
    for key in ("iou_mean", "dice_mean"):
        assert 0.0 <= trained.test_metrics[key] <= 1.0
    assert trained.n_train + trained.n_val + trained.n_test == 12


def test_save_and_load_give_the_same_predictions(trained, tmp_path):
    """A model saved as float32 and loaded back predicts exactly what it predicted before."""
    path, _ = save_model(trained, tmp_path, "tiny", weights_dtype="float32")
    x = np.random.default_rng(0).random((2, *TINY_SHAPE), dtype=np.float32)
    again = load_keras_model(path)
    np.testing.assert_allclose(
        again.predict(x, verbose=0), trained.model.predict(x, verbose=0), atol=1e-6
    )


def test_float16_storage_halves_the_file_and_loads_as_float32(trained, tmp_path):
    """Float16 storage makes a smaller file whose model runs in float32 with close predictions."""
    full, _ = save_model(trained, tmp_path, "full", weights_dtype="float32")
    half, _ = save_model(trained, tmp_path, "half", weights_dtype="float16")
    assert half.stat().st_size < 0.75 * full.stat().st_size
    model = load_keras_model(half)
    assert all(w.dtype == "float32" for w in model.weights)
    x = np.random.default_rng(0).random((2, *TINY_SHAPE), dtype=np.float32)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), trained.model.predict(x, verbose=0), atol=2e-2
    )


def test_card_has_every_field(trained, tmp_path):
    """The model card holds every documented field, the extras, and the segmenter's test IoU."""
    _, card_path = save_model(trained, tmp_path, "tiny", card_extra={"dataset": "unit"})
    card = json.loads(card_path.read_text())
    assert set(CARD_FIELDS) <= set(card)
    assert card["task"] == "segment" and card["architecture"] == "unet"
    assert card["input_shape"] == list(TINY_SHAPE) and card["dataset"] == "unit"
    assert card["training_data"]["hash"] == trained.data_hash
    assert card["split_sizes"]["test"] == trained.n_test
    assert "iou_mean" in card["test_metrics"] and card["gflops"] > 0


def test_fine_tune_starts_from_the_saved_weights(trained, samples, tmp_path):
    """Fine-tuning at learning rate 0 keeps exactly the saved model's trainable weights."""
    path, _ = save_model(trained, tmp_path, "base")
    saved = load_keras_model(path)
    tuned = train_segmenter(
        samples, from_model=path, epochs=1, batch_size=4, learning_rate=0.0, patience=1
    )
    assert tuned.fine_tuned_from == str(path)
    assert tuned.architecture == "unet" and tuned.input_shape == TINY_SHAPE
    for before, after in zip(saved.trainable_weights, tuned.model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before.numpy(), after.numpy())


def test_a_fine_tune_that_makes_things_worse_keeps_the_starting_network(samples, tmp_path):
    """A fine-tune whose weights end below the starting network on the validation frames (here
    a learning rate far too high) hands back the starting network and says so on the card; the
    tuned card keeps the parent's zero-shot reading."""
    start = train_segmenter(
        samples, arch="unet", input_shape=TINY_SHAPE, epochs=12, batch_size=4, seed=0,
        model_options=TINY_UNET, patience=12,
    )  # fmt: skip
    path, card_path = save_model(start, tmp_path, "start", weights_dtype="float32")
    card = json.loads(card_path.read_text())
    card["reading"] = {"zero_shot": {"flip": True, "threshold": 0.5}, "prompted": {"prior": 0.4}}
    card_path.write_text(json.dumps(card))
    tuned = train_segmenter(
        samples, from_model=path, epochs=3, batch_size=4, learning_rate=30.0, patience=3,
        freeze_encoder_epochs=0,
    )  # fmt: skip
    assert tuned.test_metrics["kept_start"] is True and tuned.best_epoch == 0
    assert tuned.warning is not None and tuned.warning.startswith("WARNING: fine-tuning did not")
    x = np.random.default_rng(0).random((2, *TINY_SHAPE), dtype=np.float32)
    np.testing.assert_allclose(
        tuned.model.predict(x, verbose=0), load_keras_model(path).predict(x, verbose=0), atol=1e-6
    )
    tuned_card = json.loads(save_model(tuned, tmp_path, "tuned")[1].read_text())
    assert tuned_card["warning"] == tuned.warning
    # read as its parent was chosen to be read (the flip), the parent's box calibration left out
    assert tuned_card["reading"] == {
        "zero_shot": {"flip": True, "threshold": 0.5, "chosen_by": "inherited from start"}
    }


def test_bad_model_name_is_refused(trained, tmp_path):
    """A model name that could leave the models folder is refused."""
    with pytest.raises(ModelError):
        save_model(trained, tmp_path, "../escape")


def test_train_grader_frame_needs_no_mask():
    """The whole-frame grader trains on graded frames without masks; probabilities sum to 1."""
    unmasked = [_sample(i, f"P{i // 2}", with_mask=False) for i in range(12)]
    result = train_grader(
        unmasked, design="grader_frame", input_shape=(32, 64, 1), epochs=1, batch_size=4,
        model_options={"width": 4},
    )  # fmt: skip
    assert result.task == "grade" and result.target == "devita"
    assert 0.0 <= result.test_metrics["accuracy"] <= 1.0
    assert len(result.test_metrics["recall_per_grade"]) == 4
    x = np.random.default_rng(0).random((3, 32, 64, 1), dtype=np.float32)
    np.testing.assert_allclose(result.model.predict(x, verbose=0).sum(axis=1), 1.0, atol=1e-5)


def test_train_grader_crop_uses_the_segmenter_for_unmasked_frames():
    """The crop grader outlines frames without a mask with the given segmenter."""
    frames = [_sample(i, f"P{i // 2}", with_mask=i % 3 != 0) for i in range(12)]
    calls = []

    def outline(image):
        calls.append(image.shape)
        return image > 120

    result = train_grader(
        frames, design="grader_crop", target="omeract", input_shape=(32, 64, 2), epochs=1,
        batch_size=4, model_options={"width": 4}, segmenter=outline,
    )  # fmt: skip
    assert len(calls) == 4
    assert result.target == "omeract" and result.input_shape == (32, 64, 2)


def test_crop_grader_without_masks_or_segmenter_is_refused():
    """The crop grader refuses unmasked frames when no segmenter can outline them."""
    frames = [_sample(i, f"P{i // 2}", with_mask=False) for i in range(12)]
    with pytest.raises(ModelError, match="segmentation model"):
        train_grader(frames, design="grader_crop", input_shape=(32, 64, 2), epochs=1)


def test_fine_tuning_a_segmenter_as_a_grader_is_refused(trained, samples, tmp_path):
    """A saved segmenter cannot be the starting point of a grade classifier."""
    path, _ = save_model(trained, tmp_path, "seg")
    with pytest.raises(ModelError, match="segmentation model"):
        train_grader(samples, from_model=path, epochs=1)
