"""Fixtures for the detector tests: real frames of the car clip and the shared models."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from gridwarden.edge.analytics.detector import Detector
from tests.detector.onnx_builders import make_batch_dynamic
from tests.support.paths import CAR_CLIP, YOLOX_NANO

#: Frames of car-detection.mp4 used by the tests. Frame 75 shows one white car fully in view
#: (box about x 268-459, y 125-422 by eye); 225 has a car at the bottom-left edge and one at the top.
CAR_FRAME_INDICES = (0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275, 300, 325, 350, 375)


@pytest.fixture(scope="session")
def car_frames() -> dict[int, np.ndarray]:
    """Selected frames of the car clip, BGR uint8, decoded once per session with PyAV."""
    wanted = set(CAR_FRAME_INDICES)
    frames: dict[int, np.ndarray] = {}
    with av.open(str(CAR_CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="bgr24")
            if index >= max(wanted):
                break
    assert set(frames) == wanted, f"clip {CAR_CLIP} has fewer frames than expected"
    return frames


@pytest.fixture(scope="session")
def yolox() -> Detector:
    return Detector(YOLOX_NANO, intra_op_threads=2)


@pytest.fixture(scope="session")
def yolox_dynamic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_batch_dynamic(YOLOX_NANO, tmp_path_factory.mktemp("models") / "yolox_nano_dynamic.onnx")
