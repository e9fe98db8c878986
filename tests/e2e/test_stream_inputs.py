"""A camera with a detect sub-stream and a record main stream, both over real RTSP.

The parked-car scenario (car still in the zone from 6.08 s for 20 s; dwell 10 s, so the incident
starts at ~16.1 s) is served twice by one GStreamer RTSP server: as the 768x432 sub-stream
(``roles: [detect]``) and as a 1280x720 main stream (``roles: [record]``) whose frames carry
their frame number as a code. The incident is found on the sub-stream; its clip must come from
the main stream, remuxed (never decoded), and cover exactly pre-roll before to post-roll after
the incident on the detect stream's clock (read back from the frame codes). Status and
/metrics show both streams.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import pytest
from prometheus_client import generate_latest

from gridwarden.contract import CameraStatus, IncidentEvent
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.capture.evidence.files import sha256_file
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.runner import EdgeRunner
from gridwarden.observability import EdgeMetrics
from tests.support.main_streams import build_main_stream, read_frame_code
from tests.support.paths import YOLOX_NANO
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import FPS, PARKING_ZONE, ParkedCarScenario
from tests.support.tcp_gate import RtpHoldback

DWELL_S = 10.0
PRE_ROLL_S = 6.0
POST_ROLL_S = 4.0
GOP_S = 2.0
RECORD_DELAY_S = 4.0  # the record stream's first video is withheld this long
ALIGN_TOLERANCE_S = 0.6  # the two sessions start within a few frames of each other


class Events:
    def __init__(self) -> None:
        self.items: list[IncidentEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: IncidentEvent) -> None:
        with self.lock:
            self.items.append(event)

    def snapshot(self) -> list[IncidentEvent]:
        with self.lock:
            return list(self.items)


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def main_stream_h264(parked_car_short: ParkedCarScenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_main_stream(parked_car_short.path, tmp_path_factory.mktemp("main") / "main-720p.mp4")


def run_camera_with_two_streams(
    scenario: ParkedCarScenario, main: Path, tmp_path: Path, record_delay_s: float, *, single: bool = False
) -> tuple[IncidentEvent, IncidentEvent, Path, list[CameraStatus], bytes]:
    """Serve both streams (both sessions start playing the scene together, like one camera's
    two encoders), the record stream's first ``record_delay_s`` of video withheld so its clock
    starts later; run the edge until the clip event; return (started, with_clip, clip path,
    statuses, a /metrics scrape)."""
    server = RtspServer({"sub": scenario.path, "main": main}, loop=1, log_dir=tmp_path)
    server.start()
    gate = RtpHoldback(server.port, hold_s=record_delay_s)
    if single:  # one stream does both jobs: the main stream itself is analysed
        inputs = f'      - {{url: "{server.url("main")}", roles: [detect, record]}}'
    else:
        inputs = (
            f'      - {{url: "{server.url("sub")}", roles: [detect]}}\n'
            f'      - {{url: "{gate.url("main")}", roles: [record]}}'
        )
    cfg = load_edge_config_text(
        f"""\
edge_id: edge-streams
data_dir: {tmp_path / "edge-data"}
model: {{path: {YOLOX_NANO}, input_size: 416, backend: onnxruntime}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
evidence: {{enabled: true, pre_roll_s: {PRE_ROLL_S}, post_roll_s: {POST_ROLL_S}}}
cameras:
  - id: cam-lot
    inputs:
{inputs}
    zones:
      - id: no-parking
        polygon: {PARKING_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: {DWELL_S}, end_grace_s: 1}}
"""
    )
    events = Events()
    runner = EdgeRunner(cfg, detector=build_detector(cfg), sink=events)
    metrics = EdgeMetrics(edge_id="edge-streams")
    metrics.watch_runner(runner)
    statuses: list[CameraStatus] = []
    scrape = b""
    runner.start()
    try:

        def both_online() -> bool:
            (status,) = runner.camera_statuses()
            statuses.append(status)
            return all(s.state == "online" and s.bitrate_kbps > 0 for s in status.streams) and all(
                s.input_fps > 5 for s in status.streams
            )

        wait_for(both_online, 20, "both streams online with frames and bytes")

        def clip_event() -> IncidentEvent | None:
            return next((e for e in events.snapshot() if any(r.kind == "clip" for r in e.evidence)), None)

        with_clip = wait_for(clip_event, 60, "an event carrying the clip")
        # Read after ~20 s of steady streaming (the first second's burst is out of the window).
        statuses.append(runner.camera_statuses()[0])
        scrape = generate_latest(metrics.registry)
    finally:
        runner.stop()
        gate.close()
        server.stop()
    assert single or gate.dropped_frames > 0  # the record stream's clock really did start late
    started = next(e for e in events.snapshot() if e.event == "started")
    (clip_ref,) = [r for r in with_clip.evidence if r.kind == "clip"]
    (clip_path,) = [p for p in (tmp_path / "edge-data").rglob("*.mp4") if sha256_file(p) == clip_ref.sha256]
    return started, with_clip, clip_path, statuses, scrape


def frame_codes(clip_path: Path) -> tuple[list[int], tuple[int, int], str]:
    with av.open(str(clip_path)) as clip:
        stream = clip.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
        codec = stream.codec_context.name
        codes = [read_frame_code(f.to_ndarray(format="bgr24")) for f in clip.decode(stream)]
    return codes, size, codec


@pytest.mark.slow
def test_incident_on_the_sub_stream_gets_its_clip_from_the_main_stream(
    parked_car_short: ParkedCarScenario, main_stream_h264: Path, tmp_path: Path
) -> None:
    started, with_clip, clip_path, statuses, scrape = run_camera_with_two_streams(
        parked_car_short, main_stream_h264, tmp_path, record_delay_s=RECORD_DELAY_S
    )
    assert abs(started.media_time - parked_car_short.expected_start(DWELL_S)) <= 2.0

    # Status: two streams, each with its role, fps and bitrate; the main stream is the bigger.
    last = statuses[-1]
    assert [s.roles for s in last.streams] == [["detect"], ["record"]]
    detect, record = last.streams
    assert 8 <= detect.input_fps <= 16 and 8 <= record.input_fps <= 16  # 12.5 fps both
    assert record.bitrate_kbps > detect.bitrate_kbps > 0
    # A 10 s dwell is not slow: the decode budget decodes every frame of the detect stream.
    assert last.decode == "all_frames" and last.decode_reason == "auto: a rule waits less than 30 s"
    text = scrape.decode()
    assert 'gridwarden_edge_stream_connected{camera="cam-lot",role="record"} 1.0' in text
    assert 'gridwarden_edge_stream_connected{camera="cam-lot",role="detect"} 1.0' in text
    assert 'gridwarden_edge_stream_bitrate_bps{camera="cam-lot",role="record"}' in text

    # The clip is the main stream's video (1280x720), cut around the incident on the detect clock.
    (clip_ref,) = [r for r in with_clip.evidence if r.kind == "clip"]
    codes, size, codec = frame_codes(clip_path)
    assert size == (1280, 720) and codec == "h264"
    assert codes == list(range(codes[0], codes[0] + len(codes)))  # every frame, in order
    first_s, last_s = codes[0] / FPS, codes[-1] / FPS
    assert clip_ref.media_start is not None and clip_ref.media_end is not None
    # The clocks agree: the scene time at the clip's first and last frame (from the codes) is
    # the clip's start and end on the detect clock (which starts at scene time 0). The record
    # stream's own clock started several seconds into the scene: unaligned, it would be off by that.
    for scene_s, media_s in ((first_s, clip_ref.media_start), (last_s, clip_ref.media_end)):
        assert abs(scene_s - media_s) <= ALIGN_TOLERANCE_S, (scene_s, media_s)
    # And the clip spans the incident: pre-roll before it (plus < one GOP) to post-roll after.
    assert clip_ref.media_start <= started.media_time - PRE_ROLL_S + 0.1
    assert clip_ref.media_start >= started.media_time - PRE_ROLL_S - GOP_S - 0.1
    assert clip_ref.media_end >= started.media_time + POST_ROLL_S - 0.3  # B-frames: decode order
    assert (codes[-1] - codes[0] + 1) / FPS >= PRE_ROLL_S + POST_ROLL_S - 0.3


@pytest.fixture(scope="session")
def scene_h265(parked_car_short: ParkedCarScenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parked-car scenario as an H.265 stream at its own size (frame codes along the top)."""
    return build_main_stream(
        parked_car_short.path, tmp_path_factory.mktemp("hevc") / "scene-h265.mp4", (768, 432), "libx265"
    )


@pytest.mark.slow
def test_h265_camera_is_analysed_and_its_clip_is_the_cameras_h265(
    parked_car_short: ParkedCarScenario, scene_h265: Path, tmp_path: Path
) -> None:
    """One H.265 stream over real RTSP: decoded for analysis, remuxed (not re-encoded) for the clip."""
    started, with_clip, clip_path, statuses, _ = run_camera_with_two_streams(
        parked_car_short, scene_h265, tmp_path, record_delay_s=0.0, single=True
    )
    assert abs(started.media_time - parked_car_short.expected_start(DWELL_S)) <= 2.0
    assert [s.roles for s in statuses[-1].streams] == [["detect", "record"]]
    (clip_ref,) = [r for r in with_clip.evidence if r.kind == "clip"]
    codes, size, codec = frame_codes(clip_path)
    assert codec == "hevc" and size == (768, 432)
    assert codes == list(range(codes[0], codes[0] + len(codes)))
    assert clip_ref.media_start is not None and clip_ref.media_end is not None
    assert abs(codes[0] / FPS - clip_ref.media_start) <= ALIGN_TOLERANCE_S
    assert clip_ref.media_start <= started.media_time - PRE_ROLL_S + 0.1
    assert clip_ref.media_end >= started.media_time + POST_ROLL_S - 0.3  # B-frames: decode order
    # Remuxed: the clip's picture data are the file's own H.265 NAL units, in order (RTP adds
    # parameter sets in-band, so those are left out of the comparison).
    with av.open(str(clip_path)) as clip, av.open(str(scene_h265)) as source:
        clip_nals = [hevc_picture_nals(bytes(p)) for p in clip.demux(video=0) if p.size]
        source_nals = [hevc_picture_nals(bytes(p)) for p in source.demux(video=0) if p.size]
    first = source_nals.index(clip_nals[0])
    assert source_nals[first : first + len(clip_nals)] == clip_nals


def hevc_picture_nals(sample: bytes) -> list[bytes]:
    """NAL units of a length-prefixed H.265 sample without VPS/SPS/PPS, delimiters and SEI."""
    nals, pos = [], 0
    while pos + 4 <= len(sample):
        size = int.from_bytes(sample[pos : pos + 4], "big")
        nal = sample[pos + 4 : pos + 4 + size]
        if nal and (nal[0] >> 1) & 0x3F not in (32, 33, 34, 35, 39, 40):
            nals.append(nal)
        pos += 4 + size
    return nals
