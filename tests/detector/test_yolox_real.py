"""YOLOX-Nano on real frames of the car clip."""

from __future__ import annotations

import cv2
import numpy as np

from gridwarden.edge.analytics.detector import Detector, resolve_classes
from gridwarden.edge.types import Detections


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_model_is_read_as_yolox_with_coco_names(yolox: Detector) -> None:
    info = yolox.describe()
    assert (yolox.layout, yolox.input_size, len(yolox.class_names)) == ("yolox", (416, 416), 80)
    assert yolox.class_names[2] == "car" and info["boxes_encoded"] is True
    assert yolox.provider == "CPUExecutionProvider" and info["provider"] == yolox.provider
    assert yolox.backend == "onnxruntime" == info["backend"]  # the library default
    assert yolox.supports_batch is False and info["supports_batch"] is False


def test_vehicles_found_inside_the_frame_with_sane_sizes(yolox: Detector, car_frames: dict) -> None:
    vehicle_ids = np.array(sorted(resolve_classes(["vehicle"], yolox.class_names)))
    frames_with_vehicle = 0
    for image in car_frames.values():
        det = yolox.detect_one(image)
        _assert_well_formed(det, image.shape)
        vehicles = det[np.isin(det.class_id, vehicle_ids)]
        if len(vehicles):
            frames_with_vehicle += 1
            # A car seen from above in a 768x432 frame: tens to a few hundred pixels a side.
            assert np.all((vehicles.widths >= 30) & (vehicles.widths <= 400)), vehicles.xyxy
            assert np.all((vehicles.heights >= 30) & (vehicles.heights <= 432)), vehicles.xyxy
    assert frames_with_vehicle >= 2


def test_the_car_in_frame_75_is_boxed(yolox: Detector, car_frames: dict) -> None:
    det = yolox.detect_one(car_frames[75])
    best = det.xyxy[np.argmax(det.confidence)]
    assert _iou(best, np.array([268, 125, 459, 422])) > 0.85, best  # measured by eye on the frame


def test_boxes_follow_the_image_under_rescale_and_padding(yolox: Detector, car_frames: dict) -> None:
    """The same car through a different letterbox (half size, or placed in a larger canvas
    with an offset) must come back at the same place in each image's own pixels."""
    image = car_frames[75]
    reference = yolox.detect_one(image)
    ref_box = reference.xyxy[np.argmax(reference.confidence)]

    half = cv2.resize(image, (384, 216), interpolation=cv2.INTER_AREA)
    det = yolox.detect_one(half)
    assert _iou(det.xyxy[np.argmax(det.confidence)] * 2, ref_box) > 0.8

    canvas = np.full((700, 1000, 3), 60, np.uint8)
    canvas[200:632, 150:918] = image
    det = yolox.detect_one(canvas)
    moved = det.xyxy[np.argmax(det.confidence)] - np.array([150, 200, 150, 200], np.float32)
    assert _iou(moved, ref_box) > 0.8

    tall = np.full((900, 768, 3), 60, np.uint8)  # pad left/right in the model input instead
    tall[0:432] = image
    det = yolox.detect_one(tall)
    assert _iou(det.xyxy[np.argmax(det.confidence)], ref_box) > 0.8


def test_higher_threshold_for_one_class_only_drops_that_class(car_frames: dict, yolox: Detector) -> None:
    strict = Detector(yolox.model_path, class_thresholds={"cell phone": 0.99}, intra_op_threads=2)
    phone = yolox.class_names.index("cell phone")
    assert np.any(yolox.detect_one(car_frames[75]).class_id == phone)  # cars from above: 'cell phone'
    for index in (75, 200, 225):
        loose, tight = yolox.detect_one(car_frames[index]), strict.detect_one(car_frames[index])
        assert not np.any(tight.class_id == phone)
        others = loose[loose.class_id != phone]
        np.testing.assert_allclose(np.sort(tight.confidence), np.sort(others.confidence), atol=1e-5)


def _assert_well_formed(det: Detections, shape: tuple[int, ...]) -> None:
    h, w = shape[:2]
    assert (
        det.xyxy.dtype == np.float32 and det.confidence.dtype == np.float32 and det.class_id.dtype == np.int32
    )
    assert np.all(det.xyxy[:, [0, 1]] >= 0) and np.all(det.xyxy[:, 2] <= w) and np.all(det.xyxy[:, 3] <= h)
    assert np.all(det.xyxy[:, 2] > det.xyxy[:, 0]) and np.all(det.xyxy[:, 3] > det.xyxy[:, 1])
    assert np.all(det.confidence >= 0.25) and np.all(np.diff(det.confidence) <= 0)
