"""The per-camera region inference settings: defaults, and bad values named by file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwarden.edge.config import load_edge_config
from gridwarden.yamlconfig import ConfigError

CONFIG = """\
edge_id: edge-01
cameras:
  - id: cam-01
    url: rtsp://127.0.0.1:8554/cam
    inference: zones
    max_region_inputs: 2
"""


def test_default_is_auto_with_one_model_input(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("edge_id: edge-01\ncameras:\n  - {id: cam-01, url: rtsp://127.0.0.1/cam}\n")
    camera = load_edge_config(path).cameras[0]
    assert (camera.inference, camera.max_region_inputs) == ("auto", 1)


def test_explicit_values_load(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(CONFIG)
    camera = load_edge_config(path).cameras[0]
    assert (camera.inference, camera.max_region_inputs) == ("zones", 2)


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "inference: zones",
            "inference: crops",
            ":5: cameras[0].inference: Input should be 'whole', 'zones' or 'auto'",
        ),
        (
            "max_region_inputs: 2",
            "max_region_inputs: 0",
            ":6: cameras[0].max_region_inputs: Input should be greater",
        ),
        (
            "max_region_inputs: 2",
            "max_region_inputs: 9",
            ":6: cameras[0].max_region_inputs: Input should be less",
        ),
    ],
)
def test_bad_values_name_file_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(CONFIG.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_edge_config(path)
    problems = [str(p) for p in info.value.problems]
    assert any(p.startswith(str(path)) and expected in p for p in problems), problems
