"""``/api/v1/areas``: patrol beats and estate grids (GeoJSON in, GeoJSON out), and point lookup."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status
from pydantic import BaseModel

from gridwarden.hub.api.deps import Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.db.models import Area
from gridwarden.hub.places.areas import AreaError, AreaStore, parse_geojson

router = APIRouter(prefix="/api/v1/areas", tags=["places"])
AreaId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class ImportResult(BaseModel):
    created: int
    replaced: int


class AreaAt(BaseModel):
    lat: float
    lon: float
    area_id: str | None


def _feature(area: Area) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": area.id,
        "properties": {**area.properties, "id": area.id, "name": area.name, "kind": area.kind},
        "geometry": area.geometry,
    }


@router.get("", summary="Every area as a GeoJSON FeatureCollection")
def list_areas(
    services: Services, _: Annotated[Principal, Depends(require(Permission.READ_CASES))]
) -> dict[str, Any]:
    areas = AreaStore(services.db).list_areas()
    return {"type": "FeatureCollection", "features": [_feature(a) for a in areas]}


@router.get("/at", response_model=AreaAt, summary="Which area holds a point")
def area_at(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
) -> AreaAt:
    return AreaAt(lat=lat, lon=lon, area_id=AreaStore(services.db).area_at(lat, lon))


@router.get(
    "/{area_id}", summary="One area as a GeoJSON Feature", responses={404: {"description": "No such area"}}
)
def get_area(
    area_id: AreaId, services: Services, _: Annotated[Principal, Depends(require(Permission.READ_CASES))]
) -> dict[str, Any]:
    area = AreaStore(services.db).get(area_id)
    if area is None:
        raise error(status.HTTP_404_NOT_FOUND, "area_not_found", f"no area {area_id!r}")
    return _feature(area)


@router.post(
    "",
    response_model=ImportResult,
    summary="Import areas from a GeoJSON FeatureCollection (same ids are replaced)",
    responses={422: {"description": "The document is not valid; the message names the feature and field"}},
)
def import_areas(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.CONFIGURE))],
    document: Annotated[dict[str, Any], Body(description="A GeoJSON FeatureCollection of polygons.")],
) -> ImportResult:
    try:
        areas = parse_geojson(document)
    except AreaError as exc:
        raise error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_geojson", str(exc)) from exc
    created, replaced = AreaStore(services.db).import_areas(areas)
    return ImportResult(created=created, replaced=replaced)


@router.delete("/{area_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an area")
def delete_area(
    area_id: AreaId, services: Services, _: Annotated[Principal, Depends(require(Permission.CONFIGURE))]
) -> None:
    if not AreaStore(services.db).delete(area_id):
        raise error(status.HTTP_404_NOT_FOUND, "area_not_found", f"no area {area_id!r}")
