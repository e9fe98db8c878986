"""Confirmed cases reach a real HTTP receiver: signed, retried with backoff until 2xx, durable.

The receiver is a real ``http.server`` on a free loopback port in a thread; it fails the first
attempts on purpose.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gridwarden.backoff import Backoff
from gridwarden.hub.app import build_hub
from gridwarden.hub.cases import CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import WebhookOutbox
from gridwarden.hub.settings import HubSettings
from gridwarden.hub.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookForwarder,
    pending_count,
    sign,
    verify_signature,
)
from tests.hub_api.conftest import bearer, ingest, seed_events
from tests.support.ports import free_port

SECRET = b"shared-secret-for-tests"
FAST = Backoff(initial_s=0.2, max_s=2.0, jitter=0.0)


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    """An external case system that answers ``fail_first`` requests with 503, then 200."""

    def __init__(self, port: int, fail_first: int = 0) -> None:
        self.port = port
        self.fail_first = fail_first
        self.requests: list[Received] = []
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = 503 if len(receiver.requests) < receiver.fail_first else 200
                    receiver.requests.append(Received(time.monotonic(), dict(self.headers), body, status))
                    receiver.lock.notify_all()
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"busy" if status == 503 else b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/gridwarden"

    def wait_for(self, predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            assert self.lock.wait_for(lambda: predicate(self.requests), timeout), self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port(), fail_first=2)
    yield r
    r.close()


def outbox(db: Database) -> list[WebhookOutbox]:
    with db.session() as session:
        return list(session.scalars(select(WebhookOutbox).order_by(WebhookOutbox.id)))


def forwarder_for(db: Database, url: str) -> WebhookForwarder:
    return WebhookForwarder(
        db, url, SECRET, case_service=CaseService(db), backoff=FAST, poll_interval_s=0.05, timeout_s=5.0
    )


def test_confirmed_case_is_signed_retried_and_delivered(
    db: Database, receiver: Receiver, tokens: dict, tmp_path: Path
) -> None:
    confirmed, rejected = ingest(db, *seed_events()[:2])
    settings = HubSettings(
        database_url=db.url,
        evidence_root=str(tmp_path / "evidence"),
        webhook_url=receiver.url,
        webhook_secret=SECRET.decode(),
        webhook_backoff_s=FAST.initial_s,
        webhook_backoff_max_s=FAST.max_s,
    )
    hub = build_hub(settings, db=db)
    forwarder = hub.forwarder
    assert forwarder is not None
    forwarder.start()
    try:
        with TestClient(hub.app) as client:
            for case_id, steps in (
                (rejected, ("in_review", "rejected")),
                (confirmed, ("in_review", "confirmed")),
            ):
                for to in steps:
                    response = client.post(
                        f"/api/v1/cases/{case_id}/transitions",
                        json={"to": to, "reason": f"to {to}"},
                        headers=bearer(tokens["staff"]),
                    )
                    assert response.status_code == 200, response.text
        receiver.wait_for(lambda reqs: any(r.status == 200 for r in reqs))
    finally:
        forwarder.stop()
        hub.stop()

    attempts = receiver.requests
    assert [r.status for r in attempts] == [503, 503, 200]
    # Exponential backoff: 0.2 s, then 0.4 s, each less at most the hub's 10 % jitter (lower
    # bounds; a busy machine only adds to them).
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.2 * 0.9 * 0.95 and gaps[1] >= 0.4 * 0.9 * 0.95, gaps
    for number, request in enumerate(attempts, start=1):
        assert verify_signature(
            SECRET, request.body, request.headers[SIGNATURE_HEADER], request.headers[TIMESTAMP_HEADER]
        )
        assert not verify_signature(b"wrong secret", request.body, request.headers[SIGNATURE_HEADER])
        body = json.loads(request.body)
        assert body["attempt"] == number
        assert str(body["delivery_id"]) == request.headers[DELIVERY_HEADER]
        assert str(body["timestamp"]) == request.headers[TIMESTAMP_HEADER]
    body = json.loads(attempts[-1].body)
    assert {attempts[0].headers[DELIVERY_HEADER]} == {r.headers[DELIVERY_HEADER] for r in attempts}
    event = body["event"]
    assert (event["case_id"], event["from_state"], event["to_state"]) == (confirmed, "in_review", "confirmed")
    assert (event["actor"], event["reason"]) == ("staff-user", "to confirmed")
    assert body["case"]["id"] == confirmed and body["case"]["state"] == "confirmed"
    assert [i["incident_id"] for i in body["case"]["incidents"]] == ["inc-0"]

    (row,) = outbox(db)  # the rejected case sent nothing
    assert row.case_id == confirmed and row.attempts == 3
    assert row.delivered_at is not None and row.last_error is None
    assert pending_count(db) == 0


def test_undelivered_webhooks_survive_a_restart(db: Database) -> None:
    port = free_port()  # nothing listens yet: the external system is down
    (case_id,) = ingest(db, *seed_events()[:1])
    service = CaseService(db, webhook_on=("confirmed",))
    for to in ("in_review", "confirmed"):
        service.transition(case_id, to, actor="erin")

    first = forwarder_for(db, f"http://127.0.0.1:{port}/hook")
    first.start()
    deadline = time.monotonic() + 15
    while outbox(db)[0].attempts < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.stop()  # the hub goes down with the webhook undelivered
    (row,) = outbox(db)
    assert row.attempts >= 2 and row.delivered_at is None
    assert "ConnectError" in (row.last_error or "")

    receiver = Receiver(port, fail_first=0)
    second_db = Database(db.url)  # a new process: its own engine, state only from the database
    second = forwarder_for(second_db, receiver.url)
    second.start()
    try:
        receiver.wait_for(lambda reqs: len(reqs) >= 1)
    finally:
        second.stop()
        receiver.close()
        second_db.dispose()
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert body["delivery_id"] == row.id and body["attempt"] == row.attempts + 1
    assert body["event"]["actor"] == "erin"
    assert outbox(db)[0].delivered_at is not None


def test_signature_checks() -> None:
    body = json.dumps({"delivery_id": 1, "timestamp": 1_700_000_000}).encode()
    signature = sign(SECRET, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(SECRET, body, signature, "1700000000", now=1_700_000_010)
    assert not verify_signature(SECRET, body + b" ", signature)  # tampered body
    assert not verify_signature(SECRET, body, signature, "1700000001", now=1_700_000_010)  # header differs
    assert not verify_signature(
        SECRET, body, signature, "1700000000", now=1_700_000_000 + 301
    )  # replayed late
    assert not verify_signature(SECRET, body, None)


def test_backoff_doubles_up_to_a_cap() -> None:
    backoff = Backoff(initial_s=2.0, max_s=60.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    jittered = Backoff(initial_s=10.0, max_s=60.0, jitter=0.1)
    assert all(9.0 <= jittered.delay(1) <= 11.0 for _ in range(50))
