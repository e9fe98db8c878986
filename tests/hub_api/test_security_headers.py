"""Security headers on every kind of hub response, and no-store on authenticated ones."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.hub_api.conftest import bearer


@pytest.fixture
def console_client(app_client: TestClient) -> TestClient:
    return app_client


def directives(header: str) -> dict[str, str]:
    return {
        part.split()[0]: part.partition(" ")[2] for part in (p.strip() for p in header.split(";")) if part
    }


@pytest.mark.parametrize(
    "path", ["/console/", "/console/app.js", "/console/i18n/en.json", "/healthz", "/api/v1/cases", "/nowhere"]
)
def test_every_response_carries_the_security_headers(console_client: TestClient, path: str) -> None:
    response = console_client.get(path, follow_redirects=False)
    csp = directives(response.headers["content-security-policy"])
    assert csp["default-src"] == "'none'"
    assert (
        csp["script-src"] == "'self'" and "unsafe-inline" not in response.headers["content-security-policy"]
    )
    assert csp["style-src"] == "'self'"
    assert (
        csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_console_page_has_no_inline_script_or_style(console_client: TestClient) -> None:
    html = console_client.get("/console/").text
    for tag in html.split("<script")[1:]:
        assert tag.split(">", 1)[0].strip().startswith("src="), f"inline script: <script{tag[:80]}"
    assert " style=" not in html and " onclick=" not in html


def test_authenticated_responses_are_not_stored(console_client: TestClient, tokens: dict[str, str]) -> None:
    authed = console_client.get("/api/v1/cases", headers=bearer(tokens["staff"]))
    assert authed.status_code == 200 and authed.headers["cache-control"] == "no-store"
    refused = console_client.get("/api/v1/cases", headers=bearer("gw_wrong"))
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    me = console_client.get("/api/v1/console/facets", headers=bearer(tokens["staff"]))
    assert me.headers["cache-control"] == "no-store"
    # Anonymous static files may be cached as usual.
    assert console_client.get("/console/app.js").headers.get("cache-control") != "no-store"
