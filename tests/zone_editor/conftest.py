"""Fixtures for the fleet view and zone editor: a real hub (uvicorn, SQLite) with the console,
the configuration-document and snapshot routes, a config publisher on a private real Mosquitto,
an integrator with a password, an edge token, fleet status ingested as the edges send it, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from gridwarden.contract import CameraStatus, EdgeStatus, Topics, utcnow
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.db.engine import Database
from gridwarden.hub.ingest import ingest_payload
from gridwarden.hub.settings import HubSettings
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, first_frame_jpeg, serve, stop
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker  # noqa: F401 - fixture
from tests.support.paths import CAR_CLIP
from tests.support.ports import free_port

SITE = "north"
EDGE = "edge-07"
INTEGRATOR = "ivy"
INTEGRATOR_PASSWORD = "draw the kerb lines"
EDGE_YAML = f"""edge_id: {EDGE}
site: {SITE}
class_groups:
  two_wheeler: [bicycle, motorcycle]
cameras:
  - id: cam-1
    url: rtsp://10.0.0.9/one
    zones:
      - id: kerb-a
        polygon: [[0.0, 0.6], [0.5, 0.6], [0.5, 1.0], [0.0, 1.0]]
        rules:
          - {{type: illegal_parking, classes: [vehicle], dwell_s: 60}}
  - id: cam-2
    url: rtsp://10.0.0.9/two
"""


@dataclass
class ZoneHub:
    url: str
    db: Database
    integrator_token: str
    edge_token: str
    broker: MosquittoBroker

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.url + path, headers={"Authorization": f"Bearer {self.integrator_token}"}, timeout=10
        )


def _ingest_status(db: Database) -> None:
    """What the edge's retained status topics would bring: edge online, cam-1 online, cam-2 offline."""
    now = utcnow()
    topics = Topics(SITE, EDGE)
    messages = [
        (topics.status, EdgeStatus(edge_id=EDGE, site=SITE, online=True, config_version="1", wall_time=now)),
        (
            topics.camera_status("cam-1"),
            CameraStatus(
                edge_id=EDGE,
                camera="cam-1",
                state="online",
                input_fps=12.5,
                analysed_fps=2.0,
                lag_s=0.4,
                wall_time=now,
            ),  # fmt: skip
        ),
        (
            topics.camera_status("cam-2"),
            CameraStatus(
                edge_id=EDGE,
                camera="cam-2",
                state="offline",
                reconnects=7,
                last_error="connection refused",
                wall_time=now - timedelta(seconds=5),
            ),  # fmt: skip
        ),
    ]
    for topic, message in messages:
        with db.write_session() as session, session.begin():
            ingest_payload(session, topic, message.model_dump_json().encode(), now=now)


def ingest_edge_status(db: Database, edge_id: str) -> None:
    """An edge that reported its status but has no configuration on the hub."""
    now = utcnow()
    message = EdgeStatus(edge_id=edge_id, site=SITE, online=True, wall_time=now)
    with db.write_session() as session, session.begin():
        ingest_payload(session, Topics(SITE, edge_id).status, message.model_dump_json().encode(), now=now)


@pytest.fixture
def zone_hub(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> Iterator[ZoneHub]:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    publisher = ConfigPublisher(host="127.0.0.1", port=mosquitto_broker.port, timeout_s=5.0)
    assert publisher.connect(), "config publisher could not connect to the test broker"
    built = build_hub(
        HubSettings(database_url=url, evidence_root=str(tmp_path / "evidence")), config_publisher=publisher
    )
    database = built.db
    users = UserStore(database)
    _, integrator_token = users.create(INTEGRATOR, Role.INTEGRATOR)
    users.set_password(INTEGRATOR, INTEGRATOR_PASSWORD)
    _, edge_token = users.create(EDGE, Role.EDGE)
    port = free_port()
    server, thread = serve(built.app, port)
    hub = ZoneHub(f"http://127.0.0.1:{port}", database, integrator_token, edge_token, mosquitto_broker)
    try:
        _ingest_status(database)
        stored = httpx.put(
            f"{hub.url}/api/v1/edges/{EDGE}/config",
            json={"yaml": EDGE_YAML, "comment": "registration"},
            headers={"Authorization": f"Bearer {integrator_token}"},
            timeout=10,
        )
        assert stored.status_code == 200, stored.text
        uploaded = httpx.put(
            f"{hub.url}/api/v1/cameras/{EDGE}/cam-1/snapshot",
            content=first_frame_jpeg(CAR_CLIP),
            headers={"Authorization": f"Bearer {edge_token}", "Content-Type": "image/jpeg"},
            timeout=10,
        )
        assert uploaded.status_code == 200, uploaded.text
        yield hub
    finally:
        stop(server, thread, built)
        publisher.close()


@pytest.fixture
def browser(zone_hub: ZoneHub) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("GRIDWARDEN_CONSOLE_SCREENSHOTS")
    path = Path(target) if target else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
