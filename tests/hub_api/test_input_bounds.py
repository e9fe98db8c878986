"""Input the database cannot hold is refused with a 4xx that says why, never a 500: integers
beyond 63 bits in paths, queries and bodies, identifiers no camera can have, control characters
in a configuration. Run on SQLite and PostgreSQL (each backend fails differently: SQLite raises
OverflowError in the driver, PostgreSQL 'integer out of range')."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwarden.contract import EdgeStatus, utcnow
from gridwarden.hub.app import build_hub
from gridwarden.hub.db.engine import Database
from gridwarden.hub.settings import HubSettings
from tests.hub.factories import SITE
from tests.hub_api.conftest import bearer, ingest

TOO_BIG = str(2**63)  # 9223372036854775808: one past the largest BIGINT
HUGE = "9" * 40


@pytest.mark.parametrize("number", [TOO_BIG, HUGE, "-" + TOO_BIG])
@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/api/v1/cases/{n}", "admin"),
        ("POST", "/api/v1/cases/{n}/transitions", "admin"),
        ("GET", "/api/v1/cases?offset={n}", "admin"),
        ("GET", "/api/v1/edges/edge-01/config/versions/{n}", "admin"),
    ],
)
def test_integers_beyond_64_bits_are_a_clear_4xx(
    app_client: TestClient, tokens: dict[str, str], method: str, path: str, role: str, number: str
) -> None:
    body = {"to": "confirmed"} if "transitions" in path else None
    response = app_client.request(method, path.format(n=number), headers=bearer(tokens[role]), json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("number", [2**63, 10**40])
def test_integers_beyond_64_bits_in_bodies_are_422(
    app_client: TestClient, tokens: dict[str, str], number: int
) -> None:
    headers = bearer(tokens["admin"])
    rollback = app_client.post(
        "/api/v1/edges/edge-01/config/rollback", headers=headers, json={"version": number}
    )
    assert rollback.status_code == 422, rollback.text
    document = app_client.put(
        "/api/v1/edges/edge-01/config/document",
        headers=headers,
        json={"document": {"edge_id": "edge-01"}, "base_version": number},
    )
    assert document.status_code == 422, document.text


@pytest.mark.parametrize("yaml_text", ["\u001f", "edge_id: a\u0000b\n", "\ufffe", "edge_id: x\n\u0085\u0007"])
def test_control_characters_in_a_configuration_are_422(
    app_client: TestClient, tokens: dict[str, str], yaml_text: str
) -> None:
    response = app_client.put(
        "/api/v1/edges/edge-01/config", headers=bearer(tokens["admin"]), json={"yaml": yaml_text}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["error"] == "invalid_config"


@pytest.mark.parametrize("camera", ["bad%20cam", "-cam", "x" * 65, "caf%C3%A9"])
def test_a_camera_id_no_camera_can_have_is_a_4xx(
    db: Database, tokens: dict[str, str], tmp_path: Path, camera: str
) -> None:
    """The edge is known, so only the camera id decides (this hub was never started, so its
    publisher has no broker connection: a valid camera id gets 503, which the first request shows)."""
    ingest(db, EdgeStatus(edge_id="edge-01", site=SITE, online=True, wall_time=utcnow()))
    settings = HubSettings(database_url=db.url, evidence_root=str(tmp_path / "evidence"))
    with build_hub(settings, db=db) as hub, TestClient(hub.app) as client:
        url = "/api/v1/cameras/edge-01/{}/snapshot/request"
        assert client.post(url.format("cam-1"), headers=bearer(tokens["admin"])).status_code == 503
        response = client.post(url.format(camera), headers=bearer(tokens["admin"]))
    assert response.status_code == 404, (response.status_code, response.text)
    assert "invalid identifier" in response.json()["detail"]["message"]
