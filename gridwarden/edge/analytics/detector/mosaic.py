"""Run the detector on region plans: crops pasted onto canvases, boxes mapped back and merged.

A :class:`~gridwarden.edge.analytics.detector.regions.RegionPlan` says which crops of a frame go where on
which model-input canvas. This module does the pixel work:

* :func:`paste_crops` resizes each crop (a numpy *view* of the decoded frame: no copy) into its
  rectangle of a model-input-sized canvas; the detector then converts channel order and pixel
  scale at model size. No full-frame colour conversion or resize happens for a zone camera.
* :func:`detect_frames` runs every frame's canvases (and whole frames, for cameras that use
  them) of every camera in ONE call to the shared detector, which batches them where the model's
  batch dimension allows.
* :func:`map_to_frame` assigns each canvas box to the crop holding its centre, drops boxes that
  spill across a gap (the model saw two crops as one thing), maps to frame pixels and merges
  across overlapping crops: per-class NMS in frame coordinates, then fragments of an object cut
  by a tile edge are dropped where another crop holds it whole.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from gridwarden.edge.analytics.detector.nms import per_class_nms
from gridwarden.edge.analytics.detector.preprocess import PAD_VALUE
from gridwarden.edge.analytics.detector.regions import Placement, RegionPlan
from gridwarden.edge.types import Detections

#: A box keeps at least this fraction of its area inside its crop's rectangle, or it is dropped.
MIN_INSIDE = 0.6
#: A fragment (a box touching a crop edge inside the frame) is dropped when this much of it lies
#: inside a larger box of the same class from another crop.
FRAGMENT_IOS = 0.6
_EDGE_PX = 2.0

_scratch = threading.local()


def paste_crops(image: np.ndarray, placements: Sequence[Placement], canvas: np.ndarray) -> np.ndarray:
    """Paint one canvas (H, W, 3 uint8, BGR like the frame): grey, with each crop of ``image``
    resized into its rectangle. Returns ``canvas``."""
    canvas[...] = PAD_VALUE
    for p in placements:
        x0, y0, x1, y1 = p.box
        # Bilinear like the whole-frame letterbox: the model sees crops filtered as it sees frames
        # (and INTER_AREA at a fractional factor costs 5x more).
        canvas[p.y : p.y + p.height, p.x : p.x + p.width] = cv2.resize(
            image[y0:y1, x0:x1], (p.width, p.height), interpolation=cv2.INTER_LINEAR
        )
    return canvas


def map_to_frame(
    canvas_detections: Sequence[Detections], plan: RegionPlan, *, iou_threshold: float
) -> Detections:
    """Boxes found on a plan's canvases (canvas px), as one merged set in frame pixels."""
    boxes, scores, classes, cut = [], [], [], []
    frame_w, frame_h = plan.frame_size
    for canvas, found in enumerate(canvas_detections):
        placed = [p for p in plan.placements if p.canvas == canvas]
        if not len(found) or not placed:
            continue
        rects = np.array([p.canvas_rect() for p in placed], dtype=np.float32)
        centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
        inside = (
            (centres[:, None, 0] >= rects[None, :, 0])
            & (centres[:, None, 0] < rects[None, :, 2])
            & (centres[:, None, 1] >= rects[None, :, 1])
            & (centres[:, None, 1] < rects[None, :, 3])
        )
        has = inside.any(axis=1)
        owner = inside.argmax(axis=1)[has]
        xyxy = found.xyxy[has]
        rect = rects[owner]
        clipped = np.concatenate(
            [np.maximum(xyxy[:, :2], rect[:, :2]), np.minimum(xyxy[:, 2:], rect[:, 2:])], axis=1
        )
        kept = _area(clipped) >= MIN_INSIDE * np.maximum(_area(xyxy), 1e-6)
        clipped, owner, rect = clipped[kept], owner[kept], rect[kept]
        info = np.array([(*p.box, p.scale) for p in placed], dtype=np.float64)[owner]
        origin, crop_scale = info[:, :2], info[:, 4:5]
        mapped = np.empty_like(clipped)
        mapped[:, :2] = (clipped[:, :2] - rect[:, :2]) / crop_scale + origin
        mapped[:, 2:] = (clipped[:, 2:] - rect[:, :2]) / crop_scale + origin
        mapped[:, 0::2] = np.clip(mapped[:, 0::2], 0, frame_w)
        mapped[:, 1::2] = np.clip(mapped[:, 1::2], 0, frame_h)
        # Touching a crop edge that is not a frame edge: the object may go on beyond the crop.
        crop_box = info[:, :4]
        inner = np.stack(
            [crop_box[:, 0] > 0, crop_box[:, 1] > 0, crop_box[:, 2] < frame_w, crop_box[:, 3] < frame_h],
            axis=1,
        )
        touch = np.abs(clipped - rect) <= _EDGE_PX
        boxes.append(mapped.astype(np.float32))
        scores.append(found.confidence[has][kept])
        classes.append(found.class_id[has][kept])
        cut.append((touch & inner).any(axis=1))
    if not boxes:
        return Detections.empty()
    xyxy, conf, cls, is_cut = (np.concatenate(a) for a in (boxes, scores, classes, cut))
    keep = per_class_nms(xyxy, conf, cls, iou_threshold=iou_threshold)
    keep = keep[~_fragments(xyxy[keep], cls[keep], is_cut[keep])]
    return Detections(xyxy=xyxy[keep], confidence=conf[keep], class_id=cls[keep])


def _area(xyxy: np.ndarray) -> np.ndarray:
    return np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)


def _fragments(xyxy: np.ndarray, classes: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Which boxes are cut-off pieces of a larger same-class box (vectorised, no box loop)."""
    if len(xyxy) < 2 or not cut.any():
        return np.zeros(len(xyxy), bool)
    ix0 = np.maximum(xyxy[:, None, 0], xyxy[None, :, 0])
    iy0 = np.maximum(xyxy[:, None, 1], xyxy[None, :, 1])
    ix1 = np.minimum(xyxy[:, None, 2], xyxy[None, :, 2])
    iy1 = np.minimum(xyxy[:, None, 3], xyxy[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = _area(xyxy)
    inside_other = inter / np.maximum(area[:, None], 1e-6) >= FRAGMENT_IOS
    bigger = area[None, :] > area[:, None]
    same = classes[:, None] == classes[None, :]
    return cut & (inside_other & bigger & same).any(axis=1)


def detect_frames(
    detector: Any, images: Sequence[np.ndarray], plans: Sequence[RegionPlan | None]
) -> list[Detections]:
    """Detections (frame px) for each image: on its plan's canvases, or on the whole frame where
    its plan is ``None``. All model inputs of all images go to ``detector.detect`` in ONE call,
    so the shared session batches them and its metrics count them.

    A canvas is exactly the model's input size, so the detector's letterbox is an identity
    (no resize, no pad): it only converts colour order and scale, at model size.
    """
    if len(images) != len(plans):
        raise ValueError(f"{len(images)} images but {len(plans)} plans")
    if all(plan is None for plan in plans):
        return list(detector.detect(images)) if len(images) else []
    width, height = detector.input_size
    pool: list[np.ndarray] = getattr(_scratch, "canvases", [])
    if pool and pool[0].shape != (height, width, 3):
        pool = []
    inputs: list[np.ndarray] = []
    used = 0
    for image, plan in zip(images, plans, strict=True):
        if plan is None:
            inputs.append(image)
            continue
        for canvas in range(plan.canvases):
            if used == len(pool):
                pool.append(np.empty((height, width, 3), np.uint8))
            inputs.append(paste_crops(image, [p for p in plan.placements if p.canvas == canvas], pool[used]))
            used += 1
    _scratch.canvases = pool  # reused by this thread's next call: detect has read them by then
    found = detector.detect(inputs)
    iou_threshold = float(getattr(detector, "iou_threshold", 0.45))
    out: list[Detections] = []
    row = 0
    for plan in plans:
        if plan is None:
            out.append(found[row])
            row += 1
        else:
            out.append(map_to_frame(found[row : row + plan.canvases], plan, iou_threshold=iou_threshold))
            row += plan.canvases
    return out
