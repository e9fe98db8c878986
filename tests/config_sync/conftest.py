"""Fixtures for central configuration: a migrated SQLite hub, its API with a config publisher on a
private real Mosquitto, tokens per role, and a valid edge configuration text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.db.engine import Database, upgrade_database
from gridwarden.hub.settings import HubSettings
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker  # noqa: F401 - fixture

SITE = "north"
EDGE = "edge-07"


def edge_yaml(*zones: str, edge_id: str = EDGE, url: str = "rtsp://10.0.0.9/stream") -> str:
    """A valid configuration with one camera and the given zone blocks (YAML, indented for it)."""
    body = "".join(zones) or zone_yaml("kerb-a")
    return f"edge_id: {edge_id}\nsite: {SITE}\ncameras:\n  - id: cam-1\n    url: {url}\n    zones:\n" + body


def zone_yaml(
    zone_id: str,
    polygon: str = "[[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]",
    classes: str = "[vehicle]",
    dwell_s: float = 5,
) -> str:
    return (
        f"      - id: {zone_id}\n"
        f"        polygon: {polygon}\n"
        "        rules:\n"
        f"          - {{type: illegal_parking, classes: {classes}, dwell_s: {dwell_s}}}\n"
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:
    users = UserStore(db)
    return {
        role.value: users.create(role.value, role)[1] for role in (Role.STAFF, Role.INTEGRATOR, Role.ADMIN)
    }


@pytest.fixture
def publisher(mosquitto_broker: MosquittoBroker) -> Iterator[ConfigPublisher]:  # noqa: F811
    pub = ConfigPublisher(host="127.0.0.1", port=mosquitto_broker.port, timeout_s=5.0)
    assert pub.connect(), "config publisher could not connect to the test broker"
    try:
        yield pub
    finally:
        pub.close()


@pytest.fixture
def client(db: Database, publisher: ConfigPublisher, tmp_path: Path) -> Iterator[TestClient]:
    """The hub as ``hub serve`` builds it, publishing through the test broker."""
    settings = HubSettings(database_url=db.url, evidence_root=str(tmp_path / "evidence"))
    with build_hub(settings, db=db, config_publisher=publisher) as hub, TestClient(hub.app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
