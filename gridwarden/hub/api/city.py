"""The command centre's city pages at ``/city/`` (statistics, the one map, a case), the map's
data (``GET /api/v1/map``) and the offline basemap (``/city/tiles/{z}/{x}/{y}``).

The pages are static files (``gridwarden/hub/city_web``, no inline script or style) that sign
in like the console (the same session token) and call the ordinary API. Leaflet is installed
from the npm registry at setup (``scripts/web-vendor.sh``) into ``city_web/vendor`` and served
from here; nothing is fetched from a CDN. The basemap is a district's MBTiles or PMTiles file
(``GRIDWARDEN_HUB_BASEMAP_MBTILES``, raster tiles); without one the map draws everything on a
plain background with a scale bar.

Where things are on the map: a case at its own location once cases carry one (the places work of
issue 13), else at its report's location (resident, Open311) or its camera's; cameras at the
location their status reports; officers and areas when the hub has them.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from gridwarden.hub.api.deps import Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.cases import MERGEABLE_STATES
from gridwarden.hub.db import models
from gridwarden.hub.db.models import Camera, Case, CaseReport, QrPoint
from gridwarden.hub.reports.pmtiles import PMTilesReader
from gridwarden.hub.reports.wiring import City

CITY_WEB = Path(__file__).resolve().parent.parent / "city_web"
LEAFLET_DIR = CITY_WEB / "vendor" / "leaflet"
MAX_MAP_CASES = 5000
DUE_SOON_SHARE = 0.5


def sla_colour(report: Any) -> str:
    """``breached`` (red), ``due_soon`` (amber: over half the next target used) or ``ok``."""
    if report.breached:
        return "breached"
    for m in report.milestones.values():
        if m.running and m.elapsed_s is not None and m.elapsed_s > DUE_SOON_SHARE * m.target_s:
            return "due_soon"
    return "ok"


def _camera_location(status: dict[str, Any]) -> tuple[float, float] | None:
    loc = status.get("location") if isinstance(status, dict) else None
    if (
        isinstance(loc, dict)
        and isinstance(loc.get("lat"), (int, float))
        and isinstance(loc.get("lon"), (int, float))
    ):
        return float(loc["lat"]), float(loc["lon"])
    return None


def map_data(services: Any, now: datetime) -> dict[str, Any]:
    db = services.db
    with db.session() as session:
        cameras = []
        camera_at: dict[tuple[str, str], tuple[float, float]] = {}
        for cam in session.scalars(select(Camera).order_by(Camera.edge_id, Camera.camera_id)):
            where = _camera_location(cam.status)
            if where:
                camera_at[(cam.edge_id, cam.camera_id)] = where
            cameras.append(
                {
                    "edge_id": cam.edge_id, "camera_id": cam.camera_id, "state": cam.state,
                    "online": cam.state == "online", "lat": where[0] if where else None, "lon": where[1] if where else None,
                }
            )  # fmt: skip
        points = [
            {"id": p.id, "lat": p.lat, "lon": p.lon, "description": p.description, "area_id": p.area_id}
            for p in session.scalars(select(QrPoint).order_by(QrPoint.id))
        ]
        open_cases = list(
            session.scalars(
                select(Case)
                .where(Case.state.in_(MERGEABLE_STATES))
                .order_by(Case.id.desc())
                .limit(MAX_MAP_CASES)
            )
        )
        report_at: dict[int, tuple[float, float]] = {}
        if open_cases:
            for case_id, lat, lon in session.execute(
                select(CaseReport.case_id, CaseReport.lat, CaseReport.lon)
                .where(CaseReport.case_id.in_([c.id for c in open_cases]), CaseReport.lat.is_not(None))
                .order_by(CaseReport.id.desc())
            ):
                report_at[case_id] = (lat, lon)
        cases = []
        for c in open_cases:
            own_lat, own_lon = getattr(c, "lat", None), getattr(c, "lon", None)
            at: tuple[float, float] | None = (
                (float(own_lat), float(own_lon))
                if own_lat is not None and own_lon is not None
                else (report_at.get(c.id) or camera_at.get((c.edge_id, c.camera)))
            )
            cases.append(
                {
                    "id": c.id, "state": c.state, "source": c.source, "category": c.category,
                    "camera": c.camera, "detected_at": c.detected_at.isoformat(),
                    "sla": sla_colour(services.cases.sla(c, now)),
                    "lat": at[0] if at else None, "lon": at[1] if at else None,
                }
            )  # fmt: skip
        officers = []
        officer_model = getattr(models, "Officer", None)
        if officer_model is not None:
            for o in session.scalars(select(officer_model)):
                officers.append(
                    {
                        "id": o.id,
                        "name": o.name,
                        "state": o.state,
                        "on_duty": o.on_duty,
                        "lat": o.lat,
                        "lon": o.lon,
                    }
                )
        areas = []
        area_model = getattr(models, "Area", None)
        if area_model is not None:
            for a in session.scalars(select(area_model)):
                areas.append({"id": a.id, "name": a.name, "geometry": a.geometry})
    return {"cameras": cameras, "points": points, "cases": cases, "officers": officers, "areas": areas}


def _mbtiles_tile(path: Path, z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """One tile (XYZ addressing) from an MBTiles file (TMS rows), with its image type."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False) as conn:
        row = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
            (z, x, (1 << z) - 1 - y),
        ).fetchone()
    if row is None:
        return None
    data = bytes(row[0])
    kind = (
        "image/png"
        if data[:8] == b"\x89PNG\r\n\x1a\n"
        else "image/jpeg"
        if data[:2] == b"\xff\xd8"
        else "image/webp"
    )
    return data, kind


router = APIRouter(tags=["city"])


@router.get(
    "/api/v1/map", summary="Everything the one map draws: cameras, QR points, open cases, officers, areas"
)
def get_map(
    services: Services, city: City, _: Annotated[Principal, Depends(require(Permission.READ_CASES))]
) -> dict[str, Any]:
    data = map_data(services, services.cases.clock())
    data["basemap"] = {"tiles": "/city/tiles/{z}/{x}/{y}" if city.basemap else None}
    data["outline"] = city.outline
    data["map_library"] = (LEAFLET_DIR / "leaflet.js").is_file()
    return data


@router.get("/city/tiles/{z}/{x}/{y}", include_in_schema=False)
def tile(
    city: City,
    z: Annotated[int, PathParam(ge=0, le=22)],
    x: Annotated[int, PathParam(ge=0, le=(1 << 22) - 1)],
    y: Annotated[int, PathParam(ge=0, le=(1 << 22) - 1)],
) -> Response:
    if city.basemap is None or x >= (1 << z) or y >= (1 << z):
        raise error(404, "no_tile", "no such tile")
    if city.basemap.suffix.lower() == ".pmtiles":
        reader = PMTilesReader(city.basemap)
        data = reader.tile(z, x, y)
        found = (data, reader.content_type) if data is not None else None
    else:
        found = _mbtiles_tile(city.basemap, z, x, y)
    if found is None:
        return Response(status_code=204)
    return Response(found[0], media_type=found[1], headers={"Cache-Control": "public, max-age=86400"})


def mount_city_pages(app: FastAPI) -> None:
    """Serve the city pages' static files at ``/city/`` (the routes above come from ``router``)."""
    app.mount("/city", StaticFiles(directory=CITY_WEB, html=True), name="city")
