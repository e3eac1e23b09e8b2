"""Image decoding/encoding, model-input transforms and collation: known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ocrkit.data.base import collate_samples
from ocrkit.data.image_io import CorruptImageError, decode_image, encode_image, read_image
from ocrkit.data.transforms import Compose, StrTransform, denormalize, to_tensor_image
from ocrkit.types import Sample


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def test_png_round_trip_is_exact(rng):
    image = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_image(image, ".png")), image)


def test_jpeg_round_trip_keeps_shape_and_color():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:] = (200, 40, 10)  # RGB
    decoded = decode_image(encode_image(image, ".jpg", quality=95))
    assert decoded.shape == (20, 30, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - image).max() <= 3  # channel order kept (not BGR)


def test_gray_16bit_and_alpha_are_converted():
    gray = np.array([[0, 128, 255]], np.uint8)
    assert np.array_equal(decode_image(_png(gray))[0, :, 0], [0, 128, 255])
    assert decode_image(_png(gray)).shape == (1, 3, 3)
    deep = np.array([[0, 257 * 100, 65535]], np.uint16)
    assert np.array_equal(decode_image(_png(deep))[0, :, 1], [0, 100, 255])
    bgra = np.array([[[0, 0, 255, 255], [0, 0, 255, 0]]], np.uint8)  # opaque red, transparent
    rgb = decode_image(_png(bgra))
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]  # composited over white


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_garbage_raises_corrupt_image_error(data):
    with pytest.raises(CorruptImageError):
        decode_image(data)


def test_truncated_jpeg_is_detected(rng):
    data = encode_image(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), ".jpg")
    decode_image(data)  # complete: fine
    with pytest.raises(CorruptImageError, match="truncated"):
        decode_image(data[: len(data) // 2])


def test_read_image_names_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(CorruptImageError, match="bad.png"):
        read_image(bad)


def test_encode_rejects_unknown_format():
    with pytest.raises(ValueError, match="unsupported image format"):
        encode_image(np.zeros((2, 2, 3), np.uint8), ".gif")


def test_str_transform_shape_and_range():
    transform = StrTransform((32, 128))
    white = transform(np.full((10, 50, 3), 255, np.uint8))
    black = transform(np.zeros((64, 20, 3), np.uint8))
    assert white.shape == (3, 32, 128) and white.dtype == torch.float32
    assert torch.allclose(white, torch.ones_like(white))
    assert torch.allclose(black, -torch.ones_like(black))


def test_to_tensor_and_denormalize_round_trip(rng):
    image = rng.integers(0, 256, (32, 128, 3), dtype=np.uint8)
    tensor = to_tensor_image(image)
    assert tensor[0, 0, 0].item() == pytest.approx(image[0, 0, 0] / 127.5 - 1.0, abs=1e-6)
    assert np.array_equal(denormalize(tensor), image)
    assert denormalize(tensor[None]).shape == (1, 32, 128, 3)


def test_compose_applies_in_order():
    composed = Compose([lambda x: x[:, ::-1].copy(), StrTransform((4, 4))])
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, 0] = 255
    assert composed(image)[0, 0, 3].item() == 1.0


def test_collate_stacks_tensors_and_counts_skips():
    a = Sample(torch.zeros(3, 32, 128), "ab", "1")
    b = Sample(torch.ones(3, 32, 128), None, "2")
    batch = collate_samples([a, None, b, None])
    assert batch["images"].shape == (2, 3, 32, 128)
    assert batch["labels"] == ["ab", None] and batch["keys"] == ["1", "2"]
    assert batch["num_skipped"] == 2
    arrays = collate_samples([Sample(np.zeros((5, 9, 3), np.uint8), "x", "k")])
    assert isinstance(arrays["images"], list) and arrays["images"][0].shape == (5, 9, 3)
    empty = collate_samples([None, None])
    assert empty["images"].numel() == 0 and empty["labels"] == [] and empty["num_skipped"] == 2
