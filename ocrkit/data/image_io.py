"""Image decoding and encoding: every source turns bytes into RGB ``uint8`` (H, W, 3) here.

OpenCV does the work (it is the fastest decoder installed and handles JPEG, PNG, WebP, TIFF, BMP).
Gray images are expanded to three channels, 16-bit images scaled to 8 bits and transparent images
composited over white (rendered text often has a transparent background). Anything that does not
decode raises :class:`CorruptImageError`, which the datasets count and skip.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_JPEG_MAGIC = b"\xff\xd8"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"


class CorruptImageError(ValueError):
    """Raised when bytes are not a decodable image (empty, truncated, unknown format)."""


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
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        head = data[:8].hex(" ")
        raise CorruptImageError(
            f"not a decodable image ({len(data)} bytes starting with {head}); "
            "expected JPEG, PNG, WebP, BMP or TIFF"
        )
    return _to_rgb_uint8(image)


def read_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file to RGB ``uint8``; the error names the file."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return decode_image(data)
    except CorruptImageError as exc:
        raise CorruptImageError(f"{path}: {exc}") from None


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
