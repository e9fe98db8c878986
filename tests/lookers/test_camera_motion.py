"""CameraMotionEstimator: a pan is camera motion, a car driving under a still camera is not."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.camera_motion import CameraMotionEstimator

# The synthetic pan: a 640x360 window slides over the 768x432 frames of car-detection.mp4, so the
# view moves while the cars keep moving inside it. Pixels per second of the full-size frame.
PAN_START_S, PAN_END_S = 3.0, 5.0
PAN_X_PX_S, PAN_Y_PX_S = 64.0, 36.0  # 0.1 and 0.1 frame widths/heights per second


def _panned(frame: np.ndarray, t: float) -> np.ndarray:
    travel = min(max(t - PAN_START_S, 0.0), PAN_END_S - PAN_START_S)
    x, y = int(round(travel * PAN_X_PX_S)), int(round(travel * PAN_Y_PX_S))
    return frame[y : y + 360, x : x + 640]


@pytest.mark.parametrize("every", [1, 6], ids=["12.5fps", "2fps"])
def test_static_camera_with_cars_driving_through_is_not_moving(car_frames: list, every: int) -> None:
    # Ground truth: car-detection.mp4 is shot from a fixed camera; cars fill up to a third of the
    # view (t = 15-19 s, two cars; t = 26-28 s, a white car with an auto-exposure change).
    estimator = CameraMotionEstimator()
    moving_at = [t for t, image in car_frames[::every] if estimator.update(image, t)]
    assert moving_at == []


@pytest.mark.parametrize("every", [1, 6], ids=["12.5fps", "2fps"])
def test_pan_is_moving_and_settles_settle_s_after_it_stops(car_frames: list, every: int) -> None:
    settle_s = 1.0
    estimator = CameraMotionEstimator(settle_s=settle_s)
    states = {t: estimator.update(_panned(image, t), t) for t, image in car_frames[: int(9 * 12.5) : every]}
    frame_step = every / 12.5
    assert not any(m for t, m in states.items() if t < PAN_START_S), "moving before the pan"
    first_moving = min(t for t, m in states.items() if m)
    assert first_moving <= PAN_START_S + 2 * frame_step + 0.2
    # Moving throughout the pan and for settle_s after it (hysteresis holds through short gaps).
    assert all(m for t, m in states.items() if first_moving <= t <= PAN_END_S + settle_s - 0.1)
    # Still again once settle_s has passed after the last frame pair that saw the pan.
    settled_by = PAN_END_S + frame_step + settle_s + frame_step
    assert not any(m for t, m in states.items() if t >= settled_by)


def test_shift_is_reported_in_normalised_units(car_frames: list) -> None:
    estimator = CameraMotionEstimator()
    (t0, a), (t1, b) = car_frames[0], car_frames[6]  # empty lot, 0.48 s apart
    estimator.update(a[0:360, 0:640], t0)
    assert estimator.update(b[12:372, 32:672], t1)  # view moved right 32 px and down 12 px
    dx, dy = estimator.last_shift
    assert dx == pytest.approx(-32 / 640, abs=0.006)
    assert dy == pytest.approx(-12 / 360, abs=0.006)
    assert estimator.last_speed == pytest.approx(np.hypot(32, 12) / 640 / (t1 - t0), rel=0.2)


def test_restarts_on_backwards_time_and_on_size_change(car_frames: list) -> None:
    estimator = CameraMotionEstimator(settle_s=5.0)
    frame = car_frames[0][1]
    estimator.update(frame[0:360, 0:640], 10.0)
    assert estimator.update(frame[0:360, 40:680], 10.5)
    assert not estimator.update(frame[0:360, 80:720], 1.0)  # stream restarted: judged afresh
    assert not estimator.update(frame, 1.5)  # a different frame size: judged afresh


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        CameraMotionEstimator(shift_threshold=0)
    with pytest.raises(ValueError):
        CameraMotionEstimator(grid=1)
    with pytest.raises(ValueError, match="uint8"):
        CameraMotionEstimator().update(np.zeros((90, 160), np.float64), 0.0)
