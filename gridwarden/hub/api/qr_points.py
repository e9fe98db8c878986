"""``/api/v1/qr-points``: the district's QR points (admins and integrators edit, staff read), and
``/api/v1/cases/{id}/reports``: the people's reports behind a case (staff).

An import (``POST /api/v1/qr-points/import``, body CSV or GeoJSON, at most :data:`MAX_IMPORT_BYTES`)
is all-or-nothing: a file with any bad row changes nothing and the 422 lists every problem with
its line or feature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import select

from gridwarden.hub.api.deps import MAX_DB_INT, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.db.models import CaseReport
from gridwarden.hub.reports.points import (
    POINT_ID_PATTERN,
    PointImportError,
    PointIn,
    PointStore,
    PointView,
    parse_csv,
    parse_geojson,
)

MAX_IMPORT_BYTES = 10 * 1024 * 1024
PointId = Annotated[str, Path(pattern=POINT_ID_PATTERN, max_length=64)]


class PointPage(BaseModel):
    items: list[PointView]
    total: int


class PointBody(BaseModel):
    lat: float
    lon: float
    description: str = ""
    area_id: str | None = None


class ImportResult(BaseModel):
    created: int
    updated: int
    total: int


class CaseReportView(BaseModel):
    id: int
    source: str
    point_id: str | None
    category: str
    note: str | None
    contact: str | None
    photo_sha256: str | None
    lat: float | None
    lon: float | None
    area_id: str | None
    address: str | None
    submitted_by: str | None
    created_at: datetime


router = APIRouter(tags=["qr points"])


def store(services: Services) -> PointStore:
    return PointStore(services.db)


@router.get("/api/v1/qr-points", response_model=PointPage, summary="QR points, by id")
def list_points(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    area_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> PointPage:
    items, total = store(services).page(area_id=area_id, offset=offset, limit=limit)
    return PointPage(items=items, total=total)


@router.get("/api/v1/qr-points/{point_id}", response_model=PointView, summary="One QR point")
def get_point(
    point_id: PointId,
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
) -> PointView:
    point = store(services).get(point_id)
    if point is None:
        raise error(status.HTTP_404_NOT_FOUND, "point_not_found", f"no QR point {point_id!r}")
    return point


@router.put("/api/v1/qr-points/{point_id}", response_model=PointView, summary="Create or change a QR point")
def put_point(
    point_id: PointId,
    body: PointBody,
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.CONFIGURE))],
) -> PointView:
    try:
        point = PointIn.model_validate({"id": point_id, **body.model_dump()})
    except ValueError as exc:
        raise error(422, "invalid_point", str(exc)) from exc
    store(services).upsert([point])
    result = store(services).get(point_id)
    assert result is not None
    return result


@router.delete("/api/v1/qr-points/{point_id}", status_code=204, summary="Remove a QR point")
def delete_point(
    point_id: PointId, services: Services, _: Annotated[Principal, Depends(require(Permission.CONFIGURE))]
) -> None:
    if not store(services).delete(point_id):
        raise error(status.HTTP_404_NOT_FOUND, "point_not_found", f"no QR point {point_id!r}")


@router.post(
    "/api/v1/qr-points/import",
    response_model=ImportResult,
    summary="Import QR points from CSV (text/csv) or GeoJSON (application/geo+json)",
)
async def import_points(
    request: Request,
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.CONFIGURE))],
    replace: Annotated[bool, Query(description="Remove the points the file does not list.")] = False,
) -> ImportResult:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise error(413, "too_large", f"an import may be at most {MAX_IMPORT_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(422, "not_utf8", f"the file is not UTF-8 text: {exc}") from exc
    try:
        if kind in ("text/csv", "application/csv"):
            points = parse_csv(text)
        elif kind in ("application/geo+json", "application/json"):
            points = parse_geojson(text)
        else:
            raise error(415, "unsupported_content_type", "send text/csv or application/geo+json")
    except PointImportError as exc:
        raise error(422, "invalid_points", str(exc), problems=exc.problems[:200]) from exc
    created, updated = store(services).upsert(points, replace_all=replace)
    return ImportResult(created=created, updated=updated, total=len(points))


@router.get(
    "/api/v1/cases/{case_id}/reports",
    response_model=list[CaseReportView],
    summary="The people's reports behind a case (resident and Open311)",
)
def case_reports(
    case_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
) -> list[CaseReportView]:
    with services.db.session() as session:
        rows = session.scalars(
            select(CaseReport).where(CaseReport.case_id == case_id).order_by(CaseReport.id)
        )
        return [CaseReportView.model_validate(r, from_attributes=True) for r in rows]
