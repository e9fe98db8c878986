"""``models export``: refuses clearly without ultralytics or offline; exports for real where the
benchmark venv (torch + ultralytics) exists."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gridwarden.edge.detector import COCO80, Detector
from gridwarden.models.export import read_metadata_names
from tests.support.paths import REPO_ROOT

BENCH_PYTHON = REPO_ROOT / ".venv-bench" / "bin" / "python"


def _run_export(
    python: str | Path, *args: str, cwd: Path = REPO_ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [str(python), "-m", "gridwarden.models.export", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_without_ultralytics_it_says_how_to_install(tmp_path: Path) -> None:
    assert importlib.util.find_spec("ultralytics") is None, (
        "this test needs the main venv, without ultralytics"
    )
    weights = tmp_path / "custom.pt"
    weights.write_bytes(b"weights")
    result = _run_export(sys.executable, str(weights))
    assert result.returncode == 1
    assert "ultralytics is not installed" in result.stderr and "pip install ultralytics" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bare_official_name_is_refused_as_needing_the_internet(tmp_path: Path) -> None:
    result = _run_export(sys.executable, "yolo11n.pt", cwd=tmp_path)
    assert result.returncode == 1
    assert "never downloads" in result.stderr and "internet" in result.stderr
    assert not (tmp_path / "yolo11n.pt").exists()


def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    result = _run_export(sys.executable, str(tmp_path / "nope" / "best.pt"))
    assert result.returncode == 1 and "weights file not found" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    not BENCH_PYTHON.exists(),
    reason="the benchmark venv with torch + ultralytics (.venv-bench, bench/setup_ultralytics_venv.sh) is not "
    "installed on this machine; torch is a multi-GB optional tool",
)
def test_export_in_the_bench_venv_writes_names_into_the_metadata(tmp_path: Path) -> None:
    """Build a .pt from the yolo11n.yaml architecture offline (random weights, COCO names set),
    export it at 320 and read the names back from the ONNX metadata."""
    weights = tmp_path / "arch.pt"
    build = textwrap.dedent(
        f"""
        import os
        os.environ["YOLO_OFFLINE"] = "1"; os.environ["YOLO_AUTOINSTALL"] = "false"
        from ultralytics import YOLO
        model = YOLO("yolo11n.yaml")
        model.model.names = {dict(enumerate(COCO80))!r}
        model.save({str(weights)!r})
        """
    )
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg")}
    subprocess.run(
        [str(BENCH_PYTHON), "-c", build], cwd=tmp_path, env=env, check=True, timeout=120, capture_output=True
    )
    out = tmp_path / "exported" / "model.onnx"
    result = _run_export(BENCH_PYTHON, str(weights), "--imgsz", "320", "--out", str(out), timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "80 classes: person, bicycle, car" in result.stdout
    assert read_metadata_names(out) == COCO80
    detector = Detector(out)
    assert detector.layout == "ultralytics" and detector.input_size == (320, 320)
    assert detector.class_names == COCO80
