"""CameraWorker on file sources and dead endpoints: queue drops, lag, isolation, clear errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from gridwarden.edge.capture.camera_worker import CameraWorker
from gridwarden.edge.capture.sources import SourceOptions
from gridwarden.edge.types import Frame
from tests.support.paths import CAR_CLIP
from tests.support.ports import free_port


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
    """Workers a test starts; all stopped at teardown even when the test fails."""
    started: list[CameraWorker] = []
    yield started
    for worker in started:
        worker.stop()


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_unread_queue_keeps_only_newest_frames_and_counts_drops(workers) -> None:
    worker = CameraWorker("cam-a", SourceOptions(url=str(CAR_CLIP), analysis_fps=25.0), queue_size=2)
    workers.append(worker)
    worker.start()
    assert wait_until(lambda: worker.status().finished, timeout=30)
    status = worker.status()
    assert status.dropped_frames == 377 - 2
    assert status.state == "offline" and status.last_error is None and status.reconnects == 0
    assert status.lag_s is None  # a file read as fast as possible has no media clock to lag
    newest = [worker.get(timeout=1), worker.get(timeout=1)]
    assert [round(f.media_time, 2) for f in newest if f] == [30.0, 30.08]
    started = time.monotonic()
    assert worker.get(timeout=5) is None  # finished and empty: returns at once
    assert time.monotonic() - started < 1


def test_lag_grows_when_the_consumer_falls_behind(workers) -> None:
    options = SourceOptions(url=str(CAR_CLIP), analysis_fps=12.5, realtime=True)
    slow = CameraWorker("slow", options, on_frame=lambda frame: time.sleep(0.2))  # 5 fps for 12.5 fps
    fast_frames: list[Frame] = []
    fast = CameraWorker("fast", options, on_frame=fast_frames.append)
    workers.extend([slow, fast])
    slow.start()
    fast.start()
    assert wait_until(lambda: (slow.status().lag_s or 0) > 0.3, timeout=10)
    early = slow.status().lag_s
    time.sleep(2.0)
    late_status = slow.status()
    assert late_status.lag_s is not None and early is not None
    assert late_status.lag_s > early + 0.8  # ~1.2 s more lag every 2 s of media
    assert fast.status().lag_s is not None and fast.status().lag_s < 0.5
    assert fast.status().input_fps == pytest.approx(12.5, rel=0.3)
    assert fast.status().analysed_fps == pytest.approx(12.5, rel=0.3)
    assert len(fast_frames) >= 30


def test_one_bad_camera_does_not_disturb_another(workers, silent_tcp_port, tmp_path) -> None:
    good_options = SourceOptions(url=str(CAR_CLIP), analysis_fps=2.0, realtime=True, loop=True)
    good = CameraWorker("good", good_options)
    refused = CameraWorker(
        "refused",
        SourceOptions(url=f"rtsp://127.0.0.1:{free_port()}/cam", open_timeout_s=1.0),
        backoff_initial_s=0.2,
        backoff_max_s=0.5,
    )
    silent = CameraWorker(
        "silent",
        SourceOptions(url=f"rtsp://127.0.0.1:{silent_tcp_port}/cam", open_timeout_s=1.0, read_timeout_s=1.0),
        backoff_initial_s=0.2,
        backoff_max_s=0.5,
    )
    missing_path = tmp_path / "camera-07.mp4"
    missing = CameraWorker(
        "missing", SourceOptions(url=str(missing_path)), backoff_initial_s=0.2, backoff_max_s=0.5
    )
    workers.extend([good, refused, silent, missing])
    for worker in workers:
        worker.start()

    frames: list[Frame] = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        frame = good.get(timeout=0.5)
        if frame is not None:
            frames.append(frame)
    # 5 s at 2 fps: ~10 frames; the other three cameras failing meanwhile change nothing.
    assert len(frames) >= 7
    assert good.status().state == "online" and good.status().reconnects == 0
    for bad in (refused, silent, missing):
        status = bad.status()
        assert status.state != "online"
        assert status.reconnects >= 1
        assert status.last_error
    assert "Connection refused" in (refused.status().last_error or "")
    assert "timed out" in (silent.status().last_error or "")
    assert str(missing_path) in (missing.status().last_error or "")


def test_stop_is_prompt_even_while_connecting(workers, silent_tcp_port) -> None:
    worker = CameraWorker(
        "silent", SourceOptions(url=f"rtsp://127.0.0.1:{silent_tcp_port}/cam", open_timeout_s=30.0)
    )
    workers.append(worker)
    worker.start()
    time.sleep(0.5)
    assert worker.status().state == "connecting"
    started = time.monotonic()
    worker.stop(timeout=5.0)
    assert time.monotonic() - started < 2.5
    assert worker.status().state == "offline"
