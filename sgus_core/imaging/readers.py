"""Reading ultrasound frames from PNG, JPEG, BMP, TIFF and DICOM files.

Formats are recognised by content (magic bytes), never by the file name: a PNG named ``.jpg``
reads fine. Every frame comes back as (H, W) uint8 grey; the reader notes in
``Frame.metadata`` what it had to do to get there (colour to luminance, 16-bit to 8-bit, ...).
Frames larger than ``max_pixels`` are refused from their header, before any pixel is decoded.
Every failure is an :class:`ImageReadError` naming the file and what is wrong; no decoder
exception escapes.

DICOM: only the tags the app needs are kept (size, frames, pixel spacing, modality, model name);
names, ids and dates never leave the reader."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from sgus_core.errors import ImageReadError
from sgus_core.imaging.doppler import doppler_frame_signal
from sgus_core.imaging.fov import detect_fov
from sgus_core.imaging.frame import Frame, Rect
from sgus_core.settings import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:  # pydicom is imported only when a DICOM file is read
    from pydicom import Dataset

SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
# The DICOM tags a frame keeps (everything else, personal data included, is dropped).
DICOM_KEPT_TAGS = (
    "Rows",
    "Columns",
    "NumberOfFrames",
    "PixelSpacing",
    "Modality",
    "ManufacturerModelName",
)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
# A pixel is colour when its channels spread by more than this; JPEG-compressed grey stored as
# RGB stays within a few levels, a colour Doppler box or a coloured marker does not.
_COLOUR_SPREAD = 24
_COLOUR_FRACTION = 0.001
_HASH_CHUNK = 1 << 20
_CM_UNITS = 3  # PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15)


# ---------------------------------------------------------------- files


def _looks_like_dicom(path: Path) -> bool:
    """Whether a file starts like a DICOM Part 10 file (``DICM`` after the 128-byte preamble)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def iter_image_files(root: Path) -> list[Path]:
    """Every image file under ``root``: recursive, sorted, hidden files and folders skipped.

    A file counts when its suffix is one of :data:`SUPPORTED_SUFFIXES` (any case), or when it has
    no suffix (or a numeric one, as in DICOM files named by their UID, ``1.2.840.113619.5``) and
    its content starts like DICOM.

    Returns:
        The paths, sorted; an empty list for a folder without images.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            suffix = path.suffix.lower()
            maybe_dicom = not suffix or suffix[1:].isdigit()
            if suffix in SUPPORTED_SUFFIXES or (maybe_dicom and _looks_like_dicom(path)):
                found.append(path)
    return sorted(found)


def file_hash(path: Path) -> str:
    """The sha256 hex digest of a file's bytes (the store's content hash), read in 1 MiB chunks.

    Raises:
        ImageReadError: the file cannot be opened or read.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ImageReadError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def sniff_format(head: bytes) -> str | None:
    """The image format of a file from its first bytes (at least 132 for DICOM).

    Returns:
        ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"``, ``"dicom"`` or ``None`` when unknown.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


# ---------------------------------------------------------------- sample conversion


MIN_SIDE = 16  # pixels: a smaller picture is not an ultrasound frame (and would get a grade)


def check_frame_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse one frame (of a video, say) that is smaller than :data:`MIN_SIDE` a side or has
    more than ``max_pixels`` pixels, from its declared size.

    Raises:
        ImageReadError: the message names the file and the limit.
    """
    _check_size(path, width, height, 1, max_pixels)


def _check_size(
    path: Path, width: int, height: int, frames: int, max_pixels: int, total: int | None = None
) -> None:
    """Refuse a file whose header declares more pixels than ``max_pixels`` (nothing decoded).

    ``total`` overrides ``width * height * frames`` for files whose frames differ in size.
    """
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{path.name} declares an empty image ({width} x {height} px).")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageReadError(
            f"{path.name} is {width} x {height} px: too small to be an ultrasound frame "
            f"(at least {MIN_SIDE} x {MIN_SIDE})."
        )
    total = int(width) * int(height) * max(1, int(frames)) if total is None else int(total)
    if total > max_pixels:
        many = f" x {frames} frames" if frames > 1 else ""
        raise ImageReadError(
            f"{path.name} is {width} x {height} px{many} = {total:,} pixels, over the limit of "
            f"{max_pixels:,} (SGUS_MAX_PIXELS); it was not decoded."
        )


def _to_grey(array: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """(H, W) or (H, W, C) samples to (H, W) grey, still in the source dtype.

    Colour is reduced to luminance (ITU-R BT.601, what JPEG calls Y); grey stored as RGB comes
    back exactly. ``metadata["colour"]`` says whether the image held real colour.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., : arr.shape[2] - 1]  # drop alpha (LA, RGBA)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        metadata.setdefault("colour", False)
        return arr
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"unexpected sample layout {array.shape}")
    if arr.dtype.kind == "u":
        spread = np.ptp(arr, axis=2)  # max >= min: no wrap-around, one byte per pixel for uint8
        limit = _COLOUR_SPREAD * float(np.iinfo(arr.dtype).max) / 255.0
    else:
        spread = arr.max(axis=2).astype(np.float64) - arr.min(axis=2)
        full = float(np.nanmax(arr) - np.nanmin(arr)) if arr.size else 0.0
        limit = _COLOUR_SPREAD / 255.0 * full
    colour = float(np.count_nonzero(spread > limit)) > _COLOUR_FRACTION * spread.size
    metadata["colour"] = bool(colour) or bool(metadata.get("colour"))  # any frame in colour
    if arr.dtype == np.uint8:
        # cv2's fixed-point weights sum to exactly 1, so R = G = B comes back unchanged.
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    weights = np.array([0.299, 0.587, 0.114])
    return arr.astype(np.float64) @ weights


def _rgb_samples(array: np.ndarray, metadata: dict[str, Any]) -> np.ndarray | None:
    """The (H, W, 3) uint8 RGB samples of a colour frame, kept for the Doppler check; ``None``
    for grey, or for colour deeper than 8 bits (no scanner exports Doppler so)."""
    arr = np.asarray(array)
    if not metadata.get("colour") or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] < 3:
        return None
    return np.ascontiguousarray(arr[..., :3])


def _to_uint8(stack: Sequence[np.ndarray], metadata: dict[str, Any]) -> list[np.ndarray]:
    """Grey frames of one file to uint8, with one mapping for the whole file.

    8-bit frames are kept as they are; 1-bit become 0/255; anything deeper (or float) is
    mapped linearly from the file's actual min-max range to 0-255 (one range for every frame,
    so a cine loop does not flicker), recorded as ``mapped_from``.
    """
    first = np.asarray(stack[0])
    if first.dtype == np.bool_:
        metadata.update(mapping="1-bit", bit_depth=1)
        return [np.where(np.asarray(a), np.uint8(255), np.uint8(0)) for a in stack]
    if first.dtype == np.uint8:
        metadata.setdefault("mapping", "none")
        return [np.ascontiguousarray(a) for a in stack]
    finite = [np.asarray(a)[np.isfinite(a)] if first.dtype.kind == "f" else a for a in stack]
    sizes = [a.size for a in finite]
    low = min((float(np.min(a)) for a, n in zip(finite, sizes, strict=True) if n), default=0.0)
    high = max((float(np.max(a)) for a, n in zip(finite, sizes, strict=True) if n), default=0.0)
    integral = first.dtype.kind in "ui" or (low.is_integer() and high.is_integer())
    metadata["mapping"] = "min-max"
    metadata["mapped_from"] = [int(low), int(high)] if integral else [low, high]
    out = []
    for a in stack:
        values = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=low, posinf=high, neginf=low)
        if high <= low:
            out.append(np.zeros(values.shape, np.uint8))
            continue
        scaled = (values - low) * (255.0 / (high - low))
        out.append(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return out


def _bit_depth(dtype: np.dtype, declared: int | None = None) -> int:
    if declared:
        return int(declared)
    return 1 if dtype == np.bool_ else int(dtype.itemsize * 8)


# ---------------------------------------------------------------- readers
#
# Each reader returns ``(pixels, spacing_mm, metadata)`` per frame, without a field of view:
# masks go through the same readers and have no use for one.

# The fourth element: the RGB samples of a colour frame (for the Doppler check), else None.
_Decoded = list[tuple[np.ndarray, float | None, dict[str, Any], np.ndarray | None]]


def _decode_pil(path: Path, fmt: str, max_pixels: int) -> _Decoded:
    """PNG, JPEG, BMP (and TIFF that tifffile cannot decode) through Pillow, first frame only."""
    try:
        with Image.open(path, formats=[_PIL_FORMATS[fmt]]) as img:
            # Image.open only parsed the header: refuse big frames before load() decodes them.
            _check_size(path, img.width, img.height, 1, max_pixels)
            metadata: dict[str, Any] = {"format": fmt, "photometric": img.mode}
            mode = img.mode
            if mode == "1":
                # 0/255 through "L": Pillow's bool arrays hold True as byte 255 (invalid bools).
                array = np.asarray(img.convert("L")) != 0
            elif mode in ("L", "LA", "RGB", "RGBA", "I", "F") or mode.startswith("I;16"):
                array = np.asarray(img)
            elif mode in ("P", "PA"):
                array = np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))
            else:  # CMYK, YCbCr, LAB, HSV, La, RGBa, ...: let Pillow make RGB
                array = np.asarray(img.convert("RGB"))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"{path.name} declares an image too large to decode safely ({exc}); it was not decoded."
        ) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error ...
        raise ImageReadError(
            f"{path.name} is not a readable {fmt.upper()} image ({describe_exception(exc)})."
        ) from exc
    if array.dtype.kind in "ui" and array.dtype.itemsize > 1 and mode.startswith("I"):
        # Pillow widens 16-bit PNG to 32-bit "I"; the real depth is what the values need.
        declared = 16 if mode.startswith("I;16") or int(array.max(initial=0)) <= 65535 else 32
    else:
        declared = None
    metadata["dtype"] = str(array.dtype)
    metadata["bit_depth"] = _bit_depth(array.dtype, declared)
    grey = _to_grey(array, metadata)
    return [(_to_uint8([grey], metadata)[0], None, metadata, _rgb_samples(array, metadata))]


_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "tiff": "TIFF"}


def _decode_tiff(path: Path, max_pixels: int) -> _Decoded:
    """Every full-resolution page of a TIFF file (tifffile; Pillow for LZW/JPEG compression)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages: list[tifffile.TiffPage] = []
            for page in tif.pages:
                if not isinstance(page, tifffile.TiffPage):
                    # A lightweight TiffFrame (ScanImage, NDPI...) lacks the tags read below.
                    raise TypeError(f"TIFF page {page.index} is a frame without its own tags")
                # Reduced-resolution pages (thumbnails, pyramids) are not frames of their own.
                if not page.is_reduced:
                    pages.append(page)
            if not pages:
                raise ImageReadError(f"{path.name} is a TIFF file without images.")
            first = pages[0]
            total = sum(int(p.imagewidth) * int(p.imagelength) for p in pages)
            _check_size(
                path, int(first.imagewidth), int(first.imagelength), len(pages), max_pixels, total
            )
            arrays: list[np.ndarray] = []
            for page in pages:
                array = page.asarray()
                if page.axes.startswith("S") and array.ndim == 3:  # planar: samples first
                    array = np.moveaxis(array, 0, -1)
                arrays.append(array)
            photometric = getattr(first.photometric, "name", str(first.photometric))
            declared = int(first.bitspersample)
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types; codecs it lacks (LZW...) Pillow has
        try:
            return _decode_pil(path, "tiff", max_pixels)
        except ImageReadError:
            raise ImageReadError(
                f"{path.name} is not a readable TIFF image ({describe_exception(exc)})."
            ) from exc
    if len({a.shape for a in arrays}) > 1:
        arrays = arrays[:1]  # pages of different sizes are not a cine loop: keep the first
    metadata: dict[str, Any] = {
        "format": "tiff",
        "photometric": photometric,
        "dtype": str(arrays[0].dtype),
        "bit_depth": _bit_depth(arrays[0].dtype, declared),
    }
    try:
        greys = [_to_grey(a, metadata) for a in arrays]
    except ValueError as exc:
        raise ImageReadError(f"{path.name} has an unsupported TIFF layout ({exc}).") from exc
    frames = _to_uint8(greys, metadata)
    if photometric == "MINISWHITE":
        frames = [255 - f for f in frames]
        metadata["inverted"] = True
    colours = [_rgb_samples(a, metadata) for a in arrays]
    return [(f, None, dict(metadata), c) for f, c in zip(frames, colours, strict=True)]


def _dicom_region(ds: Dataset) -> Dataset | None:
    """The ultrasound region whose calibration describes the image (2-D tissue, in cm)."""
    regions = list(getattr(ds, "SequenceOfUltrasoundRegions", None) or [])

    def in_cm(region: Dataset) -> bool:
        units_x = getattr(region, "PhysicalUnitsXDirection", _CM_UNITS)
        units_y = getattr(region, "PhysicalUnitsYDirection", _CM_UNITS)
        return int(units_x) == _CM_UNITS and int(units_y) == _CM_UNITS

    usable = [r for r in regions if in_cm(r)]
    # RegionSpatialFormat 1 is a 2-D image; others are M-mode, spectra, waveforms.
    spatial = [r for r in usable if int(getattr(r, "RegionSpatialFormat", 1)) == 1]
    return (spatial or usable or [None])[0]


def _dicom_spacing(ds: Dataset, metadata: dict[str, Any]) -> float | None:
    """mm per pixel from PixelSpacing, else from the ultrasound region (cm per pixel)."""
    row = col = None
    spacing = getattr(ds, "PixelSpacing", None)
    if spacing is not None and len(spacing) >= 2:
        row, col = float(spacing[0]), float(spacing[1])  # row spacing first, in mm
        metadata["spacing_source"] = "PixelSpacing"
    else:
        region = _dicom_region(ds)
        if region is not None and "PhysicalDeltaX" in region and "PhysicalDeltaY" in region:
            col = abs(float(region.PhysicalDeltaX)) * 10.0  # cm -> mm
            row = abs(float(region.PhysicalDeltaY)) * 10.0
            metadata["spacing_source"] = "SequenceOfUltrasoundRegions"
    if not row or not col or not math.isfinite(row) or not math.isfinite(col):
        metadata.pop("spacing_source", None)
        return None
    if not math.isclose(row, col, rel_tol=1e-6):
        metadata["spacing_row_mm"], metadata["spacing_col_mm"] = row, col
    return math.sqrt(row * col)


def _dicom_fov(ds: Dataset, height: int, width: int) -> Rect | None:
    """The image area the scanner declared in its ultrasound region, when it is plausible."""
    region = _dicom_region(ds)
    names = ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1")
    if region is None or not all(n in region for n in (*names, "RegionLocationMaxY1")):
        return None
    x0, y0 = int(region.RegionLocationMinX0), int(region.RegionLocationMinY0)
    x1, y1 = int(region.RegionLocationMaxX1) + 1, int(region.RegionLocationMaxY1) + 1  # inclusive
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    rect = Rect(x0, y0, x1 - x0, y1 - y0)
    # A region that is (almost) the whole frame says nothing about where the UI is: detect then.
    plausible = 0.05 * width * height <= rect.area < 0.98 * width * height
    return rect if rect.width > 0 and rect.height > 0 and plausible else None


def _dicom_kept_tags(ds: Dataset) -> dict[str, Any]:
    """The few tags a frame keeps, as JSON values (a malformed value is left out)."""
    kept: dict[str, Any] = {}
    for tag in DICOM_KEPT_TAGS:
        try:
            value = ds[tag].value if tag in ds else None
            if value in (None, ""):
                continue
            if tag == "PixelSpacing":
                kept[tag] = [float(v) for v in value]
            elif tag in ("Rows", "Columns", "NumberOfFrames"):
                kept[tag] = int(value)
            else:
                kept[tag] = str(value)
        except (TypeError, ValueError):
            continue
    return kept


def _decode_dicom(path: Path, max_pixels: int) -> tuple[_Decoded, Rect | None]:
    """Every frame of a DICOM file, and the field of view its ultrasound region declares."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        rows, cols = header.get("Rows"), header.get("Columns")
        n_frames = int(header.get("NumberOfFrames") or 1)
    except Exception as exc:  # InvalidDicomError, EOFError, struct.error, bad IS values ...
        raise ImageReadError(
            f"{path.name} is not a readable DICOM file ({describe_exception(exc)})."
        ) from exc
    if rows is None or cols is None:
        raise ImageReadError(
            f"{path.name} is a DICOM file without an image (no Rows/Columns: a report or a "
            "DICOMDIR?)."
        )
    _check_size(path, int(cols), int(rows), n_frames, max_pixels)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImageReadError(
            f"{path.name} is not a readable DICOM file ({describe_exception(exc)})."
        ) from exc
    if "PixelData" not in ds:
        raise ImageReadError(f"{path.name} is a DICOM file without pixel data.")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    try:
        # pixel_array converts YBR_FULL / YBR_FULL_422 (and JPEG's YCbCr) to RGB itself.
        array = ds.pixel_array
        if photometric == "PALETTE COLOR":
            array = apply_color_lut(array, ds)
    except Exception as exc:  # missing decoder for the transfer syntax, truncated data ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax) or "unknown transfer syntax"
        raise ImageReadError(
            f"{path.name}: the DICOM pixel data cannot be decoded ({name}: {describe_exception(exc)})."
        ) from exc
    samples = int(ds.get("SamplesPerPixel") or 1)
    colour_layout = samples > 1 or photometric == "PALETTE COLOR"
    if n_frames == 1 or array.ndim == (3 if colour_layout else 2):
        array = array[np.newaxis]
    metadata: dict[str, Any] = {
        "format": "dicom",
        "photometric": photometric,
        "dtype": str(array.dtype),
        "bit_depth": int(ds.get("BitsStored") or _bit_depth(array.dtype)),
        "dicom": _dicom_kept_tags(ds),
    }
    try:
        spacing = _dicom_spacing(ds, metadata)
    except (TypeError, ValueError):
        spacing = None
    try:
        fov = _dicom_fov(ds, int(rows), int(cols))
    except (TypeError, ValueError):
        fov = None
    try:
        greys = [_to_grey(a, metadata) for a in array]
    except ValueError as exc:
        raise ImageReadError(f"{path.name} has an unsupported DICOM layout ({exc}).") from exc
    frames = _to_uint8(greys, metadata)
    if photometric == "MONOCHROME1":  # 0 is white
        frames = [255 - f for f in frames]
        metadata["inverted"] = True
    colours = [_rgb_samples(a, metadata) for a in array]
    return [(f, spacing, dict(metadata), c) for f, c in zip(frames, colours, strict=True)], fov


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip() or "no detail"
    return f"{type(exc).__name__}: {text[:200]}"


def _open_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(132)
    except OSError as exc:
        raise ImageReadError(f"Cannot open {path.name}: {exc.strerror or exc}") from exc


def decode_samples(path: Path, max_pixels: int) -> tuple[_Decoded, Rect | None]:
    """Frames of any supported file by content, plus a declared field of view (DICOM only)."""
    head = _open_head(path)
    if not head:
        raise ImageReadError(f"{path.name} is an empty (zero-byte) file.")
    fmt = sniff_format(head)
    if fmt is None:
        raise ImageReadError(
            f"{path.name} is not a PNG, JPEG, BMP, TIFF or DICOM image (unknown content)."
        )
    try:
        if fmt == "dicom":
            return _decode_dicom(path, max_pixels)
        if fmt == "tiff":
            return _decode_tiff(path, max_pixels), None
        return _decode_pil(path, fmt, max_pixels), None
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(
            f"{path.name} does not fit in memory ({describe_exception(exc)})."
        ) from exc
    except Exception as exc:  # a last guard: no decoder exception reaches the caller
        raise ImageReadError(f"{path.name} cannot be decoded ({describe_exception(exc)}).") from exc


def read_frames(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Frame]:
    """Read every frame of an image file as grey uint8 (one per DICOM frame or TIFF page).

    The format is taken from the file's content, not its name. Multi-frame files share one
    field of view (a scanner does not move its layout within a loop): the one their DICOM
    ultrasound region declares, else the one detected on the first frame.

    Args:
        path: PNG, JPEG, BMP, TIFF (8/16-bit, 1-bit, multi-page) or DICOM file.
        max_pixels: refuse files whose header declares more pixels than this (all frames
            together), before decoding them.

    Returns:
        At least one :class:`Frame`, ``pixels`` (H, W) uint8, in file order.

    Raises:
        ImageReadError: missing, empty, truncated, corrupt, unsupported or too large files, and
            DICOM without pixel data; the message names the file and the problem.
    """
    path = Path(path)
    decoded, declared_fov = decode_samples(path, max_pixels)
    first = decoded[0][0]
    if declared_fov is not None:
        fov, source = declared_fov, "dicom_region"
    else:
        fov, source = detect_fov(first), "detected"
    frames = []
    for index, (pixels, spacing, metadata, rgb) in enumerate(decoded):
        metadata["fov_source"] = source
        frame_fov = fov if pixels.shape == first.shape else detect_fov(pixels)
        kept = doppler_frame_signal(rgb, frame_fov) if rgb is not None else None
        metadata["doppler"] = kept is not None
        colours = rgb if kept is not None else None  # kept for display (Frame.shown)
        frames.append(Frame(pixels, spacing, frame_fov, index, metadata, kept, colours))
    return frames


def read_image(path: Path, **kwargs: Any) -> Frame:
    """The first frame of an image file; arguments and errors as :func:`read_frames`."""
    return read_frames(path, **kwargs)[0]
