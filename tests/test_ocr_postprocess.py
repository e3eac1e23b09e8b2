"""DB post-processing on hand-made probability maps with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from ocrkit.ocr.postprocess import DBParams, boxes_from_prob, order_clockwise, unclip

PLAIN = DBParams(thresh=0.3, box_thresh=0.5, unclip_ratio=1.5, use_dilation=False)


def _expected(x0: int, y0: int, x1: int, y1: int, ratio: float, scale: float = 1.0) -> list:
    """The box DB gives for a filled rectangle of pixels [x0, x1] x [y0, y1]: the contour's
    rectangle spans the pixel centres (w = x1 - x0, h = y1 - y0), grows by D = A r / L on every
    side, and is scaled and rounded to the destination grid."""
    w, h = x1 - x0, y1 - y0
    d = w * h * ratio / (2 * (w + h))
    xa, xb = round((x0 - d) * scale), round((x1 + d) * scale)
    ya, yb = round((y0 - d) * scale), round((y1 + d) * scale)
    return [[xa, ya], [xb, ya], [xb, yb], [xa, yb]]


def test_two_rectangles_give_their_exact_boxes() -> None:
    prob = np.zeros((100, 200), np.float32)
    prob[20:30, 30:90] = 0.9  # pixels x 30..89, y 20..29
    prob[60:72, 120:180] = 0.8
    boxes, scores = boxes_from_prob(prob, (200, 100), PLAIN)
    got = sorted(boxes.tolist(), key=lambda b: b[0][1])
    assert got == [_expected(30, 20, 89, 29, 1.5), _expected(120, 60, 179, 71, 1.5)]
    assert sorted(scores.tolist()) == pytest.approx([0.8, 0.9], abs=1e-6)


def test_boxes_scale_to_the_destination_size() -> None:
    prob = np.zeros((100, 200), np.float32)
    prob[20:30, 30:90] = 0.9
    boxes, _ = boxes_from_prob(prob, (400, 200), PLAIN)
    assert boxes.tolist() == [_expected(30, 20, 89, 29, 1.5, scale=2.0)]


def test_low_score_and_thin_regions_are_dropped() -> None:
    prob = np.zeros((100, 200), np.float32)
    prob[20:30, 30:90] = 0.4  # above thresh 0.3, mean 0.4 under box_thresh 0.5
    prob[60:62, 120:180] = 0.9  # 2 px high: shorter side 1 < min_size 3
    boxes, scores = boxes_from_prob(prob, (200, 100), PLAIN)
    assert boxes.shape == (0, 4, 2) and scores.shape == (0,)
    boxes, _ = boxes_from_prob(prob, (200, 100), DBParams(box_thresh=0.35, use_dilation=False))
    assert len(boxes) == 1  # the faint one passes a lower box threshold


def test_rotated_region_keeps_its_angle() -> None:
    prob = np.zeros((200, 200), np.float32)
    import cv2

    rect = ((100.0, 100.0), (120.0, 20.0), 30.0)
    cv2.fillPoly(prob, [np.round(cv2.boxPoints(rect)).astype(np.int32)], 1.0)
    (box,), _ = boxes_from_prob(prob, (200, 200), PLAIN)
    top = box[1] - box[0]
    assert math.degrees(math.atan2(top[1], top[0])) == pytest.approx(30.0, abs=2.0)


def test_unclip_grows_a_rectangle_by_area_ratio_over_perimeter() -> None:
    rect = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float32)
    grown = unclip(rect, 1.5)
    d = 100 * 20 * 1.5 / 240  # 12.5
    poly = shapely.Polygon(grown)
    assert poly.bounds == pytest.approx((-d, -d, 100 + d, 20 + d), abs=1e-4)
    # rectangle + four side bands + four quarter discs (arcs drawn as polygons: a bit less)
    area = 100 * 20 + 2 * d * (100 + 20) + math.pi * d * d
    assert poly.area == pytest.approx(area, rel=5e-3)
    assert poly.area < area


def test_order_clockwise_from_any_order() -> None:
    pts = np.array([[10, 40], [90, 12], [8, 10], [92, 42]], np.float32)
    assert order_clockwise(pts).tolist() == [[8, 10], [90, 12], [92, 42], [10, 40]]


def test_db_presets_and_the_read_options() -> None:
    from dataclasses import replace

    from ocrkit.ocr.postprocess import DEFAULT_DB, PADDLE_DB, WHEEL_DB, db_preset

    # PaddleOCR's parameters are the default (docs/ocr.md: measured on ICDAR 2015 and SROIE)
    assert DEFAULT_DB == PADDLE_DB == DBParams(box_thresh=0.6, unclip_ratio=1.5, use_dilation=False)
    assert DBParams(box_thresh=0.5, unclip_ratio=1.6, use_dilation=True) == WHEEL_DB
    assert db_preset("wheel", box_thresh=None, unclip_ratio=None) == WHEEL_DB
    assert db_preset("paddle", box_thresh=0.7, unclip_ratio=None) == replace(
        PADDLE_DB, box_thresh=0.7
    )
    assert db_preset("wheel", unclip_ratio=2.0) == replace(WHEEL_DB, unclip_ratio=2.0)
