"""Forward confirmed cases to an external case system by signed webhook, durably.

The case service writes a ``webhook_outbox`` row in the same transaction as the transition it
announces, so a confirmation is never recorded without its webhook (nor the reverse). This
module's :class:`WebhookForwarder` is the background thread that empties the outbox: it POSTs
each due row and keeps retrying with exponential backoff (capped) until the receiver answers
2xx. Because the queue is a table, a hub restart resumes where it stopped.

What the receiver gets::

    POST <url>
    Content-Type: application/json
    X-Gridwarden-Delivery: 42              (the outbox row id: the same on every retry)
    X-Gridwarden-Timestamp: 1740816000     (Unix seconds when this attempt was sent)
    X-Gridwarden-Signature: sha256=<hex>   (HMAC-SHA256 of the raw body with the shared secret)

    {"delivery_id": 42, "timestamp": 1740816000, "attempt": 1, "event": {...}, "case": {...}}

The signature covers exactly the bytes of the body, as asked; the body repeats the delivery id
and timestamp, so they are signed too: a receiver that checks the signature, that the header
timestamp equals the body's and that it is recent (:func:`verify_signature` does all three)
rejects both forged and replayed requests. Delivery is at least once (a crash between the
receiver's 2xx and our commit resends), so receivers deduplicate on ``delivery_id``.

Several hub processes may run forwarders on one database: a row is claimed by pushing its
``next_attempt_at`` past the attempt's timeout (a lease) in a short transaction, with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers anyway), so two forwarders
never send the same row at the same time, and a forwarder that dies mid-attempt only delays
the row by the lease.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from gridwarden.backoff import Backoff
from gridwarden.contract import utcnow
from gridwarden.hub.cases import CaseNotFound, CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import WebhookOutbox

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gridwarden-Signature"
TIMESTAMP_HEADER = "X-Gridwarden-Timestamp"
DELIVERY_HEADER = "X-Gridwarden-Delivery"
DEFAULT_TOLERANCE_S = 300


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None = None,
    *,
    tolerance_s: float | None = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver should check: the HMAC (constant-time), and when ``timestamp`` (the
    header) is given, that it equals the signed body's and lies within ``tolerance_s`` of now."""
    if not signature or not hmac.compare_digest(sign(secret, body), signature):
        return False
    if timestamp is None:
        return True
    try:
        signed_ts = json.loads(body)["timestamp"]
        header_ts = int(timestamp)
    except (ValueError, KeyError, TypeError):
        return False
    if signed_ts != header_ts:
        return False
    return tolerance_s is None or abs((time.time() if now is None else now) - header_ts) <= tolerance_s


@dataclass(frozen=True)
class _Claimed:
    id: int
    case_id: int
    attempts: int
    payload: dict[str, Any]


class WebhookForwarder:
    """Sends the webhook outbox to ``url``; runs as a thread (:meth:`start`/:meth:`stop`) or one
    pass at a time (:meth:`deliver_due`).

    ``case_service``: when given, each body carries the case as it stands when sent (incidents,
    evidence references, history), so the receiver needs no call back to the hub.

    >>> fwd = WebhookForwarder(db, "https://cases.example/hook", b"secret")  # doctest: +SKIP
    >>> fwd.start(); ...; fwd.stop()                                          # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        url: str,
        secret: bytes,
        *,
        case_service: CaseService | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        batch: int = 20,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s)://..., got {url!r}")
        if not secret:
            raise ValueError("a webhook needs a non-empty shared secret")
        self.db = db
        self.url = url
        self.secret = secret
        self.case_service = case_service
        self.backoff = backoff or Backoff(2.0, 600.0, jitter=0.1)
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self.clock = clock
        # A claimed row is invisible to other forwarders for this long (longer than one attempt).
        self.lease = timedelta(seconds=timeout_s + 30.0)
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- life cycle

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("forwarder already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the attempt in progress (if any); undelivered rows stay for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5.0 if timeout is None else timeout)
            self._thread = None
        self._http.close()

    def wake(self) -> None:
        """There may be a new row: look now instead of at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception:  # the database may be away for a while; keep the thread alive
                log.exception("webhook forwarder: pass failed; retrying")
                sent = 0
            if sent == 0 and not self._stop.is_set():
                self._wake.wait(self._sleep_s())
                self._wake.clear()

    def _sleep_s(self) -> float:
        """Until the next row is due, but at most one poll interval (new rows may appear)."""
        try:
            with self.db.session() as session:
                due = session.scalar(
                    select(func.min(WebhookOutbox.next_attempt_at)).where(
                        WebhookOutbox.delivered_at.is_(None)
                    )
                )
        except Exception:
            return self.poll_interval_s
        if due is None:
            return self.poll_interval_s
        return min(self.poll_interval_s, max(0.0, (due - self.clock()).total_seconds()))

    # ---- one pass

    def deliver_due(self) -> int:
        """Attempt every row due now; return how many attempts were made."""
        claimed = self._claim()
        for row in claimed:
            if self._stop.is_set():
                break  # the lease makes unattempted rows due again shortly
            self._attempt(row)
        return len(claimed)

    def _claim(self) -> list[_Claimed]:
        now = self.clock()
        # Look before taking the write lock: on SQLite an idle forwarder that claimed every poll
        # would make the ingest wait for the database's single writer slot for nothing.
        with self.db.session() as session:
            due = session.scalar(
                select(WebhookOutbox.id)
                .where(WebhookOutbox.delivered_at.is_(None), WebhookOutbox.next_attempt_at <= now)
                .limit(1)
            )
        if due is None:
            return []
        with self.db.write_session() as session, session.begin():
            stmt = (
                select(WebhookOutbox)
                .where(WebhookOutbox.delivered_at.is_(None), WebhookOutbox.next_attempt_at <= now)
                .order_by(WebhookOutbox.next_attempt_at, WebhookOutbox.id)
                .limit(self.batch)
            )
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(session.scalars(stmt))
            for row in rows:
                row.next_attempt_at = now + self.lease
            return [_Claimed(r.id, r.case_id, r.attempts, dict(r.payload)) for r in rows]

    def body_for(self, row: _Claimed, timestamp: int) -> bytes:
        envelope: dict[str, Any] = {
            "delivery_id": row.id,
            "timestamp": timestamp,
            "attempt": row.attempts + 1,
            "event": row.payload,
        }
        if self.case_service is not None:
            try:
                envelope["case"] = self.case_service.get_case(row.case_id).model_dump(mode="json")
            except CaseNotFound:
                envelope["case"] = None
        return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()

    def _attempt(self, row: _Claimed) -> None:
        timestamp = int(time.time())
        body = self.body_for(row, timestamp)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "gridwarden-hub",
            DELIVERY_HEADER: str(row.id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, body),
        }
        error: str | None
        try:
            response = self._http.post(self.url, content=body, headers=headers)
            error = (
                None
                if 200 <= response.status_code < 300
                else f"HTTP {response.status_code}: {response.text[:200]}"
            )
        except httpx.HTTPError as exc:
            error = f"{exc.__class__.__name__}: {exc}"[:500]
        self._record(row, error)

    def _record(self, row: _Claimed, error: str | None) -> None:
        now = self.clock()
        attempts = row.attempts + 1
        with self.db.write_session() as session, session.begin():
            stored = session.get(WebhookOutbox, row.id)
            if stored is None or stored.delivered_at is not None:
                return
            stored.attempts = attempts
            stored.last_error = error
            if error is None:
                stored.delivered_at = now
                log.info("webhook %d for case %d delivered (attempt %d)", row.id, row.case_id, attempts)
            else:
                delay = self.backoff.delay(attempts)
                stored.next_attempt_at = now + timedelta(seconds=delay)
                log.warning(
                    "webhook %d for case %d failed (attempt %d: %s); retrying in %.1f s",
                    row.id, row.case_id, attempts, error, delay,
                )  # fmt: skip


def pending_count(db: Database) -> int:
    """Webhooks not yet delivered (for health and monitoring)."""
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(WebhookOutbox).where(WebhookOutbox.delivered_at.is_(None))
            )
            or 0
        )
