"""Edges and cameras with their online status, from retained status messages through real ingest."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from gridwarden.hub.db.engine import Database
from tests.hub.factories import T0, camera_status, edge_status, incident_event
from tests.hub_api.conftest import bearer, ingest


def test_edges_and_cameras_follow_their_status_topics(
    app_client: TestClient, tokens: dict, db: Database
) -> None:
    headers = bearer(tokens["integrator"])
    assert app_client.get("/api/v1/edges", headers=headers).json() == []
    ingest(
        db,
        edge_status(online=True, wall_time=T0),
        camera_status(camera="cam-1", state="online", wall_time=T0),
        camera_status(camera="cam-2", state="connecting", wall_time=T0),
        incident_event(seq=5),
    )
    (edge,) = app_client.get("/api/v1/edges", headers=headers).json()
    assert (edge["edge_id"], edge["online"], edge["version"], edge["outbox_depth"]) == (
        "edge-01",
        True,
        "1.0",
        3,
    )
    assert edge["highest_seen_seq"] == 5
    cameras = app_client.get("/api/v1/cameras", headers=headers).json()
    assert [(c["camera_id"], c["state"], c["input_fps"]) for c in cameras] == [
        ("cam-1", "online", 12.5),
        ("cam-2", "connecting", 12.5),
    ]

    # The edge's Last Will and a camera dropping out.
    later = T0 + timedelta(minutes=1)
    ingest(
        db,
        edge_status(online=False, wall_time=later),
        camera_status(camera="cam-1", state="offline", wall_time=later),
    )
    (edge,) = app_client.get("/api/v1/edges", headers=headers).json()
    assert edge["online"] is False
    assert app_client.get("/api/v1/edges", params={"online": "true"}, headers=headers).json() == []
    offline = app_client.get("/api/v1/cameras", params={"state": "offline"}, headers=headers).json()
    assert [c["camera_id"] for c in offline] == ["cam-1"]
    assert app_client.get("/api/v1/cameras", params={"edge_id": "edge-77"}, headers=headers).json() == []
