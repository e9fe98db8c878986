"""The ultralytics layout: the shared untrained YOLO11n, and a tiny model with real names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridwarden.edge.analytics.detector import Detector
from tests.detector.onnx_builders import build_constant_model
from tests.support.paths import YOLO11N_UNTRAINED


@pytest.fixture(scope="module")
def yolo11n() -> Detector:
    return Detector(YOLO11N_UNTRAINED, conf_threshold=0.0001, intra_op_threads=2)


def test_yolo11n_is_read_from_shape_and_metadata(yolo11n: Detector) -> None:
    assert yolo11n.layout == "ultralytics"
    assert yolo11n.input_size == (640, 640)
    # Its metadata names are placeholders '0'..'79' (built without a dataset): COCO-80 applies.
    assert len(yolo11n.class_names) == 80 and yolo11n.class_names[0] == "person"
    assert yolo11n.describe()["num_classes"] == 80


def test_yolo11n_runs_and_returns_well_formed_detections(yolo11n: Detector) -> None:
    image = np.random.default_rng(0).integers(0, 255, (432, 768, 3), dtype=np.uint8)
    det = yolo11n.detect_one(image)
    assert 0 < len(det) <= 300  # random weights: scores near 1e-4, hence the tiny threshold
    assert det.xyxy.shape == (len(det), 4) and det.xyxy.dtype == np.float32
    assert np.all(det.xyxy >= 0) and np.all(det.xyxy[:, [0, 2]] <= 768) and np.all(det.xyxy[:, [1, 3]] <= 432)
    assert np.all(det.confidence >= 0.0001) and np.all((det.class_id >= 0) & (det.class_id < 80))
    assert np.all(det.track_id == -1)


def _ultralytics_output(rows: list[tuple[float, float, float, float, int, float]], classes: int, n: int = 32):
    """[1, 4+C, n] with the given (cx, cy, w, h, class, score) rows and zero-score filler."""
    out = np.zeros((1, 4 + classes, n), np.float32)
    out[0, :4] = 10.0
    for i, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[0, :4, i] = [cx, cy, w, h]
        out[0, 4 + cls, i] = score
    return out


NAMES = "{0: 'car', 1: 'person', 2: 'van'}"


@pytest.fixture(scope="module")
def overlap_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        (100, 100, 80, 80, 0, 0.9),  # car
        (104, 104, 80, 80, 0, 0.8),  # car overlapping the first: suppressed
        (100, 100, 80, 80, 1, 0.7),  # person on top of the car: another class, kept
        (250, 250, 40, 40, 2, 0.5),  # van
        (150, 250, 40, 40, 2, 0.1),  # van below the default threshold
    ]
    path = tmp_path_factory.mktemp("ultra") / "overlap.onnx"
    metadata = {"names": NAMES, "stride": "32", "imgsz": "[320, 320]", "author": "Ultralytics"}
    return build_constant_model(path, _ultralytics_output(rows, 3), metadata=metadata)


def test_names_from_metadata_and_per_class_nms(overlap_model: Path) -> None:
    det = Detector(overlap_model)
    assert det.layout == "ultralytics" and det.class_names == ["car", "person", "van"]
    out = det.detect_one(np.zeros((320, 320, 3), np.uint8))  # same size: boxes stay in input pixels
    assert out.class_id.tolist() == [0, 1, 2]
    np.testing.assert_allclose(out.confidence, [0.9, 0.7, 0.5])
    np.testing.assert_allclose(out.xyxy, [[60, 60, 140, 140], [60, 60, 140, 140], [230, 230, 270, 270]])


def test_boxes_map_back_through_a_centred_letterbox(overlap_model: Path) -> None:
    out = Detector(overlap_model).detect_one(np.zeros((480, 640, 3), np.uint8))  # scale 0.5, pad top 40
    np.testing.assert_allclose(out.xyxy[0], [120, 40, 280, 200])


def test_per_class_thresholds(overlap_model: Path) -> None:
    out = Detector(overlap_model, class_thresholds={"person": 0.75, "van": 0.05}).detect_one(
        np.zeros((320, 320, 3), np.uint8)
    )
    assert out.class_id.tolist() == [0, 2, 2]
    np.testing.assert_allclose(out.confidence, [0.9, 0.5, 0.1])
    with pytest.raises(ValueError, match="unknown class 'truck'.*car, person, van"):
        Detector(overlap_model, class_thresholds={"truck": 0.5})


def test_iou_threshold_is_applied(overlap_model: Path) -> None:
    out = Detector(overlap_model, iou_threshold=0.95).detect_one(np.zeros((320, 320, 3), np.uint8))
    assert out.class_id.tolist() == [0, 0, 1, 2]


def test_labels_file_overrides_metadata(overlap_model: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("auto\nperson\nbus\n")
    assert Detector(overlap_model, labels_path=labels).class_names == ["auto", "person", "bus"]
    labels.write_text("auto\nperson\n")
    with pytest.raises(ValueError, match="has 2 names, the model has 3 classes"):
        Detector(overlap_model, labels_path=labels)
