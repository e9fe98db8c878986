"""The camera worker's small parts: backoff, newest-frames queue, rate meter, sampler."""

from __future__ import annotations

import random
import threading
import time

import pytest

from gridwarden.edge.capture.camera_worker import Backoff, RateMeter
from gridwarden.edge.capture.dropping_queue import DroppingQueue
from gridwarden.edge.capture.sources import AnalysisSampler


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 10)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.delay(10_000) == 30.0  # no overflow after days of outage


def test_backoff_jitter_stays_within_bounds_and_varies() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0.2, rng=random.Random(7))
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(3.2 <= d <= 4.8 for d in delays)
    assert len(set(delays)) > 100
    assert all(d <= 30.0 for d in (backoff.delay(20) for _ in range(50)))


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(5, 1)


def test_dropping_queue_drops_oldest_and_counts() -> None:
    q: DroppingQueue[str, int] = DroppingQueue(2)
    for i in range(5):
        q.put("cam", i)
    assert q.dropped("cam") == 3
    assert [q.get(0), q.get(0), q.get(0)] == [3, 4, None]


def test_dropping_queue_keeps_the_newest_of_each_key_apart() -> None:
    """The runner's shape: one slot per camera; a busy camera never pushes out a quiet one's frame."""
    q: DroppingQueue[str, str] = DroppingQueue(maxsize=1)
    q.put("quiet", "q1")
    for i in range(10):
        q.put("busy", f"b{i}")
    assert (q.dropped("quiet"), q.dropped("busy"), q.total_dropped()) == (0, 9, 9)
    assert q.take_all(timeout=0) == ["q1", "b9"]
    assert q.take_all(timeout=0) == []


def test_dropping_queue_take_all_wakes_on_a_put_from_another_thread() -> None:
    q: DroppingQueue[str, int] = DroppingQueue()
    threading.Timer(0.2, q.put, args=("cam", 7)).start()
    started = time.monotonic()
    assert q.take_all(timeout=5) == [7]
    assert time.monotonic() - started < 2


def test_dropping_queue_refuses_a_zero_size() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        DroppingQueue(0)


def test_dropping_queue_example_in_its_docstring_runs() -> None:
    import doctest

    from gridwarden.edge.capture import dropping_queue

    result = doctest.testmod(dropping_queue)
    assert result.attempted > 0 and result.failed == 0


def test_dropping_queue_get_waits_then_wakes_on_close() -> None:
    q: DroppingQueue[str, int] = DroppingQueue(1)
    threading.Timer(0.2, q.close).start()
    started = time.monotonic()
    assert q.get(timeout=5) is None
    assert time.monotonic() - started < 2


def test_rate_meter_measures_and_decays() -> None:
    meter = RateMeter(window_s=2.0)
    for i in range(21):
        meter.tick(100.0 + i * 0.1)  # 10 per second for 2 s
    assert meter.rate(102.0) == pytest.approx(10.5, abs=0.6)
    assert meter.rate(110.0) == 0.0


def test_sampler_is_on_a_fixed_grid_despite_jitter() -> None:
    sampler = AnalysisSampler(2.0)
    times = [0.0, 0.49, 0.51, 0.98, 1.02, 1.49, 1.51]
    assert [t for t in times if sampler.keep(t)] == [0.0, 0.51, 1.02, 1.51]


def test_stream_clock_reset_keeps_media_time_counting_up() -> None:
    from fractions import Fraction

    from gridwarden.edge.capture.sources import SourceOptions, StreamReader

    reader = StreamReader("cam-a", SourceOptions(url="unused.mp4"))
    reader._frame_interval = 0.04
    pts = [0, 50, 100, 150, 10, 60]  # the camera's clock restarts after pts 150
    times = [reader._media_time(p, 0, Fraction(1, 100)) for p in pts]
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 1.54, 2.04])
