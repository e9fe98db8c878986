"""Real ``models export`` in the benchmark venv (torch + ultralytics): run on demand, not in CI.

    bash bench/setup_ultralytics_venv.sh
    .venv/bin/pytest tests/models/manual_export_check.py

Not named test_*.py, so the suite does not collect it: torch is a multi-GB optional tool that
the CI machine does not install. Passed on the development machine (2026-11-25).
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

from gridwarden.edge.analytics.detector import COCO80, Detector
from gridwarden.models.export import read_metadata_names
from tests.models.test_export import BENCH_PYTHON, _run_export


def test_bench_venv_exists() -> None:
    assert BENCH_PYTHON.exists(), "run bash bench/setup_ultralytics_venv.sh first"


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
