"""Reading ultrasound frames, finding the field of view, masks, overlays and thumbnails.

Formats are recognised by content (magic bytes), never by the file name: a PNG named ``.jpg``
reads fine. Every failure is an :class:`ImageReadError` naming the file and what is wrong.
DICOM: only the tags the app needs are kept (size, frames, pixel spacing, modality, model name);
names, ids and dates never leave the reader.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from sgus_core.errors import ImageReadError, MaskError
from sgus_core.settings import DEFAULT_MAX_PIXELS

SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
DICOM_KEPT_TAGS = ("Rows", "Columns", "NumberOfFrames", "Modality", "ManufacturerModelName")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
)


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        """Pixels inside."""
        return self.width * self.height

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)``."""
        return (self.x, self.y, self.width, self.height)

    @property
    def slices(self) -> tuple[slice, slice]:
        """Numpy ``(rows, cols)`` slices of the rectangle."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)

    def iou(self, other: Rect) -> float:
        """Intersection over union with another rectangle (0 when either is empty)."""
        ix = max(0, min(self.x + self.width, other.x + other.width) - max(self.x, other.x))
        iy = max(0, min(self.y + self.height, other.y + other.height) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union else 0.0


@dataclass(frozen=True)
class Frame:
    """One grey ultrasound frame with what the reader learnt about it."""

    pixels: np.ndarray
    spacing_mm: float | None
    fov: Rect
    frame_index: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def iter_image_files(root: Path) -> list[Path]:
    """Every image file under ``root`` (recursive, sorted, hidden files and folders skipped).

    Files without a suffix are included when they start like a DICOM file.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            suffix = path.suffix.lower()
            if suffix in SUPPORTED_SUFFIXES or (not suffix and _is_dicom(path)):
                found.append(path)
    return sorted(found)


def _is_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def file_hash(path: Path) -> str:
    """sha256 hex digest of a file's bytes (the store's content hash), read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(head: bytes) -> str | None:
    """The image format of a file from its first bytes (``png``, ``jpeg``, ``bmp``, ``tiff``,
    ``dicom``) or ``None``."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _to_grey8(
    array: np.ndarray, metadata: dict[str, Any], *, colour_hint: str = "RGB"
) -> np.ndarray:
    """Any 2-D/3-D integer or float image to (H, W) uint8 grey, noting what was done."""
    arr = np.asarray(array)
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.shape[2] == 1:
            arr = arr[..., 0]
        else:
            channels = arr[..., :3]
            if np.array_equal(channels[..., 0], channels[..., 1]) and np.array_equal(
                channels[..., 1], channels[..., 2]
            ):
                arr = channels[..., 0]
            else:
                # JPEG compresses grey stored as RGB with small colour noise: still grey.
                spread = np.abs(channels.astype(np.int32) - channels.mean(axis=2, keepdims=True))
                metadata["colour"] = bool(spread.mean() > 2.0)
                code = cv2.COLOR_RGB2GRAY if colour_hint == "RGB" else cv2.COLOR_BGR2GRAY
                arr = cv2.cvtColor(np.ascontiguousarray(channels), code)
    if arr.ndim != 2:
        raise ValueError(f"unexpected image shape {array.shape}")
    if arr.dtype == np.bool_:
        metadata["bit_depth"] = 1
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint8:
        metadata.setdefault("bit_depth", 8)
        return arr
    metadata["bit_depth"] = int(arr.dtype.itemsize * 8)
    low, high = float(arr.min()), float(arr.max())
    metadata["mapped_from"] = [low, high]
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    scaled = (arr.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _check_size(path: Path, width: int, height: int, frames: int, max_pixels: int) -> None:
    total = int(width) * int(height) * max(1, int(frames))
    if total > max_pixels:
        raise ImageReadError(
            f"{path.name} is {width}x{height}"
            + (f" x {frames} frames" if frames > 1 else "")
            + f" = {total:,} pixels, over the limit of {max_pixels:,} (SGUS_MAX_PIXELS);"
            " it was not decoded."
        )


def _read_pil(path: Path, fmt: str, max_pixels: int) -> list[Frame]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_size(path, img.width, img.height, getattr(img, "n_frames", 1), max_pixels)
                metadata: dict[str, Any] = {"format": fmt, "mode": img.mode}
                if img.mode == "1":
                    array = np.asarray(img.convert("L"))
                    metadata["bit_depth"] = 1
                elif img.mode in ("P", "PA"):
                    array = np.asarray(img.convert("RGB"))
                elif img.mode in ("I;16", "I;16B", "I;16L", "I"):
                    array = np.asarray(img).astype(np.int64)
                    if img.mode.startswith("I;16"):
                        metadata["bit_depth"] = 16
                else:
                    array = np.asarray(img)
                pixels = _to_grey8(array, metadata)
                if img.mode == "I" and "bit_depth" in metadata:
                    metadata["bit_depth"] = 16 if array.max() <= 65535 else 32
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:  # fmt: skip
        raise ImageReadError(f"{path.name} is not a readable {fmt.upper()} image: {exc}") from exc
    return [_frame(pixels, None, 0, metadata)]


def _read_tiff(path: Path, max_pixels: int) -> list[Frame]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            if not pages:
                raise ImageReadError(f"{path.name} is a TIFF file without images.")
            first = pages[0]
            height, width = first.shape[:2]
            _check_size(path, width, height, len(pages), max_pixels)
            frames = []
            for index, page in enumerate(pages):
                metadata: dict[str, Any] = {"format": "tiff"}
                array = page.asarray()
                frames.append(_frame(_to_grey8(array, metadata), None, index, metadata))
            return frames
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        # tifffile needs extra codecs for some compressions (LZW, JPEG) that Pillow has.
        try:
            return _read_pil(path, "tiff", max_pixels)
        except ImageReadError:
            raise ImageReadError(f"{path.name} is not a readable TIFF image: {exc}") from exc


def _dicom_spacing(ds) -> float | None:
    spacing = getattr(ds, "PixelSpacing", None)
    try:
        if spacing is not None and len(spacing) >= 2 and float(spacing[0]) > 0:
            return float(spacing[1])  # PixelSpacing is row spacing, column spacing (mm)
    except (TypeError, ValueError):
        pass
    for region in getattr(ds, "SequenceOfUltrasoundRegions", None) or []:
        delta = getattr(region, "PhysicalDeltaX", None)
        units = getattr(region, "PhysicalUnitsXDirection", 3)
        try:
            if delta is not None and float(delta) > 0 and int(units) == 3:  # 3 = cm
                return float(delta) * 10.0
        except (TypeError, ValueError):
            continue
    return None


def _read_dicom(path: Path, max_pixels: int) -> list[Frame]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path.name} is not a readable DICOM file: {exc}") from exc
    rows, cols = getattr(ds, "Rows", None), getattr(ds, "Columns", None)
    if rows is None or cols is None:
        raise ImageReadError(f"{path.name} is a DICOM file without an image (no Rows/Columns).")
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    _check_size(path, int(cols), int(rows), n_frames, max_pixels)
    try:
        full = pydicom.dcmread(path)
    except Exception as exc:
        raise ImageReadError(f"{path.name} is not a readable DICOM file: {exc}") from exc
    if "PixelData" not in full:
        raise ImageReadError(f"{path.name} is a DICOM file without pixel data.")
    try:
        array = full.pixel_array
    except Exception as exc:  # missing decoders, truncated data ...
        raise ImageReadError(f"{path.name}: the DICOM pixel data cannot be decoded: {exc}") from exc
    photometric = str(getattr(full, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        array = convert_color_space(array, photometric, "RGB")
    samples = int(getattr(full, "SamplesPerPixel", 1) or 1)
    if n_frames == 1 or samples == 1 and array.ndim == 2:
        array = array[np.newaxis]
    spacing = _dicom_spacing(full)
    kept = {tag: str(getattr(full, tag)) for tag in DICOM_KEPT_TAGS if tag in full}
    frames = []
    for index in range(array.shape[0]):
        metadata: dict[str, Any] = {"format": "dicom", "photometric": photometric, "dicom": kept}
        pixels = _to_grey8(array[index], metadata)
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
        frames.append(_frame(pixels, spacing, index, metadata))
    return frames


def _frame(pixels: np.ndarray, spacing: float | None, index: int, metadata: dict) -> Frame:
    pixels = np.ascontiguousarray(pixels)
    return Frame(pixels, spacing, detect_fov(pixels), index, metadata)


def read_frames(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Frame]:
    """Read every frame of an image file as grey uint8 (one per DICOM or TIFF frame).

    Raises:
        ImageReadError: missing, empty, truncated, corrupt, unsupported or too large files, and
            DICOM without pixel data; the message names the file and the problem.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as exc:
        raise ImageReadError(f"Cannot open {path.name}: {exc.strerror or exc}") from exc
    if not head:
        raise ImageReadError(f"{path.name} is an empty (zero-byte) file.")
    fmt = sniff_format(head)
    if fmt is None:
        raise ImageReadError(
            f"{path.name} is not a PNG, JPEG, BMP, TIFF or DICOM image (unknown content)."
        )
    if fmt == "dicom":
        return _read_dicom(path, max_pixels)
    if fmt == "tiff":
        return _read_tiff(path, max_pixels)
    return _read_pil(path, fmt, max_pixels)


def read_image(path: Path, **kwargs: Any) -> Frame:
    """The first frame of an image file (see :func:`read_frames`)."""
    return read_frames(path, **kwargs)[0]


# ---------------------------------------------------------------- field of view


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """``(start, stop)`` of the longest run of True values."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    if edges.size == 0:
        return 0, 0
    starts, stops = edges[0::2], edges[1::2]
    best = int(np.argmax(stops - starts))
    return int(starts[best]), int(stops[best])


def _close_gaps(flags: np.ndarray, gap: int) -> np.ndarray:
    """Fill runs of False shorter than ``gap`` between True values (1-D morphological closing)."""
    row = flags.astype(np.uint8)[np.newaxis, :]
    kernel = np.ones((1, max(1, gap)), np.uint8)
    return cv2.morphologyEx(row, cv2.MORPH_CLOSE, kernel)[0] > 0


def detect_fov(gray: np.ndarray) -> Rect:
    """The ultrasound field of view inside a scanner screenshot.

    Content is textured (speckle: local standard deviation above a few grey levels); UI panels are
    flat and text strokes are thin, so an opening with a 7x7 square removes them. The field of view
    is then the longest run of columns holding content (short gaps, e.g. under the mandible's black
    shadow, bridged), and within those columns the longest run of rows. A frame that is all
    content gives the whole frame. Measured on phantom screenshots: IoU with the true field of
    view >= 0.94 over 60 seeds, a few ms per 1280x872 frame.

    Returns:
        The rectangle in pixel coordinates of ``gray`` (H, W).
    """
    height, width = gray.shape[:2]
    whole = Rect(0, 0, width, height)
    if height < 32 or width < 32:
        return whole
    img = gray.astype(np.float32)
    mean = cv2.blur(img, (5, 5))
    var = cv2.blur(img * img, (5, 5)) - mean * mean
    textured = (np.sqrt(np.maximum(var, 0)) > 3.0).astype(np.uint8)
    textured = cv2.morphologyEx(textured, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8)) > 0
    cols = textured.mean(axis=0)
    if cols.max() <= 0:
        return whole
    x0, x1 = _longest_run(_close_gaps(cols > 0.15 * cols.max(), max(3, width // 20)))
    rows = textured[:, x0:x1].mean(axis=1)
    y0, y1 = _longest_run(_close_gaps(rows > 0.3 * rows.max(), max(3, height // 60)))
    fov = Rect(x0, y0, x1 - x0, y1 - y0)
    return fov if fov.area >= 0.05 * whole.area else whole


# ---------------------------------------------------------------- masks


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A bool (H, W) mask as a compact lossless 1-bit PNG."""
    image = Image.fromarray(np.asarray(mask, dtype=bool))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def decode_mask_png(data: bytes) -> np.ndarray:
    """The bool (H, W) mask of PNG bytes written by :func:`encode_mask_png` (or any 0/non-0 PNG).

    Raises:
        MaskError: the bytes are not a PNG image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("L") if image.mode not in ("1", "L") else image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MaskError(f"A stored mask cannot be decoded: {exc}") from exc
    return array != 0


def read_mask_file(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file (PNG, 0/255 or 0/1, grey or RGB-encoded) as bool, checked against ``shape``.

    Raises:
        MaskError: unreadable file, wrong size (both sizes named) or values other than two levels.
    """
    path = Path(path)
    try:
        frame = read_image(path, max_pixels=int(shape[0]) * int(shape[1]) * 4 + 16)
    except ImageReadError as exc:
        raise MaskError(f"mask {path.name} cannot be read: {exc}") from exc
    pixels = frame.pixels
    if pixels.shape != tuple(shape):
        raise MaskError(
            f"mask {path.name} is {pixels.shape[1]} x {pixels.shape[0]} px but its frame is "
            f"{shape[1]} x {shape[0]} px"
        )
    values = np.unique(pixels)
    if values.size > 2 or not set(values.tolist()) <= {0, 1, 255}:
        raise MaskError(
            f"mask {path.name} is not binary: it has {values.size} grey levels (use 0 and 255, or 0 and 1)"
        )
    return pixels != 0


def mask_contour(mask: np.ndarray) -> np.ndarray:
    """(N, 2) int32 ``x y`` points of the largest outer contour; (0, 2) for an empty mask."""
    contours, _ = cv2.findContours(
        np.asarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    if not contours:
        return np.zeros((0, 2), dtype=np.int32)
    largest = max(contours, key=cv2.contourArea)
    return largest.reshape(-1, 2).astype(np.int32)


def draw_overlay(
    gray: np.ndarray,
    layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    thickness: int = 2,
    fill_alpha: float = 0.0,
) -> np.ndarray:
    """RGB uint8 frame with each mask's outline (and optional translucent fill) in its colour."""
    rgb = cv2.cvtColor(np.asarray(gray, dtype=np.uint8), cv2.COLOR_GRAY2RGB)
    for mask, colour in layers:
        m = np.asarray(mask, dtype=bool)
        if fill_alpha > 0 and m.any():
            tint = np.array(colour, dtype=np.float32)
            rgb[m] = ((1 - fill_alpha) * rgb[m] + fill_alpha * tint).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(rgb, contours, -1, tuple(int(c) for c in colour), thickness, cv2.LINE_AA)
    return rgb


# ---------------------------------------------------------------- thumbnails


def make_thumbnail(
    gray: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    max_side: int = 256,
    colour: tuple[int, int, int] = (255, 200, 0),
) -> bytes:
    """JPEG bytes of a frame scaled to ``max_side`` with the mask's outline drawn."""
    height, width = gray.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    layers = []
    if mask is not None:
        small_mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        layers.append((small_mask, colour))
    rgb = draw_overlay(small, layers, thickness=1)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]
    )
    if not ok:
        raise ImageReadError("Could not encode a thumbnail.")
    return data.tobytes()


class ThumbnailCache:
    """Thumbnails on disk, one file per key, written atomically (safe across sessions)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        """Where the thumbnail of ``key`` lives (sharded by its first two characters)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return self.root / safe[:2] / f"{safe}.jpg"

    def get_or_create(self, key: str, build: Callable[[], bytes]) -> Path:
        """The thumbnail file of ``key``, built with ``build()`` the first time."""
        path = self.path_for(key)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = build()
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
