"""Region inference with the real yolox_nano on real footage made small in a 1080p view
(tests/support/small_objects.py): whole-frame inference misses the cars, zone crops find them
at the right frame pixels; crops of several cameras share the session's batches."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.detector import Detector, resolve_classes
from gridwarden.edge.analytics.detector.mosaic import detect_frames
from gridwarden.edge.analytics.detector.regions import CameraRegions, WatchedZone
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.types import Detections
from tests.support.small_objects import (
    CANVAS_SIZE,
    CAR_FRAMES,
    PAVEMENT_ZONE,
    SMALL_PARKING_ZONE,
    background,
    clip_box_to_canvas,
    compose,
    read_clip_frames,
)

OVERHEAD_VEHICLE = ["car", "bus", "truck", "cell phone"]  # cars from above (../shared/README.md)


@pytest.fixture(scope="module")
def scenes(yolox: Detector) -> list[tuple[np.ndarray, np.ndarray]]:
    """(1080p canvas, true boxes of the cars standing in the zone) per frame; truth = the
    detector on the full-size clip, kept where the car's bottom-centre is in the zone (what the
    rules look at)."""
    ids = list(resolve_classes(OVERHEAD_VEHICLE, yolox.class_names) or [])
    zone = Zone("small", [(x, y) for x, y in SMALL_PARKING_ZONE])
    back = background()
    out = []
    for frame in read_clip_frames(CAR_FRAMES).values():
        truth = yolox.detect_one(frame)
        truth = truth[np.isin(truth.class_id, ids) & (truth.confidence >= 0.5)]
        boxes = Detections(clip_box_to_canvas(truth.xyxy), truth.confidence, truth.class_id)
        out.append((compose(frame, back), boxes[zone.contains(boxes, CANVAS_SIZE)].xyxy))
    return out


def vehicles(d: Detections, detector: Detector) -> Detections:
    ids = list(resolve_classes(OVERHEAD_VEHICLE, detector.class_names) or [])
    return d[np.isin(d.class_id, ids)]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)  # type: ignore[no-any-return]


def camera_regions(detector: Detector, *extra: WatchedZone) -> CameraRegions:
    names = tuple(OVERHEAD_VEHICLE)
    return CameraRegions([WatchedZone(SMALL_PARKING_ZONE, "bottom_center", names), *extra], mode="auto")


def found_truth(found: Detections, truth: np.ndarray) -> bool:
    """Some detection overlaps a true car well. The zone crop ends a little above the zone, so
    a car's box may be cut at the crop's top: IoU 0.5 still demands the right place and size."""
    return bool(len(found) and len(truth) and (iou(truth, found.xyxy) >= 0.5).any())


def test_whole_frame_misses_small_cars_that_zone_crops_find(
    yolox: Detector, scenes: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    regions = camera_regions(yolox, WatchedZone(PAVEMENT_ZONE, "bottom_center", ("bicycle", "motorcycle")))
    plan = regions.base_plan(CANVAS_SIZE, yolox.input_size)
    assert plan is not None and plan.canvases == 1, plan  # two zones, one model input
    whole_hits = zone_hits = 0
    in_zone = [(image, truth) for image, truth in scenes if len(truth)]
    assert len(in_zone) >= 6
    for image, truth in in_zone:
        whole, zones = detect_frames(yolox, [image, image], [None, plan])
        whole_hits += found_truth(vehicles(whole, yolox), truth)
        zone_hits += found_truth(vehicles(zones, yolox), truth)
    print(f"in zone: {len(in_zone)} frames; whole-frame found {whole_hits}, zone crops {zone_hits}")
    assert whole_hits == 0, "whole-frame inference should not see cars this small"
    assert zone_hits >= 0.8 * len(in_zone), f"zone crops found {zone_hits} of {len(in_zone)}"


def test_plan_chosen_by_auto_for_the_small_zone(yolox: Detector) -> None:
    regions = camera_regions(yolox)
    plan = regions.plan(np.zeros((CANVAS_SIZE[1], CANVAS_SIZE[0], 3), np.uint8), yolox.input_size)
    assert plan is not None
    # enlarged, not just cropped: the 1080p frame is 0.22x whole, the zone crop at least 1x
    assert plan.min_scale() >= 1.0


def test_crops_of_several_cameras_share_one_batched_session_call(
    yolox_dynamic_path: object, scenes: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    detector = Detector(yolox_dynamic_path, intra_op_threads=2)  # type: ignore[arg-type]
    assert detector.supports_batch
    plan = camera_regions(detector).base_plan(CANVAS_SIZE, detector.input_size)
    assert plan is not None
    images = [scenes[0][0], scenes[4][0], scenes[8][0]]
    plans = [plan, None, plan]  # two zone cameras and one whole-frame camera
    calls_before, rows_before = detector.batch_stats
    together = detect_frames(detector, images, plans)
    calls, rows = detector.batch_stats
    assert rows - rows_before == 2 * plan.canvases + 1
    assert calls - calls_before == 1  # every camera's crops in one session run
    alone = [detect_frames(detector, [image], [p])[0] for image, p in zip(images, plans, strict=True)]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
        np.testing.assert_array_equal(a.class_id, b.class_id)
