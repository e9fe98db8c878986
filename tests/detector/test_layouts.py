"""Telling the layouts apart, and decoding each."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.detector.layouts import (
    Decoder,
    Layout,
    UnsupportedModelError,
    identify_layout,
    yolox_grid_count,
)

GRID_416 = 3549


def _raw_yolox(n: int, classes: int = 80) -> np.ndarray:
    rng = np.random.default_rng(1)
    out = rng.normal(0, 0.5, (1, n, 5 + classes)).astype(np.float32)  # offsets/log-sizes near 0
    out[..., 4:] = rng.uniform(0, 0.05, (1, n, 1 + classes))
    return out


def _decoded(n: int, size: int, classes: int = 80) -> np.ndarray:
    out = _raw_yolox(n, classes)
    rng = np.random.default_rng(2)
    out[0, :, :2] = rng.uniform(0, size, (n, 2))
    out[0, :, 2:4] = rng.uniform(4, size / 2, (n, 2))
    return out


def test_grid_count() -> None:
    assert yolox_grid_count(416, 416) == GRID_416
    assert yolox_grid_count(640, 640) == 8400


def test_ultralytics_is_channels_first() -> None:
    layout = identify_layout((1, 84, 8400), np.zeros((1, 84, 8400), np.float32), 640, 640)
    assert layout == Layout("ultralytics", 80)


def test_yolox_raw_at_grid_count() -> None:
    layout = identify_layout((1, GRID_416, 85), _raw_yolox(GRID_416), 416, 416)
    assert (layout.name, layout.num_classes, layout.boxes_encoded) == ("yolox", 80, True)


def test_yolox_decoded_at_grid_count_skips_grid_decode() -> None:
    layout = identify_layout((1, GRID_416, 85), _decoded(GRID_416, 416), 416, 416)
    assert (layout.name, layout.boxes_encoded) == ("yolox", False)


def test_yolov5_decoded_at_three_anchors_per_cell() -> None:
    n = 3 * GRID_416
    layout = identify_layout((1, n, 85), _decoded(n, 416), 416, 416)
    assert (layout.name, layout.boxes_encoded) == ("yolov5", False)


def test_raw_boxes_off_the_grid_are_an_error_naming_the_shape() -> None:
    with pytest.raises(UnsupportedModelError, match=r"\[1, 1000, 85\]"):
        identify_layout((1, 1000, 85), _raw_yolox(1000), 416, 416)


def test_override() -> None:
    layout = identify_layout((1, 3 * GRID_416, 85), _decoded(3 * GRID_416, 416), 416, 416, override="yolox")
    assert (layout.name, layout.boxes_encoded) == ("yolox", False)
    with pytest.raises(ValueError, match="unknown layout 'yolov8'"):
        identify_layout((1, 84, 8400), np.zeros((1, 84, 8400)), 640, 640, override="yolov8")


@pytest.mark.parametrize("shape", [(1, 84), (1, 2, 84, 8400), (1, 3, 8400)])
def test_unknown_shapes_are_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(UnsupportedModelError, match=str(list(shape)).replace("[", r"\[").replace("]", r"\]")):
        identify_layout(shape, np.zeros(shape, np.float32), 640, 640)


def test_yolox_grid_decode() -> None:
    """One anchor on the stride-16 level at cell (3, 2): centre (3+0.5)*16, size e^0 * 16."""
    raw = np.zeros((GRID_416, 85), np.float32)
    row = 52 * 52 + 2 * 26 + 3
    raw[row, :4] = [0.5, 0.5, 0.0, np.log(2.0)]
    raw[row, 4] = 0.8
    raw[row, 5 + 2] = 0.5
    cand = Decoder(Layout("yolox", 80, boxes_encoded=True), 416, 416).candidates(
        raw, np.full(80, 0.25, np.float32)
    )
    np.testing.assert_allclose(cand.xyxy, [[56 - 8, 40 - 16, 56 + 8, 40 + 16]])
    np.testing.assert_allclose(cand.scores, [0.4])
    assert cand.class_ids.tolist() == [2]


def test_objectness_times_class_score_against_per_class_thresholds() -> None:
    raw = np.zeros((6, 7), np.float32)  # two classes
    raw[:, :4] = [50, 50, 20, 10]
    raw[:, 4] = [0.9, 0.9, 0.5, 0.9, 0.2, 0.9]
    raw[:, 5] = [0.9, 0.1, 0.9, 0.3, 0.9, 0.0]
    raw[:, 6] = [0.0, 0.6, 0.0, 0.0, 0.0, 0.2]
    cand = Decoder(Layout("yolov5", 2), 320, 320).candidates(raw, np.array([0.3, 0.5], np.float32))
    # scores: 0.81 c0, 0.54 c1, 0.45 c0, 0.27 c0 (below 0.3), 0.18 c0, 0.18 c1
    np.testing.assert_allclose(cand.scores, [0.81, 0.54, 0.45], rtol=1e-6)
    assert cand.class_ids.tolist() == [0, 1, 0]
    np.testing.assert_allclose(cand.xyxy[0], [40, 45, 60, 55])
