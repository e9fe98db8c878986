"""File sources: sampling by pts, keyframes only, real-time pacing, looping, clear errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gridwarden.edge.capture.sources import SourceError, SourceOptions, open_frames, probe
from tests.support.paths import CAR_CLIP

CLIP_FPS = 12.5
CLIP_FRAMES = 377
FRAME_INTERVAL = 1 / CLIP_FPS


def test_probe_reports_length_and_shape_for_a_progress_bar() -> None:
    info = probe(str(CAR_CLIP))
    assert info["frames"] == CLIP_FRAMES
    assert info["fps"] == pytest.approx(CLIP_FPS)
    assert info["duration_s"] == pytest.approx(30.16, abs=0.05)
    assert (info["width"], info["height"], info["codec"]) == (768, 432, "h264")


def test_sampling_at_2fps_keeps_first_frame_of_each_half_second() -> None:
    frames = list(open_frames("cam-a", SourceOptions(url=str(CAR_CLIP), analysis_fps=2.0)))
    # Frames span media time 0 .. 30.08 s: half-second buckets 0..60.
    assert len(frames) == 61
    times = np.array([f.media_time for f in frames])
    buckets = np.arange(61) * 0.5
    assert np.all(times >= buckets - 1e-6)
    assert np.all(times < buckets + FRAME_INTERVAL + 1e-6)
    assert frames[1].media_time == pytest.approx(0.56)  # first frame at or after 0.5 s
    # index is the decoded-frame number, so a frame can be found again in the file
    assert [f.index for f in frames[:3]] == [0, 7, 13]
    first = frames[0]
    assert first.camera_id == "cam-a"
    assert first.image.shape == (432, 768, 3) and first.image.dtype == np.uint8
    assert abs(first.wall_time - time.time()) < 60


def test_analysis_rate_above_input_rate_keeps_every_frame() -> None:
    frames = list(open_frames("cam-a", SourceOptions(url=str(CAR_CLIP), analysis_fps=25.0)))
    assert len(frames) == CLIP_FRAMES
    times = np.array([f.media_time for f in frames])
    np.testing.assert_allclose(times, np.arange(CLIP_FRAMES) * FRAME_INTERVAL, atol=1e-6)


def test_keyframes_only_decodes_just_the_keyframes() -> None:
    frames = list(open_frames("cam-a", SourceOptions(url=str(CAR_CLIP), keyframes_only=True)))
    # The clip has an IDR frame every 60 frames (4.8 s).
    np.testing.assert_allclose([f.media_time for f in frames], np.arange(7) * 4.8, atol=1e-6)
    assert [f.index for f in frames] == list(range(7))


def test_realtime_pacing_follows_the_media_clock() -> None:
    options = SourceOptions(url=str(CAR_CLIP), analysis_fps=2.0, realtime=True)
    stop = threading.Event()
    arrivals: list[tuple[float, float]] = []
    for frame in open_frames("cam-a", options, stop):
        arrivals.append((time.monotonic(), frame.media_time))
        if frame.media_time >= 3.0:
            stop.set()
    (wall0, media0), (wall1, media1) = arrivals[0], arrivals[-1]
    assert 3.0 <= media1 - media0 < 3.0 + FRAME_INTERVAL
    # Unpaced, 3 s of this clip decodes in well under 0.5 s on any machine.
    assert 2.7 <= wall1 - wall0 <= 5.0


def test_stop_event_ends_the_iteration_cleanly() -> None:
    stop = threading.Event()
    count = 0
    for _frame in open_frames("cam-a", SourceOptions(url=str(CAR_CLIP), loop=True), stop):
        count += 1
        if count == 3:
            stop.set()
    assert count == 3


def test_looping_file_keeps_media_time_counting_up() -> None:
    stop = threading.Event()
    times: list[float] = []
    options = SourceOptions(url=str(CAR_CLIP), keyframes_only=True, loop=True)
    for frame in open_frames("cam-a", options, stop):
        times.append(frame.media_time)
        if len(times) == 10:
            stop.set()
    # Second pass starts one clip duration (30.16 s) after the first.
    np.testing.assert_allclose(times[7:], 30.16 + np.arange(3) * 4.8, atol=1e-6)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))


def test_missing_file_gives_a_source_error_naming_the_path(tmp_path) -> None:
    missing = tmp_path / "no-such-clip.mp4"
    with pytest.raises(SourceError, match="no-such-clip.mp4"):
        list(open_frames("cam-a", SourceOptions(url=str(missing))))


def test_file_that_is_not_video_gives_a_source_error(tmp_path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="junk.mp4"):
        list(open_frames("cam-a", SourceOptions(url=str(junk))))


@pytest.mark.parametrize(
    "bad",
    [{"analysis_fps": 0}, {"analysis_fps": -1.0}, {"open_timeout_s": 0}, {"transport": "http"}, {"url": ""}],
)
def test_bad_options_are_rejected(bad) -> None:
    kwargs = {"url": str(CAR_CLIP)} | bad
    with pytest.raises(ValueError):
        SourceOptions(**kwargs)
