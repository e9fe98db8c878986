"""The whole edge pipeline on real footage with the real COCO detector, through `edge replay`.

Ground truth for each scenario is written down in tests/support/scenarios.py (parked car) or
below (person standing), read off the clips frame by frame.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import av
import pytest

from gridwarden.contract import IncidentEvent
from gridwarden.edge.config import load_edge_config
from gridwarden.edge.replay import ReplayStats, replay
from tests.e2e.conftest import write_config
from tests.support.paths import CAR_CLIP, PERSON_CLIP, REPO_ROOT, YOLOX_NANO
from tests.support.scenarios import PARKING_ZONE, ParkedCarScenario

DWELL_S = 60.0
TOLERANCE_S = 2.0

PARKING_CONFIG = f"""\
edge_id: edge-test
site: test
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups:
  # Seen from above, COCO models call cars bus, truck or cell phone (../shared/README.md).
  overhead_vehicle: [car, bus, truck, cell phone]
cameras:
  - id: cam-lot
    kind: skynet
    url: unused.mp4
    analysis_fps: 2
    zones:
      - id: no-parking
        polygon: {PARKING_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: {DWELL_S}, end_grace_s: 1}}
"""

# one-by-one-person-detection.mp4, 10 fps. Ground truth read off the clip at 1 s steps:
# the first person walks in at ~6.5 s, stands at the table from ~8.5 s to ~18.5 s and is gone
# from the zone by ~19.5 s; the second stands there from ~25 s to ~43 s.
PERSON_ZONE = [[0.35, 0.45], [0.78, 0.45], [0.78, 0.99], [0.35, 0.99]]
PERSON_DWELL_S = 5.0
FIRST_PERSON_STOPS = 8.5
FIRST_PERSON_LEAVES = 19.5

PERSON_CONFIG = f"""\
edge_id: edge-test
site: test
model: {{path: {YOLOX_NANO}, input_size: 416}}
cameras:
  - id: cam-room
    kind: estate
    url: unused.mp4
    analysis_fps: 2
    zones:
      - id: keep-clear
        polygon: {PERSON_ZONE}
        rules:
          - {{type: occupied_space, classes: [person], coverage: 0.15, dwell_s: {PERSON_DWELL_S}, end_grace_s: 1}}
"""


def run_replay(clip: Path, config_path: Path, stats: ReplayStats | None = None) -> list[IncidentEvent]:
    return list(replay(clip, load_edge_config(config_path), stats=stats))


@pytest.mark.slow
def test_parked_car_gives_exactly_one_incident_at_the_right_times(
    parked_car: ParkedCarScenario, tmp_path: Path
) -> None:
    stats = ReplayStats()
    events = run_replay(parked_car.path, write_config(tmp_path / "edge.yaml", PARKING_CONFIG), stats)
    parking = [e for e in events if e.rule == "illegal_parking"]
    started = [e for e in parking if e.event == "started"]
    ended = [e for e in parking if e.event == "ended"]
    assert len(started) == 1, [e.model_dump() for e in parking]
    assert len(ended) == 1, [e.model_dump() for e in parking]
    assert {e.incident_id for e in parking} == {started[0].incident_id}
    assert abs(started[0].media_time - parked_car.expected_start(DWELL_S)) <= TOLERANCE_S
    assert abs(ended[0].media_time - parked_car.leave_time) <= TOLERANCE_S
    assert started[0].camera == "cam-lot" and started[0].zone == "no-parking"
    assert set(started[0].classes) <= {"car", "bus", "truck", "cell phone"}
    assert started[0].objects and 0 < started[0].objects[0].box.x1 < started[0].objects[0].box.x2 < 1
    # the motion gate keeps the detector off most of the 90 s in which nothing moves
    assert stats.gated_frames > stats.frames * 0.5, stats


@pytest.mark.slow
def test_cars_driving_through_give_no_incident(tmp_path: Path) -> None:
    config = PARKING_CONFIG.replace(f"dwell_s: {DWELL_S}", "dwell_s: 8")
    events = run_replay(CAR_CLIP, write_config(tmp_path / "edge.yaml", config))
    assert events == []


@pytest.mark.slow
def test_person_standing_gives_occupied_space_incident(tmp_path: Path) -> None:
    events = run_replay(PERSON_CLIP, write_config(tmp_path / "edge.yaml", PERSON_CONFIG))
    occupied = [e for e in events if e.rule == "occupied_space"]
    started = [e for e in occupied if e.event == "started"]
    assert started, events
    first = started[0]
    assert abs(first.media_time - (FIRST_PERSON_STOPS + PERSON_DWELL_S)) <= TOLERANCE_S
    assert "person" in first.classes
    first_end = [e for e in occupied if e.event == "ended" and e.incident_id == first.incident_id]
    assert len(first_end) == 1
    assert abs(first_end[0].media_time - FIRST_PERSON_LEAVES) <= TOLERANCE_S
    # without the rule asking for it, the same clip raises nothing
    no_rule = PERSON_CONFIG.replace(
        "type: occupied_space, classes: [person]", "type: occupied_space, classes: [vehicle]"
    )
    assert run_replay(PERSON_CLIP, write_config(tmp_path / "other.yaml", no_rule)) == []


@pytest.mark.slow
def test_replay_command_prints_json_lines_and_writes_annotated_video(
    parked_car: ParkedCarScenario, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "edge.yaml", PARKING_CONFIG)
    annotated = tmp_path / "annotated.mp4"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridwarden.cli",
            "edge",
            "replay",
            str(parked_car.path),
            "--config",
            str(config),
            "--annotate",
            str(annotated),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["started", "ended"]
    for line in lines:
        assert {"event", "incident_id", "camera", "zone", "rule", "media_time", "classes"} <= line.keys()
    assert "replay cam-lot" in res.stderr  # the progress bar
    with av.open(str(annotated)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
        rate = float(stream.average_rate)
    # Every source frame is written (12.5 fps over the ~120 s clip), not only the analysed ones.
    assert abs(rate - 12.5) < 0.01 and abs(frames - 12.5 * 120) <= 15, (rate, frames)


@pytest.mark.slow
def test_readme_replay_example_raises_an_incident_at_the_source_frame_rate(tmp_path: Path) -> None:
    """The README's example, as printed there (the shared folder and model wherever they are
    on this machine): an incident, a clean progress bar, and an annotated video at the clip's
    own 10 fps rather than the 2 fps analysis rate."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert "edge replay ../shared/media/one-by-one-person-detection.mp4" in readme
    assert "--config configs/replay-example.yaml --annotate out.mp4" in readme
    config = (REPO_ROOT / "configs" / "replay-example.yaml").read_text()
    config = config.replace("../../shared/models/yolox_nano_coco.onnx", str(YOLOX_NANO))
    (tmp_path / "replay-example.yaml").write_text(config)
    annotated = tmp_path / "out.mp4"
    res = subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", "edge", "replay", str(PERSON_CLIP),
         "--config", str(tmp_path / "replay-example.yaml"), "--annotate", str(annotated)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    started = [e for e in events if e["event"] == "started"]
    assert started and started[0]["rule"] == "occupied_space", res.stdout
    assert abs(started[0]["media_time"] - (FIRST_PERSON_STOPS + PERSON_DWELL_S)) <= TOLERANCE_S
    # The progress bar counts media seconds with one decimal (no float noise).
    assert not re.search(r"\d\.\d{4,}/", res.stderr), res.stderr[-2000:]
    with av.open(str(annotated)) as container:
        stream = container.streams.video[0]
        assert abs(float(stream.average_rate) - 10.0) < 0.01
        frames = sum(1 for _ in container.decode(stream))
    with av.open(str(PERSON_CLIP)) as source:
        source_frames = sum(1 for _ in source.decode(video=0))
    assert abs(frames - source_frames) <= 2, (frames, source_frames)


def test_progress_bar_counts_media_seconds_without_float_noise(tmp_path: Path) -> None:
    """car-detection.mp4 is 12.5 fps: summing 0.48 s steps once printed 6.560000000000002/30.2."""
    config = (REPO_ROOT / "configs" / "replay-example.yaml").read_text()
    config = config.replace(
        "model:\n  path: ../../shared/models/yolox_nano_coco.onnx\n  input_size: 416\n", ""
    )
    config = config.replace(
        "type: occupied_space, classes: [person], coverage: 0.15,", "type: static_object,"
    )
    (tmp_path / "edge.yaml").write_text(config)
    res = subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", "edge", "replay", str(CAR_CLIP), "--config", str(tmp_path / "edge.yaml")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    shown = re.findall(r"\| ([\d.]+)/30\.2 s", res.stderr.replace("\r", "\n"))
    assert len(shown) >= 2, res.stderr[-2000:]
    assert all(re.fullmatch(r"\d+\.\d", n) for n in shown), shown
