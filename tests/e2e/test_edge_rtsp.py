"""The live edge (EdgeRunner: camera workers + shared detector + rules) on a real RTSP server.

The parked-car scenario is served at real-time rate by GStreamer's RTSP server on loopback;
ground truth is in tests/support/scenarios.py (car still from 6.08 s for 20 s, then gone).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gridwarden.contract import CameraStatus, IncidentEvent
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.runner import EdgeRunner
from tests.support.paths import CAR_CLIP, YOLOX_NANO
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import PARKING_ZONE, ParkedCarScenario

DWELL_S = 10.0


def config_text(url: str, stall_timeout_s: float = 10.0) -> str:
    return f"""\
edge_id: edge-test
site: test
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
cameras:
  - id: cam-lot
    url: {url}
    analysis_fps: 2
    stall_timeout_s: {stall_timeout_s}
    zones:
      - id: no-parking
        polygon: {PARKING_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: {DWELL_S}, end_grace_s: 1}}
"""


class Collector:
    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: IncidentEvent) -> None:
        with self.lock:
            self.events.append(event)

    def wait_for(self, predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(list(self.events)):
                    return True
            time.sleep(0.2)
        return False


@pytest.mark.slow
def test_parked_car_over_rtsp_gives_one_incident(parked_car_short: ParkedCarScenario, tmp_path: Path) -> None:
    server = RtspServer({"lot": parked_car_short.path}, loop=1, log_dir=tmp_path)
    server.start()
    events = Collector()
    cfg = load_edge_config_text(config_text(server.url("lot")))
    runner = EdgeRunner(cfg, detector=build_detector(cfg), sink=events)
    runner.start()
    try:
        ended = events.wait_for(lambda evs: any(e.event == "ended" for e in evs), timeout=60)
        assert ended, [e.model_dump() for e in events.events]
        statuses = runner.camera_statuses()
    finally:
        runner.stop()
        server.stop()
    parking = [e for e in events.events if e.rule == "illegal_parking"]
    assert [e.event for e in parking if e.event != "updated"] == ["started", "ended"]
    started, ended_ev = parking[0], parking[-1]
    assert abs(started.media_time - parked_car_short.expected_start(DWELL_S)) <= 2.0
    assert abs(ended_ev.media_time - parked_car_short.leave_time) <= 2.0
    assert statuses[0].state == "online"
    assert statuses[0].lag_s is not None and statuses[0].lag_s < 3.0


@pytest.mark.slow
def test_camera_outage_is_reconnected_and_visible_in_status(tmp_path: Path) -> None:
    server = RtspServer({"car": CAR_CLIP}, loop=10, log_dir=tmp_path)
    server.start()
    cfg = load_edge_config_text(config_text(server.url("car"), stall_timeout_s=3))
    seen: list[CameraStatus] = []
    runner = EdgeRunner(cfg, detector=build_detector(cfg), sink=lambda e: None, status_sink=seen.append,
                        status_interval_s=0.5)  # fmt: skip
    runner.start()

    def wait_state(predicate, timeout: float) -> CameraStatus | None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = runner.camera_statuses()[0]
            if predicate(status):
                return status
            time.sleep(0.2)
        return None

    try:
        assert wait_state(lambda s: s.state == "online" and s.analysed_fps > 0, 20), runner.camera_statuses()
        server.stop()
        outage = wait_state(lambda s: s.state != "online", 15)
        assert outage is not None and outage.last_error, runner.camera_statuses()
        time.sleep(2)
        server.start()
        back = wait_state(lambda s: s.state == "online" and s.reconnects >= 1, 40)
        assert back is not None, runner.camera_statuses()
        # frames flow again after the reconnect
        before = runner.counters["cam-lot"].analysed
        time.sleep(3)
        assert runner.counters["cam-lot"].analysed > before
    finally:
        runner.stop()
        server.stop()
    # the published (retained) status stream showed the outage too
    states = [s.state for s in seen]
    assert "online" in states and any(s != "online" for s in states)
