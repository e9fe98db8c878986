"""Geometry shared by the edge, the hub and the model tools.

Box IoU was written three times (the tracker, the hub's case merging, the INT8 agreement
report) with small differences in how they treated empty inputs and degenerate boxes; this is
the one definition.

Polygons were rasterised two ways too: ``cv2.fillPoly`` at pixel vertices (the motion gate and
the static-object detector) and a cell-centre ray-cast (zone coverage). :func:`polygon_mask` is
the one rasteriser now: a cell is inside when its CENTRE is inside, by the same even-odd test
that decides whether a detection's anchor point is in a zone, so a mask and a point test never
disagree about a pixel.

>>> import numpy as np
>>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [5, 5, 6, 6]])).round(3).tolist()
[[0.143, 0.0]]
>>> box_iou(np.zeros((0, 4)), np.array([[0, 0, 1, 1]])).shape
(0, 1)
>>> polygon_mask([[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]], (4, 2)).astype(int).tolist()
[[1, 1, 0, 0], [1, 1, 0, 0]]
>>> square = [(0, 0), (1, 0), (1, 1), (0, 1)]
>>> polygon_mask([square], (4, 1), exclude=[[(0.5, 0), (1, 0), (1, 1), (0.5, 1)]]).astype(int).tolist()
[[1, 1, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4) in xyxy, shape (N, M).

    Degenerate boxes (x2 < x1 or y2 < y1) have zero area; pairs with zero union have IoU 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


PolygonEdges = tuple[np.ndarray, ...]


def polygon_edges(polygon: np.ndarray) -> PolygonEdges:
    """Edge endpoints (xi, yi, xj, yj, dy) as (1, M) rows, precomputed once per polygon."""
    polygon = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    xi, yi = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xi, 1), np.roll(yi, 1)
    dy = yj - yi
    return xi[None, :], yi[None, :], xj[None, :], yj[None, :], np.where(dy == 0, 1.0, dy)[None, :]


def points_inside(points: np.ndarray, edges: PolygonEdges) -> np.ndarray:
    """Even-odd ray-cast for many points at once: (N, 2) points -> (N,) bool."""
    xi, yi, xj, yj, dy = edges
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    px, py = points[:, 0:1], points[:, 1:2]
    crossings = ((yi > py) != (yj > py)) & (px < xi + (py - yi) * (xj - xi) / dy)
    return (np.count_nonzero(crossings, axis=1) % 2) == 1


# Grid points tested per ray-cast call: bounds the (points x edges) temporaries.
_MASK_CHUNK = 65_536


def polygon_mask(
    polygons: Sequence[Sequence[tuple[float, float]] | np.ndarray],
    size: tuple[int, int],
    *,
    exclude: Sequence[Sequence[tuple[float, float]] | np.ndarray] = (),
) -> np.ndarray:
    """Boolean mask (h, w) of the union of normalised ``polygons`` minus the ``exclude`` ones.

    Cell (r, c) of a ``size`` = (w, h) grid is inside when its centre ((c + 0.5) / w,
    (r + 0.5) / h) is, by the even-odd test of :func:`points_inside`."""
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive (width, height), got {size}")
    xs = (np.arange(w, dtype=np.float64) + 0.5) / w
    ys = (np.arange(h, dtype=np.float64) + 0.5) / h
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    inside = np.zeros(len(grid), dtype=bool)
    outside = np.zeros(len(grid), dtype=bool)
    for target, group in ((inside, polygons), (outside, exclude)):
        for polygon in group:
            edges = polygon_edges(np.asarray(polygon, dtype=np.float64))
            for start in range(0, len(grid), _MASK_CHUNK):
                chunk = slice(start, start + _MASK_CHUNK)
                target[chunk] |= points_inside(grid[chunk], edges)
    return (inside & ~outside).reshape(h, w)
