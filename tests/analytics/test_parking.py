"""Illegal parking on synthetic scenes with known ground truth (times in media seconds).

Ground truth per scene is written next to it. "±1 frame" is 0.1 s at 10 fps.
"""

from __future__ import annotations

import numpy as np
import pytest
from ulid import ULID

from gridwarden.contract import IncidentEvent
from gridwarden.edge.analytics.rules import IllegalParkingRule, Schedule
from gridwarden.edge.analytics.tracking import Tracker
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.transport.wire import to_wire
from gridwarden.edge.types import Detections

from .scenes import (
    BUS,
    CAR,
    CAR_BOX,
    FRAME,
    MONDAY_NOON_UTC,
    TRUCK,
    VEHICLES,
    context,
    dets,
    jitter,
    kinds,
    run,
    times,
)

FRAME_DT = 0.1
KERB = Zone("kerb", [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)])  # lower half of the frame


def rule(**overrides) -> IllegalParkingRule:
    # The scenarios' timings are written for a 3 s grace (the default is 5 s, as in the config).
    params = dict(zone=KERB, camera_id="cam1", class_ids=VEHICLES, dwell_s=30.0, end_grace_s=3.0)
    params.update(overrides)
    return IllegalParkingRule(**params)


def parked(arrive: float, leave: float, stop: float, *, box=CAR_BOX, seed: int = 0, cls: int = CAR):
    """A car standing at `box` from `arrive` until `leave` (exclusive), frames until `stop`."""
    rng = np.random.default_rng(seed)
    for t in times(0, stop):
        yield t, dets([jitter(box, rng)], cls=cls) if arrive <= t < leave else Detections.empty()


def one(events, kind: str):
    matching = [e for e in events if e.event == kind]
    assert len(matching) == 1, kinds(events)
    return matching[0]


def test_parked_car_is_one_incident_started_at_dwell_and_ended_after_grace() -> None:
    # Ground truth: car stands 5.0 s .. 64.9 s (last frame). Dwell 30 s -> started at 35.0
    # (+1 frame for the tracker's min_hits); ended at 64.9 + 3.0 grace.
    events = run(rule(), parked(5.0, 65.0, 75.0), tracker=Tracker())
    assert kinds(events) == ["started", "ended"]
    started, ended = events
    assert started.media_time == pytest.approx(35.0, abs=FRAME_DT + 1e-6)
    assert started.dwell_s == pytest.approx(30.0, abs=FRAME_DT + 1e-6)
    assert ended.media_time == pytest.approx(64.9 + 3.0, abs=FRAME_DT + 1e-6)
    assert ended.dwell_s == pytest.approx(59.8, abs=2 * FRAME_DT)
    assert started.incident_id == ended.incident_id
    assert ULID.from_str(started.incident_id)
    assert ended.started_media_time == started.media_time
    assert (started.camera, started.zone, started.rule, started.classes) == (
        "cam1",
        "kerb",
        "illegal_parking",
        ["car"],
    )
    assert len(started.objects) == 1
    expected_box = np.array(CAR_BOX) / [FRAME[0], FRAME[1], FRAME[0], FRAME[1]]
    assert np.allclose(started.objects[0].box, expected_box, atol=0.005)
    assert 0.7 < started.confidence <= 0.8 + 1e-6


def test_car_driving_off_ends_the_incident() -> None:
    """Parked 0-40 s, then drives off to the right at 200 px/s under the same track id. It stays
    "at its place" while within 15 % of its diagonal (~34 px, the first frame), so the last
    matched frame is 40.0 s and ended comes at 40.0 + 3 s."""

    def scene():
        rng = np.random.default_rng(2)
        for t in times(0, 50):
            dx = 0.0 if t < 40 else 200 * (t - 40 + 0.1)
            x1, y1, x2, y2 = CAR_BOX
            yield t, dets([jitter((x1 + dx, y1, x2 + dx, y2), rng, px=1.0)])

    events = run(rule(dwell_s=20.0), scene(), tracker=Tracker())
    assert kinds(events) == ["started", "ended"]
    assert events[1].media_time == pytest.approx(40.0 + 3.0, abs=FRAME_DT + 1e-6)


def test_drive_through_gives_nothing() -> None:
    """A car crawling through the zone at 40 px/s is inside it for ~30 s but never stationary,
    and a car stopping for 20 s (< dwell) gives nothing either."""

    def crawl():
        for t in times(0, 40):
            x = -200 + 40 * t
            yield t, dets([[x, 480, x + 200, 580]])

    assert run(rule(), crawl(), tracker=Tracker()) == []
    assert run(rule(), parked(5.0, 25.0, 40.0), tracker=Tracker()) == []


def test_flickering_detection_with_id_switches_is_one_incident() -> None:
    """Missed every third frame and a new track id every 2.5 s: still one car, one incident.
    Ground truth: stands 5.0 .. 64.9 s (last frame seen 64.8); dwell 30 s."""
    rng = np.random.default_rng(3)

    def flicker():
        for i, t in enumerate(times(0, 75)):
            if 5.0 <= t < 65.0 and i % 3 != 2:
                yield t, dets([jitter(CAR_BOX, rng)], ids=[100 + i // 25])
            else:
                yield t, Detections.empty()

    events = run(rule(), flicker())
    assert kinds(events) == ["started", "ended"]
    assert events[0].media_time == pytest.approx(35.0, abs=FRAME_DT + 1e-6)
    assert events[1].media_time == pytest.approx(64.8 + 3.0, abs=FRAME_DT + 1e-6)


def bus_passes(car_id_after: int):
    """Car parked from 0 s to the end (40 s) with track id 1. A bus (also a vehicle class)
    drives across it at 400 px/s between 10 and 16 s and hides it from 12.5 to 14.0 s; after
    that the car comes back with track id `car_id_after`. Dwell 20 s -> started at 20.0."""
    rng = np.random.default_rng(5)
    for t in times(0, 40):
        rows, ids, cls = [], [], []
        if not 12.5 <= t < 14.0:
            rows.append(jitter(CAR_BOX, rng))
            ids.append(1 if t < 12.5 else car_id_after)
            cls.append(CAR)
        if 10.0 <= t < 16.0:
            x = 400 * (t - 12) - 100
            rows.append([x, 430, x + 500, 600])
            ids.append(50)
            cls.append(BUS)
        yield t, dets(rows, cls=cls, ids=ids)


def test_occlusion_with_id_switch_keeps_the_clock() -> None:
    events = run(rule(dwell_s=20.0), bus_passes(car_id_after=9))
    assert kinds(events) == ["started"]
    assert events[0].media_time == pytest.approx(20.0, abs=FRAME_DT + 1e-6)
    assert events[0].objects[0].track_id == 9
    # Same scene without the id switch: identical timing.
    same = run(rule(dwell_s=20.0), bus_passes(car_id_after=1))
    assert [e.media_time for e in same] == [e.media_time for e in events]


def test_occlusion_through_the_real_tracker_keeps_the_clock() -> None:
    """A short tracker timeout makes the tracker really switch the car's id behind the bus."""
    tracker = Tracker(lost_timeout_s=0.5)
    parking = rule(dwell_s=20.0)
    car_ids: set[int] = set()
    events = []
    for t, d in bus_passes(car_id_after=1):
        tracks = tracker.update(Detections(xyxy=d.xyxy, confidence=d.confidence, class_id=d.class_id), t)
        car_ids.update(tracks.track_id[np.abs(tracks.xyxy[:, 0] - CAR_BOX[0]) < 5].tolist())
        events += parking.update(tracks, context(t))
    assert len(car_ids) >= 2, "the scene must force an id switch"
    assert kinds(events) == ["started"]
    assert events[0].media_time == pytest.approx(20.1, abs=FRAME_DT + 1e-6)


def test_out_of_schedule_gives_nothing_and_closing_ends_the_incident() -> None:
    schedule = Schedule("07:00-20:00", weekdays="mon-fri", tz="UTC")
    evening = MONDAY_NOON_UTC + 9 * 3600  # 21:00
    assert run(rule(dwell_s=20.0, schedule=schedule), parked(0.0, 60.0, 70.0), wall0=evening) == []
    # Control: the same scene at noon fires.
    assert kinds(run(rule(dwell_s=20.0, schedule=schedule), parked(0.0, 60.0, 70.0))) == ["started", "ended"]
    # Starts at 19:59:00 + 20 s; the window closes at 20:00:00 (media 60 s) while the car is still there.
    late = MONDAY_NOON_UTC + 7 * 3600 + 59 * 60
    events = run(rule(dwell_s=20.0, schedule=schedule), parked(0.0, 100.0, 100.0), wall0=late)
    assert kinds(events) == ["started", "ended"]
    assert events[0].media_time == pytest.approx(20.0, abs=1e-6)
    assert events[1].media_time == pytest.approx(60.0, abs=1e-6)


def test_min_size_ignores_small_objects() -> None:
    small = rule(dwell_s=10.0, min_size=0.2)  # boxes under 144 px high are ignored
    assert run(small, parked(0.0, 20.0, 20.0)) == []  # CAR_BOX is 100 px high
    big_box = (400.0, 400.0, 700.0, 580.0)
    assert kinds(run(rule(dwell_s=10.0, min_size=0.2), parked(0.0, 20.0, 20.0, box=big_box))) == ["started"]


def test_cooldown_blocks_the_same_place_after_an_end() -> None:
    """Car A parks 0-40 s (started 20 s, ended ~43 s); car B parks at nearly the same place from
    45 s. Without cooldown B fires at 65 s; with a 60 s cooldown not before ~103 s."""

    def two_cars():
        rng = np.random.default_rng(7)
        b_box = (410.0, 485.0, 610.0, 585.0)
        for t in times(0, 120):
            if t < 40:
                yield t, dets([jitter(CAR_BOX, rng)], ids=[1])
            elif t >= 45:
                yield t, dets([jitter(b_box, rng)], ids=[2])
            else:
                yield t, Detections.empty()

    free = run(rule(dwell_s=20.0), two_cars())
    assert kinds(free) == ["started", "ended", "started"]
    assert free[2].media_time == pytest.approx(65.0, abs=FRAME_DT + 1e-6)

    cooled = run(rule(dwell_s=20.0, cooldown_s=60.0), two_cars())
    assert kinds(cooled) == ["started", "ended", "started"]
    assert cooled[2].media_time == pytest.approx(cooled[1].media_time + 60.0, abs=FRAME_DT + 1e-6)
    assert cooled[2].incident_id != cooled[0].incident_id


def test_camera_moving_suspends_and_resets_dwell() -> None:
    # Moving all the time: nothing.
    assert run(rule(dwell_s=10.0), parked(0.0, 30.0, 30.0), moving=lambda t: True) == []
    # Moving 10-15 s: the 10 s accumulated before are dropped; the clock restarts at 15 s.
    events = run(rule(dwell_s=20.0), parked(0.0, 50.0, 50.0), moving=lambda t: 10.0 <= t < 15.0)
    assert kinds(events) == ["started"]
    assert events[0].media_time == pytest.approx(35.0, abs=FRAME_DT + 1e-6)


def test_camera_moving_does_not_end_an_open_incident() -> None:
    """Started at 20 s; the camera pans away 30-40 s (no detections, longer than the grace);
    back on the car 40-60 s. One incident, ended only after the car leaves at 60 s."""

    def scene():
        rng = np.random.default_rng(9)
        for t in times(0, 70):
            visible = t < 30.0 or 40.0 <= t < 60.0
            yield t, dets([jitter(CAR_BOX, rng)]) if visible else Detections.empty()

    events = run(rule(dwell_s=20.0), scene(), moving=lambda t: 30.0 <= t < 40.0)
    assert kinds(events) == ["started", "ended"]
    assert events[1].media_time == pytest.approx(59.9 + 3.0, abs=FRAME_DT + 1e-6)
    assert events[1].incident_id == events[0].incident_id


def test_updates_are_periodic_and_on_class_change_not_every_frame() -> None:
    periodic = run(rule(dwell_s=20.0, update_interval_s=10.0), parked(0.0, 65.0, 70.0))
    assert kinds(periodic) == ["started", "updated", "updated", "updated", "updated", "ended"]
    assert [round(e.media_time, 1) for e in periodic[1:5]] == [30.0, 40.0, 50.0, 60.0]

    def relabelled():
        rng = np.random.default_rng(11)
        for t in times(0, 80):
            cls, conf = (CAR, 0.6) if t < 25 else (TRUCK, 0.9)  # the model changes its mind
            yield t, dets([jitter(CAR_BOX, rng)], cls=cls, conf=conf)

    events = run(rule(dwell_s=20.0, update_interval_s=1000.0), relabelled())
    assert kinds(events) == ["started", "updated"]
    assert events[0].classes == ["car"] and events[1].classes == ["truck"]
    # The majority flips once TRUCK's weighted votes exceed CAR's: 25 s x 0.6 = 15 = t' x 0.9.
    assert events[1].media_time == pytest.approx(25.0 + 15.0 / 0.9, abs=0.2)


def test_two_cars_are_two_incidents() -> None:
    other = (800.0, 500.0, 1000.0, 600.0)

    def scene():
        for t in times(0, 30):
            yield t, dets([CAR_BOX, other], ids=[1, 2])

    events = run(rule(dwell_s=20.0), scene())
    assert kinds(events) == ["started", "started"]
    assert len({e.incident_id for e in events}) == 2


def test_only_objects_in_the_zone_and_of_the_classes_count() -> None:
    above_kerb = (400.0, 100.0, 600.0, 200.0)
    assert run(rule(dwell_s=5.0), parked(0.0, 10.0, 10.0, box=above_kerb)) == []
    assert run(rule(dwell_s=5.0, class_ids={CAR}), parked(0.0, 10.0, 10.0, cls=TRUCK)) == []
    assert kinds(run(rule(dwell_s=5.0, class_ids=None), parked(0.0, 10.0, 10.0, cls=TRUCK))) == ["started"]


def test_timers_show_dwell_for_drawing() -> None:
    r = rule(dwell_s=5.0)
    for t, d in parked(0.0, 10.0, 7.0):
        r.update(d, context(t))
    [(box, dwell, fired)] = r.timers()
    assert dwell == pytest.approx(6.9) and fired is True
    assert np.allclose(box, CAR_BOX, atol=3)


def test_events_convert_to_the_wire_contract() -> None:
    events = run(rule(dwell_s=5.0), parked(0.0, 10.0, 20.0))
    wire = [
        to_wire(e, site="north", edge_id="edge-01", seq=i, wall_time=MONDAY_NOON_UTC + e.media_time)
        for i, e in enumerate(events)
    ]
    assert [w.event for w in wire] == ["started", "ended"]
    assert IncidentEvent.model_validate_json(wire[0].model_dump_json()) == wire[0]
    assert wire[0].objects[0].class_name == "car" and wire[0].rule == "illegal_parking"


def test_refuses_frames_of_another_camera_and_bad_parameters() -> None:
    r = rule()
    ctx = context(0.0)
    ctx.camera_id = "cam2"
    with pytest.raises(ValueError, match="cam2"):
        r.update(Detections.empty(), ctx)
    with pytest.raises(ValueError, match="min_size"):
        rule(min_size=1.5)
    with pytest.raises(ValueError, match="dwell_s"):
        rule(dwell_s=-1)
