"""Image reading (every format, by content), field of view, masks, overlays and thumbnails."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    ExplicitVRLittleEndian,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from sgus_core import imaging
from sgus_core.errors import ImageReadError, MaskError
from sgus_core.imaging import Rect, ThumbnailCache, detect_fov, read_frames, read_image

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (60, 80), dtype=np.uint8)
SMOOTH = cv2.GaussianBlur(GREY, (9, 9), 3)  # JPEG-friendly content


# ---------------------------------------------------------------- helpers


def write_dicom(path, pixels, *, photometric="MONOCHROME2", **tags):
    """Write a real uncompressed DICOM file with pydicom (with personal tags to be dropped).

    ``pixels``: (H, W) or (frames, H, W) grey, (H, W, 3) colour, or None for no pixel data.
    """
    multi = pixels is not None and pixels.ndim == 3 and photometric.startswith("MONO")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = (
        UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    )
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.ManufacturerModelName = "PhantomScan 9"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-42"
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Phantom Hospital"
    ds.StudyDate = "20260101"
    if pixels is not None:
        colour = not photometric.startswith("MONO")
        ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
        ds.SamplesPerPixel = 3 if colour else 1
        if colour:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        bits = pixels.dtype.itemsize * 8
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 0
        if multi:
            ds.NumberOfFrames = pixels.shape[0]
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def us_region(delta_x_cm, delta_y_cm, box=None):
    """An ultrasound region item (2-D tissue image, calibrated in cm per pixel)."""
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    region.PhysicalUnitsXDirection = 3
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = delta_x_cm
    region.PhysicalDeltaY = delta_y_cm
    if box is not None:
        x0, y0, x1, y1 = box
        region.RegionLocationMinX0, region.RegionLocationMinY0 = x0, y0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = x1, y1
    return region


def png_header_only(width, height):
    """A PNG declaring ``width`` x ``height`` in its IHDR chunk, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
        + struct.pack(">I", 1000)  # an IDAT chunk that promises 1000 bytes and has 4
        + b"IDAT\x78\x9c\x00\x00"
    )


def screenshot(rng, size, fov, *, panel_grey=48, shadow=False, jpeg=None, smooth=0.0):
    """A synthetic scanner screenshot: speckle content in black margins, inside grey UI panels
    with burned-in text (cv2.putText), a depth scale with ticks and numbers, and a grey bar."""
    height, width = size
    x, y, w, h = fov
    img = np.full(size, panel_grey, np.uint8)
    pad = 8
    img[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad] = 0
    # Speckle: grains wider than tall, dimmer with depth.
    grains = cv2.GaussianBlur(rng.gamma(1.0, 1.0, (h, w)).astype(np.float32), (0, 0), 2.0, 0.8)
    depth = np.linspace(1.0, 0.35, h, dtype=np.float32)[:, None]
    content = np.clip(grains * 110 * depth, 0, 255).astype(np.uint8)
    if smooth:  # speckle reduction: the grains smoothed into soft blobs
        content = cv2.GaussianBlur(content, (0, 0), smooth)
    if shadow:  # a bone's black acoustic shadow along the right side, below the top third
        content[h // 3 :, int(w * 0.8) :] = 0
    img[y : y + h, x : x + w] = content
    font = cv2.FONT_HERSHEY_SIMPLEX
    if y - pad >= 24:
        cv2.putText(img, "HOSPITAL 01.01.2026 10:42", (6, y - pad - 8), font, 0.45, 220, 1)
    panel_x = 6 if x - pad >= 90 else (x + w + 40 if x + w + 130 < width else None)
    if panel_x is not None:
        for i, line in enumerate(("B-MODE", "Frq 12MHz", "Gn 50", "D 4.5cm")):
            cv2.putText(img, line, (panel_x, y + 20 + 22 * i), font, 0.4, 200, 1, cv2.LINE_AA)
        img[y + 120 : y + 200, panel_x + 4 : panel_x + 10] = np.linspace(255, 0, 80)[:, None]
    if x + w + 16 < width:  # depth scale right of the image
        sx = x + w + 4
        cv2.line(img, (sx, y), (sx, y + h), 140, 1)
        for k, ty in enumerate(range(y, y + h, max(10, h // 9))):
            cv2.line(img, (sx, ty), (sx + (9 if k % 2 == 0 else 5), ty), 200, 1)
            if k % 2 == 0 and k and sx + 24 < width:
                cv2.putText(img, str(k // 2), (sx + 11, ty + 4), font, 0.35, 200, 1)
    if jpeg:
        img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg])[1], 0)
    return img


# ---------------------------------------------------------------- Rect


def test_rect_area_tuple_slices_and_iou():
    """A Rect knows its area, tuple, numpy slices and IoU with another."""
    rect = Rect(2, 3, 4, 5)
    assert rect.area == 20 and rect.as_tuple() == (2, 3, 4, 5)
    grid = np.zeros((10, 10), int)
    grid[rect.slices] = 1
    assert grid.sum() == 20 and grid[3, 2] == 1 and grid[7, 5] == 1 and grid[8, 6] == 0
    assert rect.iou(rect) == 1.0 and rect.iou(Rect(6, 3, 4, 5)) == 0.0
    assert Rect(0, 0, 4, 4).iou(Rect(2, 0, 4, 4)) == pytest.approx(8 / 24)


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_formats_read_back_exactly(tmp_path, suffix):
    """PNG, BMP and 8-bit TIFF frames come back pixel for pixel as (H, W) uint8."""
    path = tmp_path / f"f{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, GREY)
    else:
        assert cv2.imwrite(str(path), GREY)
    frame = read_image(path)
    assert frame.pixels.dtype == np.uint8 and np.array_equal(frame.pixels, GREY)
    assert frame.frame_index == 0 and frame.spacing_mm is None
    assert frame.metadata["format"] == suffix.strip(".").replace("tif", "tiff")


def test_grey_jpeg_reads_close_to_the_original(tmp_path):
    """A grey JPEG reads as (H, W) grey within JPEG's error of the original."""
    cv2.imwrite(str(tmp_path / "g.jpg"), SMOOTH, [cv2.IMWRITE_JPEG_QUALITY, 95])
    frame = read_image(tmp_path / "g.jpg")
    assert frame.pixels.shape == SMOOTH.shape and frame.metadata["format"] == "jpeg"
    assert np.abs(frame.pixels.astype(int) - SMOOTH).mean() < 2


def test_rgb_encoded_grey_jpeg_stays_grey(tmp_path):
    """Grey stored as an RGB JPEG reads as grey close to the original, not flagged as colour."""
    Image.fromarray(np.dstack([SMOOTH] * 3)).save(tmp_path / "rgb.jpg", quality=95)
    frame = read_image(tmp_path / "rgb.jpg")
    assert frame.pixels.ndim == 2 and frame.metadata["colour"] is False
    assert np.abs(frame.pixels.astype(int) - SMOOTH).mean() < 2


def test_rgb_encoded_grey_png_is_exactly_grey(tmp_path):
    """Grey stored as RGB without loss comes back exactly."""
    Image.fromarray(np.dstack([GREY] * 3)).save(tmp_path / "rgb.png")
    frame = read_image(tmp_path / "rgb.png")
    assert np.array_equal(frame.pixels, GREY) and frame.metadata["colour"] is False


def test_true_colour_becomes_luminance_and_is_flagged(tmp_path):
    """A colour image is reduced to its luminance and metadata says it was colour."""
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 50, 30
    Image.fromarray(rgb).save(tmp_path / "c.png")
    frame = read_image(tmp_path / "c.png")
    assert frame.metadata["colour"] is True
    assert np.all(
        np.abs(frame.pixels.astype(int) - round(0.299 * 200 + 0.587 * 50 + 0.114 * 30)) <= 1
    )


def test_16_bit_tiff_is_mapped_by_its_actual_range(tmp_path):
    """A 16-bit TIFF maps its min-max range to 0-255 and records the mapping."""
    data = np.linspace(1000, 3000, 60 * 80).reshape(60, 80).astype(np.uint16)
    tifffile.imwrite(tmp_path / "f.tif", data)
    frame = read_image(tmp_path / "f.tif")
    assert frame.pixels.dtype == np.uint8
    assert frame.pixels.min() == 0 and frame.pixels.max() == 255
    assert frame.pixels[0, 0] == 0 and frame.pixels[-1, -1] == 255
    meta = frame.metadata
    assert meta["bit_depth"] == 16 and meta["dtype"] == "uint16"
    assert meta["mapping"] == "min-max" and meta["mapped_from"] == [1000, 3000]


def test_16_bit_png_is_mapped_by_its_actual_range(tmp_path):
    """A 16-bit PNG is mapped the same way as a 16-bit TIFF."""
    data = (GREY.astype(np.uint16) * 4 + 500).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "f.png"), data)
    frame = read_image(tmp_path / "f.png")
    assert frame.metadata["bit_depth"] == 16 and frame.metadata["mapping"] == "min-max"
    expected = np.rint((data.astype(float) - data.min()) * 255 / (data.max() - data.min()))
    assert np.array_equal(frame.pixels, expected.astype(np.uint8))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_1_bit_images_read_as_black_and_white(tmp_path, suffix):
    """1-bit PNG and TIFF become 0/255 grey in the right places."""
    bits = GREY > 128
    Image.fromarray(bits).save(tmp_path / f"b{suffix}")
    frame = read_image(tmp_path / f"b{suffix}")
    assert np.array_equal(frame.pixels, bits.astype(np.uint8) * 255)
    assert frame.metadata["bit_depth"] == 1 and frame.metadata["mapping"] == "1-bit"


def test_multi_page_tiff_gives_one_frame_per_page(tmp_path):
    """Each page of a multi-page TIFF is a frame, in order."""
    stack = RNG.integers(0, 256, (3, 30, 40), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", stack, photometric="minisblack")
    frames = read_frames(tmp_path / "m.tif")
    assert [f.frame_index for f in frames] == [0, 1, 2]
    assert all(np.array_equal(f.pixels, stack[i]) for i, f in enumerate(frames))


def test_png_named_jpg_is_read_by_content(tmp_path):
    """The format comes from the bytes, not the file name."""
    cv2.imwrite(str(tmp_path / "x.png"), GREY)
    (tmp_path / "x.png").rename(tmp_path / "x.jpg")
    frame = read_image(tmp_path / "x.jpg")
    assert frame.metadata["format"] == "png" and np.array_equal(frame.pixels, GREY)


def test_metadata_is_json_serialisable(tmp_path):
    """Reader metadata can go straight into the store's JSON column."""
    tifffile.imwrite(tmp_path / "a.tif", GREY.astype(np.uint16) * 3)
    write_dicom(tmp_path / "b.dcm", GREY, PixelSpacing=[0.1, 0.2])
    for name in ("a.tif", "b.dcm"):
        json.dumps(read_image(tmp_path / name).metadata)


# ---------------------------------------------------------------- DICOM


def test_dicom_frame_spacing_and_no_personal_data(tmp_path):
    """A DICOM frame reads exactly, with PixelSpacing, keeping only the tags the app needs."""
    path = write_dicom(tmp_path / "a.dcm", GREY, PixelSpacing=[0.08, 0.08])
    frame = read_image(path)
    assert np.array_equal(frame.pixels, GREY) and frame.spacing_mm == pytest.approx(0.08)
    assert frame.metadata["format"] == "dicom"
    assert frame.metadata["dicom"] == {
        "Rows": 60,
        "Columns": 80,
        "PixelSpacing": [0.08, 0.08],
        "Modality": "US",
        "ManufacturerModelName": "PhantomScan 9",
    }
    text = repr(frame.metadata)
    for personal in ("Doe", "SECRET", "1970", "2026", "Hospital"):
        assert personal not in text


def test_dicom_non_square_spacing_keeps_rows_and_columns(tmp_path):
    """Different row and column spacings give their geometric mean, both kept in metadata."""
    frame = read_image(write_dicom(tmp_path / "a.dcm", GREY, PixelSpacing=[0.08, 0.18]))
    assert frame.spacing_mm == pytest.approx(0.12)  # sqrt(0.08 * 0.18): areas stay right
    assert frame.metadata["spacing_row_mm"] == 0.08 and frame.metadata["spacing_col_mm"] == 0.18


def test_dicom_multi_frame_gives_one_frame_each(tmp_path):
    """A multi-frame DICOM file gives one Frame per frame, in order."""
    stack = RNG.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    frames = read_frames(write_dicom(tmp_path / "m.dcm", stack))
    assert [f.frame_index for f in frames] == [0, 1, 2]
    assert all(np.array_equal(f.pixels, stack[i]) for i, f in enumerate(frames))


def test_dicom_ultrasound_region_spacing_is_converted_from_cm(tmp_path):
    """Spacing from the ultrasound region (cm per pixel) is reported in mm."""
    path = write_dicom(
        tmp_path / "r.dcm", GREY, SequenceOfUltrasoundRegions=[us_region(0.007, 0.007)]
    )
    frame = read_image(path)
    assert frame.spacing_mm == pytest.approx(0.07)
    assert frame.metadata["spacing_source"] == "SequenceOfUltrasoundRegions"


def test_dicom_ultrasound_region_gives_the_field_of_view(tmp_path):
    """The image area the scanner declares in its region is the frame's field of view."""
    region = us_region(0.01, 0.01, box=(10, 5, 69, 54))  # max corners inclusive
    frame = read_image(write_dicom(tmp_path / "r.dcm", GREY, SequenceOfUltrasoundRegions=[region]))
    assert frame.fov == Rect(10, 5, 60, 50) and frame.metadata["fov_source"] == "dicom_region"


def test_dicom_ybr_colour_becomes_luminance(tmp_path):
    """A YBR_FULL colour DICOM is converted once to RGB, then to its luminance."""
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 50, 30
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    frame = read_image(write_dicom(tmp_path / "y.dcm", ybr, photometric="YBR_FULL"))
    luminance = round(0.299 * 200 + 0.587 * 50 + 0.114 * 30)
    assert np.all(np.abs(frame.pixels.astype(int) - luminance) <= 2)
    assert frame.metadata["colour"] is True and frame.metadata["photometric"] == "YBR_FULL"


def test_dicom_rgb_encoded_grey_stays_exactly_grey(tmp_path):
    """Grey stored as an RGB DICOM comes back exactly and is not flagged as colour."""
    frame = read_image(write_dicom(tmp_path / "g.dcm", np.dstack([GREY] * 3), photometric="RGB"))
    assert np.array_equal(frame.pixels, GREY) and frame.metadata["colour"] is False


def test_dicom_monochrome1_is_inverted(tmp_path):
    """MONOCHROME1 (0 is white) is inverted so that 255 is always bright."""
    frame = read_image(write_dicom(tmp_path / "m1.dcm", GREY, photometric="MONOCHROME1"))
    assert np.array_equal(frame.pixels, 255 - GREY) and frame.metadata["inverted"] is True


def test_dicom_16_bit_is_mapped_over_all_frames(tmp_path):
    """A 16-bit cine loop is mapped with one range for every frame (no flicker)."""
    stack = np.stack([np.full((20, 30), 1000), np.full((20, 30), 3000)]).astype(np.uint16)
    stack[0, 0, 0] = 2000
    frames = read_frames(write_dicom(tmp_path / "d16.dcm", stack))
    assert frames[0].metadata["mapped_from"] == [1000, 3000]
    assert frames[0].pixels[1, 1] == 0 and frames[0].pixels[0, 0] == 128
    assert frames[1].pixels.min() == 255


@pytest.mark.parametrize("with_size", [True, False])
def test_dicom_without_pixel_data_is_refused_clearly(tmp_path, with_size):
    """A DICOM file with no image (with or without Rows/Columns) is an ImageReadError."""
    tags = {"Rows": 60, "Columns": 80} if with_size else {}
    path = write_dicom(tmp_path / "n.dcm", None, **tags)
    with pytest.raises(ImageReadError, match=r"n\.dcm .*without"):
        read_frames(path)


def test_suffixless_dicom_is_found_and_read(tmp_path):
    """A DICOM file named without a suffix (or by its UID) is listed and read."""
    write_dicom(tmp_path / "IM0001", GREY)
    write_dicom(tmp_path / "1.2.840.5", GREY)
    (tmp_path / "README").write_text("not an image")
    found = imaging.iter_image_files(tmp_path)
    assert [p.name for p in found] == ["1.2.840.5", "IM0001"]
    assert np.array_equal(read_image(found[1]).pixels, GREY)


# ---------------------------------------------------------------- broken and oversized files


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"hello, not an image at all", "not a PNG, JPEG, BMP, TIFF or DICOM"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not a readable PNG"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 40, "not a readable JPEG"),
        (b"II*\x00\x08\x00\x00\x00" + b"\xff" * 20, "not a readable TIFF"),
        (b"\0" * 128 + b"DICM" + b"\x02\x00", "DICOM file without an image"),
    ],
)
def test_broken_files_raise_specific_errors(tmp_path, content, reason):
    """Zero-byte, unknown and corrupt files each get a message naming the file and the fault."""
    path = tmp_path / "bad.img"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_frames(path)
    assert "bad.img" in str(info.value)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_are_refused(tmp_path, suffix):
    """A PNG or JPEG cut in half is an ImageReadError, not a crash or a half-grey frame."""
    path = tmp_path / f"f{suffix}"
    cv2.imwrite(str(path), GREY)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=f"f\\{suffix}"):
        read_frames(path)


def test_truncated_dicom_pixel_data_is_refused(tmp_path):
    """A DICOM file whose pixel data was cut short is an ImageReadError."""
    path = write_dicom(tmp_path / "t.dcm", GREY)
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    with pytest.raises(ImageReadError, match=r"t\.dcm"):
        read_frames(path)


def test_missing_file_is_an_image_read_error(tmp_path):
    """A path that does not exist is an ImageReadError naming it."""
    with pytest.raises(ImageReadError, match="gone.png"):
        read_frames(tmp_path / "gone.png")


def test_real_png_over_the_limit_is_refused(tmp_path):
    """A real PNG larger than max_pixels is refused, naming its size and the limit."""
    cv2.imwrite(str(tmp_path / "big.png"), GREY)
    with pytest.raises(ImageReadError, match=r"80 x 60 px = 4,800 pixels, over the limit of 1,000"):
        read_frames(tmp_path / "big.png", max_pixels=1000)


def test_size_is_checked_from_the_header_before_decoding(tmp_path):
    """A PNG whose header claims 81 Mpx (with no pixel data) is refused as too large, which
    shows the limit is applied before any decoding."""
    path = tmp_path / "claims.png"
    path.write_bytes(png_header_only(9000, 9000))
    with pytest.raises(ImageReadError, match="over the limit"):
        read_frames(path)


def test_decompression_bomb_never_escapes(tmp_path):
    """A header beyond Pillow's own bomb limit is an ImageReadError, not DecompressionBombError."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ImageReadError, match="bomb.png"):
        read_frames(path, max_pixels=10**12)


def test_tiff_and_dicom_sizes_are_checked_over_all_frames(tmp_path):
    """Multi-page TIFF and multi-frame DICOM count every frame against the limit."""
    stack = RNG.integers(0, 256, (3, 20, 20), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", stack, photometric="minisblack")
    write_dicom(tmp_path / "m.dcm", stack)
    for name in ("m.tif", "m.dcm"):
        read_frames(tmp_path / name, max_pixels=1200)
        with pytest.raises(ImageReadError, match="3 frames = 1,200 pixels, over the limit"):
            read_frames(tmp_path / name, max_pixels=1199)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_read_or_raise_image_read_error(tmp_path, data):
    """Any bytes (also behind each format's magic) give frames or an ImageReadError, nothing else."""
    path = tmp_path / "fuzz.bin"
    for prefix in (
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"BM",
        b"II*\x00",
        b"\0" * 128 + b"DICM",
    ):
        path.write_bytes(prefix + data)
        try:
            frames = read_frames(path)
        except ImageReadError:
            continue
        assert frames and all(f.pixels.dtype == np.uint8 and f.pixels.ndim == 2 for f in frames)


# ---------------------------------------------------------------- files and hashes


def test_iter_image_files_is_sorted_recursive_and_skips_hidden(tmp_path):
    """Image files are listed recursively in sorted order; hidden files and folders are not."""
    for name in (
        "b.png",
        "a.JPG",
        "sub/c.tiff",
        "sub/d.dcm",
        ".hidden.png",
        ".cache/e.png",
        "f.txt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in imaging.iter_image_files(tmp_path)]
    assert names == ["a.JPG", "b.png", "sub/c.tiff", "sub/d.dcm"]


def test_file_hash_is_the_sha256_of_the_bytes(tmp_path):
    """The content hash is sha256 over the whole file, across read chunks."""
    data = RNG.integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()
    (tmp_path / "f.bin").write_bytes(data)
    assert imaging.file_hash(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- field of view

LAYOUTS = [
    ((555, 800), (140, 47, 560, 463)),  # left parameter panel, header
    ((872, 1280), (205, 70, 877, 698)),
    ((768, 1024), (61, 61, 737, 614)),  # parameter panel on the right
    ((459, 606), (0, 30, 480, 400)),  # image touching the left edge
    ((400, 600), (120, 0, 420, 400)),  # image touching top and bottom
]


@pytest.mark.parametrize(("size", "fov"), LAYOUTS)
def test_fov_detection_on_synthetic_screenshots(size, fov):
    """The detected field of view matches the content rectangle (IoU >= 0.9) despite text,
    ticks, panels and a grey bar."""
    img = screenshot(np.random.default_rng(1), size, fov)
    assert detect_fov(img).iou(Rect(*fov)) >= 0.9


@pytest.mark.parametrize(("size", "fov"), LAYOUTS[:3])
def test_fov_detection_survives_jpeg_compression(size, fov):
    """JPEG ringing around text and lines does not pull the field of view into the panels."""
    img = screenshot(np.random.default_rng(2), size, fov, jpeg=75)
    assert detect_fov(img).iou(Rect(*fov)) >= 0.9


def test_fov_side_along_an_acoustic_shadow_is_kept():
    """A black shadow along one side does not cut that side off the field of view."""
    fov = (140, 47, 560, 463)
    img = screenshot(np.random.default_rng(3), (555, 800), fov, shadow=True)
    assert detect_fov(img).iou(Rect(*fov)) >= 0.95


@pytest.mark.parametrize("smooth", [4.0, 6.0])
def test_fov_of_a_smoothed_frame_is_found(smooth):
    """Speckle reduction (content smoothed into soft blobs, little local texture left) still
    gives the field of view, not a patch of it or the whole screenshot."""
    fov = (140, 47, 560, 463)
    img = screenshot(np.random.default_rng(5), (555, 800), fov, smooth=smooth)
    assert detect_fov(img).iou(Rect(*fov)) >= 0.9


def test_fov_of_a_frame_that_is_all_content_is_the_whole_frame():
    """A frame that is all speckle has the whole frame as its field of view."""
    img = np.clip(RNG.gamma(1.0, 50.0, (200, 300)), 0, 255).astype(np.uint8)
    assert detect_fov(img) == Rect(0, 0, 300, 200)


@pytest.mark.parametrize("value", [0, 90])
def test_fov_of_a_flat_frame_is_the_whole_frame(value):
    """Without any content the whole frame is returned (nothing better is known)."""
    assert detect_fov(np.full((120, 160), value, np.uint8)) == Rect(0, 0, 160, 120)


def test_fov_needs_a_grey_frame():
    """A colour array is refused with ValueError."""
    with pytest.raises(ValueError, match="grey"):
        detect_fov(np.zeros((20, 20, 3), np.uint8))


def test_read_frames_attaches_the_detected_fov(tmp_path):
    """read_frames detects the field of view of a screenshot file."""
    fov = (140, 47, 560, 463)
    cv2.imwrite(str(tmp_path / "s.png"), screenshot(np.random.default_rng(4), (555, 800), fov))
    frame = read_image(tmp_path / "s.png")
    assert frame.fov.iou(Rect(*fov)) >= 0.9 and frame.metadata["fov_source"] == "detected"


def test_fov_detection_on_phantom_screenshots():
    """On realistic phantom screenshots the FOV is found with IoU >= 0.9 for every seed."""
    phantom = pytest.importorskip("sgus_core.synthesis.phantom")
    frames = [phantom.generate_frame(seed) for seed in range(10)]
    ious = [detect_fov(f.image).iou(Rect(*f.fov)) for f in frames]
    assert min(ious) >= 0.9, ious


# ---------------------------------------------------------------- masks


def blob_mask(shape=(60, 80)):
    """A filled ellipse mask."""
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (40, 30), (25, 12), 10, 0, 360, 1, -1)
    return mask.astype(bool)


@pytest.mark.parametrize("kind", ["random", "blob", "empty", "full"])
def test_mask_png_round_trip_is_exact(kind):
    """Encoding then decoding a mask gives the same pixels."""
    mask = {
        "random": RNG.random((70, 90)) > 0.5,
        "blob": blob_mask(),
        "empty": np.zeros((7, 9), bool),
        "full": np.ones((7, 9), bool),
    }[kind]
    decoded = imaging.decode_mask_png(imaging.encode_mask_png(mask))
    assert decoded.dtype == bool and np.array_equal(decoded, mask)
    # Valid numpy bools (bytes 0/1), so != and ^ against other masks behave.
    assert decoded.view(np.uint8).max(initial=0) <= 1 and not (decoded ^ mask).any()


def test_mask_png_is_compact():
    """A gland-like mask of a full screenshot takes well under 1 % of its pixel count in bytes."""
    mask = np.zeros((555, 800), np.uint8)
    cv2.ellipse(mask, (400, 250), (230, 70), 0, 0, 360, 1, -1)
    assert len(imaging.encode_mask_png(mask.astype(bool))) < 0.01 * mask.size


def test_corrupt_mask_bytes_raise_mask_error():
    """Bytes that are not a PNG are a MaskError."""
    with pytest.raises(MaskError, match="cannot be decoded"):
        imaging.decode_mask_png(b"not a png")


@pytest.mark.parametrize("form", ["0-255", "0-1", "rgb", "1-bit"])
def test_mask_files_in_every_accepted_form(tmp_path, form):
    """0/255, 0/1, RGB-encoded and 1-bit mask PNGs all read as the same bool mask."""
    mask = blob_mask()
    path = tmp_path / "m.png"
    if form == "0-255":
        cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    elif form == "0-1":
        cv2.imwrite(str(path), mask.astype(np.uint8))
    elif form == "rgb":
        Image.fromarray(np.dstack([mask.astype(np.uint8) * 255] * 3)).save(path)
    else:
        Image.fromarray(mask).save(path)
    assert np.array_equal(imaging.read_mask_file(path, (60, 80)), mask)


def test_mask_file_of_the_wrong_size_names_both_sizes(tmp_path):
    """A mask that does not fit its frame says both sizes."""
    cv2.imwrite(str(tmp_path / "m.png"), blob_mask().astype(np.uint8) * 255)
    with pytest.raises(MaskError, match="m.png is 80 x 60 px but its frame is 40 x 30 px"):
        imaging.read_mask_file(tmp_path / "m.png", (30, 40))


def test_grey_mask_file_is_not_binary(tmp_path):
    """A mask with many grey levels is refused."""
    cv2.imwrite(str(tmp_path / "grey.png"), GREY)
    with pytest.raises(MaskError, match="not binary"):
        imaging.read_mask_file(tmp_path / "grey.png", (60, 80))


def test_jpeg_mask_file_is_refused_with_a_hint(tmp_path):
    """A lossy JPEG mask is refused, telling the user to save PNG."""
    cv2.imwrite(str(tmp_path / "m.jpg"), blob_mask().astype(np.uint8) * 255)
    with pytest.raises(MaskError, match="save masks as PNG"):
        imaging.read_mask_file(tmp_path / "m.jpg", (60, 80))


def test_colour_mask_file_is_refused(tmp_path):
    """A coloured mask (red on black) is refused rather than guessed."""
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[blob_mask()] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "red.png")
    with pytest.raises(MaskError, match="colour"):
        imaging.read_mask_file(tmp_path / "red.png", (60, 80))


def test_unreadable_mask_file_is_a_mask_error(tmp_path):
    """A mask file that is not an image is a MaskError naming it."""
    (tmp_path / "m.png").write_bytes(b"garbage")
    with pytest.raises(MaskError, match="m.png cannot be read"):
        imaging.read_mask_file(tmp_path / "m.png", (60, 80))


def test_contour_follows_the_largest_region():
    """The contour is the border of the largest region, as x, y int32 points."""
    mask = np.zeros((30, 30), bool)
    mask[5:10, 4:12] = True
    mask[20:22, 20:22] = True  # a smaller region
    contour = imaging.mask_contour(mask)
    assert contour.dtype == np.int32 and contour.shape[1] == 2
    assert (contour[:, 0].min(), contour[:, 0].max()) == (4, 11)
    assert (contour[:, 1].min(), contour[:, 1].max()) == (5, 9)


def test_contour_of_an_empty_mask_is_empty():
    """An empty mask has a (0, 2) contour."""
    assert imaging.mask_contour(np.zeros((5, 5), bool)).shape == (0, 2)


# ---------------------------------------------------------------- overlays and thumbnails


def test_overlay_draws_each_outline_in_its_colour():
    """Each mask's outline appears in its colour; the grey input is untouched."""
    grey = np.full((60, 80), 100, np.uint8)
    left, right = np.zeros((60, 80), bool), np.zeros((60, 80), bool)
    left[10:50, 5:35], right[10:50, 45:75] = True, True
    rgb = imaging.draw_overlay(grey, [(left, (255, 0, 0)), (right, (0, 0, 255))], thickness=1)
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[10, 20]) == (255, 0, 0) and tuple(rgb[10, 60]) == (0, 0, 255)
    assert tuple(rgb[30, 20]) == (100, 100, 100) and np.all(grey == 100)


def test_overlay_fill_is_translucent():
    """fill_alpha blends the colour into the inside of the mask."""
    grey = np.full((20, 20), 100, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    rgb = imaging.draw_overlay(grey, [(mask, (200, 0, 0))], thickness=1, fill_alpha=0.5)
    assert tuple(rgb[10, 10]) == (150, 50, 50) and tuple(rgb[0, 0]) == (100, 100, 100)


def test_overlay_refuses_a_mask_of_another_size():
    """A mask that does not fit the frame is a MaskError."""
    with pytest.raises(MaskError, match="cannot be drawn"):
        imaging.draw_overlay(GREY, [(np.zeros((5, 5), bool), (255, 0, 0))])


def test_thumbnail_is_a_small_jpeg_with_the_outline():
    """A thumbnail is a JPEG of at most max_side with the mask outline in its colour."""
    grey = np.full((300, 600), 60, np.uint8)
    mask = np.zeros((300, 600), bool)
    mask[50:250, 100:500] = True
    data = imaging.make_thumbnail(grey, mask, max_side=128, colour=(255, 200, 0))
    assert data[:3] == b"\xff\xd8\xff"
    small = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert small.shape[:2] == (64, 128)
    outline = small[10:14, 30:100].reshape(-1, 3).astype(int)  # along the top edge at y = 50/300*64
    assert (np.abs(outline - (255, 200, 0)).sum(axis=1) < 90).any()


def test_thumbnail_cache_builds_once_and_reuses(tmp_path):
    """A thumbnail is built on first use, sharded by its key's first characters, then reused."""
    cache = ThumbnailCache(tmp_path)
    calls = []

    def build():
        calls.append(1)
        return imaging.make_thumbnail(GREY, GREY > 128)

    first = cache.get_or_create("abc123", build)
    again = cache.get_or_create("abc123", build)
    assert first == again == tmp_path / "ab" / "abc123.jpg" and len(calls) == 1
    assert cv2.imread(str(first)) is not None


def test_thumbnail_cache_is_safe_under_concurrent_sessions(tmp_path):
    """Sessions racing on one key all get the complete file and leave no temporary files."""
    cache = ThumbnailCache(tmp_path)
    payload = imaging.make_thumbnail(GREY)
    results, barrier = [], threading.Barrier(8)

    def session():
        barrier.wait()
        results.append(cache.get_or_create("k1", lambda: payload))

    threads = [threading.Thread(target=session) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0].read_bytes() == payload
    assert [p.name for p in results[0].parent.iterdir()] == ["k1.jpg"]


def test_thumbnail_keys_cannot_leave_the_cache(tmp_path):
    """Path separators and dots in a key are neutralised; an empty key is refused."""
    cache = ThumbnailCache(tmp_path / "cache")
    path = cache.path_for("../../etc/passwd")
    assert path.parent.parent == tmp_path / "cache"
    with pytest.raises(ValueError):
        cache.path_for("")


def test_display_window_changes_only_what_is_shown():
    """Brightness shifts and contrast stretches about mid-grey, clipped to 0-255; the neutral
    setting hands back the frame itself."""
    from sgus_core.imaging import display_window

    pixels = np.array([[0, 100, 128, 200, 255]], np.uint8)
    assert display_window(pixels) is pixels
    assert display_window(pixels, brightness=50).tolist() == [[50, 150, 178, 250, 255]]
    assert display_window(pixels, contrast=2.0).tolist() == [[0, 72, 128, 255, 255]]
    assert pixels.tolist() == [[0, 100, 128, 200, 255]]
