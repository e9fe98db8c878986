"""Reconfiguring a camera live keeps the timers and open incidents of zones that did not change,
and apply_to_runner swaps a real EdgeRunner's analytics."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.camera_analytics import CameraAnalytics
from gridwarden.edge.analytics.detector.classes import COCO80
from gridwarden.edge.analytics.rules.base import IncidentUpdate
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.runner import EdgeRunner
from gridwarden.edge.transport.config_sync import apply_to_runner
from gridwarden.edge.types import Detections, Frame
from tests.config_sync.conftest import edge_yaml, zone_yaml
from tests.support.paths import CAR_CLIP

TOP = "[[0.0, 0.0], [1.0, 0.0], [1.0, 0.45], [0.0, 0.45]]"
IMAGE = np.zeros((100, 100, 3), dtype=np.uint8)
CAR = Detections(xyxy=[[30, 60, 60, 90]], confidence=[0.9], class_id=[COCO80.index("car")])


def _drive(analytics: CameraAnalytics, times: list[float]) -> list[IncidentUpdate]:
    """A parked car in the lower half (zone kerb-a) at each media time."""
    updates = []
    for t in times:
        result = analytics.process(Frame("cam-1", IMAGE, media_time=t, wall_time=1e9 + t), CAR)
        updates += result.updates
    return updates


def _analytics(text: str) -> CameraAnalytics:
    cfg = load_edge_config_text(text)
    return CameraAnalytics(cfg.cameras[0], cfg, COCO80)


def test_unchanged_zone_keeps_its_rule_and_timer_when_a_zone_is_added() -> None:
    before = _analytics(edge_yaml(zone_yaml("kerb-a", dwell_s=5)))
    assert _drive(before, [0.0, 1.0, 2.0, 3.0]) == []  # dwell 5 s: nothing yet
    rule = before.zones[0].rules[0]
    [(_, dwell_before, open_before)] = rule.timers()
    assert dwell_before >= 2.0 and not open_before

    cfg = load_edge_config_text(edge_yaml(zone_yaml("kerb-a", dwell_s=5), zone_yaml("kerb-b", polygon=TOP)))
    after = before.reconfigured(cfg.cameras[0], cfg)
    assert after is not before
    assert after.zones[0].rules[0] is rule, "the unchanged zone must keep its rule object"
    assert after.tracker is before.tracker
    assert [z.zone.zone_id for z in after.zones] == ["kerb-a", "kerb-b"]

    # The timer continues: the incident starts at 5 s of dwell counted from the car's arrival,
    # not 5 s after the reconfiguration.
    # Control: the same scene without any reconfiguration.
    updates = _drive(after, [4.0, 5.0, 6.0, 7.0])
    control = _drive(_analytics(edge_yaml(zone_yaml("kerb-a", dwell_s=5))), [float(t) for t in range(8)])
    started = [(u.zone, u.media_time) for u in updates if u.event == "started"]
    assert started == [(u.zone, u.media_time) for u in control if u.event == "started"]
    assert started and started[0][1] <= 6.0


def test_changed_zone_gets_fresh_rules() -> None:
    before = _analytics(edge_yaml(zone_yaml("kerb-a", dwell_s=5), zone_yaml("kerb-b", polygon=TOP)))
    _drive(before, [0.0, 1.0, 2.0, 3.0])
    old_a, old_b = before.zones[0].rules[0], before.zones[1].rules[0]

    cfg = load_edge_config_text(edge_yaml(zone_yaml("kerb-a", dwell_s=8), zone_yaml("kerb-b", polygon=TOP)))
    after = before.reconfigured(cfg.cameras[0], cfg)
    assert after.zones[0].rules[0] is not old_a and after.zones[0].rules[0].dwell_s == 8
    assert after.zones[1].rules[0] is old_b
    assert after.zones[0].rules[0].timers() == []  # the changed zone starts counting afresh
    updates = _drive(after, [4.0, 5.0, 6.0, 7.0, 8.0])
    assert [u for u in updates if u.event == "started"] == []  # 8 s dwell from 4.0: not before 12


def test_apply_to_runner_swaps_analytics_of_a_real_runner() -> None:
    v1 = load_edge_config_text(edge_yaml(zone_yaml("kerb-a"), url=str(CAR_CLIP)))
    events: list[object] = []
    runner = EdgeRunner(v1, detector=None, sink=events.append)  # built, never started
    frame = Frame("cam-1", IMAGE, media_time=0.0, wall_time=1e9)
    runner.analyse([frame])
    old = runner.analytics["cam-1"]
    kept_rule = old.zones[0].rules[0]

    v2 = load_edge_config_text(
        edge_yaml(zone_yaml("kerb-a"), zone_yaml("kerb-b", polygon=TOP), url=str(CAR_CLIP))
    )
    result = apply_to_runner(runner, v2)
    assert result.reconfigured == ["cam-1"] and result.needs_restart == []
    assert runner.config is v2
    new = runner.analytics["cam-1"]
    assert new is not old and new.zones[0].rules[0] is kept_rule
    assert [z.zone.zone_id for z in new.zones] == ["kerb-a", "kerb-b"]
    [result_after] = runner.analyse([Frame("cam-1", IMAGE, media_time=1.0, wall_time=1e9 + 1)])
    assert result_after.frame.media_time == 1.0

    v3 = load_edge_config_text(edge_yaml(zone_yaml("kerb-a"), url="rtsp://10.0.0.1/other"))
    assert apply_to_runner(runner, v3).needs_restart == ["camera cam-1: url changed"]


def test_apply_to_runner_changes_nothing_when_a_camera_cannot_be_rebuilt() -> None:
    v1 = load_edge_config_text(edge_yaml(zone_yaml("kerb-a"), url=str(CAR_CLIP)))
    runner = EdgeRunner(v1, detector=None, sink=lambda event: None)
    before = dict(runner.analytics)
    # Without a detector the runner knows no class names: 'car' cannot be resolved (a group can).
    bad = load_edge_config_text(edge_yaml(zone_yaml("kerb-a", classes="[car]"), url=str(CAR_CLIP)))
    with pytest.raises(ValueError, match="unknown class"):
        apply_to_runner(runner, bad)
    assert runner.analytics == before and runner.config is v1
