"""Doppler: colour-flow and power-Doppler signal found on import, the gland's vascular fraction,
the phantom's Doppler frames."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from sgus_core.imaging import read_image
from sgus_core.imaging.doppler import doppler_signal, is_doppler, vascular_fraction
from sgus_core.imaging.frame import Rect
from sgus_core.synthesis.doppler import add_colour_marks, add_doppler
from sgus_core.synthesis.families import FAMILIES
from sgus_core.synthesis.phantom import generate_frame


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _write_rgb(path: Path, rgb: np.ndarray, quality: int | None = None) -> Path:
    params = [] if quality is None else [cv2.IMWRITE_JPEG_QUALITY, quality]
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    return path


def test_power_doppler_phantom_signal_is_found_exactly() -> None:
    """Uncompressed, the signal found is exactly the flow the generator painted in the FOV."""
    frame = generate_frame(3, doppler=True)
    assert frame.rgb is not None and frame.doppler_signal is not None
    found = doppler_signal(frame.rgb, Rect(*frame.fov))
    assert is_doppler(found)
    assert np.array_equal(found, frame.doppler_signal)


@pytest.mark.parametrize("mode", ["power", "colour"])
@pytest.mark.parametrize("quality", [None, 90, 70])
def test_vascular_fraction_within_two_points_of_the_truth(mode: str, quality: int | None) -> None:
    """Power and colour flow, raw or JPEG-compressed: the gland's vascular fraction is within
    2 percentage points of what was painted."""
    for seed in range(6):
        frame = generate_frame(seed, doppler=True, doppler_mode=mode)
        assert frame.rgb is not None and frame.vascular_fraction is not None
        rgb = frame.rgb if quality is None else _jpeg(frame.rgb, quality)
        found = doppler_signal(rgb, Rect(*frame.fov))
        assert is_doppler(found), (seed, mode, quality)
        fraction = vascular_fraction(found, frame.mask)
        assert fraction is not None
        assert abs(fraction - frame.vascular_fraction) <= 0.02, (seed, fraction)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_coloured_marks_on_greyscale_frames_are_not_doppler(family: str) -> None:
    """Calipers, dotted outlines, text, an arrow, a logo and a colour bar in colour, raw and
    JPEG-compressed, never make a greyscale frame Doppler."""
    for seed in range(4):
        frame = FAMILIES[family](seed)
        rgb = add_colour_marks(frame.image, frame.mask, frame.fov, np.random.default_rng(seed))
        assert (np.ptp(rgb, axis=2) > 100).sum() > 200  # there is colour to be fooled by
        for quality in (None, 90, 70):
            shown = rgb if quality is None else _jpeg(rgb, quality)
            assert not is_doppler(doppler_signal(shown, Rect(*frame.fov))), (seed, quality)


def test_a_coloured_blob_outside_the_fov_is_not_signal() -> None:
    """A red blob in the UI beside the field of view counts for nothing."""
    rgb = np.full((200, 300, 3), 40, np.uint8)
    cv2.ellipse(rgb, (30, 40), (18, 12), 20, 0, 360, (220, 30, 0), -1)
    assert is_doppler(doppler_signal(rgb))
    assert not doppler_signal(rgb, Rect(100, 0, 200, 200)).any()


def test_green_and_magenta_blobs_are_not_doppler_hues() -> None:
    """Solid green or magenta (markers, body marks) is colour, but not a Doppler map's."""
    rgb = np.full((200, 300, 3), 40, np.uint8)
    cv2.circle(rgb, (40, 40), 20, (0, 220, 80), -1)
    cv2.circle(rgb, (120, 120), 20, (230, 60, 200), -1)
    assert is_doppler(doppler_signal(cv2.circle(rgb.copy(), (200, 60), 20, (220, 30, 0), -1)))
    assert not doppler_signal(rgb).any()


def test_vascular_fraction_counts_signal_inside_the_mask_only() -> None:
    """A quarter of the gland coloured and as much outside it: 25 %."""
    mask = np.zeros((100, 100), bool)
    mask[20:60, 20:60] = True
    signal = np.zeros_like(mask)
    signal[20:40, 20:40] = True
    signal[70:90, 70:90] = True
    assert vascular_fraction(signal, mask) == pytest.approx(0.25)
    assert vascular_fraction(signal, np.zeros_like(mask)) is None


def test_the_grey_frame_under_the_doppler_is_the_greyscale_phantom() -> None:
    """Asking for Doppler paints over the same frame: grey, mask and grades unchanged."""
    plain, coloured = generate_frame(11), generate_frame(11, doppler=True)
    assert np.array_equal(plain.image, coloured.image)
    assert np.array_equal(plain.mask, coloured.mask)
    assert (plain.devita, plain.omeract) == (coloured.devita, coloured.omeract)
    assert plain.rgb is None and plain.doppler_grade is None and plain.vascular_fraction is None
    assert coloured.doppler_grade in (1, 2, 3)


def test_higher_doppler_grades_paint_more_flow() -> None:
    """Over several glands, grade 3 covers more of the gland than grade 1."""
    by_grade: dict[int, list[float]] = {1: [], 3: []}
    for seed in range(8):
        frame = generate_frame(seed)
        for grade in by_grade:
            painted = add_doppler(
                frame.image, frame.mask, frame.fov, np.random.default_rng(seed), grade=grade
            )
            by_grade[grade].append(painted.vascular_fraction(frame.mask))
    assert np.median(by_grade[3]) > 3 * np.median(by_grade[1])


def test_reader_marks_a_doppler_png_and_keeps_its_grey(tmp_path: Path) -> None:
    """Reading a Doppler PNG: ``metadata["doppler"]`` is True, the signal is kept with the
    frame, and the grey is the luminance of the colour file (as for any colour file)."""
    frame = generate_frame(5, doppler=True)
    assert frame.rgb is not None
    read = read_image(_write_rgb(tmp_path / "d.png", frame.rgb))
    assert read.metadata["doppler"] is True and read.metadata["colour"] is True
    assert read.doppler_signal is not None
    assert np.array_equal(read.doppler_signal, frame.doppler_signal)
    assert np.array_equal(read.pixels, cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY))
    # What the pages show: the flow in the file's own colours on the grey, so that a rater
    # grading vascularity sees it; everything else grey. A grey frame is shown as it is.
    shown = read.shown()
    signal = read.doppler_signal
    assert shown.shape == (*read.pixels.shape, 3)
    assert np.array_equal(shown[signal], frame.rgb[signal])
    assert (shown[~signal] == read.pixels[~signal][:, None]).all()
    assert read_image(tmp_path / "d.png").shown().ndim == 3
    grey = replace(read, doppler_signal=None, doppler_rgb=None)
    assert grey.shown() is grey.pixels


def test_reader_says_greyscale_files_are_not_doppler(tmp_path: Path) -> None:
    """A grey PNG and a JPEG of a frame with coloured calipers are not Doppler frames."""
    frame = generate_frame(5)
    assert cv2.imwrite(str(tmp_path / "g.png"), frame.image)
    grey = read_image(tmp_path / "g.png")
    assert grey.metadata["doppler"] is False and grey.doppler_signal is None
    marked = add_colour_marks(frame.image, frame.mask, frame.fov, np.random.default_rng(1))
    read = read_image(_write_rgb(tmp_path / "m.jpg", marked, 85))
    assert read.metadata["colour"] is True
    assert read.metadata["doppler"] is False and read.doppler_signal is None


# ---------------------------------------------------------------- import, export, backup


@pytest.fixture(scope="module")
def doppler_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two phantom patients, the first scanned with power Doppler (4 RGB frames with a
    ``doppler`` grade in labels.csv), the second greyscale."""
    from sgus_core.synthesis.phantom import write_dataset

    folder = tmp_path_factory.mktemp("doppler")
    write_dataset(folder, 2, 0, doppler_patients=(0,))
    return folder


def test_import_records_doppler_frames_and_their_grades(store, doppler_folder: Path) -> None:
    """Import marks the four Doppler frames in the images' metadata (and only them) and stores
    the CSV's Doppler grades."""
    from sgus_core.transfer import import_folder

    import_folder(store, doppler_folder, labels_csv=doppler_folder / "labels.csv")
    ds = store.require_dataset(doppler_folder.name)
    images = store.list_images(ds.id)
    doppler = {i.path for i in images if i.meta.get("doppler")}
    assert doppler == {i.path for i in images if i.patient == "P00000"}
    assert all(i.meta.get("doppler") is False for i in images if i.patient == "P00001")
    grades = store.latest_grades_for_dataset(ds.id, "imported")
    by_path = {i.path: grades[i.id].doppler for i in images}
    assert all(by_path[p] in (1, 2, 3) for p in doppler)
    assert all(g is None for p, g in by_path.items() if p not in doppler)


def test_export_writes_a_doppler_column_that_imports_back(
    store, doppler_folder: Path, tmp_path: Path
) -> None:
    """The exported labels.csv has a ``doppler`` column; importing the export elsewhere gives
    the same Doppler grades."""
    import csv

    from sgus_core.transfer import export_dataset, import_folder

    import_folder(store, doppler_folder, labels_csv=doppler_folder / "labels.csv")
    ds = store.require_dataset(doppler_folder.name)
    export_dataset(store, ds.name, tmp_path / "out", fmt="masks")
    with (tmp_path / "out" / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(r["doppler"] != "" for r in rows) == 4
    import_folder(
        store, tmp_path / "out", labels_csv=tmp_path / "out" / "labels.csv", dataset="back"
    )
    back = store.require_dataset("back")
    grades = store.latest_grades_for_dataset(back.id, "imported")
    assert sorted(g.doppler for g in grades.values() if g.doppler is not None) == sorted(
        int(r["doppler"]) for r in rows if r["doppler"]
    )


def test_backup_and_restore_carry_the_doppler_grade(store, tmp_path: Path) -> None:
    """A Doppler grade comes back from a backup restored into a fresh store."""
    from sgus_core.store import LabelStore, NewImage
    from sgus_core.transfer.backup import backup_store, restore_store

    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(
        ds.id, NewImage(path="a.png", content_hash="h", width=4, height=4)
    )
    store.save_grade(image_id, "ana", devita=1, doppler=3)
    backup_store(store, tmp_path / "b.sgus.gz")
    with LabelStore(f"sqlite:///{tmp_path / 'restored.db'}") as fresh:
        restore_store(fresh, tmp_path / "b.sgus.gz")
        assert fresh.latest_grades(image_id)["ana"].doppler == 3


def test_a_colour_bar_is_not_flow_even_inside_the_fov() -> None:
    """A scanner's colour bar (a filled rectangle of the colour map) counts for nothing, also
    when the field of view was found too wide and takes it in; a vessel beside it still counts."""
    rgb = np.full((300, 400, 3), 50, np.uint8)
    ramp = np.linspace([255, 225, 60], [150, 0, 0], 200).astype(np.uint8)
    rgb[50:250, 10:18] = ramp[:, None, :]
    assert not doppler_signal(rgb).any()
    cv2.ellipse(rgb, (200, 150), (12, 7), 30, 0, 360, (235, 70, 0), -1)
    found = doppler_signal(rgb)
    assert found[150, 200] and not found[:, :30].any()


def test_bench_doppler_prints_both_figures_and_meets_its_targets(capsys) -> None:
    """``sgus bench-doppler --json`` on a few frames: no false positive in any format, every
    Doppler phantom found, the error within 2 pp."""
    import json

    from sgus_cli.main import main

    assert main(["bench-doppler", "--grey", "2", "--doppler", "3", "--jpeg", "80", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["false_positives"]) == {"png", "jpeg 80"}
    assert all(
        counts[f]["frames"] == 4 and counts[f]["doppler"] == 0
        for counts in result["false_positives"].values()
        for f in FAMILIES
    )
    assert all(e["missed"] == 0 and e["max"] <= 2.0 for e in result["vascular_error_pp"].values())
    assert result["met"] is True


# ---------------------------------------------------------------- review


def test_review_compares_doppler_grades_where_both_raters_gave_one(store, tmp_path: Path) -> None:
    """Two raters' Doppler grades on three of five frames: the Doppler figures cover those three
    (accuracy, weighted kappa, confusion matrix) and the study report names them in words."""
    from sgus_core.review.comparisons import Source, compare
    from sgus_core.review.report import build_report
    from sgus_core.store import NewImage

    ds = store.ensure_dataset("d", tmp_path)
    for name in ("ana", "bo"):
        store.ensure_rater(name)
    ids = [
        store.add_image(ds.id, NewImage(path=f"{i}.png", content_hash=f"h{i}", width=8, height=8))[
            0
        ]
        for i in range(5)
    ]
    for i, image_id in enumerate(ids):
        doppler_ana, doppler_bo = ((1, 1), (2, 3), (3, 3), (None, None), (None, 2))[i]
        store.save_grade(image_id, "ana", devita=i % 4, doppler=doppler_ana)
        store.save_grade(image_id, "bo", devita=i % 4, doppler=doppler_bo)
    result = compare(store, ds.id, Source("rater", "ana"), Source("rater", "bo"))
    summary = result.summary
    assert summary["n_graded"] == 5 and summary["doppler_n"] == 3
    assert summary["doppler_accuracy"] == pytest.approx(2 / 3)
    assert np.array(summary["doppler_confusion"])[2, 3] == 1
    assert -1 <= summary["doppler_kappa_quadratic"][0] <= 1
    html = build_report(result, dataset="d")
    assert "OMERACT Doppler grade accuracy" in html and "doppler_accuracy" not in html
    only_grey = compare(
        store, ds.id, Source("rater", "ana"), Source("rater", "bo"),
        images=[store.get_image(ids[3]), store.get_image(ids[4])],
    )  # fmt: skip
    assert not [k for k in only_grey.summary if k.startswith("doppler")]
