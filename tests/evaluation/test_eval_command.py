"""``gridwarden eval`` on small scenarios: scoring rules, exit status, JSON and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gridwarden.cli import main
from gridwarden.evaluation.scoring import ObservedIncident, score_zone
from gridwarden.evaluation.truth import ExpectedIncident, load_scenario
from gridwarden.yamlconfig import ConfigError
from tests.support.paths import CAR_CLIP, REPO_ROOT, YOLOX_NANO
from tests.support.scenarios import PARKING_ZONE

# car-detection.mp4 as recorded: cars drive through the zone and none stops for 8 s.
CONFIG = f"""\
edge_id: edge-eval
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
cameras:
  - id: cam-lot
    url: unused.mp4
    analysis_fps: 2
    zones:
      - id: no-parking
        polygon: {PARKING_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: 8}}
"""


def write_scenario(folder: Path, name: str, zones: str, clip: Path = CAR_CLIP) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edge.yaml").write_text(CONFIG)
    path = folder / f"{name}.scenario.yaml"
    path.write_text(f"clip: {clip}\nconfig: edge.yaml\ntolerance_s: 2\nzones:\n{zones}")
    return path


def obs(start: float, end: float | None, zone: str = "z", rule: str = "illegal_parking") -> ObservedIncident:
    return ObservedIncident(f"id-{start}", zone, rule, start, end)


def test_scoring_found_missed_false_and_ends() -> None:
    expected = [ExpectedIncident(start=10, end=40), ExpectedIncident(start=100, end=None)]
    observed = [obs(11.5, 41.0), obs(55.0, 60.0), obs(101.0, 130.0), obs(10.0, 20.0, zone="other")]
    score = score_zone("z", expected, observed, tolerance_s=2.0)
    assert (score.expected, score.found, score.missed, score.false) == (2, 2, 0, 1)
    assert [m.end_ok for m in score.matches] == [True, False]  # the second should still be open
    assert score.matches[1].end_problem == "ended at 130.0, expected to stay open"
    assert score.matches[0].start_error == pytest.approx(1.5) and not score.passed
    late = score_zone("z", [ExpectedIncident(start=10, end=40)], [obs(12.5, 40.0)], tolerance_s=2.0)
    assert (late.found, late.missed, late.false) == (0, 1, 1)
    by_rule = score_zone("z", [ExpectedIncident(start=10, rule="static_object")], [obs(10.0, None)], 2.0)
    assert (by_rule.found, by_rule.missed, by_rule.false) == (0, 1, 1)
    assert score_zone("z", [ExpectedIncident(start=10, end=None)], [obs(10.0, None)], 2.0).passed


def test_truth_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(
        "clip: a.mp4\nconfig: b.yaml\nzones:\n  kerb:\n    - {start: 50, end: 10}\n    - {strat: 3}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    text = str(err.value)
    assert f"{path}:5: zones.kerb[0]" in text and "before start" in text
    assert f"{path}:6: zones.kerb[1].strat" in text


def test_exit_status_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_scenario(tmp_path / "good", "drive-through", "  no-parking: []\n")
    assert main(["eval", str(tmp_path / "good"), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "drive-through" in table and "TOTAL" in table and "1/1 scenarios ok" in table

    # The same footage claimed to hold a parked car: missed, exit 1, and the JSON says why.
    write_scenario(tmp_path / "bad", "claims-a-car", "  no-parking:\n    - {start: 12.0, end: 20.0}\n")
    assert main(["eval", str(tmp_path / "bad"), "--json", "--quiet"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    [z] = report["scenarios"][0]["zones"]
    assert (z["expected"], z["found"], z["missed"], z["false"]) == (1, 0, 1, 0)
    assert report["scenarios"][0]["detector_calls"] > 0 and report["scenarios"][0]["detector_cpu_s"] > 0


def test_unrunnable_scenarios_exit_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path)]) == 2
    assert "no *.scenario.yaml" in capsys.readouterr().err
    write_scenario(tmp_path / "a", "missing-clip", "  no-parking: []\n", clip=tmp_path / "nope.mp4")
    assert main(["eval", str(tmp_path / "a"), "--quiet"]) == 2
    assert "nope.mp4 does not exist" in capsys.readouterr().err
    write_scenario(tmp_path / "b", "unknown-zone", "  kerb: []\n")
    assert main(["eval", str(tmp_path / "b"), "--quiet"]) == 2
    assert "no zone 'kerb' in camera 'cam-lot'" in capsys.readouterr().err


def test_help_explains_the_scenario_format() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", "eval", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert res.returncode == 0
    for words in (
        "SCENARIOS_DIR",
        ".scenario.yaml",
        "tolerance_s",
        "missed",
        "false",
        "--json",
        "Exit status",
    ):
        assert words in res.stdout


def test_docstring_example_of_the_scoring_holds() -> None:
    import doctest

    import gridwarden.evaluation.scoring as scoring

    result = doctest.testmod(scoring)
    assert result.attempted > 0 and result.failed == 0
