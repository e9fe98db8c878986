"""``models check``: the report reflects the detector, the card and a real timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridwarden.models.check import check_model, format_report
from gridwarden.models.cli import main
from tests.support.paths import CAR_CLIP, YOLO11N_UNTRAINED, YOLOX_NANO


def test_yolox_report_has_every_fact() -> None:
    report = check_model(YOLOX_NANO, runs=5, warmup=1)
    assert report.layout == "yolox" and report.boxes_encoded
    assert report.num_classes == 80 and report.class_names[:3] == ["person", "bicycle", "car"]
    assert report.input_size == [416, 416]
    assert report.backend in ("onnxruntime", "openvino") and report.backend_reason.startswith(report.backend)
    if report.backend == "onnxruntime":
        assert report.provider in report.providers_available
    assert report.supports_batch is False
    assert report.detect.runs == 5 and 0 < report.detect.p50_ms <= report.detect.p95_ms
    assert report.card.card == "yolox_nano_coco" and report.card.licence == "Apache-2.0"
    assert report.card.mismatches == []
    text = format_report(report)
    for expected in (
        "layout:     yolox",
        "80: person, bicycle, car",
        "416x416",
        "backend:    ",
        "ms/frame p50",
        "Apache-2.0",
    ):
        assert expected in text


def test_json_output_for_machines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "check", str(YOLO11N_UNTRAINED), "--json", "--runs", "2", "--warmup", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layout"] == "ultralytics" and doc["input_size"] == [640, 640]
    assert doc["card"]["card"] == "yolo11n" and doc["card"]["licence"] == "AGPL-3.0"
    assert doc["detect"]["runs"] == 2 and doc["detect"]["p95_ms"] >= doc["detect"]["p50_ms"] > 0


def test_human_output_and_timing_on_a_clip_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "check", str(YOLOX_NANO), "--runs", "3", "--frame-from", str(CAR_CLIP)]) == 0
    out = capsys.readouterr().out
    assert "768x432 frame" in out and "matches the sha256" in out


def test_a_model_without_a_card_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "renamed.onnx"
    copy.write_bytes(YOLOX_NANO.read_bytes() + b"")  # same bytes: the card must still match by hash
    assert main(["models", "check", str(copy), "--runs", "1"]) == 0
    assert "yolox_nano_coco" in capsys.readouterr().out
    other = tmp_path / "other.onnx"
    import onnx

    model = onnx.load(str(YOLOX_NANO))
    model.doc_string = "changed"  # different bytes, same graph
    onnx.save(model, str(other))
    assert main(["models", "check", str(other), "--runs", "1"]) == 0
    assert "none matches this file's sha256" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, b"not an onnx model"])
def test_bad_files_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    assert main(["models", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "model.onnx" in err
