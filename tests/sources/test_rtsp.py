"""RTSP from a real GStreamer server on loopback: frames, transports, outages and stalls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from gridwarden.edge.capture.camera_worker import CameraWorker
from gridwarden.edge.capture.sources import SourceOptions, open_frames
from gridwarden.edge.types import Frame

pytestmark = pytest.mark.slow


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
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


def read_some(url: str, transport: str, count: int) -> list[tuple[float, Frame]]:
    stop = threading.Event()
    got: list[tuple[float, Frame]] = []
    options = SourceOptions(url=url, transport=transport, open_timeout_s=10, read_timeout_s=5)  # type: ignore[arg-type]
    for frame in open_frames("cam-rtsp", options, stop):
        got.append((time.monotonic(), frame))
        if len(got) == count:
            stop.set()
    return got


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_delivers_frames_with_sane_media_times(rtsp_server, transport) -> None:
    got = read_some(rtsp_server.url("car"), transport, count=10)
    times = np.array([frame.media_time for _, frame in got])
    assert times[0] < 0.1  # seconds from the stream's first pts
    steps = np.diff(times)
    assert np.all(steps > 0.4) and np.all(steps < 0.7)  # 2 fps grid on a 12.5 fps stream
    assert got[0][1].image.shape == (432, 768, 3)
    # FFmpeg's stream probing at open buffers ~2 s, delivered in a burst; after that the server's
    # real-time rate shows: arrival minus media time stays constant.
    arrival_offsets = np.array([arrival - frame.media_time for arrival, frame in got[-4:]])
    assert np.ptp(arrival_offsets) < 0.4
    assert got[-1][0] - got[-4][0] == pytest.approx(times[-1] - times[-4], abs=0.4)


def test_camera_that_dies_and_comes_back_is_reconnected(rtsp_server, workers) -> None:
    options = SourceOptions(url=rtsp_server.url("car"), open_timeout_s=3, read_timeout_s=3)
    worker = CameraWorker("cam-rtsp", options, stall_timeout_s=3, backoff_initial_s=0.2, backoff_max_s=1.0)
    workers.append(worker)
    worker.start()
    before = worker.get(timeout=15)
    assert before is not None
    assert worker.status().state == "online"

    rtsp_server.stop()
    outage_started = time.monotonic()
    assert wait_until(lambda: worker.status().state != "online", timeout=8)
    time.sleep(1.5)  # the camera stays away for a while: several failed attempts
    during = worker.status()
    assert during.state in ("connecting", "offline")
    assert during.reconnects >= 1 and during.last_error
    while (stale := worker.get(timeout=0)) is not None:  # frames queued before the outage
        before = stale

    rtsp_server.start()  # same port, like a camera that rebooted
    assert wait_until(lambda: worker.status().state == "online", timeout=20)
    outage_s = time.monotonic() - outage_started
    frame = worker.get(timeout=10)
    assert frame is not None
    assert worker.status().reconnects >= during.reconnects
    # Media time keeps counting up across the reconnect (the new session's pts restart at 0),
    # and the gap covers the outage, so dwell timers downstream neither rewind nor skip it.
    assert frame.media_time > before.media_time + outage_s - 1.0


def test_stalled_stream_is_detected_by_the_watchdog_and_reconnected(rtsp_server, workers) -> None:
    # read_timeout_s is far above stall_timeout_s, so it is the watchdog that must notice.
    options = SourceOptions(url=rtsp_server.url("car"), open_timeout_s=5, read_timeout_s=30)
    worker = CameraWorker("cam-rtsp", options, stall_timeout_s=2, backoff_initial_s=0.2, backoff_max_s=1.0)
    workers.append(worker)
    worker.start()
    assert worker.get(timeout=15) is not None
    assert wait_until(lambda: worker.status().state == "online", timeout=5)

    rtsp_server.pause()  # connection stays open, nothing more is sent
    paused_at = time.monotonic()
    try:
        assert wait_until(lambda: worker.status().state != "online", timeout=2 + 3)
        detected_after = time.monotonic() - paused_at
        assert detected_after >= 1.5  # not before the stall timeout...
        assert "stalled" in (worker.status().last_error or "")
        time.sleep(2.5)  # longer than the worker's grace for an aborted reader to come back
    finally:
        rtsp_server.resume()
    assert wait_until(lambda: worker.status().state == "online", timeout=20)
    status = worker.status()
    assert status.reconnects >= 1
    # The read was blocked in FFmpeg (read timeout 30 s), so the watchdog had to abandon it.
    assert status.abandoned_readers >= 1
    assert worker.get(timeout=10) is not None
