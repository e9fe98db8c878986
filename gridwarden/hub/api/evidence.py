"""``/api/v1/evidence/{sha256}``: edges upload clips and snapshots; reviewers fetch them.

``PUT`` is idempotent by hash: 201 when the file is new, 200 when the hub already has it. A
file the hub has is answered from the headers alone, without reading the body (the server
discards whatever of it is still arriving and keeps the connection, so the client is not cut
off mid-request and made to retry, and an edge cannot make the hub read gigabytes for nothing).

An edge's token is bound to its edge id (the user name of an ``edge`` user is its ``edge_id``,
as on the broker): what it uploads counts against its own quota only (see
:class:`~gridwarden.hub.evidence_store.EvidenceStore`); every refusal is counted in
``gridwarden_hub_uploads_refused_total{reason}``. ``GET``/``HEAD`` serve the file with HTTP range requests (206 Partial Content,
``Accept-Ranges``, ``Content-Range``, 416 for an unsatisfiable range) so a browser's ``<video>``
can seek in a clip; Starlette's ``FileResponse`` implements ranges (Starlette >= 0.39).

The files live in the hub's :class:`EvidenceStore` (``HubServices.evidence``, built by
:func:`gridwarden.hub.app.build_hub` under ``evidence_root``).

Who may call it: reading needs ``cases:read`` (staff and above); uploading needs
``evidence:upload``, which only the ``edge`` role (and admin) holds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gridwarden.hub import security_counters
from gridwarden.hub.api.deps import Evidence, error, require
from gridwarden.hub.auth import Permission, Principal, Role
from gridwarden.hub.evidence_store import EvidenceError, EvidenceStore, EvidenceTooLarge, media_type

EvidenceId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file, 64 lowercase hex characters")
]


class EvidenceStored(BaseModel):
    sha256: str
    size: int
    content_type: str
    created: bool


async def evidence_file_response(
    store: EvidenceStore, sha256: str, *, cache_control: str, extra_headers: dict[str, str] | None = None
) -> FileResponse:
    """The stored file as a (range-capable) response, or 404. Shared by the API route and the
    console's signed-URL route, which differ only in how the caller is authorised and cached."""
    stored = await run_in_threadpool(store.stat, sha256)
    if stored is None:
        raise error(status.HTTP_404_NOT_FOUND, "not_found", f"no evidence {sha256}")
    return FileResponse(
        stored.path,
        media_type=stored.content_type,
        headers={
            # Content-addressed: the bytes behind this URL can never change.
            "ETag": f'"{sha256}"',
            "Cache-Control": cache_control,
            "X-Content-Type-Options": "nosniff",
            **(extra_headers or {}),
        },
    )


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise error(status.HTTP_400_BAD_REQUEST, "bad_length", "Content-Length is not a number") from None
    if length < 0:
        raise error(status.HTTP_400_BAD_REQUEST, "bad_length", "Content-Length is negative")
    return length


Uploader = Annotated[Principal, Depends(require(Permission.UPLOAD_EVIDENCE))]
Reader = Annotated[Principal, Depends(require(Permission.READ_CASES))]

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])


@router.put(
    "/{sha256}",
    response_model=EvidenceStored,
    status_code=status.HTTP_201_CREATED,
    summary="Upload an evidence file (idempotent by SHA-256)",
    responses={
        200: {"description": "Already stored", "model": EvidenceStored},
        400: {"description": "The body's SHA-256 is not the id"},
        413: {"description": "Larger than the hub accepts (8 MiB for a JPEG)"},
        415: {"description": "Not video/mp4 or image/jpeg (by header or by first bytes)"},
        422: {"description": "Not a well-formed JPEG / MP4 (invalid_media)"},
        507: {"description": "The uploading edge's evidence quota is used up (quota_exceeded)"},
    },
)
async def put_evidence(
    sha256: EvidenceId,
    request: Request,
    response: Response,
    who: Uploader,
    store: Evidence,
) -> EvidenceStored:
    declared = _declared_length(request)
    owner = who.username if who.role is Role.EDGE else None
    try:
        stored = await run_in_threadpool(store.stat, sha256)
        if stored is not None:  # answered without reading the body: see the module docstring
            response.status_code = status.HTTP_200_OK
            return EvidenceStored(
                sha256=sha256, size=stored.size, content_type=stored.content_type, created=False
            )
        upload = store.begin_upload(sha256, request.headers.get("content-type"), declared, owner=owner)
        with upload:
            async for chunk in request.stream():
                upload.write(chunk)
            created = await run_in_threadpool(upload.finish)
    except EvidenceTooLarge as exc:
        security_counters.count("gridwarden_hub_uploads_refused_total", reason=exc.code)
        limit = store.limit_for(media_type(request.headers.get("content-type")))
        raise error(exc.status, exc.code, str(exc), limit=limit) from exc
    except EvidenceError as exc:
        security_counters.count("gridwarden_hub_uploads_refused_total", reason=exc.code)
        raise error(exc.status, exc.code, str(exc)) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return EvidenceStored(sha256=sha256, size=upload.size, content_type=upload.content_type, created=created)


@router.get(
    "/{sha256}",
    summary="Download an evidence file (supports Range requests)",
    response_class=FileResponse,
    responses={
        206: {"description": "Partial content"},
        404: {},
        416: {"description": "Range not satisfiable"},
    },
)
async def get_evidence(sha256: EvidenceId, _: Reader, store: Evidence) -> FileResponse:
    return await evidence_file_response(store, sha256, cache_control="private, max-age=31536000, immutable")


# HEAD (a player probing the size) answers like GET without the body; one operation in OpenAPI.
router.add_api_route("/{sha256}", get_evidence, methods=["HEAD"], include_in_schema=False)
