"""The latest still image of every camera, for the zone editor to draw zones on.

Edges ``PUT /api/v1/cameras/{edge_id}/{camera_id}/snapshot`` a JPEG every few minutes (role edge,
:attr:`Permission.UPLOAD_EVIDENCE`). An edge's token is bound to its edge id (an ``edge`` user's
name is its ``edge_id``), so it may replace only its own cameras' pictures (403 ``wrong_edge``
otherwise). The body must be a JPEG that decodes to a sane size
(:func:`gridwarden.hub.media_check.check_jpeg`) of at most 8 MiB. Only the newest is kept, one file per camera, written to a
temporary name and renamed so a reader never sees half a file. Integrators and admins read it
with their bearer token, or through a short-lived signed URL (``<img src>`` sends no header).

The files live in ``camera-snapshots/`` under the hub's evidence folder (:data:`SNAPSHOT_DIR`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gridwarden.hub import security_counters
from gridwarden.hub.api.deps import Evidence, Publisher, Services, error, require
from gridwarden.hub.auth import Permission, Principal, Role
from gridwarden.hub.config_push import ConfigPublishError
from gridwarden.hub.db.models import Edge
from gridwarden.hub.media_check import InvalidMedia, check_jpeg

SNAPSHOT_DIR = "camera-snapshots"
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
SNAPSHOT_TICKET_TTL_S = 15 * 60
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Uploader = Annotated[Principal, Depends(require(Permission.UPLOAD_EVIDENCE))]
Reader = Annotated[Principal, Depends(require(Permission.READ_FLEET))]
Configurer = Annotated[Principal, Depends(require(Permission.CONFIGURE))]


class SnapshotRequested(BaseModel):
    edge_id: str
    camera_id: str
    requested: bool = True


class SnapshotInfo(BaseModel):
    edge_id: str
    camera_id: str
    size: int
    taken_at: datetime


class SnapshotUrl(BaseModel):
    url: str
    expires_at: int
    taken_at: datetime


def ticket_scope(edge_id: str, camera_id: str) -> str:
    """Ticket scopes are ``word[:sha256]``; the hash names the one camera the ticket opens."""
    return "snapshot:" + hashlib.sha256(f"{edge_id}/{camera_id}".encode()).hexdigest()


class SnapshotStore:
    """``root/<edge_id>/<camera_id>.jpg``: the newest JPEG per camera."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, edge_id: str, camera_id: str) -> Path:
        for value in (edge_id, camera_id):
            if not _ID.fullmatch(value) or value in (".", ".."):
                raise error(status.HTTP_404_NOT_FOUND, "not_found", f"invalid identifier {value!r}")
        return self.root / edge_id / f"{camera_id}.jpg"

    def write(self, edge_id: str, camera_id: str, data: bytes) -> SnapshotInfo:
        target = self.path(edge_id, camera_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".jpg")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.info(edge_id, camera_id)

    def info(self, edge_id: str, camera_id: str) -> SnapshotInfo:
        target = self.path(edge_id, camera_id)
        try:
            st = target.stat()
        except FileNotFoundError:
            raise error(
                status.HTTP_404_NOT_FOUND, "no_snapshot", f"no snapshot of {edge_id}/{camera_id} yet"
            ) from None
        return SnapshotInfo(
            edge_id=edge_id,
            camera_id=camera_id,
            size=st.st_size,
            taken_at=datetime.fromtimestamp(st.st_mtime, UTC),
        )


def _jpeg_response(store: SnapshotStore, edge_id: str, camera_id: str) -> FileResponse:
    store.info(edge_id, camera_id)  # 404 when there is none
    return FileResponse(
        store.path(edge_id, camera_id),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"},
    )


def get_snapshot_store(evidence: Evidence) -> SnapshotStore:
    return SnapshotStore(evidence.root / SNAPSHOT_DIR)


Snapshots = Annotated[SnapshotStore, Depends(get_snapshot_store)]

router = APIRouter(prefix="/api/v1/cameras/{edge_id}/{camera_id}/snapshot", tags=["fleet"])


def _refuse(status_code: int, code: str, message: str) -> HTTPException:
    security_counters.count("gridwarden_hub_uploads_refused_total", reason=code)
    return error(status_code, code, message)


@router.put("", response_model=SnapshotInfo, summary="Replace the camera's latest snapshot (JPEG)")
async def put_snapshot(
    edge_id: str, camera_id: str, request: Request, who: Uploader, store: Snapshots
) -> SnapshotInfo:
    store.path(edge_id, camera_id)  # 404 for an identifier that cannot be an edge or camera
    if who.role is Role.EDGE and who.username != edge_id:
        raise _refuse(
            status.HTTP_403_FORBIDDEN,
            "wrong_edge",
            f"this token belongs to edge {who.username!r}, not {edge_id!r}",
        )
    if request.headers.get("content-type", "").split(";")[0].strip() != "image/jpeg":
        raise _refuse(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "not_jpeg", "send Content-Type: image/jpeg")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_SNAPSHOT_BYTES:
        raise _refuse(413, "too_large", f"a snapshot may be at most {MAX_SNAPSHOT_BYTES} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise _refuse(413, "too_large", f"a snapshot may be at most {MAX_SNAPSHOT_BYTES} bytes")
    try:
        await run_in_threadpool(check_jpeg, bytes(data))
    except InvalidMedia as exc:
        raise _refuse(422, "not_jpeg", f"the body is not a usable JPEG image: {exc}") from exc
    return await run_in_threadpool(store.write, edge_id, camera_id, bytes(data))


@router.get("", response_class=FileResponse, summary="The camera's latest snapshot (JPEG)")
def get_snapshot(edge_id: str, camera_id: str, _: Reader, store: Snapshots) -> FileResponse:
    return _jpeg_response(store, edge_id, camera_id)


@router.post("/url", response_model=SnapshotUrl, summary="A short-lived URL of the snapshot for <img>")
def snapshot_url(
    edge_id: str, camera_id: str, services: Services, who: Reader, store: Snapshots
) -> SnapshotUrl:
    info = store.info(edge_id, camera_id)
    ticket, expires = services.users.issue_ticket(
        who, ticket_scope(edge_id, camera_id), ttl_s=SNAPSHOT_TICKET_TTL_S
    )
    version = int(info.taken_at.timestamp())
    url = f"/api/v1/cameras/{edge_id}/{camera_id}/snapshot/signed?ticket={ticket}&v={version}"
    return SnapshotUrl(url=url, expires_at=expires, taken_at=info.taken_at)


@router.get("/signed", response_class=FileResponse, summary="The snapshot by signed URL")
def signed_snapshot(
    edge_id: str, camera_id: str, services: Services, store: Snapshots, ticket: str = ""
) -> FileResponse:
    principal = services.users.verify_ticket(ticket, ticket_scope(edge_id, camera_id)) if ticket else None
    if principal is None or not principal.can(Permission.READ_FLEET):
        raise error(status.HTTP_401_UNAUTHORIZED, "invalid_ticket", "the signed URL is invalid or expired")
    return _jpeg_response(store, edge_id, camera_id)


@router.post(
    "/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SnapshotRequested,
    summary="Ask the edge to upload this camera's latest picture now",
)
def request_snapshot(
    edge_id: str,
    camera_id: str,
    services: Services,
    publisher: Publisher,
    who: Configurer,
    store: Snapshots,
) -> SnapshotRequested:
    store.path(edge_id, camera_id)  # 404 for an identifier no camera can have (e.g. "bad cam")
    with services.db.session() as session:
        edge = session.get(Edge, edge_id)
        site = edge.site if edge is not None else None
    if site is None:
        raise error(
            status.HTTP_404_NOT_FOUND, "unknown_edge", f"edge {edge_id!r} has never reported to this hub"
        )
    if publisher is None:
        raise error(status.HTTP_503_SERVICE_UNAVAILABLE, "no_broker", "this hub has no MQTT connection")
    try:
        publisher.request_snapshot(site, edge_id, camera_id, who.username)
    except ConfigPublishError as exc:
        raise error(status.HTTP_503_SERVICE_UNAVAILABLE, "broker_unavailable", str(exc)) from exc
    return SnapshotRequested(edge_id=edge_id, camera_id=camera_id)
