"""The record stream's packets land on the detect stream's clock (arrival-aligned)."""

from __future__ import annotations

import numpy as np

from gridwarden.edge.capture.record_stream import StreamClockAligner


def _feed(aligner: StreamClockAligner, rng: np.random.Generator, *, record_starts_at: float) -> list[float]:
    """A 12.5 fps camera filmed from t=0 (monotonic 100 + t): the detect stream's clock starts
    at the scene's t=0, the record stream's at ``record_starts_at``. Each packet arrives
    5-80 ms late (network jitter). Returns |aligned - true detect time| for record packets."""
    errors = []
    for i in range(400):
        t = i / 12.5
        aligner.note_detect(t, now=100.0 + t + rng.uniform(0.005, 0.08))
        if t >= record_starts_at:
            aligned = aligner.to_detect_clock(t - record_starts_at, now=100.0 + t + rng.uniform(0.005, 0.08))
            assert aligned is not None
            errors.append(abs(aligned - t))
    return errors


def test_record_clock_that_started_later_is_shifted_onto_the_detect_clock() -> None:
    aligner = StreamClockAligner()
    errors = _feed(aligner, np.random.default_rng(1), record_starts_at=4.0)
    assert max(errors[25:]) <= 0.08  # after the first seconds: within the jitter
    assert aligner.offset_s is not None and abs(aligner.offset_s - 4.0) <= 0.08


def test_packets_before_the_detect_clock_exists_are_dropped() -> None:
    aligner = StreamClockAligner()
    assert aligner.to_detect_clock(0.0, now=5.0) is None
    assert aligner.dropped_packets == 1


def test_a_record_reconnect_starts_its_estimate_afresh() -> None:
    """After a reconnect the record clock is re-based (its worker shifts it by a guessed gap):
    the old, now wrong, minimum must not survive."""
    aligner = StreamClockAligner()
    aligner.note_detect(0.0, now=100.0)
    assert aligner.to_detect_clock(0.0, now=100.0) == 0.0
    aligner.record_reconnected()
    # New connection: record media time 50 arrives when detect time is 60 (origin moved by 10 s).
    aligner.note_detect(60.0, now=160.0)
    assert aligner.to_detect_clock(50.0, now=160.0) == 60.0
