"""Occlusion memory and appearance: a resting object keeps its place and clock while hidden.

Scenes are synthetic (detections frame by frame, and where the rule looks at pixels, a rendered
picture: grey textured road, a car as a coloured block, an occluder as a light panel) with the
ground truth written next to each. 1280x720, the car at ``CAR_BOX``; rendered scenes run at
5 fps (an edge analyses 2-4), track-only ones at 10 fps.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from gridwarden.edge.analytics.rules import IllegalParkingRule, OccupiedSpaceRule
from gridwarden.edge.analytics.rules.base import PlaceMemory
from gridwarden.edge.analytics.rules.scene import SceneModel
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.types import Detections

from .scenes import BUS, CAR, CAR_BOX, FRAME, VEHICLES, context, dets, jitter, kinds, times

FRAME_DT = 0.1
STREET_FPS = 5.0
STREET_DT = 1 / STREET_FPS
KERB = Zone("kerb", [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)])
WHITE, RED, SILVER = (235, 235, 235), (40, 40, 200), (200, 200, 205)
# The panel of a lorry's roof that covers the car's place and more (no detector class fits it).
PANEL = (340, 420, 680, 640)


def rule(**overrides) -> IllegalParkingRule:
    params = dict(zone=KERB, camera_id="cam1", class_ids=VEHICLES, dwell_s=30.0, end_grace_s=1.0)
    params.update(overrides)
    return IllegalParkingRule(**params)


def road(seed: int = 0) -> np.ndarray:
    """Asphalt: mid grey with fixed fine texture and a white kerb line."""
    rng = np.random.default_rng(seed)
    image = (90 + rng.normal(0, 6, (FRAME[1], FRAME[0], 1))).clip(0, 255).astype(np.uint8).repeat(3, axis=2)
    image[600:606, :] = 220
    return image


def draw(image: np.ndarray, box, colour) -> np.ndarray:
    out = image.copy()
    x0, y0, x1, y1 = (int(v) for v in box)
    out[y0:y1, x0:x1] = colour
    out[y0 + 20 : y0 + 40, x0 + 20 : x1 - 20] = 40  # windscreen
    return out


def panel(image: np.ndarray) -> np.ndarray:
    out = image.copy()
    x0, y0, x1, y1 = PANEL
    out[y0:y1, x0:x1] = (178, 182, 186)
    out[y0 + 30 : y1 : 40, x0:x1] = (120, 124, 128)
    return out


def street(
    timeline: list[tuple[float, float, str]], stop: float, seed: int = 1
) -> Iterator[tuple[float, Detections, np.ndarray]]:
    """Frames of a timeline of (from, to, what): what is "white"/"red"/"silver" (a car at its
    place, detected), "unseen" (the white car there but not detected, as at dusk), "hidden" (the
    panel over the place, nothing detected) or "empty"."""
    rng = np.random.default_rng(seed)
    base = road()
    colours = {"white": WHITE, "red": RED, "silver": SILVER}
    for t in times(0, stop, fps=STREET_FPS):
        what = next((w for a, b, w in timeline if a <= t < b), "empty")
        if what in colours:
            yield t, dets([jitter(CAR_BOX, rng)], cls=CAR), draw(base, CAR_BOX, colours[what])
        elif what == "hidden":
            yield t, Detections.empty(), panel(base)
        elif what == "unseen":
            yield t, Detections.empty(), draw(base, CAR_BOX, WHITE)
        else:
            yield t, Detections.empty(), base


def run_scene(parking, frames, *, with_scene: bool = True):
    """Feed frames to the rule with track ids as a tracker would give them: a new id after each
    gap in the detections (the real tracker's lost timeout is shorter than these occlusions)."""
    model = SceneModel()
    events, track_id, seen_last = [], 0, False
    for t, d, image in frames:
        if len(d) and not seen_last:
            track_id += 1
        seen_last = bool(len(d))
        d.track_id[:] = track_id
        ctx = context(t)
        if with_scene:
            ctx.scene = model.update(image, t)
        events += parking.update(d, ctx)
    return events


def test_car_hidden_before_its_dwell_keeps_its_clock() -> None:
    """White car parks at 2.0; a lorry hides it 8.0-38.0 (30 s, far beyond end_grace_s and the
    tracker's timeout); it is seen again until 60.0, then the place is empty. Dwell 30 s is
    reached at 32.0 while it is hidden, so it starts when seen again at 38.0 with the clock run on
    (dwell 36 s); ended 1 s (end_grace_s) after 60.0."""
    timeline = [(2.0, 8.0, "white"), (8.0, 38.0, "hidden"), (38.0, 60.0, "white")]
    events = run_scene(rule(), street(timeline, 70.0))
    assert kinds(events) == ["started", "ended"]
    started, ended = events
    assert started.media_time == pytest.approx(38.0, abs=STREET_DT + 1e-6)
    assert started.dwell_s == pytest.approx(36.0, abs=2 * STREET_DT)
    assert ended.media_time == pytest.approx(61.0, abs=2 * STREET_DT)
    # Without the memory the clock starts again after the lorry: 56 s of parking never fire.
    assert run_scene(rule(occlusion_memory_s=0.0), street(timeline, 70.0)) == []


def test_open_incident_survives_an_occlusion_shorter_than_the_memory() -> None:
    """Started at 32.0 (parked 2.0, dwell 30); hidden 40.0-80.0 (40 s < 60 s memory); seen again
    to 100.0: one incident, ended 1 s after 100.0."""
    timeline = [(2.0, 40.0, "white"), (40.0, 80.0, "hidden"), (80.0, 100.0, "white")]
    events = [e for e in run_scene(rule(), street(timeline, 110.0)) if e.event != "updated"]
    assert kinds(events) == ["started", "ended"]
    assert events[0].media_time == pytest.approx(32.0, abs=STREET_DT + 1e-6)
    assert events[1].media_time == pytest.approx(101.0, abs=2 * STREET_DT)
    assert events[0].incident_id == events[1].incident_id


def test_car_the_detector_misses_but_the_picture_shows_keeps_counting() -> None:
    """At dusk the detector may miss a parked car for many frames. Detected 2.0-5.0, then not
    detected although plainly there until 50.0, then the place is empty: its place still shows
    it (signature), so dwell 30 s fires on time at 32.0 and the incident ends 1 s after 50.0."""
    timeline = [(2.0, 5.0, "white"), (5.0, 50.0, "unseen")]
    events = run_scene(rule(), street(timeline, 60.0))
    assert kinds(events) == ["started", "ended"]
    assert events[0].media_time == pytest.approx(32.0, abs=STREET_DT + 1e-6)
    assert events[1].media_time == pytest.approx(51.0, abs=2 * STREET_DT)


def test_occlusion_longer_than_the_memory_ends_the_incident() -> None:
    """Hidden from 40.0 for 50 s with a 20 s memory: ended at 60.0 (the memory ran out); the car
    seen again at 90.0 is a new object whose clock starts at 0."""
    timeline = [(2.0, 40.0, "white"), (40.0, 90.0, "hidden"), (90.0, 130.0, "white")]
    events = run_scene(rule(occlusion_memory_s=20.0), street(timeline, 125.0))
    assert kinds(events) == ["started", "ended", "started"]
    assert events[1].media_time == pytest.approx(60.0, abs=2 * STREET_DT)
    assert events[2].media_time == pytest.approx(120.0, abs=2 * STREET_DT)


def test_place_seen_empty_after_the_occluder_leaves_ends_at_once() -> None:
    """The car drives off while hidden (40.0-70.0); the lorry leaves at 70.0 and the road shows:
    ended at 70.0 + end_grace_s, not when the memory runs out (100.0)."""
    timeline = [(2.0, 40.0, "white"), (40.0, 70.0, "hidden")]
    events = run_scene(rule(), street(timeline, 110.0))
    assert kinds(events) == ["started", "ended"]
    assert events[1].media_time == pytest.approx(71.0, abs=2 * STREET_DT)


def test_a_different_car_at_the_same_place_is_a_new_incident() -> None:
    """White car parked 2.0-40.0, hidden 40.0-70.0; when the lorry leaves a RED car stands at the
    same place. The white car's incident ends end_grace_s after 70.0 (its place shows another
    car); the red car gets its own clock: started at 70.0 + 30."""
    timeline = [(2.0, 40.0, "white"), (40.0, 70.0, "hidden"), (70.0, 110.0, "red")]
    events = run_scene(rule(), street(timeline, 110.0))
    assert kinds(events) == ["started", "ended", "started"]
    first, ended, second = events
    assert ended.incident_id == first.incident_id != second.incident_id
    assert ended.media_time == pytest.approx(71.0, abs=2 * STREET_DT)
    assert second.media_time == pytest.approx(100.0, abs=2 * STREET_DT)


def test_limitation_a_different_car_of_the_same_colour_continues_the_incident() -> None:
    """The colour signature is the only cue: a silver car replacing a white one at the same place
    (both grey-bright to the signature) continues the first one's incident. Documented in
    gridwarden/edge/analytics/rules/scene.py."""
    timeline = [(2.0, 40.0, "white"), (40.0, 70.0, "hidden"), (70.0, 110.0, "silver")]
    events = run_scene(rule(), street(timeline, 110.0))
    assert [k for k in kinds(events) if k != "updated"] == ["started"]


def test_without_pixels_a_detected_bus_in_front_still_hides_the_car() -> None:
    """No scene (track-only callers): car parked 2.0-20.0, a bus track covering its place 20-40,
    the car seen again 40-50. Dwell 30 s is reached behind the bus, so the incident starts when
    the car is seen again (40.0, dwell 38 s); with nothing covering the empty place it ends
    end_grace_s after 50.0."""

    def frames():
        rng = np.random.default_rng(4)
        for t in times(0, 60):
            rows, ids, cls = [], [], []
            if 2.0 <= t < 20.0 or 40.0 <= t < 50.0:
                rows.append(jitter(CAR_BOX, rng))
                ids.append(1 if t < 20 else 2)
                cls.append(CAR)
            if 20.0 <= t < 40.0:
                rows.append([360, 400, 700, 620])
                ids.append(7)
                cls.append(BUS)
            yield t, dets(rows, cls=cls, ids=ids)

    parking = rule(class_ids={CAR})
    events = []
    for t, d in frames():
        events += parking.update(d, context(t))
    assert kinds(events) == ["started", "ended"]
    assert events[0].media_time == pytest.approx(40.0, abs=FRAME_DT + 1e-6)
    assert events[0].dwell_s == pytest.approx(38.0, abs=2 * FRAME_DT)
    assert events[1].media_time == pytest.approx(51.0, abs=2 * FRAME_DT)
    # Without the memory the bus ends the first sighting's clock: nothing fires.
    short = rule(class_ids={CAR}, occlusion_memory_s=0.0)
    assert [e for t, d in frames() for e in short.update(d, context(t))] == []


def test_memory_does_not_keep_places_a_moving_car_passed_through() -> None:
    """Only objects that rested MIN_REST_FOR_MEMORY_S are remembered through an occlusion: a car
    driving through, with a bus track covering where it was, leaves no lingering places."""
    memory = PlaceMemory(match_iou=0.5, stationary_tolerance=0.15, end_grace_s=1.0, occlusion_memory_s=60.0)
    bus = dets([[0, 400, 1280, 700]], cls=BUS, ids=[9])
    for i in range(50):
        x = 40.0 * i
        memory.step(dets([[x, 480, x + 200, 580]], ids=[1]), FRAME_DT, occluders=bus)
    for _ in range(15):
        memory.step(Detections.empty(), FRAME_DT, occluders=bus)
    assert len(memory) > 0 and all(memory.gone(o) for o in memory.objects)
    # A car that rested 3 s at the last place IS remembered behind the bus.
    memory.step(dets([[500, 480, 700, 580]], ids=[2]), 3.0, occluders=bus)
    memory.step(dets([[500, 480, 700, 580]], ids=[2]), FRAME_DT, occluders=bus)
    memory.step(Detections.empty(), 5.0, occluders=bus)
    assert [o.track_id for o in memory.objects if not memory.gone(o)] == [2]


def test_static_object_path_backdates_the_zone_clock() -> None:
    """Goods put down at 0 s, reported by the static-object model only at 10 s (its settling
    time) with their age: a 30 s rule fires at 30 s, not 40 s."""
    pavement = Zone("pavement", [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])
    params = dict(
        zone=pavement, camera_id="cam1", class_ids=None, coverage=0.05, dwell_s=30.0, stationary_s=0.0
    )
    backdated, plain = OccupiedSpaceRule(backdate=True, **params), OccupiedSpaceRule(**params)
    fired: dict[str, float] = {}
    for t in times(0, 45):
        goods = dets([[100, 100, 500, 400]], ids=[0]) if t >= 10.0 else Detections.empty()
        ages = np.full(len(goods), t)
        for name, r in (("backdated", backdated), ("plain", plain)):
            for e in r.update(goods, context(t), ages=ages):
                fired.setdefault(name, e.media_time)
    assert fired["backdated"] == pytest.approx(30.0, abs=FRAME_DT + 1e-6)
    assert fired["plain"] == pytest.approx(40.0, abs=FRAME_DT + 1e-6)


def test_occlusion_memory_is_validated() -> None:
    with pytest.raises(ValueError, match="occlusion_memory_s"):
        rule(occlusion_memory_s=-1.0)
