"""Tracker behaviour on synthetic detections: stable ids, ByteTrack recovery, coasting, motion."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.tracking import Tracker, box_iou, greedy_match
from gridwarden.edge.types import Detections

from .scenes import BUS, CAR, dets, jitter, times


def moving_box(
    t: float, x0: float, vx: float, y: float = 300.0, w: float = 80.0, h: float = 50.0
) -> list[float]:
    x = x0 + vx * t
    return [x, y, x + w, y + h]


def test_box_iou_known_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    assert box_iou(a, b).round(4).tolist() == [[1.0, round(50 / 150, 4), 0.0, 0.0]]


def test_greedy_match_takes_best_pairs_first() -> None:
    score = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(greedy_match(score, score > 0.05)) == [(0, 0), (1, 1)]
    assert greedy_match(score, np.zeros_like(score, dtype=bool)) == []


def test_track_is_reported_after_min_hits_and_keeps_its_id() -> None:
    tracker = Tracker(min_hits=3)
    ids = []
    for t in times(0, 2):
        out = tracker.update(dets([moving_box(t, 100, 40)]), t)
        ids.append(out.track_id.tolist())
    assert ids[:2] == [[], []]
    assert all(i == [1] for i in ids[2:])


def test_one_frame_noise_never_becomes_a_track() -> None:
    tracker = Tracker()
    out = tracker.update(dets([[10, 10, 50, 50]]), 0.0)
    assert len(out) == 0
    for t in times(0.1, 2):
        assert len(tracker.update(Detections.empty(), t)) == 0
    assert tracker.tracks == {}


def test_id_survives_a_one_second_gap_while_moving() -> None:
    tracker = Tracker(lost_timeout_s=5.0)
    seen: dict[float, list[int]] = {}
    for t in times(0, 5):
        visible = not (2.0 <= t < 3.0)  # detector misses it for exactly 1 s
        d = dets([moving_box(t, 100, 60)]) if visible else Detections.empty()
        seen[round(t, 1)] = tracker.update(d, t).track_id.tolist()
    assert seen[1.9] == [1]
    assert seen[2.5] == []  # not reported while unseen
    assert seen[3.0] == [1] and seen[4.9] == [1]
    assert len(tracker.tracks) == 1


def test_ids_survive_two_objects_crossing() -> None:
    """A moves right at 50 px a frame, B left at 20; their boxes overlap
    for several frames mid-way and each keeps its id."""
    tracker = Tracker()
    a_ids, b_ids = set(), set()
    for t in times(0, 6):
        a, b = moving_box(t, 100, 500), moving_box(t, 1000, -200, y=310)
        out = tracker.update(dets([a, b], cls=[CAR, BUS]), t)
        for row in range(len(out)):
            y1 = float(out.xyxy[row, 1])  # A runs at y=300, B at y=310
            (a_ids if abs(y1 - a[1]) < 1 else b_ids).add(int(out.track_id[row]))
    assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids


def test_low_score_detection_keeps_the_track_bytetrack_second_stage() -> None:
    """Partly occluded: the score drops to 0.3 for a second. Stage two keeps the id."""

    def scene(tracker: Tracker) -> dict[float, list[int]]:
        seen = {}
        for t in times(0, 4):
            conf = 0.3 if 1.5 <= t < 2.5 else 0.9
            seen[round(t, 1)] = tracker.update(dets([moving_box(t, 100, 30)], conf=conf), t).track_id.tolist()
        return seen

    two_stage = scene(Tracker())
    assert all(two_stage[k] == [1] for k in two_stage if k >= 0.1)
    # With the second stage switched off (low threshold = high threshold) the object vanishes
    # (persistence off too: it would start a new track from the steady 0.3 detections).
    one_stage = scene(Tracker(low_threshold=0.5, persist_threshold=1.0))
    assert one_stage[2.0] == []


def test_low_score_detections_that_move_or_flicker_never_start_a_track() -> None:
    """Moderate scores start nothing unless steady at one place: clutter that jumps about, a
    detection seen only every other frame, and anything under ``persist_threshold``."""
    rng = np.random.default_rng(3)
    jumping = Tracker()
    for t in times(0, 3):
        x = float(rng.uniform(0, 1000))
        assert len(jumping.update(dets([[x, 10, x + 50, 60]], conf=0.3), t)) == 0
    flicker = Tracker()
    for i, t in enumerate(times(0, 3)):
        frame = dets([[10, 10, 60, 60]], conf=0.3) if i % 2 == 0 else Detections.empty()
        assert len(flicker.update(frame, t)) == 0
    faint = Tracker()
    for t in times(0, 3):
        assert len(faint.update(dets([[10, 10, 60, 60]], conf=0.2), t)) == 0
    assert jumping.tracks == flicker.tracks == faint.tracks == {}


def test_steady_moderate_detection_starts_a_track_after_persist_hits() -> None:
    """A parked car at dusk scores 0.3 frame after frame: after ``persist_hits`` detector frames at
    one place it is a confirmed track whose first sighting is the first of those frames."""
    tracker = Tracker(persist_hits=3)
    box = [400, 480, 600, 580]
    reported = []
    for t in (0.0, 0.5, 1.0, 1.5, 2.0):
        out = tracker.update(dets([jitter(box, np.random.default_rng(int(t * 10)))], conf=0.3), t)
        reported.append(out.track_id.tolist())
    assert reported[:2] == [[], []]
    assert reported[2] == reported[3] == reported[4] == [1]
    assert tracker.tracks[1].first_seen == 0.0 and tracker.tracks[1].class_id == CAR
    assert not tracker.pending
    # The persistence path switched off: the same scene starts nothing.
    off = Tracker(persist_threshold=1.0)
    for t in (0.0, 0.5, 1.0, 1.5, 2.0):
        assert len(off.update(dets([box], conf=0.3), t)) == 0


def test_lost_timeout_is_in_media_time_not_frames() -> None:
    """Two frames 4 s apart keep the id; 6 s apart start a new one (lost_timeout_s = 5)."""
    box = [[100, 100, 200, 160]]
    for gap, expect_same in ((4.0, True), (6.0, False)):
        tracker = Tracker(lost_timeout_s=5.0)
        tracker.update(dets(box), 0.0)
        first = tracker.update(dets(box), 0.1).track_id.tolist()
        tracker.update(Detections.empty(), 0.1 + gap / 2)
        tracker.update(dets(box), 0.1 + gap)
        again = tracker.update(dets(box), 0.2 + gap).track_id.tolist()
        assert (again == first) is expect_same, gap


def test_coast_keeps_visible_tracks_alive_beyond_the_lost_timeout() -> None:
    tracker = Tracker(lost_timeout_s=2.0)
    box = [[500, 400, 700, 500]]
    for t in times(0, 1):
        tracker.update(dets(box), t)
    for t in times(1, 6):  # the motion gate skips the detector for 5 s
        out = tracker.coast(t)
        assert out.track_id.tolist() == [1]
        assert np.allclose(out.xyxy, box)
    # The real detection at the re-confirmation cadence lands on the same id.
    assert tracker.update(dets(box), 6.0).track_id.tolist() == [1]
    assert tracker.tracks[1].last_seen == 6.0 and tracker.tracks[1].first_seen == 0.0


def test_coast_lets_lost_tracks_expire() -> None:
    tracker = Tracker(lost_timeout_s=1.0)
    tracker.update(dets([[0, 0, 50, 50]]), 0.0)
    tracker.update(dets([[0, 0, 50, 50]]), 0.1)
    tracker.update(Detections.empty(), 0.2)  # missed: the track is lost
    assert len(tracker.coast(0.5)) == 0
    assert 1 in tracker.tracks
    tracker.coast(1.5)
    assert tracker.tracks == {}


def test_class_is_the_majority_over_the_track_life() -> None:
    tracker = Tracker()
    classes = []
    for i, t in enumerate(times(0, 3)):
        cls = BUS if i % 4 == 3 else CAR  # the model calls it a bus every fourth frame
        out = tracker.update(dets([[300, 300, 400, 360]], cls=cls), t)
        classes += out.class_id.tolist()
    assert set(classes) == {CAR}


def test_displacement_relative_to_size() -> None:
    tracker = Tracker(motion_window_s=10.0)
    # 60x80 box (diagonal 100 px) parked, then moving 100 px/s.
    for t in times(0, 5):
        tracker.update(dets([[100, 100, 160, 180]]), t)
    track = tracker.tracks[1]
    assert track.displacement(5.0) == pytest.approx(0.0)
    for t in times(5, 7):
        x = 100 + 100 * (t - 5 + 0.1)
        tracker.update(dets([[x, 100, x + 60, 180]]), t)
    assert track.displacement(1.0) == pytest.approx(1.0, abs=0.11)  # ~its own diagonal in 1 s
    assert track.displacement(10.0) == pytest.approx(2.0, abs=0.11)
    assert track.first_seen == 0.0 and track.last_seen == pytest.approx(6.9)
    assert track.hits == 70


def test_history_is_bounded_by_the_motion_window() -> None:
    tracker = Tracker(motion_window_s=2.0)
    for t in times(0, 30):
        tracker.update(dets([[0, 0, 10, 10]]), t)
    assert len(tracker.tracks[1]._history) <= 2 * 10 + 2


def test_media_time_going_back_resets_tracks() -> None:
    tracker = Tracker()
    for t in times(0, 1):
        tracker.update(dets([[0, 0, 10, 10]]), t)
    tracker.update(dets([[0, 0, 10, 10]]), 0.0)  # the stream restarted
    out = tracker.update(dets([[0, 0, 10, 10]]), 0.1)
    assert out.track_id.tolist() == [2]


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="low_threshold"):
        Tracker(high_threshold=0.3, low_threshold=0.5)
    with pytest.raises(ValueError, match="min_hits"):
        Tracker(min_hits=0)
