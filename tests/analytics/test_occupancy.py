"""Occupied public space on synthetic scenes: coverage threshold, hysteresis, clearing.

The pavement zone is the lower-left quarter of a 1280x720 frame (640x360 px). Stall boxes span
its full height, so a stall's width / 640 is the coverage it adds. An object counts once it has
held its place for ``stationary_s`` (2 s), then the zone must stay covered for ``dwell_s`` (10 s).
"""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.rules import OccupiedSpaceRule, Schedule
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.types import Detections

from .scenes import MONDAY_NOON_UTC, PERSON, context, dets, jitter, kinds, run, times

FRAME_DT = 0.1
PAVEMENT = Zone("pavement", [(0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (0.0, 1.0)])
STALL_1 = (0.0, 360.0, 192.0, 720.0)  # 30 % of the zone
STALL_2 = (192.0, 360.0, 384.0, 720.0)  # 30 %
STALL_3 = (384.0, 360.0, 480.0, 720.0)  # 15 %


def rule(**overrides) -> OccupiedSpaceRule:
    params = dict(
        zone=PAVEMENT,
        camera_id="cam1",
        class_ids=None,
        coverage=0.5,
        dwell_s=10.0,
        stationary_s=2.0,
        end_grace_s=3.0,  # the scenarios' timings are written for a 3 s grace (the default is 5 s)
    )
    params.update(overrides)
    return OccupiedSpaceRule(**params)


def scene(
    spans: dict[tuple[float, ...], tuple[float, float]], stop: float, *, drop_every: int = 0, seed: int = 0
):
    """`spans` maps a box to its (from, until) presence; optionally drop every n-th frame."""
    rng = np.random.default_rng(seed)
    for i, t in enumerate(times(0, stop)):
        if drop_every and i % drop_every == drop_every - 1:
            yield t, Detections.empty()
            continue
        boxes = [jitter(box, rng, px=1.0) for box, (a, b) in spans.items() if a <= t < b]
        yield t, dets(boxes, cls=PERSON, ids=list(range(1, len(boxes) + 1)))


def test_starts_only_once_the_coverage_threshold_is_crossed_for_the_dwell() -> None:
    assert run(rule(), scene({STALL_1: (0, 60)}, 60)) == []  # 30 % < 50 %
    # Stall 2 arrives at 20 s: counts from 22 s, zone covered 60 % from then, started at 32 s.
    events = run(rule(), scene({STALL_1: (0, 60), STALL_2: (20, 60)}, 60))
    assert kinds(events) == ["started"]
    started = events[0]
    assert started.media_time == pytest.approx(32.0, abs=FRAME_DT + 1e-6)
    assert started.coverage == pytest.approx(0.6, abs=0.02)
    assert started.dwell_s == pytest.approx(10.0, abs=FRAME_DT + 1e-6)
    assert len(started.objects) == 2 and started.classes == ["person"]
    assert started.rule == "occupied_space" and started.zone == "pavement"


def test_hysteresis_keeps_the_incident_between_release_and_start_thresholds() -> None:
    """60 % from 0 s (started 12 s). At 20 s stall 2 leaves and a smaller stall 3 arrives:
    45 % is below the 50 % start threshold but above the 40 % release one, so the incident goes
    on (updated, not ended). Stall 3 leaves at 40 s: 30 % -> ended at 39.9 + 3 s grace."""
    spans = {STALL_1: (0, 60), STALL_2: (0, 20), STALL_3: (20, 40)}
    events = run(rule(), scene(spans, 60))
    assert kinds(events)[0] == "started" and kinds(events)[-1] == "ended"
    assert kinds(events).count("started") == 1 and kinds(events).count("ended") == 1
    assert set(kinds(events)[1:-1]) == {"updated"} and len(events) <= 5
    assert all(e.coverage >= 0.4 for e in events[:-1])
    assert events[-1].media_time == pytest.approx(39.9 + 3.0, abs=FRAME_DT + 1e-6)
    assert events[-1].coverage == pytest.approx(0.3, abs=0.02)
    # Without hysteresis the same scene ends as soon as stall 2 is forgotten (19.9 + 3 s).
    strict = run(rule(release_ratio=1.0), scene(spans, 60))
    first_end = next(e for e in strict if e.event == "ended")
    assert first_end.media_time == pytest.approx(19.9 + 3.0, abs=FRAME_DT + 1e-6)


def test_ended_when_the_zone_clears_after_the_grace() -> None:
    events = run(rule(), scene({STALL_1: (0, 40), STALL_2: (0, 40)}, 60))
    assert kinds(events) == ["started", "ended"]
    assert events[0].media_time == pytest.approx(12.0, abs=FRAME_DT + 1e-6)
    assert events[1].media_time == pytest.approx(39.9 + 3.0, abs=FRAME_DT + 1e-6)
    assert events[1].coverage == 0.0 and events[1].incident_id == events[0].incident_id


def test_flickering_detections_neither_end_nor_restart() -> None:
    events = run(rule(), scene({STALL_1: (0, 60), STALL_2: (0, 60)}, 60, drop_every=3))
    assert kinds(events) == ["started"]


def test_updated_when_objects_change_not_every_frame() -> None:
    events = run(
        rule(update_interval_s=1000.0), scene({STALL_1: (0, 60), STALL_2: (0, 60), STALL_3: (30, 60)}, 60)
    )
    assert kinds(events) == ["started", "updated"]
    assert events[1].media_time == pytest.approx(32.0, abs=FRAME_DT + 1e-6)  # stall 3 counts
    assert len(events[1].objects) == 3 and events[1].coverage == pytest.approx(0.75, abs=0.02)


def test_people_walking_through_never_occupy() -> None:
    def crowd():
        for t in times(0, 40):
            boxes = [[x, 360, x + 150, 720] for x in (100 * t % 800 - 150 + k * 160 for k in range(4))]
            yield t, dets(boxes, cls=PERSON)

    assert run(rule(), crowd()) == []


def test_cooldown_schedule_and_camera_motion() -> None:
    busy = {STALL_1: (0, 30), STALL_2: (0, 30)}
    back = {STALL_1: (0, 30), STALL_2: (0, 30), (0.0, 360.0, 400.0, 720.0): (35, 90)}
    # Back at 35 s: without cooldown it fires again at 47 s; a 30 s cooldown holds it to ~62.9 s.
    again = run(rule(), scene(back, 90))
    assert kinds(again) == ["started", "ended", "started"]
    assert again[2].media_time == pytest.approx(47.0, abs=FRAME_DT + 1e-6)
    cooled = run(rule(cooldown_s=30.0), scene(back, 90))
    assert cooled[2].media_time == pytest.approx(cooled[1].media_time + 30.0, abs=FRAME_DT + 1e-6)
    night = Schedule("07:00-20:00")
    assert run(rule(schedule=night), scene(busy, 30), wall0=MONDAY_NOON_UTC + 10 * 3600) == []
    assert run(rule(), scene(busy, 30), moving=lambda t: True) == []


def test_timers_and_refusals() -> None:
    r = rule()
    for t, d in scene({STALL_1: (0, 5)}, 5):
        r.update(d, context(t))
    [(box, dwell, fired)] = r.timers()
    assert np.allclose(box, STALL_1, atol=2) and fired is False and dwell == 0.0
    assert r.current_coverage == pytest.approx(0.3, abs=0.02)
    with pytest.raises(ValueError, match="coverage"):
        rule(coverage=0.0)
