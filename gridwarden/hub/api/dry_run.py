"""``/api/v1/edges/{edge_id}/cameras/{camera_id}/dry-runs``: try a configuration on recorded video.

``POST`` takes either ``multipart/form-data`` (``file``: an MP4 clip; ``candidate_yaml``;
``use_recent_evidence``) or JSON (``{"use_recent_evidence": n, "candidate_yaml": "..."}``) and
answers 202 with the dry run's id; the replay runs on the hub's dry-run worker (one at a time,
see :mod:`gridwarden.hub.dry_run`). ``GET .../{id}`` gives status and progress, then the result;
``GET .../{id}/video/{candidate|current}/{clip_index}`` the annotated video (range requests work);
``POST .../{id}/video-urls`` signed URLs of those videos for a ``<video>`` element, which cannot
send an ``Authorization`` header (``.../signed?ticket=``, valid for one dry run, 15 minutes).

Errors before anything is queued: an invalid candidate is 422 ``invalid_config`` with every
``file:line: field: message`` problem; a model file the hub cannot read is 422
``model_not_on_hub``; a clip that is too large is 413; a file that is not a decodable MP4 is 415;
no configuration in force and no candidate is 404.

Starting a dry run needs ``config:write``; reading its result and videos ``fleet:read``.

The dry runs execute on the hub's :class:`DryRunService` (``HubServices.dry_runs``, built by
:func:`gridwarden.hub.app.build_hub`); ``use_recent_evidence`` reads the hub's evidence store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from starlette.datastructures import UploadFile

from gridwarden.hub.api.deps import DryRuns, HubServices, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.config_store import ConfigStore, UnknownConfigVersion
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import CaseIncident, Incident
from gridwarden.hub.dry_run import (
    ClipSource,
    DryRunRequest,
    DryRunService,
    ModelNotOnHub,
    UnreadableClip,
    check_clip,
)
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.yamlconfig import ConfigError

_CHUNK = 1024 * 1024
VIDEO_TICKET_TTL_S = 15 * 60


def video_ticket_scope(edge_id: str, camera_id: str, job_id: str) -> str:
    """A ticket opens the videos of one dry run only (scopes are ``word[:sha256]``)."""
    return "dryrun:" + hashlib.sha256(f"{edge_id}/{camera_id}/{job_id}".encode()).hexdigest()


class DryRunBody(BaseModel):
    """The JSON form of a dry-run request (no upload)."""

    use_recent_evidence: int = Field(ge=1, le=100, description="Replay this many most recent evidence clips.")
    candidate_yaml: str | None = Field(default=None, description="Default: the configuration in force.")


# The body is read by hand (multipart OR JSON), so it is described for OpenAPI here.
_POST_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "An MP4 clip."},
                        "candidate_yaml": {"type": "string"},
                        "use_recent_evidence": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                }
            },
            "application/json": {"schema": DryRunBody.model_json_schema()},
        },
    }
}


def recent_evidence_clips(
    db: Database, store: EvidenceStore, edge_id: str, camera_id: str, n: int
) -> list[ClipSource]:
    """The ``n`` most recent clips of the camera's incidents that are stored on the hub."""
    clips: list[ClipSource] = []
    seen: set[str] = set()
    with db.session() as session:
        rows = session.execute(
            select(Incident.incident_id, Incident.evidence, Incident.started_at, CaseIncident.case_id)
            .outerjoin(CaseIncident, CaseIncident.incident_id == Incident.incident_id)
            .where(Incident.edge_id == edge_id, Incident.camera == camera_id)
            .order_by(Incident.started_at.desc())
        )
        for incident_id, evidence, started_at, case_id in rows:
            for ref in evidence or []:
                sha = ref.get("sha256")
                if ref.get("kind") != "clip" or not sha or sha in seen:
                    continue
                seen.add(sha)
                with contextlib.suppress(ValueError):
                    if store.exists(sha):
                        clips.append(
                            ClipSource(
                                store.path_for(sha),
                                "evidence",
                                sha,
                                incident_id,
                                camera=camera_id,
                                started_at=started_at.isoformat(),
                                case_id=case_id,
                            )
                        )
                if len(clips) >= n:
                    return clips
    return clips


Configurer = Annotated[Principal, Depends(require(Permission.CONFIGURE))]
Reader = Annotated[Principal, Depends(require(Permission.READ_FLEET))]

router = APIRouter(prefix="/api/v1/edges/{edge_id}/cameras/{camera_id}/dry-runs", tags=["dry runs"])


def invalid(exc: ConfigError) -> Exception:
    problems = [str(p) for p in exc.problems]
    return error(
        422,
        "invalid_config",
        f"the candidate configuration has {len(problems)} problem(s)",
        problems=problems,
    )


async def _save_upload(service: DryRunService, upload: UploadFile, dest: Path) -> None:
    size = 0
    with open(dest, "wb") as fh:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > service.max_upload_bytes:
                raise error(
                    413,
                    "too_large",
                    f"the clip is over the limit of {service.max_upload_bytes} bytes",
                    limit=service.max_upload_bytes,
                )
            fh.write(chunk)
    if size == 0:
        raise error(422, "empty_clip", "the uploaded clip is empty")


async def _read_request(
    service: DryRunService, request: Request, upload_dest: Path
) -> tuple[str | None, int | None, bool]:
    """(candidate_yaml, use_recent_evidence, uploaded) from a multipart or JSON body."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = DryRunBody.model_validate_json(await request.body())
        except ValidationError as exc:
            problems = json.loads(exc.json(include_url=False))
            raise error(422, "bad_request", "invalid request body", problems=problems) from None
        return body.candidate_yaml, body.use_recent_evidence, False
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise error(415, "unsupported_media_type", "send multipart/form-data (with a clip) or JSON")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > service.max_upload_bytes + 1024 * 1024:
        raise error(413, "too_large", f"the clip is over the limit of {service.max_upload_bytes} bytes")
    async with request.form(max_files=1, max_fields=10) as form:
        candidate = form.get("candidate_yaml")
        recent = form.get("use_recent_evidence")
        upload = form.get("file")
        if candidate is not None and not isinstance(candidate, str):
            raise error(422, "bad_request", "candidate_yaml must be a text field")
        n: int | None = None
        if isinstance(recent, str) and recent.strip():
            if not recent.strip().isdigit() or not 1 <= int(recent) <= 100:
                raise error(422, "bad_request", "use_recent_evidence must be a whole number 1..100")
            n = int(recent)
        uploaded = isinstance(upload, UploadFile)
        if uploaded:
            assert isinstance(upload, UploadFile)
            upload_dest.parent.mkdir(parents=True, exist_ok=True)
            await _save_upload(service, upload, upload_dest)
        return candidate or None, n, uploaded


def _plan(
    service: DryRunService,
    services: HubServices,
    edge_id: str,
    camera_id: str,
    candidate: str | None,
    n: int | None,
    upload: Path | None,
    author: str,
) -> DryRunRequest:
    """Everything checked before queueing, so the caller hears about mistakes at once."""
    if (upload is None) == (n is None):
        raise error(422, "bad_request", "give either an uploaded clip ('file') or 'use_recent_evidence'")
    try:
        current = ConfigStore(services.db).current(edge_id)
    except UnknownConfigVersion:
        current = None
    if candidate is None and current is None:
        raise error(404, "no_config", f"edge {edge_id!r} has no configuration; send 'candidate_yaml'")
    candidate_yaml = candidate if candidate is not None else current.yaml  # type: ignore[union-attr]
    try:
        service.prepare_config(edge_id, camera_id, candidate_yaml, source="candidate.yaml")
        if current is not None and current.yaml != candidate_yaml:
            service.prepare_config(edge_id, camera_id, current.yaml, source="current.yaml")
    except ConfigError as exc:
        raise invalid(exc) from None
    except ModelNotOnHub as exc:
        raise error(422, "model_not_on_hub", str(exc)) from None
    if upload is not None:
        try:
            check_clip(upload)
        except UnreadableClip as exc:
            raise error(415, "unreadable_clip", str(exc)) from None
        clips = [ClipSource(upload, "upload")]
    else:
        if services.evidence is None:
            raise error(422, "no_evidence_store", "this hub stores no evidence; upload a clip instead")
        assert n is not None
        clips = recent_evidence_clips(services.db, services.evidence, edge_id, camera_id, n)
        if not clips:
            raise error(404, "no_evidence", f"camera {camera_id!r} of {edge_id!r} has no stored clips")
    return DryRunRequest(
        edge_id=edge_id,
        camera_id=camera_id,
        clips=clips,
        candidate_yaml=candidate_yaml,
        current_yaml=current.yaml if current is not None else None,
        current_version=current.version if current is not None else None,
        author=author,
    )


def _public(
    service: DryRunService, job_id: str, edge_id: str, camera_id: str, request: Request
) -> dict[str, Any]:
    job = service.get(job_id)
    if job is None or job.edge_id != edge_id or job.camera_id != camera_id:
        raise error(404, "no_dry_run", f"no dry run {job_id!r} for this camera")
    body = job.public()
    for clip in (body["result"] or {}).get("clips", []):
        for which in ("candidate", "current"):
            if clip.get(which):
                clip[which]["video_url"] = str(
                    request.url_for(
                        "dry_run_video",
                        edge_id=edge_id,
                        camera_id=camera_id,
                        job_id=job_id,
                        which=which,
                        clip_index=clip["index"],
                    ).path
                )
    return body


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a dry run of a configuration",
    openapi_extra=_POST_BODY_DOC,
)
async def start_dry_run(
    edge_id: str,
    camera_id: str,
    request: Request,
    who: Configurer,
    services: Services,
    service: DryRuns,
) -> JSONResponse:
    job_id = service.new_id()
    dest = service.job_dir(job_id) / "upload.mp4"
    try:
        candidate, n, uploaded = await _read_request(service, request, dest)
        dry = await run_in_threadpool(
            _plan,
            service,
            services,
            edge_id,
            camera_id,
            candidate,
            n,
            dest if uploaded else None,
            who.username,
        )
    except BaseException:
        dest.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            dest.parent.rmdir()
        raise
    job = service.submit(job_id, dry)
    return JSONResponse(
        status_code=202,
        content={
            "id": job.id,
            "status": job.status,
            "url": str(
                request.url_for("get_dry_run", edge_id=edge_id, camera_id=camera_id, job_id=job.id).path
            ),
        },
    )


@router.get("/{job_id}", name="get_dry_run", summary="A dry run's progress and, when done, its result")
def get_dry_run(
    edge_id: str, camera_id: str, job_id: str, request: Request, _: Reader, service: DryRuns
) -> dict[str, Any]:
    return _public(service, job_id, edge_id, camera_id, request)


def _video_response(
    service: DryRunService, edge_id: str, camera_id: str, job_id: str, which: str, clip_index: int
) -> FileResponse:
    job = service.get(job_id)
    path = service.video_path(job_id, which, clip_index) if job is not None else None
    if job is None or job.edge_id != edge_id or job.camera_id != camera_id:
        raise error(404, "no_dry_run", f"no dry run {job_id!r} for this camera")
    if job.status != "done" or path is None:  # a video still being written is not served
        raise error(404, "no_video", f"no {which} video {clip_index} in this dry run (status {job.status})")
    return FileResponse(path, media_type="video/mp4")


@router.post(
    "/{job_id}/video-urls",
    summary="Short-lived signed URLs of a finished dry run's videos, for <video> (no header)",
)
def dry_run_video_urls(
    edge_id: str,
    camera_id: str,
    job_id: str,
    request: Request,
    who: Reader,
    services: Services,
    service: DryRuns,
) -> dict[str, Any]:
    body = _public(service, job_id, edge_id, camera_id, request)
    if body["status"] != "done":
        raise error(409, "not_done", f"dry run {job_id!r} is {body['status']}, its videos are not ready")
    ticket, expires = services.users.issue_ticket(
        who, video_ticket_scope(edge_id, camera_id, job_id), ttl_s=VIDEO_TICKET_TTL_S
    )
    urls: dict[str, list[str | None]] = {"candidate": [], "current": []}
    for clip in body["result"]["clips"]:
        for which in ("candidate", "current"):
            run = clip.get(which)
            urls[which].append(f"{run['video_url']}/signed?ticket={ticket}" if run else None)
    return {"urls": urls, "expires_at": expires}


@router.get(
    "/{job_id}/video/{which}/{clip_index}/signed",
    name="dry_run_video_signed",
    summary="An annotated video by signed URL (from POST .../video-urls)",
    response_class=FileResponse,
)
def dry_run_video_signed(
    edge_id: str,
    camera_id: str,
    job_id: str,
    which: str,
    clip_index: int,
    services: Services,
    service: DryRuns,
    ticket: str = "",
) -> FileResponse:
    scope = video_ticket_scope(edge_id, camera_id, job_id)
    principal = services.users.verify_ticket(ticket, scope) if ticket else None
    if principal is None or not principal.can(Permission.READ_FLEET):
        raise error(401, "invalid_ticket", "the signed URL is invalid or expired")
    response = _video_response(service, edge_id, camera_id, job_id, which, clip_index)
    # The URL holds a ticket: keep it out of shared caches.
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


@router.get(
    "/{job_id}/video/{which}/{clip_index}",
    name="dry_run_video",
    summary="The annotated video of one clip under the candidate or current configuration",
    response_class=FileResponse,
)
def dry_run_video(
    edge_id: str, camera_id: str, job_id: str, which: str, clip_index: int, _: Reader, service: DryRuns
) -> FileResponse:
    return _video_response(service, edge_id, camera_id, job_id, which, clip_index)
