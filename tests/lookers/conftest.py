"""Decoded real footage, shared by the looker tests (decoded once per session, read in place)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.paths import CAR_CLIP, PERSON_CLIP


def decode(path: Path, every: int = 1) -> list[tuple[float, np.ndarray]]:
    """(media_time from pts, BGR frame) for every ``every``-th frame."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i % every == 0:
                out.append((float(frame.pts * stream.time_base), frame.to_ndarray(format="bgr24")))
    return out


@pytest.fixture(scope="session")
def car_frames() -> list[tuple[float, np.ndarray]]:
    """All 377 frames of car-detection.mp4 (12.5 fps, 768x432, static camera, cars passing)."""
    return decode(CAR_CLIP)


@pytest.fixture(scope="session")
def person_frames_5fps() -> list[tuple[float, np.ndarray]]:
    """one-by-one-person-detection.mp4 at 5 fps (every 2nd frame of 10 fps)."""
    return decode(PERSON_CLIP, every=2)
