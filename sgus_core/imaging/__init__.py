"""Imaging: reading ultrasound frames, the field of view, masks, overlays, thumbnails, privacy.

* ``readers``: PNG, JPEG, BMP, TIFF and DICOM by content, to (H, W) uint8 grey :class:`Frame`;
* ``fov``: the scanner's field of view inside a screenshot; ``frame``: :class:`Frame`, :class:`Rect`;
* ``masks``: 1-bit PNG masks, mask files, contours, overlays;
* ``doppler``: colour-flow / power-Doppler signal and the gland's vascular fraction;
* ``thumbnails``: the Browse grid's thumbnails and their cache; ``privacy``: blanking burned-in text.
"""

from sgus_core.imaging.doppler import vascular_caption, vascular_fraction
from sgus_core.imaging.fov import detect_fov
from sgus_core.imaging.frame import Frame, Rect
from sgus_core.imaging.masks import (
    decode_mask_png,
    display_window,
    draw_overlay,
    encode_mask_png,
    mask_contour,
    read_mask_file,
)
from sgus_core.imaging.readers import (
    DICOM_KEPT_TAGS,
    SUPPORTED_SUFFIXES,
    check_frame_size,
    file_hash,
    iter_image_files,
    read_frames,
    read_image,
    sniff_format,
)
from sgus_core.imaging.thumbnails import ThumbnailCache, make_thumbnail

__all__ = [
    "vascular_caption",
    "vascular_fraction",
    "display_window",
    "DICOM_KEPT_TAGS",
    "SUPPORTED_SUFFIXES",
    "Frame",
    "Rect",
    "ThumbnailCache",
    "decode_mask_png",
    "detect_fov",
    "draw_overlay",
    "encode_mask_png",
    "file_hash",
    "iter_image_files",
    "make_thumbnail",
    "mask_contour",
    "check_frame_size",
    "read_frames",
    "read_image",
    "read_mask_file",
    "sniff_format",
]
