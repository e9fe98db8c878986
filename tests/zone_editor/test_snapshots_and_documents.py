"""The snapshot routes (edge uploads, integrators read, signed URLs for <img>), the edge's
snapshot uploader, the fleet summary and the configuration-as-JSON routes, on a real hub."""

from __future__ import annotations

import time

import cv2
import httpx
import numpy as np

from gridwarden.edge.capture.camera_snapshots import CameraSnapshotUploader
from gridwarden.edge.types import Frame
from gridwarden.hub.auth import Role, UserStore
from tests.zone_editor.conftest import EDGE, ZoneHub


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_snapshot_upload_read_and_signed_url(zone_hub: ZoneHub) -> None:
    base = f"{zone_hub.url}/api/v1/cameras/{EDGE}/cam-1/snapshot"
    stored = httpx.get(base, headers=_auth(zone_hub.integrator_token))
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/jpeg"
    assert stored.content.startswith(b"\xff\xd8")

    # Integrators may not upload, edges may not read; not-JPEG bodies are refused.
    jpeg = stored.content
    put_as_integrator = httpx.put(
        base, content=jpeg, headers={**_auth(zone_hub.integrator_token), "Content-Type": "image/jpeg"}
    )
    assert put_as_integrator.status_code == 403
    assert httpx.get(base, headers=_auth(zone_hub.edge_token)).status_code == 403
    not_jpeg = httpx.put(
        base, content=b"GIF89a...", headers={**_auth(zone_hub.edge_token), "Content-Type": "image/jpeg"}
    )
    assert not_jpeg.status_code == 422
    assert (
        httpx.get(base.replace("cam-1", "cam-2"), headers=_auth(zone_hub.integrator_token)).status_code == 404
    )

    signed = httpx.post(f"{base}/url", headers=_auth(zone_hub.integrator_token))
    assert signed.status_code == 200, signed.text
    url = zone_hub.url + signed.json()["url"]
    assert httpx.get(url).content == jpeg
    other_camera = url.replace("/cam-1/", "/cam-2/")
    assert httpx.get(other_camera).status_code == 401
    assert httpx.get(url.split("?")[0]).status_code == 401


def test_staff_cannot_read_snapshots_or_the_fleet(zone_hub: ZoneHub) -> None:
    _, staff_token = UserStore(zone_hub.db).create("sam", Role.STAFF)
    assert httpx.get(f"{zone_hub.url}/api/v1/console/fleet", headers=_auth(staff_token)).status_code == 403
    snapshot = f"{zone_hub.url}/api/v1/cameras/{EDGE}/cam-1/snapshot"
    assert httpx.get(snapshot, headers=_auth(staff_token)).status_code == 403


def test_edge_uploader_sends_the_newest_frame_at_once(zone_hub: ZoneHub) -> None:
    uploader = CameraSnapshotUploader(zone_hub.url, zone_hub.edge_token, interval_s=300, edge_id=EDGE)
    uploader.start()
    try:
        image = np.zeros((90, 160, 3), np.uint8)
        image[:, :80] = (0, 0, 255)  # left half red: recognisable after JPEG
        uploader.offer("cam-2", Frame(camera_id="cam-2", image=image, media_time=0.0, wall_time=time.time()))
        deadline = time.monotonic() + 10
        while uploader.uploaded < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uploader.uploaded == 1 and uploader.failed == 0
    finally:
        uploader.stop()
    got = httpx.get(
        f"{zone_hub.url}/api/v1/cameras/{EDGE}/cam-2/snapshot", headers=_auth(zone_hub.integrator_token)
    )
    assert got.status_code == 200
    decoded = cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (90, 160, 3)
    assert decoded[45, 20, 2] > 200 and decoded[45, 140, 2] < 50


def test_fleet_summary_puts_the_offline_camera_first(zone_hub: ZoneHub) -> None:
    fleet = zone_hub.get("/api/v1/console/fleet").json()
    (edge,) = fleet["edges"]
    assert edge["edge_id"] == EDGE and edge["online"] is True
    assert [c["camera_id"] for c in edge["cameras"]] == ["cam-2", "cam-1"]
    assert edge["cameras"][0]["state"] == "offline" and edge["cameras"][0]["reconnects"] == 7


def test_document_put_refuses_invalid_and_stale_versions(zone_hub: ZoneHub) -> None:
    url = f"{zone_hub.url}/api/v1/edges/{EDGE}/config/document"
    current = zone_hub.get(f"/api/v1/edges/{EDGE}/config/document").json()
    document = current["document"]
    document["cameras"][0]["zones"][0]["rules"][0]["dwell_s"] = -1
    refused = httpx.put(
        url, json={"document": document, "base_version": 1}, headers=_auth(zone_hub.integrator_token)
    )
    assert refused.status_code == 422
    assert any("dwell_s" in p for p in refused.json()["detail"]["problems"])
    document["cameras"][0]["zones"][0]["rules"][0]["dwell_s"] = 30
    stale = httpx.put(
        url, json={"document": document, "base_version": 0}, headers=_auth(zone_hub.integrator_token)
    )
    assert stale.status_code == 409
    ok = httpx.put(
        url, json={"document": document, "base_version": 1}, headers=_auth(zone_hub.integrator_token)
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.json()["published"] is True
    missing = zone_hub.get("/api/v1/edges/edge-unknown/config/document")
    assert missing.status_code == 404
