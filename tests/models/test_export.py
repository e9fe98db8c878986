"""``models export``: refuses clearly without ultralytics or offline.

The real export needs torch + ultralytics (multi-GB, never in the edge runtime), so it lives in
``tests/models/manual_export_check.py``, run on demand after ``bash bench/setup_ultralytics_venv.sh``::

    .venv/bin/pytest tests/models/manual_export_check.py
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

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
