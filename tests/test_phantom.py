"""The phantom generator: deterministic frames, masks inside the FOV, grades that show, datasets."""

from __future__ import annotations

import csv
from collections import Counter

import cv2
import numpy as np
import pytest

from sgus_core.synthesis.frame_stats import REAL_FIGURES, measure_frame
from sgus_core.synthesis.phantom import (
    GLANDS,
    LABELS_HEADER,
    SCANNERS,
    PhantomConfig,
    generate_frame,
    generate_patient,
    main,
    patient_grades,
    patient_id,
    write_dataset,
)

SMALL = PhantomConfig(frame_size=(240, 167))


def _dark_fraction(frame) -> float:
    """Fraction of the gland whose smoothed grey is below 55 % of the gland's median."""
    smooth = cv2.GaussianBlur(frame.image.astype(np.float32), (0, 0), 2.5)
    inside = smooth[frame.mask]
    return float((inside < 0.55 * np.median(inside)).mean())


def test_same_seed_gives_identical_bytes():
    """The same arguments give byte-identical image and mask."""
    a = generate_frame(11, config=SMALL)
    b = generate_frame(11, config=SMALL)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.mask.tobytes() == b.mask.tobytes()
    assert (a.devita, a.omeract, a.hocevar, a.gland, a.side) == (
        b.devita, b.omeract, b.hocevar, b.gland, b.side
    )  # fmt: skip


def test_different_seeds_give_different_frames():
    """Two seeds give different pixels."""
    a = generate_frame(1, devita=0, gland="parotid", side="R", config=SMALL)
    b = generate_frame(2, devita=0, gland="parotid", side="R", config=SMALL)
    assert a.image.tobytes() != b.image.tobytes()


def test_drawn_labels_match_an_explicit_call():
    """A frame drawn from the seed alone equals the one asked for with its drawn labels."""
    free = generate_frame(5, config=SMALL)
    fixed = generate_frame(
        5, devita=free.devita, gland=free.gland, side=free.side, config=SMALL, scanner=free.scanner
    )
    assert free.image.tobytes() == fixed.image.tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_mask_is_non_empty_and_inside_the_fov(seed):
    """The gland mask has pixels, all of them inside the FOV rectangle, as one region."""
    frame = generate_frame(seed, config=SMALL)
    h, w = frame.image.shape
    x, y, fw, fh = frame.fov
    assert frame.image.dtype == np.uint8 and frame.mask.dtype == bool
    assert frame.mask.shape == (h, w)
    assert min(x, y) >= 0 and x + fw <= w and y + fh <= h
    outside = frame.mask.copy()
    outside[y : y + fh, x : x + fw] = False
    assert frame.mask.sum() > 0.02 * h * w
    assert not outside.any()
    n_labels, _ = cv2.connectedComponents(frame.mask.astype(np.uint8))
    assert n_labels == 2


def test_native_sizes_are_the_scanners_screenshots():
    """Without frame_size, each scanner renders its own screenshot size."""
    for key, layout in SCANNERS.items():
        frame = generate_frame(0, gland="parotid", side="L", devita=0, scanner=key)
        assert frame.image.shape == (layout.size[1], layout.size[0])
        assert 0.05 <= frame.spacing_mm <= 0.12


def test_drawn_foci_grow_with_devita():
    """The gland fraction covered by hypoechoic foci, as drawn, grows strictly with de Vita."""
    means = []
    for grade in range(4):
        frames = [
            generate_frame(s, devita=grade, gland=g, config=SMALL) for s in range(3) for g in GLANDS
        ]
        means.append(np.mean([f.lesion_fraction for f in frames]))
    assert means[0] == 0.0
    assert means[0] < means[1] < means[2] < means[3]


def test_dark_areas_visible_in_the_image_grow_with_devita():
    """The dark fraction of the gland in the pixels grows from grade 0 to 2 to 3."""
    means = []
    for grade in (0, 2, 3):
        frames = [
            generate_frame(s, devita=grade, gland=g, scanner="800x555")
            for s in range(2)
            for g in GLANDS
        ]
        means.append(np.mean([_dark_fraction(f) for f in frames]))
    assert means[0] < means[1] < means[2]


def test_omeract_and_hocevar_agree_with_devita():
    """OMERACT stays within a grade of de Vita (never below) and Hocevar items within range."""
    for grade in range(4):
        for seed in range(4):
            frame = generate_frame(seed, devita=grade, config=SMALL)
            assert grade <= frame.omeract <= min(3, grade + 1)
            echo, inhom, hypo, hyper, border = frame.hocevar
            assert 0 <= echo <= 1 and 0 <= border <= 2
            assert all(0 <= item <= 3 for item in (inhom, hypo, hyper))
            assert (hypo == 0) == (grade == 0)
            if grade == 3:
                assert hypo >= 2 and hyper >= 2


def test_patient_has_four_glands_with_their_names():
    """A patient is parotid R/L and submandibular R/L, named <patient>_<gland>_<side>."""
    frames = generate_patient(3, "P00003", SMALL)
    assert [f.name for f in frames] == [
        "P00003_parotid_R",
        "P00003_parotid_L",
        "P00003_submandibular_R",
        "P00003_submandibular_L",
    ]
    assert len({f.scanner for f in frames}) == 1


def test_patient_grades_follow_the_real_distribution():
    """Over many patients, de Vita grades are within 3 points of the real set's proportions."""
    counts = Counter(g for seed in range(3000) for g in patient_grades(seed).values())
    total = sum(counts.values())
    real = np.array([110, 28, 55, 32]) / 225
    ours = np.array([counts[g] / total for g in range(4)])
    assert np.abs(ours - real).max() < 0.03


def test_grades_are_correlated_within_a_patient():
    """A patient's parotid and submandibular grades correlate (a patient-level severity)."""
    pairs = np.array(
        [
            [grades[("parotid", "R")], grades[("submandibular", "L")]]
            for grades in (patient_grades(seed) for seed in range(1000))
        ]
    )
    assert np.corrcoef(pairs.T)[0, 1] > 0.6


def test_write_dataset_writes_a_csv_whose_rows_point_to_files(tmp_path):
    """labels.csv has the import header and one row per frame, each naming existing PNGs."""
    calls = []
    labels = write_dataset(
        tmp_path, 1, 42, config=SMALL, progress=lambda done, total: calls.append((done, total))
    )
    with labels.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == LABELS_HEADER
        rows = list(reader)
    assert len(rows) == 4 and calls[-1] == (4, 4)
    for row in rows:
        image = cv2.imread(str(tmp_path / row["image"]), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(tmp_path / row["mask"]), cv2.IMREAD_UNCHANGED)
        assert image.shape == mask.shape == (167, 240)
        assert set(np.unique(mask)) == {0, 255}
        assert row["patient"] == "P00042" and row["devita"] in "0123"
        assert 0 < float(row["spacing_mm"]) < 10


def test_patient_ids_are_offset_by_the_first_seed():
    """Datasets from different seed ranges name their patients differently."""
    assert patient_id(0, 7) == "P00007"
    assert patient_id(100_000, 3) == "P100003"


def test_config_rejects_impossible_values():
    """Non-positive sizes and unknown scanners are refused with ValueError."""
    with pytest.raises(ValueError, match="gland_scale"):
        PhantomConfig(gland_scale=0)
    with pytest.raises(ValueError, match="scanner"):
        PhantomConfig(scanner="640x480")
    with pytest.raises(ValueError, match="gland"):
        generate_frame(0, gland="thyroid")
    with pytest.raises(ValueError, match="de Vita"):
        generate_frame(0, devita=4)


def test_gain_brightens_and_attenuation_darkens_the_deep_field():
    """gain_db raises the FOV's grey; depth_attenuation darkens its lower half."""
    kwargs = {"devita": 0, "gland": "parotid", "side": "R"}
    base = generate_frame(9, config=SMALL, **kwargs)
    bright = generate_frame(9, config=PhantomConfig(frame_size=(240, 167), gain_db=8), **kwargs)
    deep = generate_frame(
        9, config=PhantomConfig(frame_size=(240, 167), depth_attenuation=3), **kwargs
    )
    x, y, w, h = base.fov

    def lower(f):
        return f.image[y + h // 2 : y + h, x : x + w].mean()

    assert bright.image[y : y + h, x : x + w].mean() > base.image[y : y + h, x : x + w].mean() + 10
    assert lower(deep) < lower(base) - 10


def test_gland_scale_and_crop_change_the_geometry():
    """gland_scale grows the mask; crop_to_fov returns just the FOV."""
    kwargs = {"devita": 0, "gland": "parotid", "side": "L"}
    base = generate_frame(4, config=SMALL, **kwargs)
    big = generate_frame(4, config=PhantomConfig(frame_size=(240, 167), gland_scale=1.3), **kwargs)
    crop = generate_frame(
        4, config=PhantomConfig(frame_size=(240, 167), crop_to_fov=True), **kwargs
    )
    assert big.mask.sum() > 1.3 * base.mask.sum()
    assert crop.image.shape == (base.fov[3], base.fov[2]) and crop.fov[:2] == (0, 0)
    assert np.array_equal(
        crop.mask, base.mask[base.fov[1] :, base.fov[0] :][: crop.fov[3], : crop.fov[2]]
    )


def test_text_is_burned_in_only_when_asked():
    """show_text=False leaves the panels without bright text pixels."""
    kwargs = {"devita": 0, "gland": "parotid", "side": "R"}
    texted = generate_frame(2, config=PhantomConfig(frame_size=(480, 333)), **kwargs)
    plain = generate_frame(
        2, config=PhantomConfig(frame_size=(480, 333), show_text=False), **kwargs
    )
    header = slice(0, int(0.06 * 333))
    assert (texted.image[header] > 150).sum() > 50
    assert (plain.image[header] > 150).sum() == 0


def test_figures_of_a_few_frames_fall_in_the_real_ranges():
    """Ring ratio, texture, area and bounding-box figures of grade 0-1 frames are in the real ranges."""
    for seed, grade, gland in [(0, 0, "parotid"), (1, 1, "submandibular"), (2, 0, "submandibular")]:
        frame = generate_frame(seed, devita=grade, gland=gland, scanner="800x555")
        figures = measure_frame(frame.image, frame.mask)
        for key in ("gland_ring_ratio", "gland_cv", "area_fraction", "width_fraction", "aspect"):
            _, low, high = REAL_FIGURES[key]
            assert low <= figures[key] <= high, (key, figures[key])


def test_module_command_writes_a_dataset(tmp_path, capsys):
    """python -m sgus_core.synthesis.phantom writes images, masks and labels.csv."""
    out = tmp_path / "set"
    code = main(["--out", str(out), "--patients", "1", "--first-seed", "3", "--size", "200x139"])
    assert code == 0
    assert len(list((out / "images").glob("*.png"))) == 4
    assert (out / "labels.csv").is_file()
    assert "wrote 4 frames" in capsys.readouterr().out
