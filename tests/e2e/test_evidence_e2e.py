"""Evidence end to end: a real RTSP camera -> EdgeRunner with evidence on -> a real ``hub serve``.

The parked-car scenario (car still in the zone from 6.08 s for 20 s; rule dwell 10 s, so the
incident starts at ~16.1 s) is served at real-time rate. The ``started`` event must carry the two
snapshot refs at once; ``post_roll_s`` later an ``updated`` event carries the clip's ref too. The
uploader PUTs all three files to the hub with an ``edge`` token; staff read them back (the clip
with HTTP ranges), and the clip is the camera's own H.264, remuxed, not re-encoded. Finally the
events go over MQTT to the hub, whose case shows the three refs merged by hash.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import httpx
import pytest

from gridwarden.contract import IncidentEvent, Topics
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.runner import EdgeRunner
from gridwarden.edge.service import build_evidence_uploader
from gridwarden.hub.auth import UserStore
from gridwarden.hub.db.engine import Database
from tests.hub.mqtt_helpers import Publisher
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT, YOLOX_NANO
from tests.support.ports import free_port
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import FPS, PARKING_ZONE, ParkedCarScenario

DWELL_S = 10.0
PRE_ROLL_S = 10.0
POST_ROLL_S = 10.0
GOP_S = 2.0  # the scenario clip has a keyframe every 2 s


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


def avcc_nals(data: bytes) -> list[bytes]:
    """NAL units of a length-prefixed (MP4) H.264 sample, without parameter sets and delimiters
    (RTP carries SPS/PPS in-band before keyframes; the MP4 keeps them in its header)."""
    nals, pos = [], 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        nal = data[pos + 4 : pos + 4 + size]
        if nal and nal[0] & 0x1F not in (7, 8, 9):
            nals.append(nal)
        pos += 4 + size
    return nals


@pytest.mark.slow
def test_incident_evidence_reaches_the_hub_and_plays(
    parked_car_short: ParkedCarScenario, tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database.open(db_url)
    _, staff_token = UserStore(db).create("olga", "staff")
    _, edge_token = UserStore(db).create("edge-e2e", "edge")
    db.dispose()
    token_file = tmp_path / "edge-token"
    token_file.write_text(edge_token + "\n")
    evidence_root = tmp_path / "hub-evidence"
    api_port = free_port()
    hub_log = tmp_path / "hub.log"
    hub_cmd = [
        sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url,
        "--mqtt-host", "127.0.0.1", "--mqtt-port", str(mosquitto_broker.port),
        "--host", "127.0.0.1", "--port", str(api_port), "--client-id", "hub-evidence-e2e",
        "--evidence-root", str(evidence_root),
    ]  # fmt: skip
    with open(hub_log, "wb") as out:
        hub = subprocess.Popen(
            hub_cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )  # fmt: skip
    base = f"http://127.0.0.1:{api_port}"
    camera = RtspServer({"lot": parked_car_short.path}, loop=1, log_dir=tmp_path)
    camera.start()
    cfg = load_edge_config_text(
        f"""\
edge_id: edge-e2e
site: test
data_dir: {tmp_path / "edge-data"}
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
evidence: {{enabled: true, pre_roll_s: {PRE_ROLL_S}, post_roll_s: {POST_ROLL_S}}}
hub: {{url: "{base}", token_file: {token_file}}}
cameras:
  - id: cam-lot
    url: {camera.url("lot")}
    zones:
      - id: no-parking
        polygon: {PARKING_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: {DWELL_S}, end_grace_s: 1}}
"""
    )
    uploader = build_evidence_uploader(cfg)
    assert uploader is not None
    events = Events()
    runner = EdgeRunner(cfg, detector=build_detector(cfg), sink=events, evidence_uploader=uploader)
    uploader.start()  # the hub may still be starting: the uploader retries until it answers
    runner.start()
    try:

        def clip_event() -> IncidentEvent | None:
            assert hub.poll() is None, hub_log.read_text()[-3000:]
            return next((e for e in events.snapshot() if any(r.kind == "clip" for r in e.evidence)), None)

        with_clip = wait_for(clip_event, 60, "an event carrying the clip")
        runner.stop()
        assert uploader.wait_until_empty(30), uploader.last_error
        assert uploader.rejected() == 0 and uploader.dropped() == 0

        parking = [e for e in events.snapshot() if e.rule == "illegal_parking"]
        started = parking[0]
        assert started.event == "started"
        assert abs(started.media_time - parked_car_short.expected_start(DWELL_S)) <= 2.0
        assert [r.kind for r in started.evidence] == ["snapshot", "snapshot_annotated"]
        assert with_clip.event == "updated" and with_clip.incident_id == started.incident_id
        assert [r.kind for r in with_clip.evidence] == ["snapshot", "snapshot_annotated", "clip"]
        assert with_clip.evidence[:2] == started.evidence
        (clip_ref,) = [r for r in with_clip.evidence if r.kind == "clip"]
        assert clip_ref.media_start is not None and clip_ref.media_end is not None
        # The clip starts at the keyframe at or before trigger - pre-roll and ends at trigger + post-roll.
        assert started.media_time - PRE_ROLL_S - GOP_S - 0.1 <= clip_ref.media_start
        assert clip_ref.media_start <= started.media_time - PRE_ROLL_S + 0.01
        assert abs(clip_ref.media_end - (started.media_time + POST_ROLL_S)) <= 0.2

        # Staff read all three back, byte for byte; the edge's own token may only upload.
        staff = {"Authorization": f"Bearer {staff_token}"}
        bodies = {}
        for ref in with_clip.evidence:
            response = httpx.get(f"{base}/api/v1/evidence/{ref.sha256}", headers=staff, timeout=10)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == ref.content_type
            assert (
                hashlib.sha256(response.content).hexdigest() == ref.sha256
                and len(response.content) == ref.size
            )
            bodies[ref.kind] = response.content
        denied = httpx.get(
            f"{base}/api/v1/evidence/{clip_ref.sha256}", headers={"Authorization": f"Bearer {edge_token}"}
        )
        assert denied.status_code == 403
        ranged = httpx.get(
            f"{base}/api/v1/evidence/{clip_ref.sha256}",
            headers={**staff, "Range": "bytes=100-1099"},
            timeout=10,
        )
        assert ranged.status_code == 206 and ranged.content == bodies["clip"][100:1100]
        assert ranged.headers["content-range"] == f"bytes 100-1099/{clip_ref.size}"

        # The clip plays: every frame decodes; pre + post roll long (plus < one GOP); the camera's
        # codec parameters; its samples are the camera's NAL units (remuxed, not re-encoded).
        clip_path = tmp_path / "downloaded.mp4"
        clip_path.write_bytes(bodies["clip"])
        with av.open(str(clip_path)) as clip, av.open(str(parked_car_short.path)) as source:
            out, src = clip.streams.video[0], source.streams.video[0]
            assert (out.codec_context.name, out.codec_context.profile) == (
                src.codec_context.name,
                src.codec_context.profile,
            )
            assert (out.codec_context.width, out.codec_context.height) == (768, 432)
            clip_samples = [bytes(p) for p in clip.demux(out) if p.size]
            source_samples = [bytes(p) for p in source.demux(src) if p.size]
        with av.open(str(clip_path)) as clip:
            decoded = sum(1 for _ in clip.decode(video=0))
        assert decoded == len(clip_samples)
        duration = decoded / FPS
        assert PRE_ROLL_S + POST_ROLL_S - 0.2 <= duration <= PRE_ROLL_S + POST_ROLL_S + GOP_S + 0.2
        # The clip's samples are a run of the camera's own samples, in order (found by content:
        # where the RTSP session's clock started relative to the file is the server's business).
        source_nals = [avcc_nals(sample) for sample in source_samples]
        clip_nals = [avcc_nals(sample) for sample in clip_samples]
        first = source_nals.index(clip_nals[0])
        assert source_nals[first : first + len(clip_nals)] == clip_nals

        # The incident's events, sent to the hub over MQTT, give one case with all three refs.
        topic = Topics("test", "edge-e2e").incidents
        publisher = Publisher(mosquitto_broker.port)
        try:
            publisher.publish_all(
                (topic, e.model_copy(update={"seq": seq}).model_dump_json().encode())
                for seq, e in enumerate(parking, start=1)
            )
        finally:
            publisher.close()

        def case_with_evidence() -> dict | None:  # type: ignore[type-arg]
            items = httpx.get(f"{base}/api/v1/cases", headers=staff, timeout=5).json()["items"]
            if not items:
                return None
            detail = httpx.get(f"{base}/api/v1/cases/{items[0]['id']}", headers=staff, timeout=5).json()
            return detail if detail["incidents"] and len(detail["incidents"][0]["evidence"]) == 3 else None

        case = wait_for(case_with_evidence, 20, "the case with three evidence refs")
        assert {r["sha256"] for r in case["incidents"][0]["evidence"]} == {
            r.sha256 for r in with_clip.evidence
        }
    finally:
        runner.stop()
        uploader.close()
        camera.stop()
        hub.send_signal(signal.SIGTERM)
        try:
            code = hub.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.kill()
            raise
    assert code == 0, hub_log.read_text()[-3000:]
    # The hub stored them content-addressed under --evidence-root.
    assert sorted(p.name for p in evidence_root.glob("??/??/*")) == sorted(
        r.sha256 for r in with_clip.evidence
    )
