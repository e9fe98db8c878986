"""MotionGate: skips still frames, never skips a car, re-confirms on a cadence."""

from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest

from gridwarden.edge.analytics.gate import MotionGate, region_mask


def _still_stream_through_h264(
    image: np.ndarray, seconds: float, fps: int, seed: int = 0
) -> list[np.ndarray]:
    """A still view with sensor noise, encoded with libx264 and decoded again (real flicker)."""
    cv2.setRNGSeed(seed)
    noise = np.empty(image.shape, np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        stream.options = {"crf": "28", "preset": "ultrafast"}
        for _ in range(int(seconds * fps)):
            cv2.randn(noise, 0, 3)
            noisy = cv2.add(image, noise, dtype=cv2.CV_8U)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def _paste_small_car(background: np.ndarray, car_frames: list, where: tuple[int, int]) -> np.ndarray:
    """The red car of frame 225 (t = 18 s), shrunk to 40x24 px (a distant car), pasted at ``where``."""
    car = car_frames[225][1][0:170, 270:390]  # red car seen from above, ground truth by eye
    car = cv2.resize(car, (24, 40), interpolation=cv2.INTER_AREA)
    out = background.copy()
    x, y = where
    out[y : y + 40, x : x + 24] = car
    return out


def test_first_frame_is_detected_and_identical_frames_are_gated() -> None:
    gate = MotionGate(max_skip_s=10.0)
    frame = np.full((432, 768, 3), 80, np.uint8)
    assert gate.should_detect(frame, 0.0) is True
    assert [gate.should_detect(frame, t) for t in np.arange(0.5, 9.6, 0.5)] == [False] * 19
    assert gate.gated_count == 19


def test_reconfirms_after_max_skip_s_of_media_time() -> None:
    gate = MotionGate(max_skip_s=4.0)
    frame = np.full((240, 320, 3), 80, np.uint8)
    decisions = {t: gate.should_detect(frame, t) for t in np.arange(0.0, 12.01, 0.5)}
    assert [t for t, d in decisions.items() if d] == [0.0, 4.0, 8.0, 12.0]


def test_still_frame_with_noise_and_h264_flicker_is_gated(car_frames: list) -> None:
    empty_lot = car_frames[0][1]  # t = 0: no car in view
    frames = _still_stream_through_h264(empty_lot, seconds=60, fps=2)
    gate = MotionGate(max_skip_s=10.0)
    detected, fractions = [], []
    for i, frame in enumerate(frames):
        detected.append(gate.should_detect(frame, i / 2))
        fractions.append(gate.last_changed_fraction)
    assert len(frames) == 120
    # Only the first frame and the 10 s re-confirmations: t = 0, 10, 20, 30, 40, 50.
    assert [i / 2 for i, d in enumerate(detected) if d] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert max(fractions[1:]) < 0.002


def test_global_brightness_drift_is_gated(car_frames: list) -> None:
    empty_lot = car_frames[0][1].astype(np.float32)
    gate = MotionGate(max_skip_s=100.0)
    detected = []
    # Exposure +20 % and then -20 % over 10 s each (a cloud passing), plus an offset wobble.
    gains = np.concatenate([np.linspace(1.0, 1.2, 20), np.linspace(1.2, 0.8, 20)])
    for i, gain in enumerate(gains):
        image = np.clip(empty_lot * gain + 6 * np.sin(i / 3), 0, 255).astype(np.uint8)
        detected.append(gate.should_detect(image, i * 0.5))
    assert detected[0] and not any(detected[1:])


def test_small_car_arriving_is_detected(car_frames: list) -> None:
    empty_lot = car_frames[0][1]
    gate = MotionGate()
    assert gate.should_detect(empty_lot, 0.0)
    assert not gate.should_detect(empty_lot, 0.5)
    with_car = _paste_small_car(empty_lot, car_frames, (400, 250))
    assert gate.should_detect(with_car, 1.0)
    assert gate.last_changed_fraction > 0.002


def test_change_outside_the_regions_is_ignored(car_frames: list) -> None:
    empty_lot = car_frames[0][1]
    left_half = [[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]]
    gate = MotionGate(regions=left_half)
    gate.should_detect(empty_lot, 0.0)
    assert not gate.should_detect(_paste_small_car(empty_lot, car_frames, (600, 250)), 0.5)  # right half
    assert gate.should_detect(_paste_small_car(empty_lot, car_frames, (100, 250)), 1.0)  # left half


def test_real_clip_at_2fps_detects_every_moving_car_and_gates_empty_stretches(car_frames: list) -> None:
    # Ground truth by eye (car-detection.mp4): cars move through the view during 5-9 s, 15-19 s
    # and 25.5-28 s; 0-4 s, 11-14 s and 20.5-25 s show the empty lot.
    gate = MotionGate()
    decisions = {t: gate.should_detect(img, t) for t, img in car_frames[::6]}  # 12.5 fps / 6 ~ 2 fps
    moving = [d for t, d in decisions.items() if 5 <= t <= 9 or 15 <= t <= 19 or 25.5 <= t <= 28]
    empty = [d for t, d in decisions.items() if 0.2 < t <= 4 or 11 <= t <= 14 or 20.5 <= t <= 25]
    assert all(moving), "a moving car was gated"
    assert sum(empty) <= 2, f"empty lot detected {sum(empty)} times"
    assert 0.35 < gate.gated_count / len(decisions) < 0.7


def test_backwards_media_time_restarts_with_a_detection() -> None:
    gate = MotionGate()
    frame = np.full((90, 160, 3), 50, np.uint8)
    assert gate.should_detect(frame, 100.0)
    assert not gate.should_detect(frame, 101.0)
    assert gate.should_detect(frame, 2.0)


def test_bad_input_is_rejected_clearly() -> None:
    gate = MotionGate()
    with pytest.raises(ValueError, match="uint8"):
        gate.should_detect(np.zeros((90, 160, 3), np.float32), 0.0)
    with pytest.raises(ValueError, match="shape"):
        gate.should_detect(np.zeros((90, 160, 4), np.uint8), 0.0)
    with pytest.raises(ValueError, match="finite"):
        gate.should_detect(np.zeros((90, 160, 3), np.uint8), float("nan"))
    with pytest.raises(ValueError, match="normalised"):
        MotionGate(regions=[[(0, 0), (200, 0), (200, 100)]])
    with pytest.raises(ValueError, match="3 points"):
        MotionGate(regions=[[(0, 0), (1, 0)]])


def test_region_mask_covers_the_polygon() -> None:
    mask = region_mask([[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]], (160, 90))
    assert mask.shape == (90, 160)
    assert mask[:, :70].all() and not mask[:, 90:].any()
