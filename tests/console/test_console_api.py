"""The console's server side on a real hub (uvicorn, both database backends): log-in with a
password, the user's language, signed URLs for evidence and the stream, and the live stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from gridwarden.contract import utcnow
from gridwarden.hub.auth import (
    InvalidCredentials,
    Role,
    UserStore,
    WeakPassword,
    hash_password,
    verify_password,
)
from tests.console.conftest import STAFF, STAFF_PASSWORD, Hub, incident_with_evidence, upload_evidence


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(hub: Hub, username: str = STAFF, password: str = STAFF_PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{hub.url}/api/v1/console/login", json={"username": username, "password": password}, timeout=10
    )


def test_password_hashes_are_salted_and_verify() -> None:
    a, b = hash_password("same password"), hash_password("same password")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password("same password", a) and verify_password("same password", b)
    assert not verify_password("same passwort", a)
    assert not verify_password("same password", "not-a-hash")


def test_login_issues_a_session_token_the_api_accepts(live_hub: Hub) -> None:
    response = login(live_hub)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == STAFF and body["role"] == "staff" and body["language"] == "zh-CN"
    token = body["token"]
    assert token.startswith("gws_")
    cases = httpx.get(f"{live_hub.url}/api/v1/cases", headers=bearer(token), timeout=10)
    assert cases.status_code == 200, cases.text
    # The API token of the same user keeps working: a log-in does not rotate it.
    assert httpx.get(f"{live_hub.url}/api/v1/cases", headers=bearer(live_hub.staff_token)).status_code == 200


@pytest.mark.parametrize(("username", "password"), [(STAFF, "wrong password"), ("nobody", STAFF_PASSWORD)])
def test_bad_login_is_401_without_saying_which_part_was_wrong(
    live_hub: Hub, username: str, password: str
) -> None:
    response = login(live_hub, username, password)
    assert response.status_code == 401
    assert response.json()["detail"]["error"] == "invalid_credentials"


def test_new_password_or_revoke_ends_sessions(live_hub: Hub) -> None:
    token = login(live_hub).json()["token"]
    live_hub.users.set_password(STAFF, "another good password")
    assert httpx.get(f"{live_hub.url}/api/v1/console/me", headers=bearer(token)).status_code == 401
    assert login(live_hub).status_code == 401
    token = login(live_hub, password="another good password").json()["token"]
    live_hub.users.revoke(STAFF)
    assert httpx.get(f"{live_hub.url}/api/v1/console/me", headers=bearer(token)).status_code == 401
    assert login(live_hub, password="another good password").status_code == 401


def test_weak_passwords_are_refused(live_hub: Hub) -> None:
    for bad in ("short", " padded password "):
        with pytest.raises(WeakPassword):
            live_hub.users.set_password(STAFF, bad)
    with pytest.raises(InvalidCredentials):
        live_hub.users.authenticate_password("edge-uploader", "has no password at all")


def test_an_edge_account_may_not_use_the_console(live_hub: Hub) -> None:
    live_hub.users.create("edge-9", Role.EDGE)
    live_hub.users.set_password("edge-9", "edge password 123")
    response = login(live_hub, "edge-9", "edge password 123")
    assert response.status_code == 403


def test_language_preference_persists(live_hub: Hub) -> None:
    token = login(live_hub).json()["token"]
    url = f"{live_hub.url}/api/v1/console/me"
    assert httpx.put(url, json={"language": "en"}, headers=bearer(token)).json()["language"] == "en"
    assert login(live_hub).json()["language"] == "en"
    bad = httpx.put(url, json={"language": "fr"}, headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["detail"]["languages"] == ["zh-CN", "en"]
    assert httpx.get(url, headers=bearer(token)).json()["language"] == "en"


def test_signed_evidence_urls_serve_ranges_for_that_file_only(live_hub: Hub) -> None:
    evidence = upload_evidence(live_hub)
    token = login(live_hub).json()["token"]
    response = httpx.post(
        f"{live_hub.url}/api/v1/console/evidence-urls",
        json={"sha256": [evidence.clip.sha256, evidence.snapshot.sha256]},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    urls = response.json()["urls"]
    clip_url = live_hub.url + urls[evidence.clip.sha256]
    # No Authorization header: the ticket in the URL is the credential.
    part = httpx.get(clip_url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["content-range"] == f"bytes 100-199/{evidence.clip.size}"
    assert part.content == live_hub.evidence.path_for(evidence.clip.sha256).read_bytes()[100:200]
    # The clip's ticket does not open the snapshot, and a tampered or missing ticket opens nothing.
    ticket = clip_url.split("ticket=")[1]
    other = f"{live_hub.url}/api/v1/console/evidence/{evidence.snapshot.sha256}?ticket={ticket}"
    assert httpx.get(other).status_code == 401
    assert httpx.get(clip_url[:-2] + ("AA" if not clip_url.endswith("AA") else "BB")).status_code == 401
    assert httpx.get(clip_url.split("?")[0]).status_code == 401


def test_expired_tickets_are_refused(live_hub: Hub) -> None:
    principal = live_hub.users.authenticate(live_hub.staff_token)
    assert principal is not None
    ticket, expires = live_hub.users.issue_ticket(principal, "stream", ttl_s=1)
    assert live_hub.users.verify_ticket(ticket, "stream") == principal
    assert live_hub.users.verify_ticket(ticket, "evidence:" + "0" * 64) is None
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    assert live_hub.users.verify_ticket(ticket, "stream") is None


def _events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from an SSE response."""
    kind, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif line == "":
            if data:
                yield kind, "\n".join(data)
            kind, data = "message", []


def test_stream_needs_a_ticket_and_announces_new_and_changed_cases(live_hub: Hub) -> None:
    assert httpx.get(f"{live_hub.url}/api/v1/stream", timeout=5).status_code == 401
    assert httpx.get(f"{live_hub.url}/api/v1/stream?ticket=gwt_1.9999999999.x", timeout=5).status_code == 401
    token = login(live_hub).json()["token"]
    url = httpx.post(f"{live_hub.url}/api/v1/console/stream-url", headers=bearer(token)).json()["url"]
    evidence = upload_evidence(live_hub)
    seen: list[dict] = []
    with httpx.stream("GET", live_hub.url + url, timeout=httpx.Timeout(5.0, read=20.0)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        assert next(events)[0] == "ready"
        case_id = live_hub.ingest(
            incident_with_evidence(
                seq=1,
                incident_id="live-1",
                camera="cam-7",
                zone="kerb-z",
                started=utcnow(),
                evidence=evidence,
                track_id=1,
            )  # fmt: skip
        )
        for kind, data in events:
            if kind == "case":
                seen.append(json.loads(data))
                if seen[-1]["id"] == case_id and seen[-1]["state"] == "new":
                    break
        moved = httpx.post(
            f"{live_hub.url}/api/v1/cases/{case_id}/transitions",
            json={"to": "in_review"},
            headers=bearer(token),
        )
        assert moved.status_code == 200, moved.text
        for kind, data in events:
            if kind == "case" and json.loads(data)["state"] == "in_review":
                seen.append(json.loads(data))
                break
    assert [(c["id"], c["state"]) for c in seen[-2:]] == [(case_id, "new"), (case_id, "in_review")]
    assert seen[-2]["camera"] == "cam-7" and seen[-2]["zone"] == "kerb-z"


def test_set_password_cli_reads_stdin_never_argv(
    live_hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from gridwarden.hub.users_cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a fresh password\n"))
    assert main(["--db", live_hub.db.url, "set-password", STAFF]) == 0
    assert "password set" in capsys.readouterr().err
    assert login(live_hub, password="a fresh password").status_code == 200
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny\n"))
    assert main(["--db", live_hub.db.url, "set-password", STAFF]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["--db", live_hub.db.url, "set-password", STAFF]) == 2


def test_store_round_trip_without_http(live_hub: Hub) -> None:
    store: UserStore = live_hub.users
    principal, token = store.authenticate_password(STAFF, STAFF_PASSWORD)
    assert store.authenticate(token) == principal
    assert store.language(principal.user_id) == "zh-CN"


def test_console_migration_is_in_the_single_chain_and_downgrades(tmp_path: Path) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from gridwarden.hub.db.engine import alembic_config, current_revision, upgrade_database

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    assert len(script.get_heads()) == 1  # one chain, whatever came after the console migration
    assert "0003_console" in {rev.revision for rev in script.walk_revisions()}
    upgrade_database(url)
    command.downgrade(cfg, "0001")
    assert current_revision(url) == "0001"
    engine = create_engine(url)
    try:
        assert "language" not in {c["name"] for c in inspect(engine).get_columns("users")}
    finally:
        engine.dispose()
    upgrade_database(url)
    engine = create_engine(url)
    try:
        assert {"password_hash", "session_key", "language"} <= {
            c["name"] for c in inspect(engine).get_columns("users")
        }
    finally:
        engine.dispose()
