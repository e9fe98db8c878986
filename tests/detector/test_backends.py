"""OpenVINO and onnxruntime give the same detections; 'auto' chooses and falls back visibly.

Stated tolerance (OpenVINO at f32 against onnxruntime, yolox_nano on both shared clips, 24
frames each, conf >= 0.25): every box on either side has a partner of the same class with
IoU >= 0.99 and a score within 0.001. Measured on the dev box: IoU >= 0.99999, score
difference <= 7e-6. (bf16, OpenVINO's own default on CPUs that have it, misses 7-17 % of the
boxes, which is why the backend pins f32.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gridwarden.edge.analytics.detector import Detector, ModelLoadError
from gridwarden.edge.analytics.detector.backends import openvino_installed
from gridwarden.models.quantize import box_iou, sample_frames
from tests.support.paths import CAR_CLIP, PERSON_CLIP, REPO_ROOT, YOLOX_NANO

IOU_MIN = 0.99
SCORE_TOLERANCE = 1e-3

# No skip: scripts/bootstrap.sh installs the openvino extra wherever the tests run, so a missing
# install must fail here rather than pass silently.
assert openvino_installed(), (
    "the openvino extra is missing: run scripts/bootstrap.sh (pip install -e '.[dev,openvino]')"
)


@pytest.fixture(scope="module")
def yolox_openvino() -> Detector:
    return Detector(YOLOX_NANO, backend="openvino", intra_op_threads=2)


@pytest.fixture(scope="module")
def yolox_ort() -> Detector:
    return Detector(YOLOX_NANO, backend="onnxruntime", intra_op_threads=2)


def _unmatched(a, b) -> list[str]:  # type: ignore[no-untyped-def]
    """Boxes of ``a`` with no partner in ``b`` within the tolerance, described."""
    problems = []
    iou = box_iou(a.xyxy, b.xyxy)
    for i in range(len(a)):
        ok = (iou[i] >= IOU_MIN) & (b.class_id == a.class_id[i])
        ok &= np.abs(b.confidence - a.confidence[i]) <= SCORE_TOLERANCE
        if not ok.any():
            problems.append(f"box {a.xyxy[i].tolist()} class {a.class_id[i]} score {a.confidence[i]:.4f}")
    return problems


@pytest.mark.parametrize("clip", [CAR_CLIP, PERSON_CLIP], ids=["car", "person"])
def test_openvino_matches_onnxruntime_on_the_shared_clips(
    clip: Path, yolox_openvino: Detector, yolox_ort: Detector
) -> None:
    assert (yolox_openvino.backend, yolox_ort.backend) == ("openvino", "onnxruntime")
    boxes = 0
    for index, image in enumerate(sample_frames(clip, 24)):
        ref, got = yolox_ort.detect_one(image), yolox_openvino.detect_one(image)
        boxes += len(ref)
        assert _unmatched(ref, got) == [], f"frame {index}: onnxruntime boxes OpenVINO lost"
        assert _unmatched(got, ref) == [], f"frame {index}: OpenVINO boxes onnxruntime does not have"
    assert boxes >= 10  # the comparison is about real detections, not empty frames


def test_dynamic_batch_runs_as_one_call_through_openvino(yolox_dynamic_path: Path, car_frames: dict) -> None:
    detector = Detector(yolox_dynamic_path, backend="openvino", max_batch=4)
    assert detector.supports_batch
    images = [car_frames[i] for i in (75, 150, 225)]
    batched = detector.detect(images)
    assert detector.batch_stats[1] - detector.batch_stats[0] >= 2  # 3 images went in fewer calls
    for image, det in zip(images, batched, strict=True):
        single = detector.detect_one(image)
        assert _unmatched(single, det) == [] and _unmatched(det, single) == []


def test_auto_names_its_choice_with_the_figures() -> None:
    detector = Detector(YOLOX_NANO, backend="auto")
    assert detector.backend in ("openvino", "onnxruntime")
    assert detector.backend_reason.startswith(f"{detector.backend}: auto")
    assert set(detector.backend_cpu_ms) == {"openvino", "onnxruntime"}
    assert all(ms > 0 for ms in detector.backend_cpu_ms.values())
    assert detector.describe()["backend"] == detector.backend


def test_auto_keeps_onnxruntime_for_explicit_execution_providers() -> None:
    detector = Detector(YOLOX_NANO, backend="auto", providers=["CUDAExecutionProvider"])
    assert detector.backend == "onnxruntime" and "execution providers" in detector.backend_reason


_WITHOUT_OPENVINO = """
import sys
sys.modules["openvino"] = None  # what an install without the extra looks like to an import
from gridwarden.edge.analytics.detector import Detector, ModelLoadError
d = Detector(sys.argv[1], backend="auto")
print(d.backend, "|", d.backend_reason, "|", d.provider)
try:
    Detector(sys.argv[1], backend="openvino")
except ModelLoadError as exc:
    print("refused:", exc)
"""


def test_without_openvino_auto_falls_back_and_openvino_is_a_clear_error() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OPENVINO, str(YOLOX_NANO)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=True,
    ).stdout
    chosen, refused = out.strip().splitlines()
    assert chosen == "onnxruntime | onnxruntime: openvino is not installed | CPUExecutionProvider"
    assert "openvino package is not installed" in refused and "gridwarden[openvino]" in refused


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown inference backend 'tensorrt'"):
        Detector(YOLOX_NANO, backend="tensorrt")


def test_openvino_load_failure_is_a_model_load_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="broken.onnx"):
        Detector(broken, backend="openvino")


def test_startup_log_names_the_backend_and_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="gridwarden.edge.analytics.detector.session"):
        detector = Detector(YOLOX_NANO, backend="openvino")
    assert f"backend=openvino ({detector.backend_reason})" in caplog.text
