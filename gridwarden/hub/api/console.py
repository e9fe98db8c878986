"""The review console: its static files at ``/console/``, its log-in, and its live stream.

Routes (all JSON unless said otherwise):

* ``GET /console/`` — the single-page console (plain HTML/CSS/JS from ``gridwarden/hub/web``).
* ``POST /api/v1/console/login`` — user name + password -> a session token (``gws_...``) that the
  console sends as ``Authorization: Bearer`` to the ordinary API. Throttled per account and per
  client address (:mod:`gridwarden.hub.login_throttle`: 429 with ``Retry-After``) and audited.
* ``POST /api/v1/console/logout`` — ends the caller's session on the server (every hub process).
* ``GET|PUT /api/v1/console/me`` — who is logged in, and their interface language (persisted).
* ``GET /api/v1/console/facets`` — the cameras, zones and rules that occur in cases (filter menus).
* ``POST /api/v1/console/evidence-urls`` and ``POST /api/v1/console/stream-url`` — short-lived
  signed URLs. ``<video src>`` and ``EventSource`` cannot send an ``Authorization`` header, and a
  token in a URL would end up in logs and the browser history for its whole life; a ticket in the
  URL is valid for one file (or the stream) and minutes only.
* ``GET /api/v1/console/evidence/{sha256}?ticket=`` — the evidence file, with range requests (so
  the video can seek), for the holder of a ticket for that very file.
* ``GET /api/v1/stream?ticket=`` — Server-Sent Events: one ``case`` event per case change.

Why the stream polls the database (every ``poll_s``, per client) rather than listening to a
pub/sub inside the process: the incidents may be ingested by another hub process (several share
an MQTT group), and every process sees the database. The query is an indexed range scan on
``updated_at`` that returns nothing almost every time.

Wiring: :func:`gridwarden.hub.app.create_app` includes :data:`router` (and
:data:`gridwarden.hub.api.console_review.router`) and calls :func:`mount_console_pages` once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from gridwarden.hub.api.deps import Evidence, HubServices, Services, current_principal, error, require
from gridwarden.hub.api.evidence import evidence_file_response
from gridwarden.hub.auth import (
    LANGUAGES,
    SESSION_TTL_S,
    InvalidCredentials,
    Permission,
    Principal,
    UserError,
)
from gridwarden.hub.db.models import Case
from gridwarden.hub.login_throttle import LOGIN_FAILED, LOGIN_OK, LOGOUT, LoginThrottle
from gridwarden.hub.playable import playable_clips_for
from gridwarden.hub.schemas import CameraView, CaseView, EdgeView

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
EVIDENCE_TICKET_TTL_S = 15 * 60  # long enough to watch and re-seek a clip
STREAM_TICKET_TTL_S = 60  # only has to open the connection; an open stream outlives it
MAX_EVIDENCE_PER_REQUEST = 64

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_bearer = HTTPBearer(auto_error=False)
CurrentUser = Annotated[Principal, Depends(current_principal)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class StreamSettings:
    """``poll_s``: how often each stream looks for changes. ``lookback_s``: how far before the
    newest change seen it looks again, because a transaction stamps ``updated_at`` before it
    commits and so may become visible after a later-stamped one. ``max_age_s``: a stream ends
    after this and the console reconnects with a fresh ticket (so a revoked user stops receiving
    and a shutting-down server is not held open for long). ``heartbeat_s``: a comment line keeps
    proxies from closing an idle stream."""

    poll_s: float = 1.0
    lookback_s: float = 5.0
    max_age_s: float = 300.0
    heartbeat_s: float = 15.0


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    role: str
    language: str
    permissions: list[str]


class LoginResponse(Me):
    token: str
    token_type: str = "bearer"
    expires_in: int


class LanguageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(description=f"One of {', '.join(LANGUAGES)}.")


class EvidenceUrlsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: list[Sha256] = Field(max_length=MAX_EVIDENCE_PER_REQUEST)


class SignedUrls(BaseModel):
    urls: dict[str, str]
    expires_at: int  # epoch seconds


class SignedUrl(BaseModel):
    url: str
    expires_at: int


class FleetCamera(CameraView):
    last_incident_at: datetime | None = None


class FleetEdge(EdgeView):
    cameras: list[FleetCamera]
    last_incident_at: datetime | None = None


class Fleet(BaseModel):
    """Edges with their cameras; the offline ones (edge offline, or camera not online) first."""

    edges: list[FleetEdge]
    as_of: datetime


def fleet_view(services: HubServices) -> Fleet:
    """One round trip for the fleet page: status from the retained topics, last case per camera."""
    with services.db.session() as session:
        rows = session.execute(
            select(Case.edge_id, Case.camera, func.max(Case.detected_at)).group_by(Case.edge_id, Case.camera)
        ).all()
    last = {(edge, camera): at for edge, camera, at in rows}
    cameras: dict[str, list[FleetCamera]] = {}
    for cam in services.fleet.list_cameras():
        cameras.setdefault(cam.edge_id, []).append(
            FleetCamera(**cam.model_dump(), last_incident_at=last.get((cam.edge_id, cam.camera_id)))
        )
    edges = []
    for edge in services.fleet.list_edges():
        cams = sorted(cameras.get(edge.edge_id, []), key=lambda c: (c.state == "online", c.camera_id))
        times = [c.last_incident_at for c in cams if c.last_incident_at is not None]
        times += [at for (e, _), at in last.items() if e == edge.edge_id]
        edges.append(
            FleetEdge(**edge.model_dump(), cameras=cams, last_incident_at=max(times) if times else None)
        )

    def healthy(e: FleetEdge) -> bool:
        return e.online and all(c.state == "online" for c in e.cameras)

    edges.sort(key=lambda e: (e.online, healthy(e), e.site, e.edge_id))
    return Fleet(edges=edges, as_of=services.cases.clock())


class Facets(BaseModel):
    cameras: list[str]
    zones: list[str]
    rules: list[str]


def _me(services: HubServices, principal: Principal) -> Me:
    return Me(
        username=principal.username,
        role=principal.role.value,
        language=services.users.language(principal.user_id),
        permissions=sorted(p.value for p in Permission if principal.can(p)),
    )


def _ticket_principal(services: HubServices, ticket: str | None, scope: str) -> Principal:
    principal = services.users.verify_ticket(ticket, scope) if ticket else None
    if principal is None:
        raise error(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_ticket",
            "the signed URL is missing, expired or revoked; ask the console for a new one",
        )
    return principal


def changed_cases(services: HubServices, since: datetime, limit: int = 500) -> list[CaseView]:
    """Cases whose ``updated_at`` is after ``since``, oldest change first, as the API shows them."""
    now = services.cases.clock()
    with services.db.session() as session:
        rows = session.scalars(
            select(Case).where(Case.updated_at > since).order_by(Case.updated_at, Case.id).limit(limit)
        ).all()
        return [
            CaseView.model_validate(
                {
                    **{c.key: getattr(row, c.key) for c in Case.__table__.columns},
                    "sla": services.cases.sla(row, now),
                }
            )
            for row in rows
        ]


async def case_events(
    request: Request, services: HubServices, settings: StreamSettings
) -> AsyncIterator[str]:
    """The SSE body: ``case`` events for every change after the connection opened (plus the
    last ``lookback_s`` before it, which the console merges harmlessly into what it loaded)."""
    lookback = timedelta(seconds=settings.lookback_s)
    cursor = services.cases.clock() - lookback
    sent: dict[int, datetime] = {}
    started = last_write = time.monotonic()
    yield f"retry: 2000\nevent: ready\ndata: {json.dumps({'poll_s': settings.poll_s})}\n\n"
    while time.monotonic() - started < settings.max_age_s:
        if await request.is_disconnected():
            return
        views = await run_in_threadpool(changed_cases, services, cursor - lookback)
        for view in views:
            if sent.get(view.id) == view.updated_at:
                continue
            sent[view.id] = view.updated_at
            cursor = max(cursor, view.updated_at)
            last_write = time.monotonic()
            yield f"event: case\nid: {view.updated_at.isoformat()}\ndata: {view.model_dump_json()}\n\n"
        horizon = cursor - 2 * lookback
        for case_id in [i for i, at in sent.items() if at < horizon]:
            del sent[case_id]
        if time.monotonic() - last_write >= settings.heartbeat_s:
            last_write = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(settings.poll_s)
    yield "event: expired\ndata: {}\n\n"


def get_stream_settings() -> StreamSettings:
    """The live stream's timing; tests override this dependency with faster values."""
    return StreamSettings()


Stream = Annotated[StreamSettings, Depends(get_stream_settings)]
CaseReader = Annotated[Principal, Depends(require(Permission.READ_CASES))]
FleetReader = Annotated[Principal, Depends(require(Permission.READ_FLEET))]

router = APIRouter(tags=["console"])


@router.post(
    "/api/v1/console/login",
    response_model=LoginResponse,
    summary="Log in to the review console with user name and password",
    responses={
        401: {"description": "Wrong user name or password"},
        403: {"description": "Role may not review"},
    },
)
def login(body: LoginRequest, request: Request, services: Services) -> LoginResponse:
    throttle = LoginThrottle(services.db)
    client = request.client.host if request.client else None
    verdict = throttle.check(body.username, client)
    if not verdict.allowed:
        retry_after = max(1, math.ceil(verdict.retry_after_s))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail={
                "error": "too_many_attempts",
                "message": f"too many failed log-ins; try again in {retry_after} s",
                "retry_after": retry_after,
            },
            headers={"Retry-After": str(retry_after)},
        )
    try:
        principal, token = services.users.authenticate_password(body.username, body.password)
    except InvalidCredentials as exc:
        throttle.record(LOGIN_FAILED, body.username, client)
        raise error(status.HTTP_401_UNAUTHORIZED, "invalid_credentials", str(exc)) from exc
    throttle.record(LOGIN_OK, body.username, client)
    if not principal.can(Permission.READ_CASES):
        raise error(
            status.HTTP_403_FORBIDDEN,
            "forbidden",
            f"role {principal.role.value!r} may not use the review console",
        )
    me = _me(services, principal)
    return LoginResponse(**me.model_dump(), token=token, expires_in=SESSION_TTL_S)


@router.post(
    "/api/v1/console/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out: the session token stops working on the server",
)
def logout(
    request: Request, services: Services, principal: CurrentUser, credentials: BearerCredentials
) -> Response:
    token = credentials.credentials if credentials is not None else ""
    if services.users.end_session(token):
        client = request.client.host if request.client else None
        LoginThrottle(services.db).record(LOGOUT, principal.username, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/v1/console/me", response_model=Me, summary="The logged-in user and preferences")
def get_me(services: Services, principal: CurrentUser) -> Me:
    return _me(services, principal)


@router.put("/api/v1/console/me", response_model=Me, summary="Change the user's interface language")
def put_me(body: LanguageRequest, services: Services, principal: CurrentUser) -> Me:
    try:
        services.users.set_language(principal.user_id, body.language)
    except UserError as exc:
        raise error(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown_language", str(exc), languages=list(LANGUAGES)
        ) from exc
    return _me(services, principal)


@router.get("/api/v1/console/facets", response_model=Facets, summary="Values for the queue's filters")
def facets(services: Services, _: CaseReader) -> Facets:
    with services.db.session() as session:

        def values(column: Any) -> list[str]:
            return list(session.scalars(select(column).distinct().order_by(column)))

        return Facets(cameras=values(Case.camera), zones=values(Case.zone), rules=values(Case.rule))


@router.get("/api/v1/console/fleet", response_model=Fleet, summary="Edges and cameras for the fleet page")
def fleet(services: Services, _: FleetReader) -> Fleet:
    return fleet_view(services)


@router.post(
    "/api/v1/console/evidence-urls",
    response_model=SignedUrls,
    summary="Short-lived URLs for evidence files (for <video>/<img>, which cannot send headers)",
)
def evidence_urls(body: EvidenceUrlsRequest, services: Services, principal: CaseReader) -> SignedUrls:
    urls: dict[str, str] = {}
    expires = 0
    for sha in dict.fromkeys(body.sha256):
        ticket, expires = services.users.issue_ticket(
            principal, f"evidence:{sha}", ttl_s=EVIDENCE_TICKET_TTL_S
        )
        urls[sha] = f"/api/v1/console/evidence/{sha}?ticket={ticket}"
    return SignedUrls(urls=urls, expires_at=expires)


@router.post(
    "/api/v1/console/stream-url",
    response_model=SignedUrl,
    summary="A short-lived URL for the live case stream (for EventSource, which cannot send headers)",
)
def stream_url(services: Services, principal: CaseReader) -> SignedUrl:
    ticket, expires = services.users.issue_ticket(principal, "stream", ttl_s=STREAM_TICKET_TTL_S)
    return SignedUrl(url=f"/api/v1/stream?ticket={ticket}", expires_at=expires)


async def signed_evidence(
    sha256: str, services: Services, store: Evidence, ticket: str | None = None
) -> FileResponse:
    if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        raise error(status.HTTP_404_NOT_FOUND, "not_found", "no such evidence")
    principal = await run_in_threadpool(_ticket_principal, services, ticket, f"evidence:{sha256}")
    if not principal.can(Permission.READ_CASES):
        raise error(status.HTTP_403_FORBIDDEN, "forbidden", "this role may not read evidence")
    # The URL holds a ticket: keep it out of shared caches, but let the browser reuse it.
    headers = {"Referrer-Policy": "no-referrer"}
    stored = await run_in_threadpool(store.stat, sha256)
    if stored is not None and stored.content_type == "video/mp4":
        # An H.265 clip is viewed as a cached H.264 copy (see gridwarden/hub/playable.py).
        path, transcoded = await run_in_threadpool(playable_clips_for(store.root).path_for, stored)
        if transcoded:
            return FileResponse(
                path,
                media_type="video/mp4",
                headers={
                    "ETag": f'"{sha256}-h264"',
                    "Cache-Control": "private, max-age=900",
                    "X-Content-Type-Options": "nosniff",
                    "X-Gridwarden-Transcoded": "h264",
                    **headers,
                },
            )
    return await evidence_file_response(
        store, sha256, cache_control="private, max-age=900", extra_headers=headers
    )


router.add_api_route(
    "/api/v1/console/evidence/{sha256}",
    signed_evidence,
    methods=["GET"],
    response_class=FileResponse,
    summary="An evidence file by signed URL (supports Range requests)",
)
# HEAD answers like GET without the body; one operation in OpenAPI (as in api/evidence.py).
router.add_api_route(
    "/api/v1/console/evidence/{sha256}", signed_evidence, methods=["HEAD"], include_in_schema=False
)


@router.get(
    "/api/v1/stream",
    summary="Server-Sent Events: a 'case' event for every new or changed case",
    response_class=StreamingResponse,
)
async def case_stream(
    request: Request,
    services: Services,
    stream: Stream,
    credentials: BearerCredentials,
    ticket: Annotated[str | None, Query(description="From POST /api/v1/console/stream-url")] = None,
) -> StreamingResponse:
    if credentials is not None and credentials.credentials and not ticket:
        principal = await run_in_threadpool(services.users.authenticate, credentials.credentials)
        if principal is None:
            raise error(status.HTTP_401_UNAUTHORIZED, "invalid_token", "unknown or revoked token")
    else:
        principal = await run_in_threadpool(_ticket_principal, services, ticket, "stream")
    if not principal.can(Permission.READ_CASES):
        raise error(status.HTTP_403_FORBIDDEN, "forbidden", "this role may not read cases")
    return StreamingResponse(
        case_events(request, services, stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def mount_console_pages(app: FastAPI) -> None:
    """Serve the console's static files at ``/console/`` (its API routes are :data:`router`)."""

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.mount("/console", StaticFiles(directory=WEB_DIR, html=True), name="console")
