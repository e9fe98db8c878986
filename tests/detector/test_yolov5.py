"""The YOLOv5 layout on a tiny model built here: decoded boxes, objectness * class score.

The model's objectness is the mean of its input channel 0, so a red image scores high only if
the detector feeds RGB scaled to 0-1, and the pad's share of the mean checks the pad value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridwarden.edge.analytics.detector import Detector
from tests.detector.onnx_builders import build_constant_model

N_ROWS = 3 * (40 * 40 + 20 * 20 + 10 * 10)  # 3 anchors per cell at 320, as YOLOv5 exports


def _v5_model(path: Path, metadata: dict[str, str] | None = None, classes: int = 80) -> Path:
    out = np.zeros((1, N_ROWS, 5 + classes), np.float32)
    out[0, :, :4] = [200, 200, 20, 20]  # filler rows, decoded pixels, no class score
    out[0, 0, :4] = [160, 160, 100, 50]
    out[0, 0, 5 + 2] = 0.9  # class 2 ('car' in COCO)
    out[0, 1, :4] = [165, 160, 100, 50]  # overlaps row 0, lower class score: suppressed
    out[0, 1, 5 + 2] = 0.8
    out[0, 2, :4] = [60, 60, 40, 40]
    out[0, 2, 5 + 0] = 0.1  # 'person', too weak
    mask = np.zeros_like(out)
    mask[0, :, 4] = 1.0  # objectness = mean of input channel 0
    return build_constant_model(path, out, input_hw=(320, 320), channel0_mask=mask, metadata=metadata)


@pytest.fixture(scope="module")
def v5(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    return Detector(_v5_model(tmp_path_factory.mktemp("v5") / "v5.onnx"))


def _solid(h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((h, w, 3), np.uint8)
    image[:] = bgr
    return image


def test_identified_as_yolov5_with_coco_default_names(v5: Detector) -> None:
    assert v5.layout == "yolov5" and v5.input_size == (320, 320)
    assert len(v5.class_names) == 80 and v5.class_names[2] == "car"


def test_red_image_decodes_to_one_box_in_original_pixels(v5: Detector) -> None:
    det = v5.detect_one(_solid(480, 640, (0, 0, 255)))  # pure red; scale 0.5, pad 40 top and bottom
    red_mean = (240 * 1.0 + 80 * 114 / 255) / 320
    assert det.class_id.tolist() == [2]
    np.testing.assert_allclose(det.confidence, [0.9 * red_mean], rtol=1e-4)
    np.testing.assert_allclose(det.xyxy, [[(110 - 0) * 2, (135 - 40) * 2, (210 - 0) * 2, (185 - 40) * 2]])


def test_blue_image_has_no_red_so_nothing_passes(v5: Detector) -> None:
    assert len(v5.detect_one(_solid(480, 640, (255, 0, 0)))) == 0


def test_metadata_names_apply_to_yolov5_too(tmp_path: Path) -> None:
    path = _v5_model(
        tmp_path / "named.onnx", metadata={"names": "{0: 'person', 1: 'bike', 2: 'car'}"}, classes=3
    )
    det = Detector(path)
    assert det.layout == "yolov5" and det.class_names == ["person", "bike", "car"]


def test_layout_override_changes_preprocessing(tmp_path: Path) -> None:
    """Forced to YOLOX conventions (BGR 0-255, top-left pad), channel 0 is blue."""
    det = Detector(_v5_model(tmp_path / "v5.onnx"), layout="yolox")
    assert det.layout == "yolox" and det.describe()["boxes_encoded"] is False
    assert len(det.detect_one(_solid(320, 320, (0, 0, 255)))) == 0  # red: blue channel is 0
    out = det.detect_one(_solid(320, 320, (1, 0, 0)))  # blue 1 on a 0-255 scale: objectness 1.0
    np.testing.assert_allclose(out.confidence, [0.9], rtol=1e-5)
