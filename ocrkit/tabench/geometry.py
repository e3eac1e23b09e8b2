"""Shapes as shapely geometries and their pairwise IoU (boxes and polygons alike)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from ocrkit.tabench.schema import Shape, is_polygon


def to_geometry(shape: Shape) -> shapely.Geometry:
    """A box ``[x1, y1, x2, y2]`` or a polygon ``[[x, y], ...]`` as a valid shapely geometry.

    Self-intersecting polygons (a quadrilateral with crossed corners) are repaired with
    ``make_valid``; degenerate shapes become empty geometries (IoU 0 with everything).
    """
    if is_polygon(shape):
        if len(shape) < 3:
            return shapely.Polygon()
        geom = shapely.Polygon([(float(x), float(y)) for x, y in shape])
        return geom if geom.is_valid else shapely.make_valid(geom)
    x1, y1, x2, y2 = (float(v) for v in shape)
    return shapely.box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def iou_matrix(preds: Sequence[Shape], targets: Sequence[Shape]) -> np.ndarray:
    """IoU of every prediction (rows) with every target (columns), 0 where the union is empty."""
    if not preds or not targets:
        return np.zeros((len(preds), len(targets)))
    a = np.array([to_geometry(s) for s in preds], dtype=object)[:, None]
    b = np.array([to_geometry(s) for s in targets], dtype=object)[None, :]
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def bounding_box(shape: Shape) -> list[float]:
    """The axis-aligned ``[x1, y1, x2, y2]`` around a box or polygon."""
    if is_polygon(shape):
        xs = [float(p[0]) for p in shape]
        ys = [float(p[1]) for p in shape]
        return [min(xs), min(ys), max(xs), max(ys)]
    x1, y1, x2, y2 = (float(v) for v in shape)
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
