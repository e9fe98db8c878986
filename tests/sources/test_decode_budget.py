"""Decode budget: keyframes only for slow-rule cameras whose GOP allows it, else every frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwarden.edge.capture.decode_budget import DecodeBudget, rules_are_slow
from gridwarden.edge.capture.sources import SourceOptions, StreamReader
from gridwarden.edge.config import load_edge_config_text
from tests.support.main_streams import build_main_stream
from tests.support.paths import CAR_CLIP


def _keyframes(budget: DecodeBudget, every_s: float, count: int = 4) -> None:
    for i in range(count):
        budget.on_packet(is_keyframe=True, media_time=i * every_s)
        budget.on_packet(is_keyframe=False, media_time=i * every_s + 0.04)


def test_slow_rules_and_a_2s_gop_decode_keyframes_only() -> None:
    budget = DecodeBudget("auto", rules_slow=lambda: True, analysis_fps=2.0)
    assert budget.keyframes_only() is False and "measuring" in budget.reason  # nothing seen yet
    _keyframes(budget, 2.0)
    assert budget.keyframes_only() is True and budget.mode == "keyframes_only"
    assert budget.keyframe_interval_s == 2.0 and "0.5 fps" in budget.reason


@pytest.mark.parametrize(
    ("kwargs", "gop_s", "reason"),
    [
        ({"rules_slow": lambda: False}, 2.0, "a rule waits less than 30 s"),
        ({"rules_slow": lambda: True}, 4.8, "below the 0.5 fps"),
        ({"rules_slow": lambda: True, "moving_camera": True}, 1.0, "moving camera"),
    ],
)
def test_every_frame_is_decoded_otherwise(kwargs: dict, gop_s: float, reason: str) -> None:
    budget = DecodeBudget("auto", analysis_fps=2.0, **kwargs)
    _keyframes(budget, gop_s)
    assert budget.keyframes_only() is False and budget.mode == "all_frames" and reason in budget.reason


def test_a_low_analysis_rate_accepts_a_longer_gop() -> None:
    budget = DecodeBudget("auto", rules_slow=lambda: True, analysis_fps=0.2)
    _keyframes(budget, 4.8)
    assert budget.keyframes_only() is True  # 0.21 keyframes a second >= the 0.2 fps asked for


@pytest.mark.parametrize("setting", [True, False])
def test_the_config_overrides_the_budget(setting: bool) -> None:
    budget = DecodeBudget(setting, rules_slow=lambda: not setting, analysis_fps=2.0)
    _keyframes(budget, 2.0)
    assert (
        budget.keyframes_only() is setting
        and budget.reason == f"config: keyframes_only: {str(setting).lower()}"
    )


def test_rules_are_slow_reads_every_rule_of_every_zone() -> None:
    def camera(dwells: list[float]):  # type: ignore[no-untyped-def]
        rules = ", ".join(f"{{type: illegal_parking, dwell_s: {d}}}" for d in dwells)
        text = f"edge_id: e\ncameras:\n  - id: c\n    url: x.mp4\n    zones:\n      - id: z\n        polygon: [[0,0],[1,0],[1,1]]\n        rules: [{rules}]\n"
        return load_edge_config_text(text).cameras[0]

    assert rules_are_slow(camera([30, 120]))
    assert not rules_are_slow(camera([30, 29.9]))
    assert not rules_are_slow(load_edge_config_text("edge_id: e\ncameras: [{id: c, url: x.mp4}]").cameras[0])


def _read(path: Path, budget: DecodeBudget) -> tuple[StreamReader, list[float]]:
    reader = StreamReader(
        "cam",
        SourceOptions(url=str(path), analysis_fps=2.0),
        on_packet=lambda packet, t: budget.on_packet(bool(packet.is_keyframe), t),
        keyframes_policy=budget.keyframes_only,
    )
    return reader, [frame.media_time for frame in reader.frames()]


def test_a_real_stream_switches_to_keyframes_once_the_gop_is_known(tmp_path: Path) -> None:
    clip = build_main_stream(CAR_CLIP, tmp_path / "gop2.mp4", size=(384, 216))  # 12.5 fps, GOP 2 s, 30 s
    reader, times = _read(clip, DecodeBudget("auto", rules_slow=lambda: True, analysis_fps=2.0))
    assert reader.skipping_nonkey
    later = [t for t in times if t > 4.1]
    assert later and all(abs(t / 2.0 - round(t / 2.0)) < 0.01 for t in later)  # keyframes only
    assert len(later) >= 12  # still one frame every 2 s over the remaining ~26 s
    # 4 s of every frame (50) then one frame per GOP: far below the 377 frames of the clip.
    assert reader.decoded_frames <= 50 + 16


def test_a_real_stream_with_a_long_gop_keeps_every_frame() -> None:
    budget = DecodeBudget("auto", rules_slow=lambda: True, analysis_fps=2.0)
    reader, times = _read(CAR_CLIP, budget)  # a keyframe every 4.8 s
    assert not reader.skipping_nonkey and reader.decoded_frames == 377
    assert "keyframe every 4.8 s is below" in budget.reason and len(times) >= 58
