"""Scenario clips are built once per test session (a few seconds of libx264 each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub.conftest import pg_database_url  # noqa: F401 - a fixture used by the e2e tests
from tests.support.scenarios import ParkedCarScenario, build_parked_car_clip


@pytest.fixture(scope="session")
def parked_car(tmp_path_factory: pytest.TempPathFactory) -> ParkedCarScenario:
    """Car stops in the zone at 6.08 s for 90 s, then drives off (see tests/support/scenarios.py)."""
    return build_parked_car_clip(tmp_path_factory.mktemp("scenarios") / "parked-90s.mp4", hold_s=90.0)


@pytest.fixture(scope="session")
def parked_car_short(tmp_path_factory: pytest.TempPathFactory) -> ParkedCarScenario:
    """The same car held 20 s and the clip cut at frame 110 (≈ 28.8 s long), for real-time RTSP."""
    return build_parked_car_clip(
        tmp_path_factory.mktemp("scenarios") / "parked-20s.mp4", hold_s=20.0, last_frame=110
    )


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
