"""Batching: several images per session call where the model allows it, same results either way."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gridwarden.edge.analytics.detector import Detector
from gridwarden.edge.analytics.detector.batching import BatchCoalescer, stack_rows
from gridwarden.edge.types import Detections

FRAMES = (75, 200, 225)


def _assert_same(a: Detections, b: Detections) -> None:
    assert a.class_id.tolist() == b.class_id.tolist()
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.5)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-3)


def test_fixed_batch_model_runs_images_one_by_one(yolox: Detector, car_frames: dict) -> None:
    images = [car_frames[i] for i in FRAMES]
    calls_before, items_before = yolox.batch_stats
    together = yolox.detect(images)
    calls, items = yolox.batch_stats
    assert (calls - calls_before, items - items_before) == (3, 3)
    for image, det in zip(images, together, strict=True):
        _assert_same(det, yolox.detect_one(image))
    assert sum(len(d) for d in together) > 0


def test_dynamic_batch_model_runs_one_call_and_matches_single_calls(
    yolox_dynamic_path: Path, yolox: Detector, car_frames: dict
) -> None:
    dynamic = Detector(yolox_dynamic_path, max_batch=4, intra_op_threads=2)
    assert dynamic.supports_batch and dynamic.describe()["max_batch"] == 4
    images = [car_frames[i] for i in FRAMES] + [car_frames[75][:300, :500].copy()]  # sizes may differ
    batched = dynamic.detect(images)
    assert dynamic.batch_stats == (1, 4)
    for image, det in zip(images, batched, strict=True):
        _assert_same(det, yolox.detect_one(image))
    dynamic.detect(images + images)  # 8 images, max_batch 4: two calls
    assert dynamic.batch_stats == (3, 12)


def test_max_batch_one_turns_batching_off(yolox_dynamic_path: Path, car_frames: dict) -> None:
    det = Detector(yolox_dynamic_path, max_batch=1)
    assert det.supports_batch and det.max_batch == 1
    det.detect([car_frames[i] for i in FRAMES])
    assert det.batch_stats == (3, 3)


def test_threads_share_one_detector(yolox_dynamic_path: Path, yolox: Detector, car_frames: dict) -> None:
    dynamic = Detector(yolox_dynamic_path, max_batch=8, intra_op_threads=2)
    expected = {i: yolox.detect_one(car_frames[i]) for i in FRAMES}
    results: dict[tuple[int, int], Detections] = {}
    errors: list[BaseException] = []

    def camera(worker: int) -> None:
        try:
            for round_ in range(3):
                index = FRAMES[(worker + round_) % len(FRAMES)]
                results[(worker, round_)] = dynamic.detect_one(car_frames[index])
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 18
    for (worker, round_), det in results.items():
        _assert_same(det, expected[FRAMES[(worker + round_) % len(FRAMES)]])
    assert dynamic.batch_stats[1] == 18


def test_inputs_waiting_during_a_call_go_together_in_the_next() -> None:
    release = threading.Event()
    sizes: list[int] = []

    def run_batch(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        if len(sizes) == 1:
            release.wait(10)
        return batch * 10

    coalescer = BatchCoalescer(run_batch, max_batch=8)
    results: dict[int, list[np.ndarray]] = {}

    def submit(i: int) -> None:
        results[i] = coalescer.run([np.array([float(i)])])

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    while not sizes:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(i,)) for i in range(1, 4)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while coalescer.pending < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert sizes == [1, 3]
    assert {i: r[0].tolist() for i, r in results.items()} == {i: [i * 10.0] for i in range(4)}


def test_a_failing_call_raises_in_every_caller_and_the_next_call_works() -> None:
    calls = []

    def run_batch(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return batch

    coalescer = BatchCoalescer(run_batch, max_batch=4)
    with pytest.raises(RuntimeError, match="model exploded"):
        coalescer.run([np.zeros(1), np.zeros(1)])
    assert [r.tolist() for r in coalescer.run([np.ones(1)])] == [[1.0]]
    assert coalescer.pending == 0


def test_stack_rows_skips_the_copy_only_for_consecutive_rows() -> None:
    buffer = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    rows = [buffer[i] for i in range(4)]
    stacked = stack_rows(rows[1:3])
    assert np.shares_memory(stacked, buffer) and np.array_equal(stacked, buffer[1:3])
    for pick in ([rows[2], rows[1]], [rows[0], rows[2]], [rows[0], buffer[1].copy()]):
        stacked = stack_rows(pick)
        assert not np.shares_memory(stacked, buffer) and np.array_equal(stacked, np.stack(pick))
    assert stack_rows([rows[3]]).shape == (1, 2, 3)
