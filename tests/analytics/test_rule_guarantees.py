"""Dwell-rule guarantees that a mutation of rules/ must break (issue 12 item 14).

Each test names the mutation in ``bench/mutation_check.py`` that turns it red. Scripted track ids,
no tracker: the rule alone is under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.rules import IllegalParkingRule
from gridwarden.edge.analytics.rules.base import PlaceMemory
from gridwarden.edge.analytics.zones import Zone

from .scenes import CAR_BOX, FRAME, VEHICLES, context, dets, kinds, times

KERB = Zone("kerb", [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)])  # lower half of the frame


def rule() -> IllegalParkingRule:
    return IllegalParkingRule(zone=KERB, camera_id="cam1", class_ids=VEHICLES, dwell_s=30.0, end_grace_s=3.0)


def test_resolution_change_mid_stream_rescales_remembered_places() -> None:
    # Mutation "rules: places not rescaled". The camera switches from 1280x720 to its 640x360
    # substream 20 s into a car's stay: the same car, half the pixels. Its clock must go on, so
    # the incident starts at 30 s, not 30 s after the switch.
    parking = rule()
    half = (FRAME[0] // 2, FRAME[1] // 2)
    small_box = tuple(v / 2 for v in CAR_BOX)
    events = []
    for t in times(0.0, 45.0):
        frame, box = (FRAME, CAR_BOX) if t < 20.0 else (half, small_box)
        events += parking.update(dets([box], ids=[1]), context(t, frame=frame))
    assert kinds(events) == ["started"]
    assert events[0].media_time == pytest.approx(30.0, abs=0.11)
    assert len(parking.places) == 1
    assert np.allclose(parking.places.objects[0].ref, small_box)


def test_media_time_going_backwards_neither_rewinds_nor_breaks_the_clock() -> None:
    # Mutation "rules: media time going back not handled" (a negative step). The stream restarts
    # at pts 0 after 20 s of a parked car: the car stays, so its clock keeps its 20 s and runs on.
    parking = rule()
    events = []
    for t in times(100.0, 120.0):
        events += parking.update(dets([CAR_BOX], ids=[1]), context(t))
    for t in times(0.0, 15.0):
        events += parking.update(dets([CAR_BOX], ids=[1]), context(t))
        assert all(dwell >= 0.0 for _, dwell, _ in parking.timers())
    assert kinds(events) == ["started"]
    # 19.9 s before the restart + 10.1 s after it = 30 s of dwell.
    assert events[0].media_time == pytest.approx(10.1, abs=0.11)
    assert events[0].dwell_s == pytest.approx(30.0, abs=0.11)


@pytest.mark.parametrize("order", [(3, 5), (5, 3)])
def test_tie_between_tracks_at_one_place_goes_to_the_object_s_own_track(order: tuple[int, int]) -> None:
    # Mutation "rules: ties by input order". Two tracks with the same box at a remembered place
    # (a duplicate detection): the one whose id the object already carries keeps it, whatever
    # order the tracker lists them in; the other becomes a new object.
    memory = PlaceMemory(match_iou=0.5, stationary_tolerance=0.2)
    memory.step(dets([CAR_BOX], ids=[3]), 0.1)
    memory.step(dets([CAR_BOX, CAR_BOX], ids=list(order)), 0.1)
    assert [(o.key, o.track_id) for o in memory.objects] == [(1, 3), (2, 5)]
    assert memory.objects[0].dwell_s == pytest.approx(0.1)  # its clock, not a new one
