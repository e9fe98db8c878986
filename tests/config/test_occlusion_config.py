"""The occlusion memory and the tracker's persistence path are configured per rule / per edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwarden.edge.analytics.camera_analytics import CameraAnalytics
from gridwarden.edge.config import load_edge_config, load_edge_config_text
from gridwarden.yamlconfig import ConfigError

CONFIG = """\
edge_id: edge-01
tracker: {persist_threshold: 0.3, persist_hits: 4}
cameras:
  - id: cam-01
    url: rtsp://127.0.0.1:8554/cam
    zones:
      - id: kerb
        polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]]
        rules:
          - {type: illegal_parking, classes: [car], dwell_s: 60, occlusion_memory_s: 45}
          - {type: static_object, dwell_s: 30}
"""


def test_settings_reach_the_rules_and_the_tracker() -> None:
    cfg = load_edge_config_text(CONFIG)
    analytics = CameraAnalytics(cfg.cameras[0], cfg, ["person", "bicycle", "car"])
    parking, static = analytics.all_rules()
    assert parking.occlusion_memory_s == 45.0 and parking.places.occlusion_memory_s == 45.0
    assert static.occlusion_memory_s == 60.0  # the default: a bus stop takes tens of seconds
    assert static.backdate and parking.places.end_grace_s == 5.0  # separate from the memory
    assert (analytics.tracker.persist_threshold, analytics.tracker.persist_hits) == (0.3, 4)
    assert analytics.scene_model is not None


@pytest.mark.parametrize(
    "old, new, field",
    [
        (
            "occlusion_memory_s: 45",
            "occlusion_memory_s: -1",
            "cameras[0].zones[0].rules[0].occlusion_memory_s",
        ),
        ("persist_hits: 4", "persist_hits: 0", "tracker.persist_hits"),
    ],
)
def test_bad_values_name_file_line_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(CONFIG.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_edge_config(path)
    assert any(p.field == field and p.line is not None for p in err.value.problems), err.value.problems
