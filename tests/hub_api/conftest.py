"""Fixtures for the hub API tests: a real app in-process (FastAPI's TestClient) on SQLite AND
PostgreSQL, users of each role, and cases made by ingesting real wire messages.

The database fixtures are the hub core's (tests/hub/conftest.py): every test taking ``db`` runs
once per backend, and an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwarden.contract import CameraStatus, EdgeStatus, IncidentEvent, Topics, utcnow
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.ingest import Outcome, ingest_batch
from gridwarden.hub.settings import HubSettings
from tests.hub.conftest import db, db_url, pg_database_url, sqlite_template  # noqa: F401 - fixtures
from tests.hub.factories import SITE, T0, incident_event, topic_of, wire


def _topic(message: IncidentEvent | EdgeStatus | CameraStatus) -> str:
    if isinstance(message, IncidentEvent):
        return topic_of(message)
    if isinstance(message, EdgeStatus):
        return Topics(message.site, message.edge_id).status
    return Topics(SITE, message.edge_id).camera_status(message.camera)


def ingest(database: Database, *messages: IncidentEvent | EdgeStatus | CameraStatus) -> list[int | None]:
    """Feed wire messages through the hub's real ingest (one batch, as the consumer does);
    return the case id each message landed in (None for status messages)."""
    with database.write_session() as session, session.begin():
        results = ingest_batch(session, [(_topic(m), wire(m)) for m in messages], now=utcnow())
    for result in results:
        assert result.outcome in (Outcome.STORED, Outcome.STATUS), result
    return [r.case_id for r in results]


# Six incidents far enough apart (more than the 120 s merge window) to be six cases.
SEED = [
    # (camera, zone, rule, minutes after T0)
    ("cam-1", "kerb-a", "illegal_parking", 0),
    ("cam-1", "kerb-a", "illegal_parking", 10),
    ("cam-2", "kerb-a", "occupied_space", 20),
    ("cam-2", "square", "static_object", 30),
    ("cam-3", "kerb-b", "illegal_parking", 40),
    ("cam-1", "kerb-b", "occupied_space", 50),
]


def seed_events(seed: Sequence[tuple[str, str, str, int]] = SEED) -> list[IncidentEvent]:
    return [
        incident_event(
            seq=i + 1,
            incident_id=f"inc-{i}",
            camera=camera,
            zone=zone,
            rule=rule,
            started=T0 + timedelta(minutes=minutes),
            track_id=i,
        )
        for i, (camera, zone, rule, minutes) in enumerate(seed)
    ]


@pytest.fixture
def app_client(db: Database, tmp_path: Path) -> Iterator[TestClient]:  # noqa: F811 - the imported fixture
    settings = HubSettings(database_url=db.url, evidence_root=str(tmp_path / "evidence"))
    with build_hub(settings, db=db) as hub, TestClient(hub.app) as client:
        yield client


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:  # noqa: F811
    """A bearer token per role, for users named after their role."""
    store = UserStore(db)
    return {role.value: store.create(f"{role.value}-user", role)[1] for role in Role}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(db: Database) -> list[int]:  # noqa: F811
    """The six SEED cases, ingested as real incident events; returns their ids in SEED order."""
    ids = ingest(db, *seed_events())
    assert len(set(ids)) == len(SEED) and None not in ids
    return [i for i in ids if i is not None]
