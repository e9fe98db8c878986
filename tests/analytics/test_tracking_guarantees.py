"""Tracker guarantees that a mutation of tracking.py must break (issue 12 item 14).

Each test names the mutation in ``bench/mutation_check.py`` that turns it red.
"""

from __future__ import annotations

import pytest

from gridwarden.edge.analytics.tracking import Tracker

from .scenes import dets

CAR = (100.0, 100.0, 180.0, 140.0)


def test_lost_track_is_not_revived_by_a_low_score_detection() -> None:
    # Mutation "tracking: low score revives a lost track": stage 2 offered to lost tracks too.
    tracker = Tracker(min_hits=2)
    for t in (0.0, 0.1, 0.2):
        out = tracker.update(dets([CAR], conf=0.9), t)
    assert out.track_id is not None and out.track_id.tolist() == [1]
    assert len(tracker.update(dets([]), 0.3)) == 0  # missed: the track is lost
    assert tracker.tracks[1].lost
    # A low-score detection (below persist_threshold too) at the lost track's place: ByteTrack
    # offers low scores only to tracks still visible, so this is noise, not the car.
    out = tracker.update(dets([CAR], conf=0.2), 0.4)
    assert len(out) == 0
    assert tracker.tracks[1].lost
    assert tracker.tracks[1].last_seen == 0.2
    # A confident detection does bring it back under its old id.
    out = tracker.update(dets([CAR], conf=0.9), 0.5)
    assert out.track_id is not None and out.track_id.tolist() == [1]


def test_prediction_horizon_is_capped_so_a_car_that_stopped_behind_an_occluder_keeps_its_id() -> None:
    # Mutation "tracking: prediction horizon uncapped". A car moves +20 px/s for 1 s, disappears
    # for 4 s (within lost_timeout_s = 5) and is seen again 40 px further: it stopped after the
    # 2 s the tracker extrapolates. Uncapped, the prediction runs 80 px on and misses it.
    tracker = Tracker(min_hits=2, lost_timeout_s=5.0)
    x = 0.0
    for i in range(11):
        t = i / 10
        x = 20.0 * t
        out = tracker.update(dets([(x, 100.0, x + 40.0, 120.0)], conf=0.9), t)
    assert out.track_id is not None and out.track_id.tolist() == [1]
    assert tracker.tracks[1].predict(1.0 + 4.0)[0] == pytest.approx(x + 40.0)  # 2 s of 20 px/s, not 4 s
    for t in (2.0, 3.0, 4.0):
        assert len(tracker.update(dets([]), t)) == 0
    stopped = (x + 40.0, 100.0, x + 80.0, 120.0)
    out = tracker.update(dets([stopped], conf=0.9), 5.0)
    assert out.track_id is not None and out.track_id.tolist() == [1]
