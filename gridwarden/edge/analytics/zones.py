"""Zone geometry: which objects are in a zone, and how much of a zone is covered.

Zones are polygons in *normalised* image coordinates (0..1, origin top-left), so one
configuration survives a camera switching from 1080p to a 640x360 substream. Masks are polygons
whose area is ignored (a legal parking bay inside a no-parking stretch, a tree that sways).

* Membership (:meth:`Zone.contains`) is decided by one anchor point per box (bottom centre by
  default: where a vehicle touches the road, so a tall lorry in the next lane does not count).
  It is an exact, vectorised ray-cast in normalised coordinates: no per-box Python loop and no
  dependence on the frame size.
* Coverage (:meth:`Zone.coverage`) is an area question, answered on a raster of at most
  ``COVERAGE_MAX_SIDE`` cells per side sampled at cell centres: the zone minus masks is sampled
  once per frame size and cached, the union of boxes is drawn with a 2-D difference array
  (vectorised, no loop over boxes).

Example::

    >>> import numpy as np
    >>> from gridwarden.edge.types import Detections
    >>> zone = Zone("kerb", [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)])
    >>> cars = Detections(xyxy=[[10, 60, 30, 80], [10, 10, 30, 30]], confidence=[0.9, 0.9], class_id=[2, 2])
    >>> zone.contains(cars, frame_size=(100, 100)).tolist()
    [True, False]
    >>> round(zone.coverage(np.array([[0, 50, 50, 100]]), frame_size=(100, 100)), 2)
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gridwarden.edge.types import AnchorPoint, Detections
from gridwarden.geometry import points_inside, polygon_edges, polygon_mask

# Longest side of the raster used for coverage: about 0.3 % of the frame per cell, plenty for an
# occupancy threshold, and cheap (a 320x180 uint8 image).
COVERAGE_MAX_SIDE = 320
_ANCHORS: tuple[str, ...] = ("bottom_center", "center", "top_center")


def _as_points(points: Sequence[Sequence[float]]) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a polygon is a list of (x, y) pairs, got an array of shape {arr.shape}")
    return arr


def _orientation(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
    return float((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))


def _on_segment(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> bool:
    """r lies on segment pq, given that the three are collinear."""
    return bool(
        min(p[0], q[0]) - 1e-12 <= r[0] <= max(p[0], q[0]) + 1e-12
        and min(p[1], q[1]) - 1e-12 <= r[1] <= max(p[1], q[1]) + 1e-12
    )


def _segments_intersect(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    eps = 1e-12
    o1, o2 = _orientation(a, b, c), _orientation(a, b, d)
    o3, o4 = _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > eps and o2 < -eps) or (o1 < -eps and o2 > eps)) and (
        (o3 > eps and o4 < -eps) or (o3 < -eps and o4 > eps)
    ):
        return True
    return (
        (abs(o1) <= eps and _on_segment(a, b, c))
        or (abs(o2) <= eps and _on_segment(a, b, d))
        or (abs(o3) <= eps and _on_segment(c, d, a))
        or (abs(o4) <= eps and _on_segment(c, d, b))
    )


def polygon_area(points: np.ndarray) -> float:
    """Unsigned shoelace area of a polygon (normalised units: 1.0 is the whole frame)."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def validate_polygon(points: Sequence[Sequence[float]]) -> list[str]:
    """Problems with a zone or mask polygon, as messages a person can act on; empty if valid.

    Points are numbered from 1 in the messages, and edge ``i-j`` joins point i to point j (the
    last edge closes the ring back to point 1), e.g. ``"edges 1-2 and 3-4 cross"``.
    """
    try:
        pts = _as_points(points)
    except (TypeError, ValueError) as exc:
        return [f"not a list of (x, y) points: {exc}"]
    problems: list[str] = []
    n = len(pts)
    if n < 3:
        return [f"a polygon needs at least 3 points, got {n}"]
    if not np.all(np.isfinite(pts)):
        bad = [i + 1 for i in np.nonzero(~np.all(np.isfinite(pts), axis=1))[0]]
        return [f"point {i} is not a finite number" for i in bad]
    for i in np.nonzero(np.any((pts < 0.0) | (pts > 1.0), axis=1))[0].tolist():
        x, y = pts[i]
        problems.append(f"point {i + 1} ({x:g}, {y:g}) is outside the frame: coordinates must be in [0, 1]")
    for i in range(n):
        j = (i + 1) % n
        if np.allclose(pts[i], pts[j], atol=1e-12):
            problems.append(f"points {i + 1} and {j + 1} are the same point")
    spread = pts - pts[0]
    if (
        np.abs(spread[:, 0, None] * spread[None, :, 1] - spread[:, 1, None] * spread[None, :, 0]).max()
        <= 1e-12
    ):
        problems.append("the polygon has zero area (all points lie on one line)")
        return problems
    edges = [(i, (i + 1) % n) for i in range(n)]
    for a in range(n):
        for b in range(a + 1, n):
            ia, ja = edges[a]
            ib, jb = edges[b]
            if len({ia, ja, ib, jb}) < 4:
                continue  # adjacent edges share a vertex by construction
            if _segments_intersect(pts[ia], pts[ja], pts[ib], pts[jb]):
                problems.append(
                    f"edges {ia + 1}-{ja + 1} and {ib + 1}-{jb + 1} cross (the polygon is self-intersecting)"
                )
    if not problems and polygon_area(pts) <= 1e-9:
        problems.append("the polygon has zero area")
    return problems


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray-cast for many points at once: (N, 2) points, (M, 2) polygon -> (N,) bool."""
    return points_inside(points, polygon_edges(np.asarray(polygon, dtype=np.float64)))


class Zone:
    """A named region of one camera's view, with optional ignore masks.

    ``polygon`` and ``masks`` are in normalised coordinates; invalid ones raise ``ValueError``
    with the reasons from :func:`validate_polygon`.
    """

    def __init__(
        self,
        zone_id: str,
        polygon: Sequence[tuple[float, float]],
        *,
        masks: Sequence[Sequence[tuple[float, float]]] = (),
        anchor: AnchorPoint = "bottom_center",
    ) -> None:
        problems = validate_polygon(polygon)
        if problems:
            raise ValueError(f"zone {zone_id!r}: " + "; ".join(problems))
        for k, mask in enumerate(masks):
            problems = validate_polygon(mask)
            if problems:
                raise ValueError(f"zone {zone_id!r} mask {k + 1}: " + "; ".join(problems))
        if anchor not in _ANCHORS:
            raise ValueError(f"zone {zone_id!r}: anchor must be one of {', '.join(_ANCHORS)}, got {anchor!r}")
        self.zone_id = zone_id
        self.polygon = _as_points(polygon)
        self.masks = [_as_points(m) for m in masks]
        self._edges = polygon_edges(self.polygon)
        self._mask_edges = [polygon_edges(m) for m in self.masks]
        self.anchor: AnchorPoint = anchor
        self._raster_cache: dict[tuple[int, int], tuple[np.ndarray, int, float, float]] = {}

    def __repr__(self) -> str:
        return f"Zone({self.zone_id!r}, {len(self.polygon)} points, {len(self.masks)} masks)"

    @staticmethod
    def _check_size(frame_size: tuple[int, int]) -> tuple[int, int]:
        w, h = int(frame_size[0]), int(frame_size[1])
        if w <= 0 or h <= 0:
            raise ValueError(f"frame_size must be positive (width, height), got {frame_size}")
        return w, h

    def contains_points(self, points_norm: np.ndarray) -> np.ndarray:
        """Which normalised points are inside the zone and outside every mask."""
        points = np.asarray(points_norm, dtype=np.float64).reshape(-1, 2)
        inside = points_inside(points, self._edges)
        for edges in self._mask_edges:
            inside &= ~points_inside(points, edges)
        return inside

    def contains(self, detections: Detections, frame_size: tuple[int, int]) -> np.ndarray:
        """One bool per detection: is its anchor point inside the zone (and not masked)?"""
        w, h = self._check_size(frame_size)
        if len(detections) == 0:
            return np.zeros(0, dtype=bool)
        anchors = detections.anchors(self.anchor).astype(np.float64) / np.array([w, h], dtype=np.float64)
        return self.contains_points(anchors)

    def polygon_px(self, frame_size: tuple[int, int]) -> np.ndarray:
        """The zone outline in pixels, int32 (N, 2), ready for ``cv2.polylines``."""
        w, h = self._check_size(frame_size)
        return np.round(self.polygon * np.array([w, h])).astype(np.int32)

    def masks_px(self, frame_size: tuple[int, int]) -> list[np.ndarray]:
        w, h = self._check_size(frame_size)
        return [np.round(m * np.array([w, h])).astype(np.int32) for m in self.masks]

    def _raster(self, frame_size: tuple[int, int]) -> tuple[np.ndarray, int, float, float]:
        """(zone-minus-masks raster, its pixel count, x scale, y scale) for this frame size."""
        key = self._check_size(frame_size)
        cached = self._raster_cache.get(key)
        if cached is not None:
            return cached
        w, h = key
        scale = min(1.0, COVERAGE_MAX_SIDE / max(w, h))
        gw, gh = max(1, round(w * scale)), max(1, round(h * scale))
        # Every cell sampled at its centre with the same exact test contains() uses (the shared
        # rasteriser); done once per frame size, so the cost (cells x edges) does not matter.
        raster = polygon_mask([self.polygon], (gw, gh), exclude=self.masks)
        entry = (raster, int(np.count_nonzero(raster)), gw / w, gh / h)
        self._raster_cache[key] = entry
        return entry

    def coverage(self, xyxy: np.ndarray, frame_size: tuple[int, int]) -> float:
        """Fraction (0..1) of the zone's area (minus masks) covered by the union of the boxes.

        Boxes are in pixels of a frame of ``frame_size`` = (width, height). Overlapping boxes
        are counted once.
        """
        zone_raster, zone_px, sx, sy = self._raster(frame_size)
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        if zone_px == 0 or len(boxes) == 0:
            return 0.0
        gh, gw = zone_raster.shape
        # Cell (r, c) is covered when its centre (c + 0.5, r + 0.5) lies inside the box.
        c0 = np.clip(np.ceil(boxes[:, 0] * sx - 0.5), 0, gw).astype(np.int64)
        c1 = np.clip(np.floor(boxes[:, 2] * sx - 0.5) + 1, 0, gw).astype(np.int64)
        r0 = np.clip(np.ceil(boxes[:, 1] * sy - 0.5), 0, gh).astype(np.int64)
        r1 = np.clip(np.floor(boxes[:, 3] * sy - 0.5) + 1, 0, gh).astype(np.int64)
        keep = (c1 > c0) & (r1 > r0)
        if not np.any(keep):
            return 0.0
        c0, c1, r0, r1 = c0[keep], c1[keep], r0[keep], r1[keep]
        diff = np.zeros((gh + 1, gw + 1), dtype=np.int32)
        np.add.at(diff, (r0, c0), 1)
        np.add.at(diff, (r0, c1), -1)
        np.add.at(diff, (r1, c0), -1)
        np.add.at(diff, (r1, c1), 1)
        covered = np.cumsum(np.cumsum(diff, axis=0), axis=1)[:gh, :gw] > 0
        return float(np.count_nonzero(covered & zone_raster)) / zone_px
