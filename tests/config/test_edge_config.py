"""Edge configuration: valid files load with kind defaults; every problem names file, line, field."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridwarden.edge.config import CAMERA_KIND_DEFAULTS, load_edge_config
from gridwarden.yamlconfig import ConfigError
from tests.support.paths import REPO_ROOT, YOLOX_NANO

GOOD = f"""\
edge_id: edge-01
site: north
model: {{path: {YOLOX_NANO}, input_size: 416}}
cameras:
  - id: cam-01
    kind: skynet
    url: rtsp://127.0.0.1:8554/cam
    zones:
      - id: gate-north
        polygon: [[0.10, 0.30], [0.40, 0.30], [0.40, 0.95], [0.10, 0.95]]
        rules:
          - {{type: illegal_parking, classes: [vehicle], dwell_s: 60}}
  - id: cam-02
    kind: handheld
    url: clip.mp4
    zones: []
"""


def write(tmp_path: Path, text: str, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_edge_config(path)
    return [str(p) for p in info.value.problems]


def test_good_config_loads_with_kind_defaults(tmp_path: Path) -> None:
    cfg = load_edge_config(write(tmp_path, GOOD))
    skynet, handheld = cfg.cameras
    assert skynet.analysis_fps == CAMERA_KIND_DEFAULTS["skynet"]["analysis_fps"]
    assert skynet.detect_camera_motion is False
    assert handheld.detect_camera_motion is True
    assert handheld.analysis_fps == CAMERA_KIND_DEFAULTS["handheld"]["analysis_fps"]
    # a file path is resolved against the config file's folder
    assert handheld.url == str(tmp_path / "clip.mp4")
    assert skynet.zones[0].rules[0].dwell_s == 60


def test_explicit_value_beats_kind_default(tmp_path: Path) -> None:
    cfg = load_edge_config(
        write(tmp_path, GOOD.replace("kind: handheld", "kind: handheld\n    analysis_fps: 1"))
    )
    assert cfg.cameras[1].analysis_fps == 1


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "dwell_s: 60",
            "dwell_s: soon",
            "edge.yaml:12: cameras[0].zones[0].rules[0].dwell_s: Input should be a valid number",
        ),
        (
            "dwell_s: 60",
            "dwell_s: -5",
            "edge.yaml:12: cameras[0].zones[0].rules[0].dwell_s: Input should be greater than 0",
        ),
        ("type: illegal_parking", "type: jaywalking", "edge.yaml:12: cameras[0].zones[0].rules[0]"),
        (
            "[[0.10, 0.30], [0.40, 0.30], [0.40, 0.95], [0.10, 0.95]]",
            "[[0.10, 0.30], [0.40, 0.95], [0.40, 0.30], [0.10, 0.95]]",
            "edge.yaml:10: cameras[0].zones[0].polygon:",
        ),
        ("kind: skynet", "kind: drone", "edge.yaml:6: cameras[0].kind:"),
        (
            "url: rtsp://127.0.0.1:8554/cam",
            "uri: rtsp://127.0.0.1:8554/cam",
            "edge.yaml:7: cameras[0].uri: unknown field 'uri' (did you mean 'url'?)",
        ),
        ("id: cam-02", "id: cam-01", "camera id 'cam-01' appears twice"),
        ("edge_id: edge-01", "edge_id: edge/01", "edge.yaml:1: edge_id:"),
    ],
)
def test_problems_name_file_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    problems = problems_of(path)
    assert any(expected.replace("edge.yaml", str(path)) in p for p in problems), problems


def test_missing_required_field_points_at_parent(tmp_path: Path) -> None:
    text = GOOD.replace("    url: rtsp://127.0.0.1:8554/cam\n", "")
    problems = problems_of(write(tmp_path, text))
    assert any(":5: cameras[0].url: Field required" in p for p in problems), problems


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = GOOD.replace("dwell_s: 60", "dwell_s: soon").replace("kind: skynet", "kind: drone")
    assert len(problems_of(write(tmp_path, text))) >= 2


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("zones: []", "zones: ["))
    problems = problems_of(path)
    assert len(problems) == 1 and "YAML syntax error" in problems[0]
    assert re.match(rf"{re.escape(str(path))}:\d+: ", problems[0]), problems


def test_missing_file_is_named(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "nope.yaml")
    assert problems == [f"{tmp_path / 'nope.yaml'}: file not found"]


def test_unknown_timezone_and_bad_schedule(tmp_path: Path) -> None:
    text = GOOD.replace("site: north", "site: north\ntimezone: Mars/Olympus").replace(
        "dwell_s: 60}", 'dwell_s: 60, schedule: ["7am-8pm"]}'
    )
    problems = problems_of(write(tmp_path, text))
    assert any("timezone: unknown timezone 'Mars/Olympus'" in p for p in problems), problems
    assert any("schedule" in p and "07:00-20:00" in p for p in problems), problems


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_config_check_command_reports_and_exits_nonzero(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.yaml")
    bad = write(tmp_path, GOOD.replace("dwell_s: 60", "dwell_s: soon"), "bad.yaml")
    ok = run_cli("config", "check", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    res = run_cli("config", "check", str(good), str(bad))
    assert res.returncode == 2
    assert f"{bad}:12: cameras[0].zones[0].rules[0].dwell_s" in res.stderr


def test_config_check_refuses_unknown_class(tmp_path: Path) -> None:
    bad = write(tmp_path, GOOD.replace("classes: [vehicle]", "classes: [vehicle, unicorn]"))
    res = run_cli("config", "check", str(bad))
    assert res.returncode == 2
    assert "cameras[0].zones[0].rules[0].classes" in res.stderr and "unicorn" in res.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "configs").glob("edge*.yaml")))
def test_shipped_example_configs_are_valid(name: str) -> None:
    res = run_cli("config", "check", str(REPO_ROOT / "configs" / name))
    assert res.returncode == 0, res.stderr


def test_config_check_reports_every_kind_of_problem_in_one_run_with_suggestions(tmp_path: Path) -> None:
    """Schema errors, unknown classes and a missing model file together, each with its line, and
    the closest valid name for a typo."""
    text = """\
edge_id: edge-01
site: north
timezon: UTC
model: {path: models/missing.onnx, input_size: 416}
cameras:
  - id: cam-01
    kind: skynet
    url: rtsp://127.0.0.1:8554/cam
    zones:
      - id: gate-north
        polygon: [[0.10, 0.30], [0.40, 0.30], [0.40, 0.95], [0.10, 0.95]]
        rules:
          - {type: illegal_parking, classes: [vehicel, persn], dwell_s: 60}
  - id: cam-02
    kind: handheld
    url: clip.mp4
    zones:
      - id: pavement
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
        rules:
          - {type: static_objekt, dwell_s: 30}
    analysis_fsp: 2
"""
    bad = write(tmp_path, text)
    res = run_cli("config", "check", str(bad))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if re.match(rf"{re.escape(str(bad))}:\d+: ", line)]
    expected = [
        f"{bad}:3: timezon: unknown field 'timezon' (did you mean 'timezone'?)",
        f"{bad}:4: model.path: model file {tmp_path / 'models/missing.onnx'} does not exist",
        f"{bad}:13: cameras[0].zones[0].rules[0].classes[0]: unknown class or group 'vehicel'; did you mean 'vehicle'",
        f"{bad}:13: cameras[0].zones[0].rules[0].classes[1]: unknown class or group 'persn'; did you mean 'person'?",
        f"{bad}:21: cameras[1].zones[0].rules[0]: unknown type 'static_objekt' (did you mean 'static_object'?)",
        f"{bad}:22: cameras[1].analysis_fsp: unknown field 'analysis_fsp' (did you mean 'analysis_fps'?)",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, res.stderr)
    assert len(lines) == len(expected), res.stderr
    assert f"{bad}: 6 problems" in res.stderr
