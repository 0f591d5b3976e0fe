"""Personal data: DICOM tags never stored, burned-in text blanked, exports carry pixels only."""

from __future__ import annotations

import cv2
import numpy as np

from sgus_core.browse import load_frame
from sgus_core.synthesis.phantom import generate_frame
from sgus_core.transfer import export_dataset, import_folder


def test_dicom_import_blanks_text_and_exports_png_without_tags(store, tmp_path, write_dicom):
    """A DICOM screenshot is stored without names or ids, shown blanked outside its field of view,
    and exported as a PNG."""
    frame = generate_frame(11)
    folder = tmp_path / "dicom"
    folder.mkdir()
    write_dicom(folder / "scan.dcm", frame.image, PixelSpacing=[0.1, 0.1])
    report = import_folder(store, folder)
    assert report.imported == 1
    image = store.list_images(store.require_dataset("dicom").id)[0]
    assert "Doe" not in repr(image.meta) and "SECRET" not in repr(image.meta)
    shown = load_frame(store, image).pixels
    x, y, w, h = image.fov
    assert shown[:y].max() == 0 and shown[:, :x].max() == 0  # header text and side panel gone
    assert np.array_equal(shown[y : y + h, x : x + w], frame.image[y : y + h, x : x + w])
    store.ensure_rater("ana")
    store.save_grade(image.id, "ana", devita=1)
    out = tmp_path / "out"
    export_dataset(store, "dicom", out, fmt="masks", rater="ana")
    exported = list((out / "images").iterdir())
    assert [p.suffix for p in exported] == [".png"]
    assert cv2.imread(str(exported[0]), cv2.IMREAD_GRAYSCALE)[:y].max() == 0
    assert b"SECRET" not in (out / "labels.csv").read_bytes()


def test_keep_outside_fov_keeps_every_pixel(store, tmp_path, write_dicom):
    """Asking to keep the frame whole stores it unblanked."""
    frame = generate_frame(12)
    folder = tmp_path / "dicom"
    folder.mkdir()
    write_dicom(folder / "scan.dcm", frame.image)
    import_folder(store, folder, blank_outside_fov=False)
    image = store.list_images(store.require_dataset("dicom").id)[0]
    assert np.array_equal(load_frame(store, image).pixels, frame.image)
