"""Fixtures for the review console tests: a real hub (uvicorn on a free port, SQLite or
PostgreSQL), a staff user with a password, real evidence files in a real evidence store, and
Debian's Chromium driven by Playwright.

The browser is Debian's package (``apt-get install chromium``), never a downloaded one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
import cv2
import httpx
import pytest
import uvicorn

from gridwarden.contract import EvidenceRef, IncidentEvent, utcnow
from gridwarden.hub.api.console import StreamSettings, get_stream_settings
from gridwarden.hub.app import Hub as BuiltHub
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.ingest import ingest_payload
from gridwarden.hub.settings import HubSettings
from tests.hub.conftest import db, db_url, pg_database_url, sqlite_template  # noqa: F401 - fixtures
from tests.hub.factories import incident_event, topic_of, wire
from tests.support.paths import CAR_CLIP
from tests.support.ports import free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
STAFF = "alice"
STAFF_PASSWORD = "correct horse battery"
FAST_STREAM = StreamSettings(poll_s=0.3, lookback_s=5.0, max_age_s=120.0, heartbeat_s=5.0)


@dataclass
class Hub:
    """A running hub: its base URL, database, users and evidence store."""

    url: str
    db: Database
    users: UserStore
    evidence: EvidenceStore
    edge_token: str
    staff_token: str
    built: BuiltHub

    def upload(self, data: bytes, content_type: str) -> str:
        """PUT a file to the evidence API as an edge would; returns its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        response = httpx.put(
            f"{self.url}/api/v1/evidence/{sha}",
            content=data,
            headers={"Authorization": f"Bearer {self.edge_token}", "Content-Type": content_type},
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text
        return sha

    def ingest(self, event: IncidentEvent) -> int:
        """Feed one wire message through the hub's real ingest; returns its case id."""
        with self.db.write_session() as session, session.begin():
            result = ingest_payload(session, topic_of(event), wire(event), now=utcnow())
        assert result.case_id is not None, result
        return result.case_id


def serve(app: object, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    wait_for_port(port, timeout=20)
    return server, thread


def start_hub(database_url: str, root: Path) -> tuple[Hub, uvicorn.Server, threading.Thread]:
    built = build_hub(HubSettings(database_url=database_url, evidence_root=str(root / "evidence")))
    built.app.dependency_overrides[get_stream_settings] = lambda: FAST_STREAM
    users = UserStore(built.db)
    _, staff_token = users.create(STAFF, Role.STAFF)
    users.set_password(STAFF, STAFF_PASSWORD)
    _, edge_token = users.create("edge-uploader", Role.EDGE)
    port = free_port()
    server, thread = serve(built.app, port)
    hub = Hub(f"http://127.0.0.1:{port}", built.db, users, built.evidence, edge_token, staff_token, built)
    return hub, server, thread


def stop(server: uvicorn.Server, thread: threading.Thread, hub: BuiltHub) -> None:
    """Stop uvicorn, then release what the hub opened (its database too)."""
    server.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive(), "uvicorn did not stop"
    hub.stop()


@pytest.fixture
def live_hub(db_url: str, tmp_path: Path) -> Iterator[Hub]:  # noqa: F811 - the imported fixture
    """A hub served by uvicorn on each database backend in turn (for API-level tests)."""
    hub, server, thread = start_hub(db_url, tmp_path)
    try:
        yield hub
    finally:
        stop(server, thread, hub.built)


@pytest.fixture(scope="module")
def sqlite_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One hub on SQLite shared by the browser tests of a module."""
    root = tmp_path_factory.mktemp("console-hub")
    hub, server, thread = start_hub(f"sqlite:///{root / 'hub.db'}", root)
    try:
        yield hub
    finally:
        stop(server, thread, hub.built)


def first_frame_jpeg(path: Path) -> bytes:
    """A real JPEG: the clip's first frame, encoded by OpenCV (as the edge does for snapshots)."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        image = frame.to_ndarray(format="bgr24")
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buffer.tobytes()


@dataclass(frozen=True)
class Evidence:
    clip: EvidenceRef
    snapshot: EvidenceRef


def upload_evidence(hub: Hub) -> Evidence:
    """The shared car clip (whole file) and a JPEG of its first frame, uploaded to the hub."""
    clip_bytes = CAR_CLIP.read_bytes()
    jpeg = first_frame_jpeg(CAR_CLIP)
    clip_sha = hub.upload(clip_bytes, "video/mp4")
    jpeg_sha = hub.upload(jpeg, "image/jpeg")
    return Evidence(
        clip=EvidenceRef(
            kind="clip",
            sha256=clip_sha,
            size=len(clip_bytes),
            content_type="video/mp4",
            media_start=0.0,
            media_end=30.0,
        ),  # fmt: skip
        snapshot=EvidenceRef(
            kind="snapshot_annotated", sha256=jpeg_sha, size=len(jpeg), content_type="image/jpeg"
        ),
    )


def incident_with_evidence(
    *,
    seq: int,
    incident_id: str,
    camera: str,
    zone: str,
    started: datetime,
    evidence: Evidence,
    track_id: int,
) -> IncidentEvent:
    event = incident_event(
        seq=seq, incident_id=incident_id, camera=camera, zone=zone, started=started, track_id=track_id
    )
    return event.model_copy(update={"evidence": [evidence.clip, evidence.snapshot]})
