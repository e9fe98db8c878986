"""Fixtures for dry runs: a migrated SQLite hub with the dry-run router on a real worker thread,
tokens per role, the parked-car scenario clip and configurations for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gridwarden.hub.app import Hub, build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database, upgrade_database
from gridwarden.hub.dry_run import DryRunService
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.settings import HubSettings
from tests.support.paths import YOLOX_NANO
from tests.support.scenarios import PARKING_ZONE, ParkedCarScenario, build_parked_car_clip

EDGE = "edge-dry"
CAMERA = "cam-lot"
DWELL_S = 10
# Across the top of the frame, where no car stops.
TOP_ZONE = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.25], [0.0, 0.25]]


def zone_yaml(
    zone_id: str = "no-parking", polygon: list[list[float]] = PARKING_ZONE, dwell_s: float = DWELL_S
) -> str:
    return (
        f"      - id: {zone_id}\n"
        f"        polygon: {polygon}\n"
        "        rules:\n"
        f"          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: {dwell_s}, end_grace_s: 1}}\n"
    )


def parking_yaml(*zones: str, model: str = str(YOLOX_NANO)) -> str:
    """The parked-car configuration; by default one zone ``no-parking`` around where the car stops."""
    return f"""\
edge_id: {EDGE}
site: test
model: {{path: {model}, input_size: 416}}
class_groups:
  # Seen from above, COCO models call cars bus, truck or cell phone (../shared/README.md).
  overhead_vehicle: [car, bus, truck, cell phone]
cameras:
  - id: {CAMERA}
    kind: skynet
    url: rtsp://10.0.0.9/stream
    analysis_fps: 2
    zones:
""" + "".join(zones or (zone_yaml(),))


@pytest.fixture(scope="session")
def parked_car(tmp_path_factory: pytest.TempPathFactory) -> ParkedCarScenario:
    """Car stops in PARKING_ZONE at 6.08 s for 20 s; clip cut at frame 110 (≈ 28.8 s)."""
    return build_parked_car_clip(
        tmp_path_factory.mktemp("dry-run-scenarios") / "parked-20s.mp4", hold_s=20.0, last_frame=110
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
def hub(db: Database, tmp_path: Path) -> Iterator[Hub]:
    """The hub as ``hub serve`` builds it; its dry runs accept clips up to 20 MiB."""
    settings = HubSettings(
        database_url=db.url,
        evidence_root=str(tmp_path / "evidence"),
        model_dir=str(tmp_path / "models"),
        dry_run_max_upload_bytes=20 * 1024 * 1024,
    )
    with build_hub(settings, db=db) as built:
        yield built


@pytest.fixture
def evidence_store(hub: Hub) -> EvidenceStore:
    return hub.evidence


@pytest.fixture
def service(hub: Hub) -> DryRunService:
    assert hub.services.dry_runs is not None
    return hub.services.dry_runs


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with TestClient(hub.app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_done(
    client: TestClient, url: str, headers: dict[str, str], timeout_s: float = 120.0
) -> dict[str, Any]:
    """Poll a dry run until it is done or failed; progress must never go backwards."""
    deadline = time.monotonic() + timeout_s
    last = -1.0
    while time.monotonic() < deadline:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["progress"] >= last
        last = body["progress"]
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"dry run {url} not finished within {timeout_s} s")
