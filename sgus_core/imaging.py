"""Reading ultrasound frames, finding the field of view, masks, overlays and thumbnails.

Formats are recognised by content (magic bytes), never by the file name: a PNG named ``.jpg``
reads fine. Every frame comes back as (H, W) uint8 grey; the reader notes in
``Frame.metadata`` what it had to do to get there (colour to luminance, 16-bit to 8-bit, ...).
Frames larger than ``max_pixels`` are refused from their header, before any pixel is decoded.
Every failure is an :class:`ImageReadError` naming the file and what is wrong; no decoder
exception escapes.

DICOM: only the tags the app needs are kept (size, frames, pixel spacing, modality, model name);
names, ids and dates never leave the reader.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from sgus_core.errors import ImageReadError, MaskError
from sgus_core.settings import DEFAULT_MAX_PIXELS

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


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in pixels: ``x``, ``y`` of its top-left corner, then its size."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        """Pixels inside (0 for an empty rectangle)."""
        return max(0, self.width) * max(0, self.height)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` as plain ints (what the store keeps)."""
        return (int(self.x), int(self.y), int(self.width), int(self.height))

    @property
    def slices(self) -> tuple[slice, slice]:
        """Numpy ``(rows, cols)`` slices: ``image[rect.slices]`` is the rectangle's content."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)

    def iou(self, other: Rect) -> float:
        """Intersection over union with another rectangle, in [0, 1] (0 when both are empty)."""
        ix = max(0, min(self.x + self.width, other.x + other.width) - max(self.x, other.x))
        iy = max(0, min(self.y + self.height, other.y + other.height) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Frame:
    """One grey ultrasound frame with what the reader learnt about it.

    Attributes:
        pixels: (H, W) uint8 grey.
        spacing_mm: mm per pixel, ``None`` when the file does not say (PNG, JPEG, ...). Pixels
            are taken as square; when the file gives different row and column spacings this is
            their geometric mean (so ``area_px * spacing_mm**2`` is the true area) and both are
            in ``metadata`` as ``spacing_row_mm`` / ``spacing_col_mm``.
        fov: the field of view (scanner image area) inside the frame.
        frame_index: 0-based position in a multi-frame file.
        metadata: JSON-serialisable facts about the source: ``format`` (png, jpeg, bmp, tiff,
            dicom), ``dtype`` and ``bit_depth`` of the stored samples, ``photometric`` (the
            Pillow mode, TIFF photometric or DICOM PhotometricInterpretation), ``colour`` (True
            when true colour was reduced to luminance), ``mapping`` (``"none"``, ``"1-bit"`` or
            ``"min-max"`` with ``mapped_from`` = [low, high]), ``inverted`` (MONOCHROME1 or
            min-is-white), ``fov_source`` (``"detected"`` or ``"dicom_region"``), for DICOM
            ``spacing_source`` and ``dicom`` (only :data:`DICOM_KEPT_TAGS`).
    """

    pixels: np.ndarray
    spacing_mm: float | None
    fov: Rect
    frame_index: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


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


def _check_size(
    path: Path, width: int, height: int, frames: int, max_pixels: int, total: int | None = None
) -> None:
    """Refuse a file whose header declares more pixels than ``max_pixels`` (nothing decoded).

    ``total`` overrides ``width * height * frames`` for files whose frames differ in size.
    """
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{path.name} declares an empty image ({width} x {height} px).")
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

_Decoded = list[tuple[np.ndarray, float | None, dict[str, Any]]]


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
            f"{path.name} is not a readable {fmt.upper()} image ({_describe(exc)})."
        ) from exc
    if array.dtype.kind in "ui" and array.dtype.itemsize > 1 and mode.startswith("I"):
        # Pillow widens 16-bit PNG to 32-bit "I"; the real depth is what the values need.
        declared = 16 if mode.startswith("I;16") or int(array.max(initial=0)) <= 65535 else 32
    else:
        declared = None
    metadata["dtype"] = str(array.dtype)
    metadata["bit_depth"] = _bit_depth(array.dtype, declared)
    grey = _to_grey(array, metadata)
    return [(_to_uint8([grey], metadata)[0], None, metadata)]


_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "tiff": "TIFF"}


def _decode_tiff(path: Path, max_pixels: int) -> _Decoded:
    """Every full-resolution page of a TIFF file (tifffile; Pillow for LZW/JPEG compression)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            # Reduced-resolution pages (thumbnails, pyramids) are not frames of their own.
            pages = [p for p in tif.pages if not getattr(p, "is_reduced", False)]
            if not pages:
                raise ImageReadError(f"{path.name} is a TIFF file without images.")
            first = pages[0]
            total = sum(int(p.imagewidth) * int(p.imagelength) for p in pages)
            _check_size(
                path, int(first.imagewidth), int(first.imagelength), len(pages), max_pixels, total
            )
            arrays = []
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
                f"{path.name} is not a readable TIFF image ({_describe(exc)})."
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
    return [(f, None, dict(metadata)) for f in frames]


def _dicom_region(ds) -> Any | None:
    """The ultrasound region whose calibration describes the image (2-D tissue, in cm)."""
    regions = list(getattr(ds, "SequenceOfUltrasoundRegions", None) or [])

    def in_cm(region) -> bool:
        units_x = getattr(region, "PhysicalUnitsXDirection", _CM_UNITS)
        units_y = getattr(region, "PhysicalUnitsYDirection", _CM_UNITS)
        return int(units_x) == _CM_UNITS and int(units_y) == _CM_UNITS

    usable = [r for r in regions if in_cm(r)]
    # RegionSpatialFormat 1 is a 2-D image; others are M-mode, spectra, waveforms.
    spatial = [r for r in usable if int(getattr(r, "RegionSpatialFormat", 1)) == 1]
    return (spatial or usable or [None])[0]


def _dicom_spacing(ds, metadata: dict[str, Any]) -> float | None:
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


def _dicom_fov(ds, height: int, width: int) -> Rect | None:
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


def _dicom_kept_tags(ds) -> dict[str, Any]:
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
            f"{path.name} is not a readable DICOM file ({_describe(exc)})."
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
            f"{path.name} is not a readable DICOM file ({_describe(exc)})."
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
            f"{path.name}: the DICOM pixel data cannot be decoded ({name}: {_describe(exc)})."
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
    return [(f, spacing, dict(metadata)) for f in frames], fov


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "no detail"
    return f"{type(exc).__name__}: {text[:200]}"


def _open_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(132)
    except OSError as exc:
        raise ImageReadError(f"Cannot open {path.name}: {exc.strerror or exc}") from exc


def _decode(path: Path, max_pixels: int) -> tuple[_Decoded, Rect | None]:
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
        raise ImageReadError(f"{path.name} does not fit in memory ({_describe(exc)}).") from exc
    except Exception as exc:  # a last guard: no decoder exception reaches the caller
        raise ImageReadError(f"{path.name} cannot be decoded ({_describe(exc)}).") from exc


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
    decoded, declared_fov = _decode(path, max_pixels)
    first = decoded[0][0]
    if declared_fov is not None:
        fov, source = declared_fov, "dicom_region"
    else:
        fov, source = detect_fov(first), "detected"
    frames = []
    for index, (pixels, spacing, metadata) in enumerate(decoded):
        metadata["fov_source"] = source
        frame_fov = fov if pixels.shape == first.shape else detect_fov(pixels)
        frames.append(Frame(pixels, spacing, frame_fov, index, metadata))
    return frames


def read_image(path: Path, **kwargs: Any) -> Frame:
    """The first frame of an image file; arguments and errors as :func:`read_frames`."""
    return read_frames(path, **kwargs)[0]


# ---------------------------------------------------------------- field of view
#
# Content is speckle: textured in every direction. UI panels are flat; lines, ticks and the
# edges of panels are flat along themselves; text is textured but thin. So:
# 1. texture map: the smaller of the horizontal and the vertical local standard deviation,
#    relative to the local brightness (speckle is multiplicative: dark depths count as much as
#    bright skin lines), above a low threshold;
# 2. core: where that map is dense over a window several grains wide; thin things (text lines,
#    JPEG ringing around them) never are; the largest core component, with big neighbours
#    stacked on it (a dark band can split the image), is the field of view's heart;
# 3. each side is walked outwards from the core line by line while a line still holds at least
#    half the texture of the lines just inside it (a side along an acoustic shadow is sparse
#    but still judged against its own neighbourhood), which stops on the first flat margin line.

_FOV_TEXTURE_MIN = 0.02  # std / (mean + 10) of speckle is 0.03-0.3; flat UI is 0
_FOV_MEAN_OFFSET = 10.0
_FOV_CORE_DENSITY = 0.8
_FOV_LINE_KEEP = 0.5
_FOV_MIN_AREA = 0.05


def _directional_std(img: np.ndarray, ksize: tuple[int, int]) -> np.ndarray:
    mean = cv2.blur(img, ksize)
    return np.sqrt(np.maximum(cv2.blur(img * img, ksize) - mean * mean, 0.0))


def _texture_map(gray: np.ndarray, window: int) -> np.ndarray:
    """(H, W) float32 0/1: textured in both directions, relative to local brightness."""
    img = gray.astype(np.float32)
    across = _directional_std(img, (window, 1))
    down = _directional_std(img, (1, window))
    mean = cv2.blur(img, (window, window))
    ratio = np.minimum(across, down) / (mean + _FOV_MEAN_OFFSET)
    return (ratio > _FOV_TEXTURE_MIN).astype(np.float32)


def _span_overlap(a0: int, a1: int, b0: int, b1: int) -> float:
    return max(0, min(a1, b1) - max(a0, b0)) / max(1, min(a1 - a0, b1 - b0))


def _core_box(core: np.ndarray, gap: int) -> tuple[int, int, int, int] | None:
    """Box ``(x0, y0, x1, y1)`` of the largest component and the big ones stacked beside it."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    if n <= 1:
        return None
    order = [int(i) for i in 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA])]
    x, y, w, h, main_area = (int(v) for v in stats[order[0]])
    x0, y0, x1, y1 = x, y, x + w, y + h
    pending = [i for i in order[1:] if stats[i, cv2.CC_STAT_AREA] >= 0.05 * main_area]
    merged = True
    while merged and pending:
        merged = False
        for i in list(pending):
            cx, cy, cw, ch, _ = (int(v) for v in stats[i])
            near_y = cy - y1 <= gap and y0 - (cy + ch) <= gap
            near_x = cx - x1 <= gap and x0 - (cx + cw) <= gap
            stacked = _span_overlap(x0, x1, cx, cx + cw) >= 0.5 and near_y
            beside = _span_overlap(y0, y1, cy, cy + ch) >= 0.5 and near_x
            if stacked or beside:
                x0, y0, x1, y1 = min(x0, cx), min(y0, cy), max(x1, cx + cw), max(y1, cy + ch)
                pending.remove(i)
                merged = True
    return x0, y0, x1, y1


def _walk_out(profile: np.ndarray, lo: int, hi: int, reach: int, window: int) -> tuple[int, int]:
    """New ``[lo, hi)`` of a line profile (texture fraction per line), walked outwards."""
    n = profile.size
    mid = (lo + hi) // 2
    floor = 2 * _FOV_TEXTURE_MIN

    def walk(start: int, step: int, stop: int, ref_lines: np.ndarray) -> int:
        ref = max(float(np.median(ref_lines)) if ref_lines.size else 0.0, floor)
        p = start
        while p != stop and profile[p] >= _FOV_LINE_KEEP * ref:
            p += step
        return p

    start_lo = min(lo, mid)
    start_hi = max(hi - 1, mid)
    new_lo = walk(start_lo, -1, max(-1, lo - reach - 1), profile[start_lo : start_lo + window]) + 1
    hi_ref = profile[max(start_hi - window + 1, 0) : start_hi + 1]
    new_hi = walk(start_hi, 1, min(n, hi + reach), hi_ref)
    return min(new_lo, start_lo), max(new_hi, start_hi + 1)


def detect_fov(gray: np.ndarray) -> Rect:
    """The ultrasound field of view inside a scanner screenshot.

    Finds the rectangle of speckle content inside black margins and UI panels, ignoring text,
    depth-scale ticks, lines and grey bars; an acoustic shadow or a dark depth along a side
    does not cut that side off. A frame that is all content (or has no content) gives the
    whole frame. Measured on phantom screenshots (``sgus_core.phantom``, 40 seeds over its 3
    scanner layouts, in 13 variations of gain, noise, speckle, size, UI and text): IoU with the
    true field of view 1.00 for lossless frames, >= 0.947 after JPEG quality 75; about 7 ms
    for 800 x 555 and 20 ms for 1280 x 872 on 2 CPU cores.

    Args:
        gray: (H, W) grey frame, any numeric dtype (uint8 expected).

    Returns:
        The rectangle in pixel coordinates of ``gray``.

    Raises:
        ValueError: ``gray`` is not 2-D.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f"detect_fov needs a (H, W) grey frame, got shape {gray.shape}")
    height, width = gray.shape
    whole = Rect(0, 0, width, height)
    if height < 16 or width < 16:
        return whole
    # Windows follow the frame's size: speckle grains are about 1/60 of a screenshot's height.
    window = int(max(5, round(min(height, width) / 50))) | 1
    density = (4 * window) | 1
    texture = _texture_map(gray, window)
    core = (cv2.blur(texture, (density, density)) >= _FOV_CORE_DENSITY).astype(np.uint8)
    box = _core_box(core, gap=density)
    if box is None:
        return whole
    x0, y0, x1, y1 = box
    reach = density // 2 + 1  # the density threshold pulls the core in by less than this
    for _ in range(2):  # twice: each side's span depends on the other axis's result
        x0, x1 = _walk_out(texture[y0:y1].mean(axis=0), x0, x1, reach, window)
        y0, y1 = _walk_out(texture[:, x0:x1].mean(axis=1), y0, y1, reach, window)
    fov = Rect(int(x0), int(y0), int(x1 - x0), int(y1 - y0))
    return fov if fov.area >= _FOV_MIN_AREA * whole.area else whole


# ---------------------------------------------------------------- masks


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A mask as a compact, lossless 1-bit PNG.

    Args:
        mask: (H, W) bool (or any array: non-zero is True).

    Returns:
        PNG bytes; :func:`decode_mask_png` gives the mask back exactly.

    Raises:
        MaskError: the mask is not 2-D or is empty.
    """
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise MaskError(f"A mask must be a non-empty (H, W) array, got shape {array.shape}.")
    buffer = io.BytesIO()
    Image.fromarray(array.astype(bool)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def decode_mask_png(data: bytes) -> np.ndarray:
    """The mask of PNG bytes written by :func:`encode_mask_png` (or any 0/non-0 grey PNG).

    Returns:
        (H, W) bool.

    Raises:
        MaskError: the bytes are not a readable PNG image.
    """
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            # Not np.asarray on a mode "1" image: Pillow stores True as byte 255, which numpy
            # comparisons between masks then get wrong.
            array = np.asarray(image.convert("L"))
    except Exception as exc:  # UnidentifiedImageError, truncated data, decompression bombs ...
        raise MaskError(f"A stored mask cannot be decoded ({_describe(exc)}).") from exc
    return array != 0


def read_mask_file(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as bool, checked against its frame's ``shape``.

    Accepts PNG (or BMP, TIFF) with the values 0/255 or 0/1, stored as grey, 1-bit or RGB
    with equal channels.

    Args:
        path: the mask file.
        shape: ``(H, W)`` of the frame the mask belongs to.

    Returns:
        (H, W) bool, True on the structure.

    Raises:
        MaskError: unreadable file, wrong size (both sizes named), colour, or values other
            than 0/255 or 0/1.
    """
    path = Path(path)
    expected = (int(shape[0]), int(shape[1]))
    limit = max(DEFAULT_MAX_PIXELS, 4 * expected[0] * expected[1])
    try:
        decoded, _ = _decode(path, limit)
    except ImageReadError as exc:
        raise MaskError(f"Mask {path.name} cannot be read: {exc}") from exc
    pixels, _, metadata = decoded[0]
    if pixels.shape != expected:
        raise MaskError(
            f"Mask {path.name} is {pixels.shape[1]} x {pixels.shape[0]} px but its frame is "
            f"{expected[1]} x {expected[0]} px (width x height)."
        )
    if metadata.get("colour"):
        raise MaskError(f"Mask {path.name} is a colour image; save masks as grey 0/255 PNG.")
    values = set(np.unique(pixels).tolist())
    if metadata.get("mapping") == "min-max":
        # A 16-bit mask is judged on its stored values (the mapping made any two levels 0/255).
        low, high = metadata["mapped_from"]
        if low == high:
            return np.full(expected, low != 0)
        if len(values) == 2 and low == 0 and high in (1, 255, 65535):
            return pixels != 0
        values = {low, high} if len(values) == 2 else values
    if not (values <= {0, 255} or values <= {0, 1}):
        shown = ", ".join(str(v) for v in sorted(values)[:6]) + (", ..." if len(values) > 6 else "")
        hint = " JPEG is lossy: save masks as PNG." if metadata.get("format") == "jpeg" else ""
        raise MaskError(
            f"Mask {path.name} is not binary: it holds {len(values)} grey levels ({shown}); "
            f"use 0 and 255, or 0 and 1.{hint}"
        )
    return pixels != 0


def mask_contour(mask: np.ndarray) -> np.ndarray:
    """The outline of a mask's largest region.

    Args:
        mask: (H, W) bool (non-zero is True).

    Returns:
        (N, 2) int32 ``x, y`` points of the largest external contour in frame coordinates
        (every boundary pixel, in order); (0, 2) for an empty mask.
    """
    contours, _ = cv2.findContours(
        np.asarray(mask).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    if not contours:
        return np.zeros((0, 2), dtype=np.int32)
    largest = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    return np.ascontiguousarray(largest.reshape(-1, 2), dtype=np.int32)


def draw_overlay(
    gray: np.ndarray,
    layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    thickness: int = 2,
    fill_alpha: float = 0.0,
) -> np.ndarray:
    """A frame in colour with each mask's outline (and optional translucent fill) drawn on it.

    Args:
        gray: (H, W) uint8 frame (an (H, W, 3) RGB frame is drawn on as it is).
        layers: ``(mask, (r, g, b))`` pairs, each mask (H, W) bool; drawn in order.
        thickness: outline width in px.
        fill_alpha: opacity of the fill inside each mask, 0 (none) to 1.

    Returns:
        (H, W, 3) uint8 RGB; ``gray`` is not modified.

    Raises:
        MaskError: a mask's shape differs from the frame's.
    """
    base = np.asarray(gray)
    if base.dtype != np.uint8:
        base = np.clip(base, 0, 255).astype(np.uint8)
    rgb = base.copy() if base.ndim == 3 else cv2.cvtColor(base, cv2.COLOR_GRAY2RGB)
    alpha = float(min(max(fill_alpha, 0.0), 1.0))
    for mask, colour in layers:
        m = np.asarray(mask).astype(bool)
        if m.shape != rgb.shape[:2]:
            raise MaskError(
                f"A mask of {m.shape[1]} x {m.shape[0]} px cannot be drawn on a frame of "
                f"{rgb.shape[1]} x {rgb.shape[0]} px."
            )
        tint = tuple(int(c) for c in colour)
        if alpha > 0 and m.any():
            blended = (1 - alpha) * rgb[m] + alpha * np.array(tint, dtype=np.float32)
            rgb[m] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        width = max(1, int(thickness))
        # Anti-aliasing smooths thick outlines but makes a 1 px outline faint and off-colour.
        cv2.drawContours(rgb, contours, -1, tint, width, cv2.LINE_AA if width > 1 else cv2.LINE_8)
    return rgb


# ---------------------------------------------------------------- thumbnails

THUMBNAIL_JPEG_QUALITY = 80


def make_thumbnail(
    gray: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    max_side: int = 256,
    colour: tuple[int, int, int] = (255, 200, 0),
) -> bytes:
    """A small JPEG of a frame with its mask's outline.

    Args:
        gray: (H, W) uint8 frame.
        mask: optional (H, W) bool mask whose outline is drawn in ``colour`` (RGB).
        max_side: the longer side of the thumbnail in px (frames are never enlarged).
        colour: outline colour.

    Returns:
        JPEG bytes (quality 80).

    Raises:
        MaskError: the mask's shape differs from the frame's.
        ImageReadError: the JPEG could not be encoded.
    """
    gray = np.asarray(gray)
    height, width = gray.shape[:2]
    if mask is not None and np.asarray(mask).shape != (height, width):
        raise MaskError(
            f"A mask of {np.asarray(mask).shape[1]} x {np.asarray(mask).shape[0]} px does not "
            f"fit a frame of {width} x {height} px."
        )
    scale = min(1.0, max_side / max(height, width, 1))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    layers = []
    if mask is not None:
        small_mask = np.asarray(mask).astype(np.uint8)
        if scale != 1.0:
            small_mask = cv2.resize(small_mask, size, interpolation=cv2.INTER_NEAREST)
        layers.append((small_mask > 0, colour))
    # 2 px: JPEG halves colour resolution, so a 1 px outline would lose most of its colour.
    rgb = draw_overlay(small, layers, thickness=2 if max(size) >= 128 else 1)
    params = [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_JPEG_QUALITY]
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageReadError("Could not encode a thumbnail.")
    return data.tobytes()


class ThumbnailCache:
    """Thumbnails on disk, one file per key, written atomically.

    Safe across concurrent page sessions and processes: a file appears whole (written to a
    temporary file in the same folder, then renamed over its name) or not at all; two sessions
    building the same key both succeed and one of the identical files wins.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        """Where the thumbnail of ``key`` lives: ``root/<first 2 chars>/<key>.jpg``.

        Characters other than letters, digits, ``-`` and ``_`` become ``_`` (no key can leave
        ``root``).

        Raises:
            ValueError: an empty key.
        """
        if not key:
            raise ValueError("A thumbnail key must not be empty.")
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in key)
        return self.root / safe[:2] / f"{safe}.jpg"

    def get_or_create(self, key: str, build: Callable[[], bytes]) -> Path:
        """The thumbnail file of ``key``, built with ``build()`` and stored the first time.

        Returns:
            The path of the complete file.

        Raises:
            OSError: the cache folder cannot be written.
        """
        path = self.path_for(key)
        try:
            if path.stat().st_size > 0:
                return path
        except FileNotFoundError:
            pass
        data = build()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
