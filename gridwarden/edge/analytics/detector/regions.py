"""Region inference planning: which parts of a frame the detector looks at, and at what scale.

Why: a 416 px model shown a whole 1920x1080 frame sees it at 0.22x, so a bicycle 77 px wide
across the street becomes 17 px and is missed. Rules only care about their zones, so the edge
shows the model *crops* around the zones instead, each enlarged as far as the budget allows.

How a plan is made (per camera, per frame size; cached):

1. **Crops.** One crop per zone with a detector rule: the zone's bounding box plus a margin
   (one zone depth above it, because an object whose bottom-centre anchor stands in the zone
   rises above it; a quarter depth on the other sides).
2. **Object size.** For ``auto``, each zone's smallest expected object is estimated from the
   zone's depth (its bounding box's short side) and the rule's classes:
   ``depth_px * TYPICAL_HEIGHT_M[class] / ZONE_DEPTH_M`` (a kerb zone is about a bay deep,
   2.5 m). Crude, but it needs no calibration, and it grows and shrinks with the camera's
   resolution and with how far away the zone is.
3. **Scales and packing.** Each crop's base scale makes its estimated object ``TARGET_PX`` tall
   in the model input; every crop is then scaled by one common factor, as large as possible,
   such that all crops (tiled with overlap where one is larger than the model input at its scale)
   pack into as few model inputs ("canvases") as the budget allows (shelf packing, a grey gap
   between crops). The canvas count is the smallest that gives every crop its base scale, at
   most ``max_inputs``; each canvas costs one model run, about what the whole frame costs.
4. **Motion.** Per frame, moving regions near the zones that the zone crops do not already
   hold get crops of their own, packed into space left free on the canvases (Frigate's idea:
   motion says where to look), never into a new canvas, so motion never raises the cost.

``auto`` chooses zones when a zone's estimated object would be smaller than
:data:`SMALL_OBJECT_PX` (32 px) in the whole-frame model input, and the plan makes the smallest
expected object over all zones at least 1.2x larger than whole-frame inference would; else the
whole frame. Why 32: measured with yolox_nano on car-detection.mp4 pasted small into a 1080p
frame, a car 39 px tall in the model input scores 0.29 (barely kept), 29 px is missed, and from
60 px up it scores 0.8-0.9; COCO calls objects under 32 px "small", where YOLO-n models keep only
a third of their large-object precision.

Example::

    >>> plan = plan_regions([ZoneRegion((100, 700, 400, 800), 40.0)], (1920, 1080), (416, 416))
    >>> plan.canvases, len(plan.placements), round(plan.placements[0].scale, 2) > 0.217
    (1, 1, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from gridwarden.edge.analytics.gate import small_grey

#: Below this box height (px in the model input) a YOLO-n class model mostly misses an object.
SMALL_OBJECT_PX = 32
#: Crops are scaled so the zone's estimated smallest object is at least this tall in the model
#: input (clear of the 32 px cliff); more canvases are used only to reach it.
TARGET_PX = 40
#: Crops are never enlarged beyond this (a blurred 4x crop does not add detail).
MAX_UPSCALE = 2.0
#: ``auto`` keeps the whole frame unless crops enlarge objects at least this much.
MIN_GAIN = 1.2
#: Grey pixels between crops on a canvas, so one crop's edge is not read as part of the next.
GAP_PX = 8
#: How deep a zone is assumed to be, in metres (a parking bay / pavement strip).
ZONE_DEPTH_M = 2.5
#: Typical box height of each class, in metres; used only to estimate sizes for ``auto``.
TYPICAL_HEIGHT_M: dict[str, float] = {
    "person": 1.7,
    "bicycle": 1.0,
    "motorcycle": 1.1,
    "e bike": 1.0,
    "tricycle": 1.2,
    "car": 1.5,
    "bus": 3.0,
    "truck": 3.0,
    "suitcase": 0.8,
    "backpack": 0.8,
    "handbag": 0.8,
    "chair": 0.8,
    "bench": 0.8,
    "potted plant": 0.8,
    "umbrella": 0.8,
    "couch": 0.8,
    "dining table": 0.8,
    "bed": 0.8,
    "refrigerator": 0.8,
    "tv": 0.8,
    "toilet": 0.8,
}
#: A class without a typical size (a custom model's label) counts as this tall.
DEFAULT_HEIGHT_M = 1.0
#: Rules that watch ``any`` class: assume the smallest things left on a pavement.
ANY_CLASS_HEIGHT_M = 0.8
#: Motion crops: at most this many per frame, and changed areas smaller than this many analysis
#: pixels (160 px wide image) are noise.
MAX_MOTION_CROPS = 4
MIN_MOTION_PIXELS = 3

_STEP = 0.9  # the scale search's coarse step
_SHRINK_RATHER_THAN_TILE = 1.15

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels, x1/y1 exclusive


@dataclass(frozen=True, slots=True)
class ZoneRegion:
    """A zone's bounding box in frame pixels and its smallest expected object (frame px)."""

    box: Box
    object_px: float
    anchor: str = "bottom_center"


@dataclass(frozen=True, slots=True)
class Placement:
    """One crop of the frame, where it goes on which canvas, and at what scale.

    The crop ``box`` (frame px) is resized by ``scale`` to ``width`` x ``height`` and written at
    (``x``, ``y``) of canvas ``canvas``. ``source`` is ``zone`` or ``motion``.
    """

    box: Box
    canvas: int
    x: int
    y: int
    width: int
    height: int
    scale: float
    source: str = "zone"
    object_px: float = 0.0  # the zone's estimated smallest object, in frame px (zone crops)

    def canvas_rect(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.width, self.y + self.height


@dataclass(frozen=True, slots=True)
class RegionPlan:
    """Where the detector looks in one frame: crops packed onto ``canvases`` model inputs."""

    frame_size: tuple[int, int]
    input_size: tuple[int, int]
    canvases: int
    placements: tuple[Placement, ...]

    @property
    def crops(self) -> list[Box]:
        return [p.box for p in self.placements]

    def smallest_object_px(self) -> float:
        """The smallest zone object's estimated size in the model input, over the zone crops."""
        sizes = [p.scale * p.object_px for p in self.placements if p.source == "zone"]
        return min(sizes) if sizes else 0.0

    def min_scale(self, source: str = "zone") -> float:
        scales = [p.scale for p in self.placements if p.source == source]
        return min(scales) if scales else 0.0


def whole_frame_scale(frame_size: tuple[int, int], input_size: tuple[int, int]) -> float:
    """The letterbox scale of the whole frame into the model input."""
    return min(input_size[0] / frame_size[0], input_size[1] / frame_size[1])


def estimate_object_px(zone_box: Box, class_names: Iterable[str] | None) -> float:
    """Estimated height in frame px of the smallest object of ``class_names`` in a zone
    (``None``: any class); see the module docstring for why the zone depth stands in."""
    x0, y0, x1, y1 = zone_box
    depth_px = min(x1 - x0, y1 - y0)
    if class_names is None:
        metres = ANY_CLASS_HEIGHT_M
    else:
        keys = [n.strip().lower().replace("_", " ").replace("-", " ") for n in class_names]
        sizes = [TYPICAL_HEIGHT_M.get(key, DEFAULT_HEIGHT_M) for key in keys]
        metres = min(sizes) if sizes else DEFAULT_HEIGHT_M
    return max(1.0, depth_px * metres / ZONE_DEPTH_M)


def zone_box_px(polygon: Sequence[Sequence[float]], frame_size: tuple[int, int]) -> Box:
    """Bounding box in frame px of a normalised polygon."""
    w, h = frame_size
    pts = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x0, y0 = np.floor(pts.min(axis=0) * (w, h))
    x1, y1 = np.ceil(pts.max(axis=0) * (w, h))
    return _clamp((int(x0), int(y0), int(x1), int(y1)), frame_size)


def zone_crop(zone: ZoneRegion, frame_size: tuple[int, int]) -> Box:
    """The zone's box with room for objects standing in it (see the module docstring)."""
    x0, y0, x1, y1 = zone.box
    depth = max(min(x1 - x0, y1 - y0), zone.object_px)
    side = math.ceil(depth / 4)
    top = math.ceil(depth) if zone.anchor == "bottom_center" else side
    bottom = math.ceil(depth) if zone.anchor == "top_center" else side
    return _clamp((x0 - side, y0 - top, x1 + side, y1 + bottom), frame_size)


def should_use_zones(
    zones: Sequence[ZoneRegion], frame_size: tuple[int, int], input_size: tuple[int, int]
) -> bool:
    """``auto``'s first question: would the smallest object be under SMALL_OBJECT_PX whole-frame?"""
    if not zones:
        return False
    smallest = min(z.object_px for z in zones)
    return smallest * whole_frame_scale(frame_size, input_size) < SMALL_OBJECT_PX


def plan_regions(
    zones: Sequence[ZoneRegion],
    frame_size: tuple[int, int],
    input_size: tuple[int, int],
    *,
    max_inputs: int = 1,
    motion_boxes: np.ndarray | None = None,
) -> RegionPlan | None:
    """Crops for ``zones`` packed onto at most ``max_inputs`` canvases, each crop as large as
    fits; ``None`` when no packing beats the whole frame (too many or too large zones)."""
    if not zones:
        return None
    whole = whole_frame_scale(frame_size, input_size)
    crops = [zone_crop(z, frame_size) for z in zones]
    base = [TARGET_PX / z.object_px for z in zones]
    cap = [max(MAX_UPSCALE, whole) for _ in zones]
    # The common factor f scales every crop's base scale (each capped); scan f downwards on a
    # geometric grid from where every crop is capped to where none beats the whole frame.
    f_hi = max(c / b for c, b in zip(cap, base, strict=True))
    f_lo = min(whole / b for b in base)
    best: tuple[float, list[Placement]] | None = None

    def pack(f: float, canvases: int) -> list[Placement] | None:
        scales = [min(c, f * b) for c, b in zip(cap, base, strict=True)]
        return _pack_zone_crops(crops, scales, zones, input_size, canvases)

    for canvases in range(1, max_inputs + 1):
        f = f_hi
        while f >= f_lo:
            placed = pack(f, canvases)
            if placed is not None:
                # Refine between this step and the one above, which did not fit.
                lo, hi = f, f / _STEP
                for _ in range(8):
                    mid = (lo + hi) / 2
                    better = pack(mid, canvases)
                    lo, hi, placed = (mid, hi, better) if better is not None else (lo, mid, placed)
                if best is None or lo > best[0]:
                    best = (lo, placed)
                break
            f *= _STEP
        if best is not None and best[0] >= 1.0:
            break  # every crop reaches its target size: no more canvases needed
    if best is None:
        return None
    placements = best[1]
    if motion_boxes is not None and len(motion_boxes):
        placements = placements + _place_motion(placements, motion_boxes, frame_size, input_size)
    used = max(p.canvas for p in placements) + 1
    return RegionPlan(frame_size, input_size, used, tuple(placements))


def with_motion(plan: RegionPlan, motion_boxes: np.ndarray) -> RegionPlan:
    """``plan`` plus crops for moving regions it does not hold, in its canvases' free space."""
    zone_only = [p for p in plan.placements if p.source == "zone"]
    extra = (
        _place_motion(zone_only, motion_boxes, plan.frame_size, plan.input_size) if len(motion_boxes) else []
    )
    if not extra:
        return (
            plan
            if len(zone_only) == len(plan.placements)
            else RegionPlan(plan.frame_size, plan.input_size, plan.canvases, tuple(zone_only))
        )
    return RegionPlan(plan.frame_size, plan.input_size, plan.canvases, tuple(zone_only + extra))


# ------------------------------------------------------------------------------ tiling
def tile_box(box: Box, max_w: int, max_h: int, overlap: int) -> list[Box]:
    """Split ``box`` into tiles at most ``max_w`` x ``max_h`` that overlap by at least
    ``overlap`` px, so an object up to ``overlap`` px across lies whole in some tile."""
    x0, y0, x1, y1 = box
    xs = _tile_starts(x0, x1, max_w, overlap)
    ys = _tile_starts(y0, y1, max_h, overlap)
    tw, th = min(max_w, x1 - x0), min(max_h, y1 - y0)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]


def _tile_starts(lo: int, hi: int, size: int, overlap: int) -> list[int]:
    length = hi - lo
    if length <= size:
        return [lo]
    overlap = min(overlap, size // 2)
    count = math.ceil((length - overlap) / (size - overlap))
    step = (length - size) / (count - 1)
    return [lo + round(i * step) for i in range(count)]


# ------------------------------------------------------------------------------ packing
class _ShelfPacker:
    """First-fit shelf packing of rectangles onto fixed-size canvases, with a gap between them."""

    def __init__(self, width: int, height: int, max_canvases: int, gap: int = GAP_PX) -> None:
        self.width, self.height, self.gap = width, height, gap
        self.max_canvases = max_canvases
        # Per canvas: list of shelves [y, shelf_height, x_used], and the height used so far.
        self.shelves: list[list[list[int]]] = []
        self.used_h: list[int] = []

    def place(self, w: int, h: int, *, new_canvas: bool = True) -> tuple[int, int, int] | None:
        if w > self.width or h > self.height:
            return None
        for c, shelves in enumerate(self.shelves):
            for shelf in shelves:
                y, sh, used = shelf
                if h <= sh and used + w <= self.width:
                    shelf[2] = used + w + self.gap
                    return c, used, y
            if self.used_h[c] + h <= self.height:
                y = self.used_h[c]
                shelves.append([y, h, w + self.gap])
                self.used_h[c] = y + h + self.gap
                return c, 0, y
        if not new_canvas or len(self.shelves) >= self.max_canvases:
            return None
        self.shelves.append([[0, h, w + self.gap]])
        self.used_h.append(h + self.gap)
        return len(self.shelves) - 1, 0, 0


def _scaled(box: Box, scale: float) -> tuple[int, int]:
    return max(1, round((box[2] - box[0]) * scale)), max(1, round((box[3] - box[1]) * scale))


def _pack_zone_crops(
    crops: list[Box],
    scales: list[float],
    zones: Sequence[ZoneRegion],
    input_size: tuple[int, int],
    max_canvases: int,
) -> list[Placement] | None:
    width, height = input_size
    pieces: list[tuple[Box, float, float]] = []
    for crop, scale, zone in zip(crops, scales, zones, strict=True):
        crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
        if max(crop_w * scale / width, crop_h * scale / height) <= _SHRINK_RATHER_THAN_TILE:
            # Only a little too large: shrink it a little rather than cut two near-equal tiles.
            scale = min(scale, width / crop_w, height / crop_h)
        max_w, max_h = int(width / scale), int(height / scale)
        # Overlap: the zone's estimated object, so one on a tile border is whole in one tile.
        overlap = math.ceil(zone.object_px * 1.5)
        pieces.extend((tile, scale, zone.object_px) for tile in tile_box(crop, max_w, max_h, overlap))
    packer = _ShelfPacker(width, height, max_canvases)
    order = sorted(range(len(pieces)), key=lambda i: -_scaled(pieces[i][0], pieces[i][1])[1])
    out: list[Placement] = []
    for i in order:
        box, scale, object_px = pieces[i]
        w, h = _scaled(box, scale)
        spot = packer.place(w, h)
        if spot is None:
            return None
        canvas, x, y = spot
        out.append(Placement(box, canvas, x, y, w, h, scale, "zone", object_px))
    return out


# ------------------------------------------------------------------------------ motion
def _place_motion(
    zone_placements: list[Placement],
    motion_boxes: np.ndarray,
    frame_size: tuple[int, int],
    input_size: tuple[int, int],
) -> list[Placement]:
    """Crops around moving regions near the zones that no zone crop holds, in free space only."""
    if not zone_placements:
        return []
    crops = np.array([p.box for p in zone_placements], dtype=np.float64)
    boxes = np.asarray(motion_boxes, dtype=np.float64).reshape(-1, 4)
    held = _covered_fraction(boxes, crops) >= 0.8
    # "Near the zones": within one crop size of a zone crop (objects about to enter).
    cw, ch = crops[:, 2] - crops[:, 0], crops[:, 3] - crops[:, 1]
    near_area = np.stack([crops[:, 0] - cw, crops[:, 1] - ch, crops[:, 2] + cw, crops[:, 3] + ch], axis=1)
    near = _covered_fraction(boxes, near_area) > 0.0
    candidates = boxes[~held & near]
    if not len(candidates):
        return []
    areas = (candidates[:, 2] - candidates[:, 0]) * (candidates[:, 3] - candidates[:, 1])
    candidates = candidates[np.argsort(-areas)][:MAX_MOTION_CROPS]
    scale = min(p.scale for p in zone_placements)
    packer = _ShelfPacker(*input_size, max_canvases=max(p.canvas for p in zone_placements) + 1)
    for p in sorted(zone_placements, key=lambda p: -p.height):  # replay the zone layout
        packer.place(p.width, p.height)
    out: list[Placement] = []
    for x0, y0, x1, y1 in candidates:
        pad_x, pad_y = (x1 - x0) * 0.25 + 8, (y1 - y0) * 0.25 + 8
        box = _clamp(
            (int(x0 - pad_x), int(y0 - pad_y), math.ceil(x1 + pad_x), math.ceil(y1 + pad_y)), frame_size
        )
        w, h = _scaled(box, scale)
        spot = packer.place(w, h, new_canvas=False)
        if spot is not None:
            out.append(Placement(box, spot[0], spot[1], spot[2], w, h, scale, "motion"))
    return out


def _covered_fraction(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Per box, the largest fraction of its area inside any one region."""
    if not len(boxes) or not len(regions):
        return np.zeros(len(boxes))
    ix0 = np.maximum(boxes[:, None, 0], regions[None, :, 0])
    iy0 = np.maximum(boxes[:, None, 1], regions[None, :, 1])
    ix1 = np.minimum(boxes[:, None, 2], regions[None, :, 2])
    iy1 = np.minimum(boxes[:, None, 3], regions[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    return (inter / area[:, None]).max(axis=1)


class MotionRegions:
    """Boxes (frame px) of what changed since the previous analysed frame.

    Works on a 160 px wide blurred grey copy, like the motion gate, so sensor noise is averaged
    away and the cost stays near 1 ms even for a 1080p frame.
    """

    def __init__(self, width: int = 160, pixel_threshold: int = 25) -> None:
        self.width = width
        self.pixel_threshold = pixel_threshold
        self._previous: np.ndarray | None = None

    def update(self, image: np.ndarray) -> np.ndarray:
        # Every k-th pixel first (a view), so a 1080p frame is not area-averaged in full: the
        # 2x2 area step and the blur that follow still average the noise away.
        k = max(1, image.shape[1] // (2 * self.width))
        small = small_grey(np.ascontiguousarray(image[::k, ::k]), self.width)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            return np.zeros((0, 4), np.float32)
        changed = cv2.dilate(
            (cv2.absdiff(small, previous) > self.pixel_threshold).astype(np.uint8), np.ones((3, 3), np.uint8)
        )
        count, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
        stats = stats[1:count]
        stats = stats[stats[:, cv2.CC_STAT_AREA] >= MIN_MOTION_PIXELS]
        fx = image.shape[1] / small.shape[1]
        fy = image.shape[0] / small.shape[0]
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        return np.stack([x * fx, y * fy, (x + w) * fx, (y + h) * fy], axis=1).astype(np.float32)


def _clamp(box: Box, frame_size: tuple[int, int]) -> Box:
    w, h = frame_size
    x0, y0, x1, y1 = box
    x0, y0 = max(0, min(x0, w - 1)), max(0, min(y0, h - 1))
    return x0, y0, max(x0 + 1, min(x1, w)), max(y0 + 1, min(y1, h))


@dataclass(frozen=True, slots=True)
class WatchedZone:
    """What region planning needs from a zone: its polygon (normalised), anchor, and the class
    names its detector rules watch (``None``: any class)."""

    polygon: Sequence[Sequence[float]]
    anchor: str
    class_names: tuple[str, ...] | None


class CameraRegions:
    """One camera's region inference: its mode, its zones, a plan cache, its motion regions.

    ``plan`` returns ``None`` for the whole frame, or the crops to run for this frame. Example::

        >>> regions = CameraRegions([WatchedZone([(0.05, 0.7), (0.25, 0.7), (0.25, 0.8), (0.05, 0.8)],
        ...                                      "bottom_center", ("bicycle",))], mode="auto")
        >>> frame = np.zeros((1080, 1920, 3), np.uint8)
        >>> regions.plan(frame, (416, 416)).canvases
        1
        >>> street = CameraRegions([WatchedZone([(0, 0.5), (1, 0.5), (1, 1), (0, 1)], "bottom_center", ("car",))])
        >>> street.plan(frame, (416, 416)) is None  # cars in half the frame: big enough whole-frame
        True
    """

    def __init__(self, zones: Sequence[WatchedZone], *, mode: str = "auto", max_inputs: int = 1) -> None:
        if mode not in ("whole", "zones", "auto"):
            raise ValueError(f"inference mode must be whole, zones or auto, got {mode!r}")
        self.zones = list(zones)
        self.mode = mode
        self.max_inputs = max_inputs
        self.motion = MotionRegions()
        self._plans: dict[tuple[tuple[int, int], tuple[int, int]], RegionPlan | None] = {}

    def base_plan(self, frame_size: tuple[int, int], input_size: tuple[int, int]) -> RegionPlan | None:
        """The zone crops for this frame size (no motion), or ``None`` for the whole frame."""
        key = (frame_size, input_size)
        if key not in self._plans:
            self._plans[key] = self._make_plan(frame_size, input_size)
        return self._plans[key]

    def plan(self, image: np.ndarray, input_size: tuple[int, int]) -> RegionPlan | None:
        if self.mode == "whole" or not self.zones:
            return None
        frame_size = (int(image.shape[1]), int(image.shape[0]))
        base = self.base_plan(frame_size, input_size)
        if base is None:
            return None
        moving = self.motion.update(image)
        return with_motion(base, moving) if len(moving) else base

    def _make_plan(self, frame_size: tuple[int, int], input_size: tuple[int, int]) -> RegionPlan | None:
        regions = []
        for zone in self.zones:
            box = zone_box_px(zone.polygon, frame_size)
            regions.append(ZoneRegion(box, estimate_object_px(box, zone.class_names), zone.anchor))
        if self.mode == "auto" and not should_use_zones(regions, frame_size, input_size):
            return None
        plan = plan_regions(regions, frame_size, input_size, max_inputs=self.max_inputs)
        if self.mode == "auto" and plan is not None:
            # The smallest expected object anywhere in the zones must come out larger.
            whole = min(z.object_px for z in regions) * whole_frame_scale(frame_size, input_size)
            if plan.smallest_object_px() < MIN_GAIN * whole:
                return None
        return plan
