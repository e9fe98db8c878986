"""The officer app's API and the dispatcher's, through HTTP on the real app (both backends)."""

from __future__ import annotations

import os
from datetime import timedelta

from fastapi.testclient import TestClient

from gridwarden.hub.auth import UserStore
from gridwarden.hub.db.engine import Database
from tests.field.geo import district
from tests.field.world import CAMERA_AT, Clock, World, make_world
from tests.hub.factories import T0
from tests.hub_api.conftest import bearer


def jpeg() -> bytes:
    """A JPEG's signature and markers (the store checks the type by its first bytes)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00" + bytes(range(256)) + b"\xff\xd9"


def setup(
    app_client: TestClient, db: Database, tokens: dict[str, str]
) -> tuple[World, dict[str, str], Clock]:
    world = make_world(db)
    field = app_client.app.state.services.field  # type: ignore[attr-defined]
    field.dispatch.clock = world.clock
    world.dispatch = field.dispatch
    _, token = UserStore(db).create("officer-li", "officer")
    admin = bearer(tokens["admin"])
    spec = {"username": "officer-li", "name": "李警官", "team": "patrol", "areas": ["beat-east"],
            "transport": "ebike", "tracker_id": "traccar-device-0001-secret"}  # fmt: skip
    r = app_client.put("/api/v1/officers/officer-li", json=spec, headers=admin)
    assert r.status_code == 200, r.text
    return world, bearer(token), world.clock


def test_officer_app_flow_over_http(app_client: TestClient, db: Database, tokens: dict[str, str]) -> None:
    world, officer, clock = setup(app_client, db, tokens)
    staff = bearer(tokens["staff"])
    # Staff cannot use the officer API, the officer cannot read the queue.
    assert app_client.get("/api/v1/field/me", headers=staff).status_code == 403
    assert app_client.get("/api/v1/dispatch/queue", headers=officer).status_code == 403
    assert (
        app_client.put("/api/v1/field/me/duty", json={"on_duty": True}, headers=officer).json()["officer"][
            "state"
        ]
        == "available"
    )
    pos = {"lat": CAMERA_AT[0] + 0.002, "lon": CAMERA_AT[1], "accuracy_m": 8, "at": clock.now.isoformat()}
    assert app_client.post("/api/v1/field/me/position", json=pos, headers=officer).status_code == 204
    bad = app_client.post("/api/v1/field/me/position", json={**pos, "lat": 91}, headers=officer)
    assert bad.status_code == 422

    case_id = world.confirmed_case()
    world.dispatch.tick()
    me = app_client.get("/api/v1/field/me", headers=officer).json()
    assert me["officer"]["state"] == "offered"
    (offer,) = me["tasks"]
    assert offer["case"]["id"] == case_id and offer["case"]["area_id"] == "beat-east"
    assert 200 < offer["distance_m"] < 400  # about 222 m north, times the detour factor

    clock.advance(15)
    key = {"Idempotency-Key": "accept-0001"}
    first = app_client.post(f"/api/v1/field/tasks/{offer['id']}/accept", headers={**officer, **key})
    again = app_client.post(f"/api/v1/field/tasks/{offer['id']}/accept", headers={**officer, **key})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    clock.advance(100)
    arrive = app_client.post(f"/api/v1/field/tasks/{offer['id']}/arrive", headers=officer)
    assert arrive.json()["state"] == "arrived"
    photo = app_client.post("/api/v1/field/photos", content=jpeg(), headers=officer).json()["photo"]
    assert app_client.post("/api/v1/field/photos", content=b"<html>", headers=officer).status_code == 422
    clock.advance(45)
    asked: list[tuple[str, str, str]] = []
    world.dispatch.on_resolved = lambda *where: asked.append(where)
    # A camera picture from before the resolution is not the "after".
    snapshots = app_client.app.state.services.evidence.root / "camera-snapshots" / "edge-01"  # type: ignore[attr-defined]
    snapshots.mkdir(parents=True)
    (snapshots / "cam-1.jpg").write_bytes(jpeg())
    os.utime(snapshots / "cam-1.jpg", (clock.now.timestamp() - 60, clock.now.timestamp() - 60))
    resolved = app_client.post(
        f"/api/v1/field/tasks/{offer['id']}/resolve",
        json={"note": "车主已挪车", "photo": photo},
        headers={**officer, "Idempotency-Key": "resolve-0001"},
    )
    assert resolved.status_code == 200 and resolved.json()["photo"] == photo
    assert asked == [("north", "edge-01", "cam-1")]  # the hub asks the edge for a fresh picture
    after = f"/api/v1/dispatch/cases/{case_id}/after"
    assert app_client.get(after, headers=staff).json()["detail"]["error"] == "no_after_snapshot"
    os.utime(snapshots / "cam-1.jpg", (clock.now.timestamp() + 5, clock.now.timestamp() + 5))
    assert app_client.get(after, headers=staff).content == jpeg()
    assert app_client.get(f"/api/v1/dispatch/photos/{photo}", headers=staff).content == jpeg()

    clock.advance(20)
    world.incident(event="ended")
    world.dispatch.tick()
    detail = app_client.get(f"/api/v1/cases/{case_id}", headers=staff).json()
    assert detail["state"] == "closed"
    events = [h["event"] for h in detail["history"] if h["event"]]
    assert events == ["queued", "offered", "accepted", "arrived", "resolved", "verified"]

    sla = app_client.get("/api/v1/dispatch/sla", headers=staff).json()
    overall = sla["overall"]
    assert overall["cases"] == 1 and overall["within_limit"] == 1 and overall["within_limit_share"] == 1.0
    assert overall["rework_rate"] == 0.0
    assert overall["stages"]["accept"]["median_s"] == 15
    assert overall["stages"]["arrive"]["median_s"] == 100
    assert overall["stages"]["resolve"]["median_s"] == 45
    assert overall["stages"]["verify"]["median_s"] == 20
    assert overall["stages"]["total"]["median_s"] == 180
    assert list(sla["by_officer"]) == ["officer-li"] and list(sla["by_area"]) == ["beat-east"]


def test_osmand_positions_by_tracker_id(app_client: TestClient, db: Database, tokens: dict[str, str]) -> None:
    world, _officer, clock = setup(app_client, db, tokens)
    ts = int((clock.now - timedelta(seconds=5)).timestamp())
    ok = app_client.get(
        f"/api/v1/positions/osmand?id=traccar-device-0001-secret&lat=31.24&lon=121.48&timestamp={ts}&speed=10"
    )
    assert ok.status_code == 200
    unknown = app_client.get("/api/v1/positions/osmand?id=guess-device-id-0000&lat=31.24&lon=121.48")
    assert unknown.status_code == 404
    form = app_client.post(
        "/api/v1/positions/osmand",
        content=f"id=traccar-device-0001-secret&lat=31.25&lon=121.49&timestamp={ts + 1}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200
    assert (
        app_client.get("/api/v1/positions/osmand?id=traccar-device-0001-secret&lat=abc&lon=1").status_code
        == 400
    )
    history = app_client.get("/api/v1/officers/officer-li/positions", headers=bearer(tokens["staff"])).json()
    assert [(p["lat"], p["source"]) for p in history] == [(31.25, "osmand"), (31.24, "osmand")]
    assert abs(history[1]["speed_mps"] - 5.14444) < 1e-3
    roster = app_client.get("/api/v1/officers", headers=bearer(tokens["staff"])).json()
    assert roster[0]["lat"] == 31.25
    assert district()  # the areas the world loaded
    assert world.clock.now == T0
