"""Per-class NMS and per-class thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.detector.nms import per_class_nms, threshold_table


def test_same_class_overlap_is_suppressed_other_class_kept() -> None:
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [0, 0, 100, 100], [300, 300, 400, 400]], np.float32)
    scores = np.array([0.6, 0.9, 0.8, 0.3], np.float32)
    classes = np.array([2, 2, 0, 2], np.int32)
    keep = per_class_nms(boxes, scores, classes, iou_threshold=0.45)
    assert keep.tolist() == [1, 2, 3]  # best first; box 0 lost to box 1 of its own class only


def test_low_overlap_same_class_is_kept() -> None:
    boxes = np.array([[0, 0, 100, 100], [60, 0, 160, 100]], np.float32)  # IoU = 40/160 = 0.25
    keep = per_class_nms(boxes, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int32), iou_threshold=0.45)
    assert sorted(keep.tolist()) == [0, 1]
    keep = per_class_nms(boxes, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int32), iou_threshold=0.2)
    assert keep.tolist() == [0]


def test_max_detections_keeps_the_best() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (50, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + 2], axis=1)
    scores = rng.uniform(0, 1, 50).astype(np.float32)
    keep = per_class_nms(boxes, scores, np.arange(50, dtype=np.int32), iou_threshold=0.5, max_detections=5)
    assert keep.tolist() == np.argsort(-scores)[:5].tolist()


def test_empty_input() -> None:
    keep = per_class_nms(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), iou_threshold=0.5
    )
    assert keep.shape == (0,)


def test_threshold_table() -> None:
    table = threshold_table(["person", "car", "cell phone"], 0.25, {"cell phone": 0.8, "person": 0.1})
    np.testing.assert_allclose(table, [0.1, 0.25, 0.8])
    with pytest.raises(ValueError, match="unknown class 'van'.*person, car"):
        threshold_table(["person", "car"], 0.25, {"van": 0.5})
    with pytest.raises(ValueError, match="within 0..1"):
        threshold_table(["person"], 0.25, {"person": 1.5})
    with pytest.raises(ValueError, match="conf_threshold"):
        threshold_table(["person"], -0.1, None)
