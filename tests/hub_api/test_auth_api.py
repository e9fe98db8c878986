"""Authentication and roles on every endpoint but /healthz; the health check; OpenAPI."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import UserStore, hash_token
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import User
from gridwarden.hub.settings import HubSettings
from tests.hub_api.conftest import bearer

SHA = "a" * 64
# The edge user of the tokens fixture: an edge token is bound to its own edge id.
EDGE = "edge-user"
SNAPSHOT = f"/api/v1/cameras/{EDGE}/cam-1/snapshot"
DRY_RUNS = f"/api/v1/edges/{EDGE}/cameras/cam-1/dry-runs"

# (method, path, body) of every route that needs a token, with the roles allowed to use it.
ROUTES = [
    ("GET", "/api/v1/cases", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/cases/1", None, {"staff", "integrator", "admin"}),
    ("POST", "/api/v1/cases/1/transitions", {"to": "in_review"}, {"staff", "admin"}),
    ("GET", "/api/v1/edges", None, {"integrator", "admin"}),
    ("GET", "/api/v1/cameras", None, {"integrator", "admin"}),
    ("GET", "/api/v1/users", None, {"admin"}),
    ("GET", "/api/v1/dead-letters", None, {"admin"}),
    ("POST", "/api/v1/users", {"username": "new-one", "role": "staff"}, {"admin"}),
    ("POST", "/api/v1/users/nobody/token", None, {"admin"}),
    ("DELETE", "/api/v1/users/nobody/token", None, {"admin"}),
    ("GET", "/api/v1/me", None, {"staff", "integrator", "admin", "edge", "officer"}),
    ("GET", "/api/v1/rule-types", None, {"staff", "integrator", "admin", "edge", "officer"}),
    ("GET", "/api/v1/case-lifecycle", None, {"staff", "integrator", "admin", "edge", "officer"}),
    # Central configuration: integrators read and write it; staff and edges may not.
    ("GET", f"/api/v1/edges/{EDGE}/config", None, {"integrator", "admin"}),
    ("PUT", f"/api/v1/edges/{EDGE}/config", {"yaml": "x: 1"}, {"integrator", "admin"}),
    ("GET", f"/api/v1/edges/{EDGE}/config/versions", None, {"integrator", "admin"}),
    ("GET", f"/api/v1/edges/{EDGE}/config/versions/1", None, {"integrator", "admin"}),
    ("POST", f"/api/v1/edges/{EDGE}/config/rollback", {"version": 1}, {"integrator", "admin"}),
    ("POST", f"/api/v1/edges/{EDGE}/config/publish", None, {"integrator", "admin"}),
    ("GET", f"/api/v1/edges/{EDGE}/config/document", None, {"integrator", "admin"}),
    ("PUT", f"/api/v1/edges/{EDGE}/config/document", {"document": {}}, {"integrator", "admin"}),
    ("PUT", f"/api/v1/edges/{EDGE}/config/running", None, {"edge", "admin"}),
    # Evidence: edges upload, case readers download.
    ("PUT", f"/api/v1/evidence/{SHA}", None, {"edge", "admin"}),
    ("GET", f"/api/v1/evidence/{SHA}", None, {"staff", "integrator", "admin"}),
    # Camera snapshots for the zone editor.
    ("PUT", f"{SNAPSHOT}", None, {"edge", "admin"}),
    ("GET", f"{SNAPSHOT}", None, {"integrator", "admin"}),
    ("POST", f"{SNAPSHOT}/url", None, {"integrator", "admin"}),
    ("POST", f"{SNAPSHOT}/request", None, {"integrator", "admin"}),
    # Dry runs: integrators start them and watch the results.
    ("POST", DRY_RUNS, None, {"integrator", "admin"}),
    ("GET", f"{DRY_RUNS}/job1", None, {"integrator", "admin"}),
    ("POST", f"{DRY_RUNS}/job1/video-urls", None, {"integrator", "admin"}),
    ("GET", f"{DRY_RUNS}/job1/video/candidate/0", None, {"integrator", "admin"}),
    # The review console's own routes.
    ("GET", "/api/v1/console/me", None, {"staff", "integrator", "admin", "edge", "officer"}),
    # Sign-out: any authenticated caller (with an API token there is no session to end: 204).
    ("POST", "/api/v1/console/logout", None, {"staff", "integrator", "admin", "edge", "officer"}),
    ("PUT", "/api/v1/console/me", {"language": "en"}, {"staff", "integrator", "admin", "edge", "officer"}),
    ("GET", "/api/v1/console/facets", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/console/fleet", None, {"integrator", "admin"}),
    ("POST", "/api/v1/console/evidence-urls", {"sha256": [SHA]}, {"staff", "integrator", "admin"}),
    ("POST", "/api/v1/console/stream-url", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/console/search", None, {"staff", "integrator", "admin"}),
    ("POST", "/api/v1/console/bulk", None, {"staff", "admin"}),
    ("POST", "/api/v1/console/mark-reviewed", None, {"staff", "admin"}),
    ("POST", "/api/v1/console/media-ticket", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/console/live", None, {"staff", "integrator", "admin"}),
    # Places, officers and dispatch (issue 13); the officer app is the officer's alone.
    ("GET", "/api/v1/areas", None, {"staff", "integrator", "admin"}),
    ("POST", "/api/v1/areas", {"type": "FeatureCollection", "features": []}, {"integrator", "admin"}),
    ("GET", "/api/v1/areas/at", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/areas/beat-1", None, {"staff", "integrator", "admin"}),
    ("DELETE", "/api/v1/areas/beat-1", None, {"integrator", "admin"}),
    ("GET", "/api/v1/officers", None, {"staff", "admin"}),
    ("PUT", "/api/v1/officers/nobody", {"username": "nobody", "name": "N"}, {"admin"}),
    ("PUT", "/api/v1/officers/nobody/duty", {"on_duty": True}, {"staff", "admin"}),
    ("GET", "/api/v1/officers/nobody/positions", None, {"staff", "admin"}),
    ("GET", "/api/v1/field/me", None, {"officer", "admin"}),
    ("PUT", "/api/v1/field/me/duty", {"on_duty": True}, {"officer", "admin"}),
    ("POST", "/api/v1/field/me/position", {"lat": 31.2, "lon": 121.4}, {"officer", "admin"}),
    ("POST", "/api/v1/field/tasks/1/accept", None, {"officer", "admin"}),
    ("GET", "/api/v1/field/tasks/1/snapshot", None, {"officer", "admin"}),
    ("POST", "/api/v1/field/photos", None, {"officer", "admin"}),
    ("GET", "/api/v1/dispatch/queue", None, {"staff", "admin"}),
    ("GET", "/api/v1/dispatch/alarms", None, {"staff", "admin"}),
    ("GET", "/api/v1/dispatch/cases/1/tasks", None, {"staff", "admin"}),
    ("GET", "/api/v1/dispatch/cases/1/after", None, {"staff", "admin"}),
    ("POST", "/api/v1/dispatch/cases/1/reassign", {"officer_id": 1}, {"staff", "admin"}),
    ("POST", "/api/v1/dispatch/cases/1/requeue", None, {"staff", "admin"}),
    ("GET", "/api/v1/dispatch/sla", None, {"staff", "integrator", "admin"}),
    ("GET", f"/api/v1/dispatch/photos/{'a' * 64}.jpg", None, {"staff", "admin"}),
    # Residents and the city (issue 14): categories, QR points (integrators edit), reports, statistics, map.
    ("GET", "/api/v1/categories", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/exports/cases.csv", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/qr-points", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/qr-points/P-1", None, {"staff", "integrator", "admin"}),
    ("PUT", "/api/v1/qr-points/P-1", {"lat": 31.2, "lon": 121.4}, {"integrator", "admin"}),
    ("DELETE", "/api/v1/qr-points/P-1", None, {"integrator", "admin"}),
    ("POST", "/api/v1/qr-points/import", None, {"integrator", "admin"}),
    ("GET", "/api/v1/cases/1/reports", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/statistics", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/statistics/counts.csv", None, {"staff", "integrator", "admin"}),
    ("GET", "/api/v1/map", None, {"staff", "integrator", "admin"}),
]

# Routes that take no bearer token by design: a password log-in, and the signed URLs that
# <img>, <video> and EventSource open (each checks its ticket; see their own tests).
NO_BEARER = {
    ("POST", "/api/v1/console/login"),
    ("GET", f"/api/v1/console/evidence/{SHA}"),
    ("GET", "/api/v1/stream"),
    ("GET", f"{SNAPSHOT}/signed"),
    ("GET", f"{DRY_RUNS}/job1/video/candidate/0/signed"),
    ("GET", "/api/v1/console/media/case/1/thumbnail"),
    ("GET", f"/api/v1/console/media/camera/{EDGE}/cam-1"),
    # The officer app's password log-in; tracker apps (OsmAnd, Traccar) cannot send a token:
    # their long device id is the credential.
    ("POST", "/api/v1/field/login"),
    ("GET", "/api/v1/positions/osmand"),
    ("POST", "/api/v1/positions/osmand"),
    # Residents' public report pages (rate-limited), and Open311 (reading is public by the spec;
    # filing takes the spec's api_key form field; camera pictures need it too).
    ("GET", "/r/P-1"),
    ("POST", "/r/P-1"),
    ("GET", "/r/status/{token}"),
    ("GET", "/open311/v2/services.{fmt}"),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"),
    ("GET", "/open311/v2/requests.{fmt}"),
    ("POST", "/open311/v2/requests.{fmt}"),
    ("GET", "/open311/v2/requests/{request_id}.{fmt}"),
    ("GET", "/open311/v2/tokens/{token}.{fmt}"),
    ("GET", f"/open311/v2/media/{SHA}.jpg"),
}


def test_every_api_route_is_protected(app_client: TestClient) -> None:
    """Every operation the app serves, except the health check, has an auth test below."""
    spec = app_client.get("/openapi.json").json()
    served = {
        (
            method.upper(),
            path.replace("{case_id}", "1")
            .replace("{username}", "nobody")
            .replace("{edge_id}", EDGE)
            .replace("{version}", "1")
            .replace("{camera_id}", "cam-1")
            .replace("{sha256}", SHA)
            .replace("{job_id}", "job1")
            .replace("{which}", "candidate")
            .replace("{clip_index}", "0")
            .replace("{kind}", "thumbnail")
            .replace("{area_id}", "beat-1")
            .replace("{task_id}", "1")
            .replace("{action}", "accept")
            .replace("{name}", f"{'a' * 64}.jpg")
            .replace("{point_id}", "P-1")
            .replace("{table}", "counts"),
        )
        for path, operations in spec["paths"].items()
        for method in operations
    }
    covered = {(method, path) for method, path, _, _ in ROUTES}
    assert served - {("GET", "/healthz")} - NO_BEARER == covered


def test_no_token_is_401_with_a_bearer_challenge(app_client: TestClient) -> None:
    for method, path, body, _ in ROUTES:
        response = app_client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"]["error"] == "missing_token"


def test_unknown_or_malformed_token_is_401(app_client: TestClient, tokens: dict) -> None:
    for headers in (
        bearer("gw_" + "A" * 43),
        bearer("not-even-ours"),
        {"Authorization": f"Basic {tokens['admin']}"},
        {"Authorization": tokens["admin"]},
    ):
        response = app_client.get("/api/v1/cases", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_roles(app_client: TestClient, tokens: dict, seeded: list[int]) -> None:
    for method, path, body, allowed in ROUTES:
        for role, token in tokens.items():
            response = app_client.request(method, path, json=body, headers=bearer(token))
            if role in allowed:
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                detail = response.json()["detail"]
                assert detail["error"] == "forbidden" and detail["role"] == role


def test_revoked_and_rotated_tokens_stop_working(app_client: TestClient, db: Database) -> None:
    store = UserStore(db)
    _, token = store.create("carol", "staff")
    assert app_client.get("/api/v1/me", headers=bearer(token)).json()["username"] == "carol"
    _, new_token = store.rotate("carol")
    assert app_client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert app_client.get("/api/v1/me", headers=bearer(new_token)).status_code == 200
    store.revoke("carol")
    response = app_client.get("/api/v1/me", headers=bearer(new_token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_only_the_hash_of_a_token_is_stored(db: Database) -> None:
    _, token = UserStore(db).create("dave", "integrator")
    assert token.startswith("gw_") and len(token) == 3 + 43
    with db.session() as session:
        stored = session.scalar(select(User.token_hash).where(User.username == "dave"))
    assert stored == hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored


def test_users_api_issues_a_working_token_once(app_client: TestClient, tokens: dict) -> None:
    admin = bearer(tokens["admin"])
    created = app_client.post("/api/v1/users", json={"username": "erin", "role": "staff"}, headers=admin)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["user"] == {
        **created.json()["user"],
        "username": "erin",
        "role": "staff",
        "active": True,
    }
    assert app_client.get("/api/v1/me", headers=bearer(token)).json()["permissions"] == [
        "cases:read",
        "cases:transition",
        "dispatch:manage",
    ]
    listed = app_client.get("/api/v1/users", headers=admin).json()
    assert {u["username"] for u in listed} == {
        "staff-user",
        "integrator-user",
        "admin-user",
        "edge-user",
        "officer-user",
        "erin",
    }
    assert all("token" not in u for u in listed)

    duplicate = app_client.post("/api/v1/users", json={"username": "erin", "role": "admin"}, headers=admin)
    assert duplicate.status_code == 409
    bad_name = app_client.post(
        "/api/v1/users", json={"username": "no spaces/please", "role": "staff"}, headers=admin
    )
    assert bad_name.status_code == 422
    bad_role = app_client.post("/api/v1/users", json={"username": "frank", "role": "root"}, headers=admin)
    assert bad_role.status_code == 422

    rotated = app_client.post("/api/v1/users/erin/token", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["token"] != token
    revoked = app_client.delete("/api/v1/users/erin/token", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert app_client.get("/api/v1/me", headers=bearer(rotated.json()["token"])).status_code == 401
    assert app_client.delete("/api/v1/users/nobody/token", headers=admin).status_code == 404


def test_health_needs_no_token_and_checks_the_database(app_client: TestClient, db: Database) -> None:
    response = app_client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == db.dialect


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    # Nothing listens on port 1: connecting fails at once.
    dead = Database("postgresql+psycopg://postgres@127.0.0.1:1/gridwarden?connect_timeout=2")
    settings = HubSettings(database_url=dead.url, evidence_root=str(tmp_path / "evidence"))
    with build_hub(settings, db=dead) as hub, TestClient(hub.app) as client:
        response = client.get("/healthz")
    dead.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_openapi_and_docs_are_served(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    assert {
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/transitions",
        "/healthz",
    } <= set(document["paths"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    transition = document["paths"]["/api/v1/cases/{case_id}/transitions"]["post"]
    assert {"404", "409", "200"} <= set(transition["responses"])
    assert transition["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]
    docs = app_client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_reference_data_is_the_hubs_own(app_client: TestClient, tokens: dict) -> None:
    from gridwarden.edge.analytics.rules.registry import RULE_TYPES
    from gridwarden.hub.cases import TRANSITIONS

    headers = bearer(tokens["staff"])
    types = app_client.get("/api/v1/rule-types", headers=headers).json()
    assert [t["type"] for t in types] == list(RULE_TYPES)
    parking = next(t for t in types if t["type"] == "illegal_parking")
    assert parking["needs_detector"] and parking["new_rule"]["classes"] == ["vehicle"]
    assert parking["defaults"]["end_grace_s"] == 5.0
    lifecycle = app_client.get("/api/v1/case-lifecycle", headers=headers).json()
    assert lifecycle["transitions"] == {s: list(t) for s, t in TRANSITIONS.items()}
