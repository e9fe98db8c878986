"""Edge metrics: collectors read real state objects; the real HTTP endpoint serves them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from gridwarden.contract import StreamStatus
from gridwarden.edge.analytics.detector import Detector
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.runner import EdgeRunner
from gridwarden.edge.transport.outbox import Outbox
from gridwarden.observability import (
    EdgeMetrics,
    Liveness,
    MetricsServer,
    SystemdNotifier,
    Watchdog,
    heartbeats,
)
from tests.appliance.conftest import NotifyListener
from tests.appliance.metrics_parsing import parse, scrape, value
from tests.hub.factories import incident_event
from tests.support.paths import CAR_CLIP, YOLOX_NANO


@dataclass
class Status:
    camera: str
    state: str
    input_fps: float
    analysed_fps: float
    lag_s: float | None
    reconnects: int
    streams: list[StreamStatus] = field(default_factory=list)
    decode: str | None = None


@dataclass
class Counters:
    analysed: int = 0
    detector_frames: int = 0
    gated: int = 0
    incidents: dict[str, int] = field(default_factory=dict)


@dataclass
class EdgeState:
    """Implements EdgeStateSource the way EdgeRunner does: statuses from workers, counters."""

    statuses: list[Status]
    counters: dict[str, Counters]
    fail: bool = False

    def camera_statuses(self) -> list[Status]:
        if self.fail:
            raise RuntimeError("camera table is being rebuilt")
        return self.statuses


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(YOLOX_NANO, input_size=416)


@pytest.fixture
def server_for():
    servers: list[MetricsServer] = []

    def start(metrics: EdgeMetrics, liveness: Liveness | None = None) -> MetricsServer:
        server = MetricsServer(metrics.registry, liveness, host="127.0.0.1", port=0)
        server.start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def test_camera_series_carry_labels_and_values(tmp_path: Path, server_for) -> None:
    state = EdgeState(
        statuses=[
            Status(
                "cam-1",
                "online",
                12.5,
                4.9,
                0.25,
                2,
                streams=[
                    StreamStatus(roles=["detect"], state="online", input_fps=12.5, bitrate_kbps=350.0),
                    StreamStatus(roles=["record"], state="offline", reconnects=3),
                ],
                decode="keyframes_only",
            ),
            Status("cam-2", "offline", 0.0, 0.0, None, 7, decode="all_frames"),
        ],
        counters={
            "cam-1": Counters(analysed=100, detector_frames=60, gated=40, incidents={"illegal_parking": 3}),
            "cam-2": Counters(),
        },
    )
    with Outbox(tmp_path / "outbox.sqlite3", max_rows=100) as outbox:
        for seq in range(1, 4):
            outbox.enqueue(incident_event(seq=seq, incident_id=f"inc-{seq}"))
        outbox.ack(1)
        metrics = EdgeMetrics(edge_id="edge-01")
        metrics.watch_runner(state)
        metrics.watch_outbox(outbox)
        server = server_for(metrics)
        s = scrape(f"{server.url}/metrics")

    assert value(s, "gridwarden_edge_camera_input_fps", camera="cam-1") == 12.5
    assert value(s, "gridwarden_edge_camera_analysed_fps", camera="cam-1") == 4.9
    assert value(s, "gridwarden_edge_camera_lag_seconds", camera="cam-1") == 0.25
    assert ("gridwarden_edge_camera_lag_seconds", frozenset({("camera", "cam-2")})) not in s  # unknown lag
    assert value(s, "gridwarden_edge_camera_reconnects_total", camera="cam-2") == 7
    assert value(s, "gridwarden_edge_camera_state", camera="cam-1", state="online") == 1
    assert value(s, "gridwarden_edge_camera_state", camera="cam-1", state="offline") == 0
    assert value(s, "gridwarden_edge_camera_state", camera="cam-2", state="offline") == 1
    assert value(s, "gridwarden_edge_frames_analysed_total", camera="cam-1") == 100
    assert value(s, "gridwarden_edge_frames_gated_total", camera="cam-1") == 40
    assert value(s, "gridwarden_edge_frames_detected_total", camera="cam-1") == 60
    assert value(s, "gridwarden_edge_incident_events_total", camera="cam-1", rule="illegal_parking") == 3
    assert value(s, "gridwarden_edge_outbox_depth") == 2  # three stored, one acknowledged
    assert value(s, "gridwarden_edge_outbox_dropped_total") == 0
    assert value(s, "gridwarden_metrics_source_up", source="cameras") == 1
    # Both input streams of cam-1, each with its own health.
    assert value(s, "gridwarden_edge_stream_connected", camera="cam-1", role="detect") == 1
    assert value(s, "gridwarden_edge_stream_connected", camera="cam-1", role="record") == 0
    assert value(s, "gridwarden_edge_stream_input_fps", camera="cam-1", role="detect") == 12.5
    assert value(s, "gridwarden_edge_stream_bitrate_bps", camera="cam-1", role="detect") == 350_000
    assert value(s, "gridwarden_edge_stream_reconnects_total", camera="cam-1", role="record") == 3
    assert value(s, "gridwarden_edge_camera_keyframes_only", camera="cam-1") == 1
    assert value(s, "gridwarden_edge_camera_keyframes_only", camera="cam-2") == 0
    assert value(s, "gridwarden_metrics_source_up", source="outbox") == 1
    assert value(s, "process_resident_memory_bytes") > 0  # the standard process series are there


def test_scrape_reads_live_state_and_survives_a_failing_source(server_for) -> None:
    counters = Counters()
    state = EdgeState(statuses=[Status("cam-1", "connecting", 0, 0, None, 0)], counters={"cam-1": counters})
    metrics = EdgeMetrics()
    metrics.watch_runner(state)
    server = server_for(metrics)
    url = f"{server.url}/metrics"
    assert value(scrape(url), "gridwarden_edge_frames_analysed_total", camera="cam-1") == 0
    counters.analysed += 5
    counters.incidents["occupied_space"] = 1
    s = scrape(url)
    assert value(s, "gridwarden_edge_frames_analysed_total", camera="cam-1") == 5
    assert value(s, "gridwarden_edge_incident_events_total", camera="cam-1", rule="occupied_space") == 1

    state.fail = True
    s = scrape(url)  # still 200
    assert value(s, "gridwarden_metrics_source_up", source="cameras") == 0
    assert not any(name.startswith("gridwarden_edge_camera_") for name, _ in s)


def test_inference_histogram_from_a_real_detector(detector: Detector) -> None:
    from prometheus_client import generate_latest

    metrics = EdgeMetrics()
    same = metrics.instrument_detector(detector)
    assert same is detector  # the runner keeps its Detector
    image = np.full((432, 768, 3), 90, dtype=np.uint8)
    started = time.perf_counter()
    results = detector.detect([image, image])
    elapsed = time.perf_counter() - started
    detector.detect([])  # nothing to time
    assert len(results) == 2
    s = parse(generate_latest(metrics.registry).decode())
    assert value(s, "gridwarden_edge_inference_seconds_count") == 1
    assert 0 < value(s, "gridwarden_edge_inference_seconds_sum") <= elapsed
    assert value(s, "gridwarden_edge_inference_images_total") == 2
    assert value(s, "gridwarden_edge_inference_seconds_bucket", le="+Inf") == 1
    with pytest.raises(ValueError, match="already instrumented"):
        metrics.instrument_detector(detector)


def test_healthz_follows_the_loop_heartbeat(server_for) -> None:
    live = Liveness(max_age_s=0.4)
    metrics = EdgeMetrics()
    metrics.watch_liveness(live)
    server = server_for(metrics, live)

    first = httpx.get(f"{server.url}/healthz")
    assert first.status_code == 503 and first.json()["status"] == "starting"
    assert math.isnan(value(scrape(f"{server.url}/metrics"), "gridwarden_edge_loop_heartbeat_age_seconds"))

    live.beat()
    ok = httpx.get(f"{server.url}/healthz")
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert value(scrape(f"{server.url}/metrics"), "gridwarden_edge_loop_heartbeat_age_seconds") < 0.4

    time.sleep(0.6)  # the loop stopped beating
    stalled = httpx.get(f"{server.url}/healthz")
    assert stalled.status_code == 503
    assert stalled.json()["status"] == "stalled" and stalled.json()["heartbeat_age_s"] >= 0.4
    assert httpx.get(f"{server.url}/nope").status_code == 404


def test_openmetrics_when_asked(server_for) -> None:
    server = server_for(EdgeMetrics())
    response = httpx.get(f"{server.url}/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_a_taken_port_is_an_error_at_start(server_for) -> None:
    server = server_for(EdgeMetrics())
    with pytest.raises(OSError):
        MetricsServer(EdgeMetrics().registry, port=server.port).start()


def test_real_edge_runner_feeds_metrics_health_and_watchdog(
    tmp_path: Path, notify_socket: NotifyListener, server_for
) -> None:
    """The wiring the service uses, end to end: a real EdgeRunner on footage played at camera pace."""
    cfg = load_edge_config_text(
        f"edge_id: edge-01\nmodel: {{path: {YOLOX_NANO}, input_size: 416}}\n"
        f"cameras:\n  - id: cam-lot\n    url: {CAR_CLIP}\n    analysis_fps: 5\n"
    )
    detector = build_detector(cfg)
    assert detector is not None
    live = Liveness(max_age_s=1.0)
    watchdog = Watchdog(SystemdNotifier(socket_path=notify_socket.address), usec=400_000)
    metrics = EdgeMetrics(edge_id=cfg.edge_id)
    metrics.instrument_detector(detector)
    runner = EdgeRunner(cfg, detector=detector, sink=lambda e: None, heartbeat=heartbeats(live, watchdog))
    metrics.watch_runner(runner)
    metrics.watch_liveness(live)
    server = server_for(metrics, live)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            s = scrape(f"{server.url}/metrics")
            if value(s, "gridwarden_edge_frames_analysed_total", camera="cam-lot") >= 5:
                break
            time.sleep(0.3)
        assert value(s, "gridwarden_edge_frames_analysed_total", camera="cam-lot") >= 5
        assert value(s, "gridwarden_edge_inference_images_total") >= 1
        assert value(s, "gridwarden_edge_camera_state", camera="cam-lot", state="online") == 1
        assert value(s, "gridwarden_edge_camera_input_fps", camera="cam-lot") > 0
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert "WATCHDOG=1" in notify_socket.collect(0.5)
    finally:
        runner.stop()
    notify_socket.drain()
    time.sleep(1.2)  # past max_age_s with the loop gone
    assert httpx.get(f"{server.url}/healthz").status_code == 503
    assert notify_socket.drain() == []  # no keep-alive without the loop
