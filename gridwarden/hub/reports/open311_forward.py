"""Send confirmed cases to another GeoReport v2 endpoint (the city's case system), durably.

Which cases: every case an operator confirmed (``confirmed_at`` set) at or after ``since``, by any
path (the API, the console's bulk confirm), and not itself received over Open311 (no echo back
to where it came from). Each pass first writes an ``open311_forwards`` row for such cases that
have none (the table's unique ``case_id`` makes that idempotent, also with several hub
processes), then POSTs the due rows to ``{endpoint}/requests.json`` as the spec's form fields
with the endpoint's ``api_key``, and keeps retrying with capped exponential backoff until the
endpoint answers with a ``service_request_id`` or ``token``, which is recorded. The queue is a
table, so a restart resumes where it stopped; a row being sent is leased (as in
:mod:`gridwarden.hub.webhooks`), so two forwarders never send it at once. Delivery is at least
once: a crash between the endpoint's answer and our commit resends.

>>> fwd = Open311Forwarder(db, "https://city.example/open311/v2", api_key="...")  # doctest: +SKIP
>>> fwd.start(); ...; fwd.stop()                                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gridwarden.backoff import Backoff
from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Case, CaseReport, Open311Forward, QrPoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Claimed:
    id: int
    case_id: int
    attempts: int


class Open311Forwarder:
    """Forwards confirmed cases (see the module docstring); a thread or one :meth:`run_once`."""

    def __init__(
        self,
        db: Database,
        endpoint: str,
        *,
        api_key: str,
        since: datetime | None = None,
        jurisdiction_id: str | None = None,
        public_url: str | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 2.0,
        batch: int = 20,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"the Open311 endpoint must be http(s)://..., got {endpoint!r}")
        if not api_key:
            raise ValueError("forwarding to Open311 needs the endpoint's api_key")
        self.db = db
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.since = since
        self.jurisdiction_id = jurisdiction_id
        self.public_url = public_url.rstrip("/") if public_url else None
        self.backoff = backoff or Backoff(2.0, 600.0, jitter=0.1)  # as the webhook forwarder
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self.clock = clock
        self.lease = timedelta(seconds=timeout_s + 30.0)
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="open311-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5.0)
            self._thread = None
        self._http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database or the endpoint may be away; keep the thread alive
                log.exception("open311 forwarder: pass failed; retrying")
            self._stop.wait(self.poll_interval_s)

    def run_once(self) -> int:
        """Queue newly confirmed cases, then attempt every due row; returns attempts made."""
        self.enqueue()
        claimed = self._claim()
        for row in claimed:
            if self._stop.is_set():
                break
            self._record(row, *self._send(row))
        return len(claimed)

    def enqueue(self) -> int:
        now = self.clock()
        stmt = (
            select(Case.id)
            .outerjoin(Open311Forward, Open311Forward.case_id == Case.id)
            .where(Case.confirmed_at.is_not(None), Case.source != "open311", Open311Forward.id.is_(None))
            .order_by(Case.id)
            .limit(500)
        )
        if self.since is not None:
            stmt = stmt.where(Case.confirmed_at >= self.since)
        with self.db.session() as session:
            ids = list(session.scalars(stmt))
        added = 0
        for case_id in ids:
            try:
                with self.db.write_session() as session, session.begin():
                    session.add(
                        Open311Forward(case_id=case_id, attempts=0, next_attempt_at=now, created_at=now)
                    )
                added += 1
            except IntegrityError:  # another hub process queued it first
                continue
        return added

    def _claim(self) -> list[_Claimed]:
        now = self.clock()
        with self.db.write_session() as session, session.begin():
            stmt = (
                select(Open311Forward)
                .where(Open311Forward.delivered_at.is_(None), Open311Forward.next_attempt_at <= now)
                .order_by(Open311Forward.next_attempt_at, Open311Forward.id)
                .limit(self.batch)
            )
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(session.scalars(stmt))
            for row in rows:
                row.next_attempt_at = now + self.lease
            return [_Claimed(r.id, r.case_id, r.attempts) for r in rows]

    def form_for(self, case_id: int) -> dict[str, str]:
        """The GeoReport v2 POST fields for a case."""
        with self.db.session() as session:
            case = session.get(Case, case_id)
            if case is None:
                raise LookupError(f"case {case_id} is gone")
            report = session.scalar(
                select(CaseReport).where(CaseReport.case_id == case_id).order_by(CaseReport.id).limit(1)
            )
            point = session.get(QrPoint, case.report_point_id) if case.report_point_id else None
            form = {"api_key": self.api_key, "service_code": case.category}
            lat = report.lat if report and report.lat is not None else (point.lat if point else None)
            lon = report.lon if report and report.lon is not None else (point.lon if point else None)
            if lat is not None and lon is not None:
                form |= {"lat": repr(lat), "long": repr(lon)}
            where = (
                (report.address if report else None)
                or (f"{point.description} ({point.id})" if point else None)
                or f"{case.site} camera {case.camera} zone {case.zone}"
            )
            form["address_string"] = where[:500]
            note = (report.note if report else None) or ""
            form["description"] = (
                f"[gridwarden case {case.id}] {note or case.rule + ': ' + ', '.join(case.classes)}"[:1000]
            )
            if self.jurisdiction_id:
                form["jurisdiction_id"] = self.jurisdiction_id
            if self.public_url and report is not None and report.photo_sha256:
                form["media_url"] = f"{self.public_url}/open311/v2/media/{report.photo_sha256}.jpg"
            return form

    def _send(self, row: _Claimed) -> tuple[str | None, str | None, str | None]:
        """(error, remote service_request_id, remote token)."""
        try:
            form = self.form_for(row.case_id)
            resp = self._http.post(f"{self.endpoint}/requests.json", data=form)
        except (httpx.HTTPError, LookupError) as exc:
            return f"{exc.__class__.__name__}: {exc}"[:500], None, None
        if not 200 <= resp.status_code < 300:
            return f"HTTP {resp.status_code}: {resp.text[:300]}", None, None
        try:
            answer = resp.json()[0]
            remote_id, token = answer.get("service_request_id"), answer.get("token")
        except (ValueError, LookupError, AttributeError, TypeError):
            return f"not a GeoReport v2 answer: {resp.text[:300]}", None, None
        if remote_id is None and token is None:
            return "the answer has neither service_request_id nor token", None, None
        return (
            None,
            None if remote_id is None else str(remote_id)[:128],
            None if token is None else str(token)[:128],
        )

    def _record(self, row: _Claimed, error: str | None, remote_id: str | None, token: str | None) -> None:
        now = self.clock()
        attempts = row.attempts + 1
        with self.db.write_session() as session, session.begin():
            stored = session.get(Open311Forward, row.id)
            if stored is None or stored.delivered_at is not None:
                return
            stored.attempts = attempts
            stored.last_error = error
            if error is None:
                stored.delivered_at = now
                stored.remote_request_id = remote_id
                stored.remote_token = token
                log.info("case %d forwarded to Open311 as %s", row.case_id, remote_id or f"token {token}")
            else:
                delay = self.backoff.delay(attempts)
                stored.next_attempt_at = now + timedelta(seconds=delay)
                log.warning(
                    "open311 forward of case %d failed (attempt %d: %s); retry in %.1f s",
                    row.case_id,
                    attempts,
                    error,
                    delay,
                )
