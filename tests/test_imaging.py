"""Image reading (every format, by content), field of view, masks and thumbnails."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset

from sgus_core import imaging
from sgus_core.errors import ImageReadError, MaskError
from sgus_core.imaging import Rect, ThumbnailCache, detect_fov, read_frames, read_image
from sgus_core.phantom import generate_frame

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (60, 80), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_formats_read_back_exactly(tmp_path, suffix):
    """PNG, BMP and 8-bit TIFF frames come back pixel for pixel."""
    path = tmp_path / f"f{suffix}"
    assert cv2.imwrite(str(path), GREY)
    frame = read_image(path)
    assert np.array_equal(frame.pixels, GREY) and frame.frame_index == 0


def test_jpeg_grey_and_rgb_encoded_grey_stay_grey(tmp_path):
    """A grey JPEG and a grey frame stored as RGB JPEG both read as grey close to the original."""
    smooth = cv2.GaussianBlur(GREY, (9, 9), 3)
    cv2.imwrite(str(tmp_path / "g.jpg"), smooth, [cv2.IMWRITE_JPEG_QUALITY, 95])
    Image.fromarray(np.dstack([smooth] * 3)).save(tmp_path / "rgb.jpg", quality=95)
    for name in ("g.jpg", "rgb.jpg"):
        frame = read_image(tmp_path / name)
        assert frame.pixels.ndim == 2
        assert np.abs(frame.pixels.astype(int) - smooth).mean() < 3
        assert not frame.metadata.get("colour", False)


def test_16_bit_tiff_is_mapped_to_8_bit_by_its_range(tmp_path):
    """A 16-bit TIFF maps its min-max range to 0-255 and says so."""
    data = np.linspace(1000, 3000, 60 * 80).reshape(60, 80).astype(np.uint16)
    tifffile.imwrite(tmp_path / "f.tif", data)
    frame = read_image(tmp_path / "f.tif")
    assert frame.pixels.dtype == np.uint8
    assert frame.pixels.min() == 0 and frame.pixels.max() == 255
    assert frame.metadata["bit_depth"] == 16 and frame.metadata["mapped_from"] == [1000, 3000]


def test_1_bit_png_reads_as_black_and_white(tmp_path):
    """A 1-bit image becomes 0/255 grey."""
    Image.fromarray(GREY > 128).save(tmp_path / "b.png")
    frame = read_image(tmp_path / "b.png")
    assert set(np.unique(frame.pixels)) <= {0, 255} and frame.metadata["bit_depth"] == 1


def test_png_named_jpg_is_read_by_content(tmp_path):
    """The format comes from the bytes, not the file name."""
    cv2.imwrite(str(tmp_path / "x.png"), GREY)
    (tmp_path / "x.png").rename(tmp_path / "x.jpg")
    frame = read_image(tmp_path / "x.jpg")
    assert frame.metadata["format"] == "png" and np.array_equal(frame.pixels, GREY)


def test_dicom_single_frame_spacing_and_no_personal_tags(tmp_path, write_dicom):
    """A DICOM frame reads with its PixelSpacing and keeps no name, id or date."""
    path = write_dicom(tmp_path / "a.dcm", GREY, PixelSpacing=[0.08, 0.09])
    frame = read_image(path)
    assert np.array_equal(frame.pixels, GREY)
    assert frame.spacing_mm == pytest.approx(0.09)
    text = repr(frame.metadata)
    assert "Doe" not in text and "SECRET" not in text and "2026" not in text


def test_dicom_multi_frame_gives_one_frame_each(tmp_path, write_dicom):
    """A multi-frame DICOM file gives one Frame per frame, in order."""
    stack = RNG.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    frames = read_frames(write_dicom(tmp_path / "m.dcm", stack))
    assert [f.frame_index for f in frames] == [0, 1, 2]
    assert all(np.array_equal(f.pixels, stack[i]) for i, f in enumerate(frames))


def test_dicom_ultrasound_region_spacing_is_converted_from_cm(tmp_path, write_dicom):
    """Spacing from the ultrasound region sequence (cm per pixel) is reported in mm."""
    region = Dataset()
    region.PhysicalDeltaX = 0.007
    region.PhysicalDeltaY = 0.007
    region.PhysicalUnitsXDirection = 3
    region.PhysicalUnitsYDirection = 3
    path = write_dicom(tmp_path / "r.dcm", GREY, SequenceOfUltrasoundRegions=[region])
    assert read_image(path).spacing_mm == pytest.approx(0.07)


def test_dicom_without_pixel_data_is_refused_clearly(tmp_path, write_dicom):
    """A DICOM file with no image says so."""
    path = write_dicom(tmp_path / "n.dcm", None)
    with pytest.raises(ImageReadError, match="without"):
        read_frames(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"hello, not an image", "not a PNG"), (b"\x89PNG\r\n\x1a\n\0\0", "PNG")],
)
def test_broken_files_raise_image_read_errors(tmp_path, content, reason):
    """Zero-byte, unknown and truncated files each get a specific message."""
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason):
        read_frames(path)


def test_truncated_jpeg_is_refused(tmp_path):
    """A JPEG cut in half is an ImageReadError, not a crash or a half-grey frame."""
    cv2.imwrite(str(tmp_path / "f.jpg"), GREY)
    data = (tmp_path / "f.jpg").read_bytes()
    (tmp_path / "f.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError):
        read_frames(tmp_path / "f.jpg")


def test_frames_over_the_size_limit_are_refused_before_decoding(tmp_path, write_dicom):
    """A frame larger than max_pixels is refused from its header, naming the limit."""
    cv2.imwrite(str(tmp_path / "big.png"), GREY)
    with pytest.raises(ImageReadError, match="over the limit"):
        read_frames(tmp_path / "big.png", max_pixels=1000)
    path = write_dicom(tmp_path / "big.dcm", GREY)
    with pytest.raises(ImageReadError, match="over the limit"):
        read_frames(path, max_pixels=1000)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_read_or_raise_image_read_error(tmp_path, data):
    """Any bytes either give frames or an ImageReadError, never another exception."""
    path = tmp_path / "fuzz.bin"
    for prefix in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"\0" * 128 + b"DICM"):
        path.write_bytes(prefix + data)
        try:
            frames = read_frames(path)
        except ImageReadError:
            continue
        assert all(f.pixels.dtype == np.uint8 for f in frames)


def _screenshot(rng, size, fov):
    """A synthetic screenshot: speckle content in black margins, a grey panel with text and ticks."""
    height, width = size
    img = np.zeros(size, np.uint8)
    img[:, : fov[0] - 10] = 40  # UI panel
    cv2.putText(img, "B-MODE 12MHz", (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 220, 1)
    cv2.putText(img, "HOSPITAL 01.01.2026", (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 200, 1)
    x, y, w, h = fov
    speckle = cv2.GaussianBlur(rng.gamma(1.0, 40.0, (h, w)).astype(np.float32), (0, 0), 1.2)
    img[y : y + h, x : x + w] = np.clip(speckle, 0, 255).astype(np.uint8)
    for tick in range(y, y + h, 40):
        cv2.line(img, (x + w + 6, tick), (x + w + 12, tick), 255, 1)
    return img


@pytest.mark.parametrize(
    ("size", "fov"),
    [
        ((555, 800), (140, 47, 560, 463)),
        ((872, 1280), (205, 70, 877, 698)),
        ((459, 606), (80, 30, 480, 400)),
    ],
)
def test_fov_detection_on_synthetic_screenshots(size, fov):
    """The detected field of view matches the content rectangle (IoU >= 0.9)."""
    img = _screenshot(np.random.default_rng(1), size, fov)
    assert detect_fov(img).iou(Rect(*fov)) >= 0.9


def test_fov_detection_on_phantom_screenshots():
    """On realistic phantom screenshots the FOV is found with IoU >= 0.9 for every seed tried."""
    ious = [detect_fov(f.image).iou(Rect(*f.fov)) for f in (generate_frame(s) for s in range(10))]
    assert min(ious) >= 0.9, ious


def test_frame_of_pure_content_is_its_own_fov():
    """A frame that is all speckle has the whole frame as its field of view."""
    img = np.clip(RNG.gamma(1.0, 50.0, (200, 300)), 0, 255).astype(np.uint8)
    assert detect_fov(img) == Rect(0, 0, 300, 200)


def test_mask_png_round_trip_is_exact():
    """Encoding then decoding a mask gives the same pixels."""
    mask = RNG.random((70, 90)) > 0.5
    assert np.array_equal(imaging.decode_mask_png(imaging.encode_mask_png(mask)), mask)


def test_mask_files_are_checked(tmp_path):
    """0/255 and 0/1 masks read; wrong sizes and grey masks are refused with both sizes named."""
    mask = np.zeros((60, 80), np.uint8)
    mask[10:20, 10:30] = 1
    cv2.imwrite(str(tmp_path / "01.png"), mask)
    cv2.imwrite(str(tmp_path / "0255.png"), mask * 255)
    for name in ("01.png", "0255.png"):
        assert imaging.read_mask_file(tmp_path / name, (60, 80)).sum() == 200
    with pytest.raises(MaskError, match="80 x 60 px but its frame is 40 x 30 px"):
        imaging.read_mask_file(tmp_path / "01.png", (30, 40))
    cv2.imwrite(str(tmp_path / "grey.png"), GREY)
    with pytest.raises(MaskError, match="not binary"):
        imaging.read_mask_file(tmp_path / "grey.png", (60, 80))


def test_contour_of_a_rectangle_and_of_nothing():
    """The contour follows the mask's border; an empty mask has none."""
    mask = np.zeros((20, 20), bool)
    mask[5:10, 4:12] = True
    contour = imaging.mask_contour(mask)
    assert contour[:, 0].min() == 4 and contour[:, 0].max() == 11
    assert imaging.mask_contour(np.zeros((5, 5), bool)).shape == (0, 2)


def test_thumbnail_cache_builds_once(tmp_path):
    """A thumbnail is built on first use and then read from disk."""
    cache = ThumbnailCache(tmp_path)
    calls = []

    def build():
        calls.append(1)
        return imaging.make_thumbnail(GREY, GREY > 128)

    first = cache.get_or_create("abc", build)
    again = cache.get_or_create("abc", build)
    assert first == again and len(calls) == 1
    assert cv2.imread(str(first)).shape[1] <= 256
