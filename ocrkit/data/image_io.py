"""Image decoding and encoding: every reader in ocrkit turns bytes into RGB ``uint8`` (H, W, 3)
here (datasets, ``ocrkit serve`` uploads, TABench engines and builder, the anchoring data, the
command line), and every size reader asks :func:`image_size`.

OpenCV does the work (it is the fastest decoder installed and handles JPEG, PNG, WebP, TIFF, BMP).
Gray images are expanded to three channels, 16-bit images scaled to 8 bits and transparent images
composited over white (rendered text often has a transparent background). Anything that does not
decode raises :class:`CorruptImageError`, which the datasets count and skip.

EXIF orientation policy: **applied**. An image whose EXIF ``Orientation`` tag (0x0112) says it
was stored rotated or mirrored is returned as it is meant to be viewed, the way ``cv2.imread``,
browsers and photo viewers show it; box coordinates (annotations, TABench queries, model
answers) are in that upright frame. This holds for every format that carries the tag (JPEG,
PNG ``eXIf``, WebP ``EXIF``, TIFF), and :func:`image_size` reports the size after orientation
from the header alone (no pixel is decoded), so a size read and a decode always agree.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_JPEG_MAGIC = b"\xff\xd8"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ORIENTATION = 0x0112
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"


class CorruptImageError(ValueError):
    """Raised when bytes are not a decodable image (empty, truncated, unknown format)."""


UNREADABLE = (OSError, ValueError)  # missing/unopenable files, CorruptImageError, bad arrays


def raises_on_error(on_error: str) -> bool:
    """``on_error`` of the reading APIs: ``"skip"`` (report, answer empty, read the rest) ->
    False, ``"raise"`` -> True; anything else is refused."""
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
    return on_error == "raise"


def unreadable_message(item: Any, index: int, exc: Exception) -> str:
    """``"<path or input N>: <why>"`` for an input that could not be read (the path once: the
    decoder's own errors already start with it)."""
    name = str(item) if isinstance(item, (str, Path)) else f"input {index}"
    return str(exc) if name in str(exc) else f"{name}: {exc}"


def _jpeg_is_truncated(data: bytes) -> bool:
    """True when the last scan of a JPEG has no end-of-image marker after it.

    libjpeg decodes a truncated file "successfully", filling the missing rows with gray, so
    OpenCV alone does not notice; inside entropy-coded data 0xFF is always stuffed, so the markers
    cannot occur by chance.
    """
    last_scan = data.rfind(_JPEG_SOS)
    return last_scan < 0 or data.find(_JPEG_EOI, last_scan) < 0


def _to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Convert an OpenCV ``IMREAD_UNCHANGED`` result (BGR/BGRA/gray, any depth) to RGB uint8."""
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
    elif image.dtype.kind == "f":
        image = np.clip(image, 0.0, 1.0) * 255.0 + 0.5
    elif image.dtype != np.uint8:
        raise CorruptImageError(f"unsupported image dtype {image.dtype}")
    image = image.astype(np.uint8, copy=False)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise CorruptImageError(f"unsupported image shape {image.shape}")
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        color = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        image = (color + 0.5).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _orientation(image: Any) -> int:
    """The EXIF orientation (1..8) of an opened PIL image, read from its header only."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # PIL would decode the pixels looking for an eXIf chunk after the image data
    value = image.getexif().get(_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (H, W[, C]) turned upright for an EXIF ``orientation`` (1 = as stored)."""
    if orientation in (5, 6, 7, 8):  # the stored rows are the viewed columns
        image = np.swapaxes(image, 0, 1)  # now as orientation 5 (transpose) shows it
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    return np.ascontiguousarray(image)


def _carries_exif(data: bytes) -> bool:
    """True for a PNG with an ``eXIf`` chunk before its pixel data (where PIL reads it) or a
    WebP whose ``VP8X`` header flags EXIF; a few header bytes are read, not the whole file."""
    if data.startswith(_PNG_MAGIC):
        pos = len(_PNG_MAGIC)
        while pos + 8 <= len(data):
            kind = data[pos + 4 : pos + 8]
            if kind == b"eXIf":
                return True
            if kind in (b"IDAT", b"IEND"):
                return False
            pos += 12 + int.from_bytes(data[pos : pos + 4], "big")  # length, type, data, CRC
        return False
    return data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8X" and len(data) > 20 and data[20] & 8 > 0


def _png_webp_orientation(data: bytes) -> int:
    """EXIF orientation of PNG / WebP bytes that carry EXIF (cv2 ignores it with
    ``IMREAD_UNCHANGED``); 1 for everything else (JPEG and TIFF are turned by OpenCV)."""
    if not _carries_exif(data):
        return 1
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return _orientation(image)
    except Exception:  # a broken EXIF block is ignored, as OpenCV does
        return 1


def _stored_size(image: Any) -> tuple[int, int]:
    """The width and height as stored, before orientation (recent Pillow already turns the
    ``size`` of a TIFF by its orientation; its header tags do not)."""
    if image.format == "TIFF":
        tags = image.tag_v2
        if isinstance(tags.get(256), int) and isinstance(tags.get(257), int):
            return tags[256], tags[257]  # ImageWidth, ImageLength
    return image.size


def _header(stream: Any, name: str, formats: Sequence[str] | None) -> tuple[int, int, int]:
    """``(stored width, stored height, EXIF orientation)`` from an image header."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream, formats=formats) as image:
                return (*_stored_size(image), _orientation(image))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # UnidentifiedImageError too
        raise CorruptImageError(f"{name}: not a readable image ({exc})") from None


def _read_header(
    source: str | Path | bytes | bytearray | memoryview, formats: Sequence[str] | None
) -> tuple[int, int, int]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _header(io.BytesIO(bytes(source)), "image data", formats)
    with open(source, "rb") as stream:
        return _header(stream, str(source), formats)


def image_size(
    source: str | Path | bytes | bytearray | memoryview, formats: Sequence[str] | None = None
) -> tuple[int, int]:
    """``(width, height)`` of an image file or encoded bytes after EXIF orientation, from the
    header alone (PIL parses no pixel data, so a decompression bomb costs nothing).

    ``formats`` limits the PIL formats tried (e.g. ``("PNG", "JPEG")``). Raises
    :class:`CorruptImageError` for data that is no readable image, ``OSError`` for a file that
    cannot be opened and PIL's ``DecompressionBombError`` for images far above PIL's pixel limit.
    """
    width, height, orientation = _read_header(source, formats)
    return (height, width) if orientation >= 5 else (width, height)


def exif_orientation(source: str | Path | bytes | bytearray | memoryview) -> int:
    """The EXIF orientation (1..8; 1 = stored upright) of an image file or encoded bytes, from
    its header alone; errors as :func:`image_size`."""
    return _read_header(source, None)[2]


def decode_image(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode encoded image bytes to an RGB ``uint8`` array of shape (H, W, 3).

    Raises :class:`CorruptImageError` for empty, truncated or undecodable data.
    """
    data = bytes(data)
    if not data:
        raise CorruptImageError("empty image data (0 bytes)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    if data.startswith(_JPEG_MAGIC):
        if _jpeg_is_truncated(data):
            raise CorruptImageError(f"truncated JPEG ({len(data)} bytes, no end-of-image marker)")
        # IMREAD_COLOR applies EXIF orientation and expands gray JPEGs; JPEG has no alpha/16-bit
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        if image is None:
            raise CorruptImageError(f"undecodable JPEG ({len(data)} bytes)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    # IMREAD_UNCHANGED keeps alpha and 16 bits; it turns TIFFs by orientation but not PNG/WebP
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        head = data[:8].hex(" ")
        raise CorruptImageError(
            f"not a decodable image ({len(data)} bytes starting with {head}); "
            "expected JPEG, PNG, WebP, BMP or TIFF"
        )
    orientation = _png_webp_orientation(data)
    image = _to_rgb_uint8(image)
    return image if orientation == 1 else apply_orientation(image, orientation)


def read_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file to RGB ``uint8``; the error names the file."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return decode_image(data)
    except CorruptImageError as exc:
        raise CorruptImageError(f"{path}: {exc}") from None


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image file as one ``uint8`` channel (H, W) (masks: OpenCV's gray conversion),
    EXIF orientation applied as for every image; the error names the file."""
    path = Path(path)
    data = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if image is None:
        raise CorruptImageError(f"{path}: not a decodable image ({len(data)} bytes)")
    return image


def encode_image(image: np.ndarray, ext: str = ".jpg", quality: int = 95) -> bytes:
    """Encode an RGB (or gray) ``uint8`` array as ``.jpg`` (with ``quality``) or ``.png`` bytes."""
    ext = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if ext == ".jpeg":
        ext = ".jpg"
    if ext not in (".jpg", ".png"):
        raise ValueError(f"unsupported image format {ext!r}; use '.jpg' or '.png'")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"encode_image expects uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim != 2:
        raise ValueError(f"encode_image expects (H, W) or (H, W, 3), got shape {image.shape}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, buffer = cv2.imencode(ext, image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape} as {ext}")
    return buffer.tobytes()
