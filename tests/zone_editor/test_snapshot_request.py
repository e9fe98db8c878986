"""Snapshots on request: an integrator asks (POST .../snapshot/request) → the hub publishes a
SnapshotRequest on the edge's own topic → the edge's ConfigSync passes it on → the uploader
sends a fresh picture at once instead of waiting for its 5-minute interval."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import httpx
import numpy as np

from gridwarden.edge.capture.camera_snapshots import CameraSnapshotUploader
from gridwarden.edge.transport.config_sync import ConfigSync
from gridwarden.edge.transport.publisher import MqttSettings
from gridwarden.edge.types import Frame
from tests.zone_editor.conftest import EDGE, SITE, ZoneHub


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requested_snapshot_is_uploaded_at_once(zone_hub: ZoneHub, tmp_path: Path) -> None:
    uploader = CameraSnapshotUploader(zone_hub.url, zone_hub.edge_token, interval_s=300, edge_id=EDGE)
    requests: queue.Queue[str | None] = queue.Queue()

    def on_request(camera: str | None) -> None:
        requests.put(camera)
        uploader.request(camera)

    sync = ConfigSync(
        SITE,
        EDGE,
        MqttSettings(host="127.0.0.1", port=zone_hub.broker.port, client_id="snapshot-edge"),
        lambda _cfg, _v: None,
        tmp_path / "edge-state",
        on_snapshot_request=on_request,
    )
    uploader.start()
    try:
        assert sync.start(wait_s=10)
        image = np.full((90, 160, 3), 40, np.uint8)
        uploader.offer("cam-1", Frame(camera_id="cam-1", image=image, media_time=0.0, wall_time=time.time()))
        deadline = time.monotonic() + 10
        while uploader.uploaded < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uploader.uploaded == 1  # the camera's first picture goes at once

        answer = httpx.post(
            f"{zone_hub.url}/api/v1/cameras/{EDGE}/cam-1/snapshot/request",
            headers=_auth(zone_hub.integrator_token),
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        assert requests.get(timeout=5) == "cam-1"
        deadline = time.monotonic() + 5
        while uploader.uploaded < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uploader.uploaded == 2  # long before the 300 s interval
    finally:
        sync.stop()
        uploader.stop()


def test_snapshot_request_needs_a_known_edge_and_the_configure_permission(zone_hub: ZoneHub) -> None:
    unknown = httpx.post(
        f"{zone_hub.url}/api/v1/cameras/edge-nowhere/cam-1/snapshot/request",
        headers=_auth(zone_hub.integrator_token),
        timeout=10,
    )
    assert unknown.status_code == 404 and unknown.json()["detail"]["error"] == "unknown_edge"
    as_edge = httpx.post(
        f"{zone_hub.url}/api/v1/cameras/{EDGE}/cam-1/snapshot/request",
        headers=_auth(zone_hub.edge_token),
        timeout=10,
    )
    assert as_edge.status_code == 403


def test_a_request_for_another_edge_is_ignored(tmp_path: Path) -> None:
    from gridwarden.contract import SnapshotRequest, utcnow

    seen: list[str | None] = []
    sync = ConfigSync(
        SITE,
        EDGE,
        MqttSettings(port=1),
        lambda _c, _v: None,
        tmp_path / "state",
        on_snapshot_request=seen.append,
    )
    other = SnapshotRequest(edge_id="edge-99", camera="cam-1", wall_time=utcnow()).model_dump_json().encode()
    mine = SnapshotRequest(edge_id=EDGE, camera=None, wall_time=utcnow()).model_dump_json().encode()
    assert sync.handle_snapshot_request(b"not json") is False
    assert sync.handle_snapshot_request(other) is False
    assert sync.handle_snapshot_request(mine) is True
    assert seen == [None]
