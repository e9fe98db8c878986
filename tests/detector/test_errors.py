"""Clear errors for models and inputs the detector cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from gridwarden.edge.analytics.detector import (
    Detector,
    ModelLoadError,
    UnsupportedModelError,
    choose_providers,
)
from tests.detector.onnx_builders import build_constant_model


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "model.onnx"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        Detector(missing)


def test_corrupt_model_names_the_path(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelLoadError, match=str(corrupt)):
        Detector(corrupt)


def test_unknown_output_shape_names_the_shape(tmp_path: Path) -> None:
    path = build_constant_model(tmp_path / "rank4.onnx", np.zeros((1, 2, 84, 100), np.float32))
    with pytest.raises(UnsupportedModelError, match=r"\[1, 2, 84, 100\]") as err:
        Detector(path)
    assert str(path) in str(err.value)


def test_raw_boxes_that_fit_no_grid_are_refused(tmp_path: Path) -> None:
    path = build_constant_model(tmp_path / "odd.onnx", np.zeros((1, 1000, 85), np.float32))
    with pytest.raises(UnsupportedModelError, match=r"\[1, 1000, 85\].*layout="):
        Detector(path)


def test_fixed_input_size_cannot_be_overridden(tmp_path: Path) -> None:
    path = build_constant_model(tmp_path / "m.onnx", np.zeros((1, 84, 2100), np.float32))
    assert Detector(path).input_size == (320, 320)
    with pytest.raises(ValueError, match="fixed input of 320x320"):
        Detector(path, input_size=640)


def test_bad_images_are_refused_clearly(tmp_path: Path) -> None:
    det = Detector(build_constant_model(tmp_path / "m.onnx", np.zeros((1, 84, 2100), np.float32)))
    assert det.detect([]) == []
    with pytest.raises(ValueError, match="BGR uint8 HxWx3"):
        det.detect_one(np.zeros((100, 100), np.uint8))


def test_bad_thresholds(tmp_path: Path) -> None:
    path = build_constant_model(tmp_path / "m.onnx", np.zeros((1, 84, 2100), np.float32))
    with pytest.raises(ValueError, match="iou_threshold"):
        Detector(path, iou_threshold=2)
    with pytest.raises(ValueError, match="conf_threshold"):
        Detector(path, conf_threshold=-1)


def test_provider_choice_falls_back_to_what_is_installed(yolox: Detector) -> None:
    available = ort.get_available_providers()
    assert yolox.provider in available
    chosen = choose_providers(["NoSuchExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    best = choose_providers()
    assert best[-1] == "CPUExecutionProvider" and set(best) <= set(available)
    if "CUDAExecutionProvider" not in available and "OpenVINOExecutionProvider" not in available:
        assert best == ["CPUExecutionProvider"] and yolox.provider == "CPUExecutionProvider"


def test_dynamic_input_size_from_argument_metadata_or_default(tmp_path: Path) -> None:
    out = np.zeros((1, 84, 2100), np.float32)
    dynamic = build_constant_model(tmp_path / "dyn.onnx", out, input_hw=("height", "width"))
    assert Detector(dynamic).input_size == (640, 640)
    assert Detector(dynamic, input_size=256).input_size == (256, 256)
    with pytest.raises(ValueError, match="multiple of 32"):
        Detector(dynamic, input_size=300)
    with_meta = build_constant_model(
        tmp_path / "meta.onnx", out, input_hw=("height", "width"), metadata={"imgsz": "[384, 512]"}
    )
    assert Detector(with_meta).input_size == (512, 384)


def test_start_is_logged_with_the_provider(yolox: Detector, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="gridwarden.edge.analytics.detector.session"):
        det = Detector(yolox.model_path)
    assert f"provider={det.provider}" in caplog.text and "layout=yolox" in caplog.text
