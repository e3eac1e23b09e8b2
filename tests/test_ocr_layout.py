"""Crop rectification, reading order and word boxes of the page OCR pipeline."""

from __future__ import annotations

import cv2
import numpy as np

from ocrkit.ocr.layout import crop_quad, reading_order, word_extents, word_quads


def _text_image() -> np.ndarray:
    image = np.full((60, 200, 3), 255, np.uint8)
    cv2.putText(image, "OCR 42", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (0, 0, 0), 3)
    return image


def test_crop_rectifies_a_rotated_text_image() -> None:
    text = _text_image()
    canvas = np.full((400, 400, 3), 255, np.uint8)
    canvas[170:230, 100:300] = text
    matrix = cv2.getRotationMatrix2D((200.0, 200.0), 25.0, 1.0)
    rotated = cv2.warpAffine(canvas, matrix, (400, 400), borderValue=(255, 255, 255))
    corners = np.array([[100, 170], [300, 170], [300, 230], [100, 230]], np.float64)
    quad = (matrix @ np.c_[corners, np.ones(4)].T).T
    crop, turned = crop_quad(rotated, quad.astype(np.float32))
    assert not turned
    assert abs(crop.shape[0] - 60) <= 1 and abs(crop.shape[1] - 200) <= 1
    diff = np.abs(crop[2:58, 2:198].astype(int) - text[2:58, 2:198].astype(int)).mean()
    assert diff < 12  # the same picture up to two interpolations
    # unrectified, the axis-aligned bounding box of the quad would not match at all
    x0, y0 = quad.min(0).astype(int)
    plain = cv2.resize(rotated[y0 : y0 + 60, x0 : x0 + 200], (200, 60))
    assert np.abs(plain.astype(int) - text.astype(int)).mean() > 2 * diff


def test_tall_crops_are_turned_as_paddleocr_does() -> None:
    image = np.zeros((300, 100, 3), np.uint8)
    image[:, :50] = 255  # left half white
    crop, turned = crop_quad(image, np.array([[0, 0], [100, 0], [100, 300], [0, 300]], np.float32))
    assert turned and crop.shape[:2] == (100, 300)
    # np.rot90 (counter-clockwise): the left half of the tall crop is now the bottom half
    assert crop[75:, :].mean() == 255 and crop[:25, :].mean() == 0


def test_reading_order_groups_rows_within_ten_pixels() -> None:
    quads = np.array(
        [
            [[300, 104], [400, 104], [400, 130], [300, 130]],  # row 2, right
            [[10, 10], [100, 10], [100, 30], [10, 30]],  # row 1
            [[20, 100], [120, 100], [120, 128], [20, 128]],  # row 2, left (4 px higher)
            [[30, 200], [90, 200], [90, 220], [30, 220]],  # row 3
        ],
        np.float32,
    )
    order, rows = reading_order(quads)
    assert order.tolist() == [1, 2, 0, 3]
    assert rows.tolist() == [0, 1, 1, 2]
    order, rows = reading_order(quads, threshold=3.0)  # 4 px apart: separate rows now
    assert order.tolist() == [1, 2, 0, 3] and rows.tolist() == [0, 1, 2, 3]
    assert reading_order(np.zeros((0, 4, 2)))[0].size == 0


def test_word_boxes_follow_character_offsets() -> None:
    quad = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float32)
    words = word_quads(quad, "ab  cdefg h")  # 11 characters
    assert [(w, s, e) for w, s, e, _ in words] == [("ab", 0, 2), ("cdefg", 4, 9), ("h", 10, 11)]
    np.testing.assert_allclose(
        words[1][3], [[400 / 11, 0], [900 / 11, 0], [900 / 11, 20], [400 / 11, 20]], rtol=1e-5
    )
    # a turned crop reads from the quad's top edge down along its right side
    tall = np.array([[0, 0], [20, 0], [20, 100], [0, 100]], np.float32)
    (_, _, _, first), _ = word_quads(tall, "ab cd", rotated=True)
    np.testing.assert_allclose(first, [[20, 0], [20, 40], [0, 40], [0, 0]], atol=1e-5)


def test_word_cuts_follow_character_positions() -> None:
    # pitch 0.1 (a->b, c->d): "ab" ends half a pitch past b (0.25), "cd" starts half a pitch
    # before c (0.55); the line's outer edges stay the detector's
    cuts = word_extents("ab cd", [0.1, 0.2, 0.3, 0.6, 0.7])
    assert [(w, s, e) for w, s, e, _, _ in cuts] == [("ab", 0, 2), ("cd", 3, 5)]
    np.testing.assert_allclose([c[3:] for c in cuts], [[0.0, 0.25], [0.55, 1.0]])
    # no two-character word: pitch 1/3 of the line; half of it would cross the midpoint (0.4)
    np.testing.assert_allclose([c[3:] for c in word_extents("a b", [0.3, 0.4, 0.5])],
                               [[0.0, 0.4], [0.4, 1.0]])  # fmt: skip
    assert word_extents("word", [0.2, 0.4, 0.6, 0.8]) == [("word", 0, 4, 0.0, 1.0)]
    # positions that do not match the text: proportional cuts, as without them
    assert word_extents("ab cd", [0.5]) == word_extents("ab cd")
    np.testing.assert_allclose([c[3:] for c in word_extents("ab cd")], [[0, 0.4], [0.6, 1]])
    quad = np.array([[0, 0], [200, 0], [200, 20], [0, 20]], np.float32)
    _, (_, _, _, second) = word_quads(quad, "ab cd", positions=[0.1, 0.2, 0.3, 0.6, 0.7])
    np.testing.assert_allclose(second, [[110, 0], [200, 0], [200, 20], [110, 20]], atol=1e-4)


def test_detector_input_sizes_follow_the_wheel_rules() -> None:
    from ocrkit.ocr.detect import prepare

    # a 4000x3000 photo: longest side to 2000 (1984 x 1504 after rounding to 32), then no
    # upscaling (shortest side 1504 >= 736)
    frame = prepare(np.zeros((3000, 4000, 3), np.uint8))
    assert frame.net.shape[:2] == (1504, 1984) and frame.size == (1984, 1504) and frame.pad == 0
    assert frame.scale == (4000 / 1984, 3000 / 1504)
    # a 1280x720 scene: shortest side up to 736 -> 736 x 1309 -> 736 x 1312
    frame = prepare(np.zeros((720, 1280, 3), np.uint8))
    assert frame.net.shape[:2] == (736, 1312) and frame.scale == (1.0, 1.0)
    # a 800x40 strip (wider than 8:1): 80 px black bands above and below, then 736 high
    frame = prepare(np.full((40, 800, 3), 255, np.uint8))
    assert frame.pad == 80 and frame.size == (800, 200)
    assert frame.net.shape[:2] == (736, 2944)
    # scaled by 736 / 200: bands of 294 rows, the strip in rows 294-441
    assert frame.net[:290].max() == 0 and frame.net[300:435].min() == 255


def test_the_detection_side_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, ocrkit.ocr, ocrkit.ocr.draw; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_page_reader_cuts_words_where_the_recognizer_places_characters() -> None:
    from ocrkit.ocr import PageReader
    from ocrkit.types import Prediction

    class Fixed:  # a predictor reading every crop as "ab cd", with or without positions
        def __init__(self, positions: list[float]) -> None:
            self.positions = positions

        def predict(self, crops, batch_size=16):
            return [Prediction("ab cd", 0.9, [0.9] * 5, self.positions) for _ in crops]

    image = np.zeros((40, 240, 3), np.uint8)
    quads = np.array([[[0, 0], [200, 0], [200, 20], [0, 20]]], np.float32)
    boxes = {}
    for name, positions in (("aligned", [0.1, 0.2, 0.3, 0.6, 0.7]), ("proportional", [])):
        (line,) = PageReader(Fixed(positions), detector=object()).read_regions(
            image, quads, np.ones(1)
        )
        boxes[name] = [(w.text, w.box) for w in line.words]
    assert boxes["aligned"] == [("ab", [0.0, 0.0, 50.0, 20.0]), ("cd", [110.0, 0.0, 200.0, 20.0])]
    assert boxes["proportional"] == [
        ("ab", [0.0, 0.0, 80.0, 20.0]),
        ("cd", [120.0, 0.0, 200.0, 20.0]),
    ]
