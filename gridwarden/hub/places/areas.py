"""Areas (patrol beats, estate grids of ~600 households): loaded from GeoJSON, looked up by point.

A GeoJSON FeatureCollection of Polygon/MultiPolygon features is the exchange format every GIS
tool writes. Each feature needs an id (``id`` or ``properties.id``); ``properties.name`` and
``properties.kind`` (``beat`` or ``grid``; default ``beat``) are optional. Importing replaces
areas with the same id and leaves the others alone, so a district can load beats and grids from
separate files. Every problem is reported with the feature's index and the field.

>>> geojson = {"type": "FeatureCollection", "features": [{"type": "Feature", "id": "b1",
...     "properties": {"name": "North beat"}, "geometry": {"type": "Polygon",
...     "coordinates": [[[121.0, 31.0], [121.01, 31.0], [121.01, 31.01], [121.0, 31.0]]]}}]}
>>> [a.id for a in parse_geojson(geojson)]
['b1']
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Area
from gridwarden.hub.places.geometry import point_in_geometry, polygons_of

AREA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_FEATURES = 10_000
MAX_VERTICES = 10_000  # per feature
MAX_GEOJSON_BYTES = 20 * 1024 * 1024


class AreaError(ValueError):
    """A GeoJSON document that cannot be imported; the message names the feature and field."""


@dataclass(frozen=True)
class ParsedArea:
    id: str
    name: str
    kind: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float


def _check_ring(ring: Any, where: str) -> list[list[float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise AreaError(f"{where}: a ring needs at least 4 [lon, lat] positions (closed)")
    out = []
    for k, pos in enumerate(ring):
        if (
            not isinstance(pos, list)
            or len(pos) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos[:2])
        ):
            raise AreaError(f"{where}[{k}]: a position is [lon, lat] numbers")
        lon, lat = float(pos[0]), float(pos[1])
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise AreaError(f"{where}[{k}]: [{lon}, {lat}] is not a [lon, lat] on Earth")
        out.append([lon, lat])
    if out[0] != out[-1]:
        raise AreaError(f"{where}: the ring is not closed (first and last positions differ)")
    return out


def _parse_feature(index: int, feature: Any) -> ParsedArea:
    where = f"features[{index}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise AreaError(f"{where}: not a GeoJSON Feature")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise AreaError(f"{where}.properties: must be an object")
    area_id = feature.get("id", props.get("id"))
    if area_id is None:
        raise AreaError(f"{where}: needs an id (feature 'id' or properties.id)")
    area_id = str(area_id)
    if not AREA_ID.match(area_id):
        raise AreaError(f"{where}.id: {area_id!r} must be letters, digits, '_', '.', '-' (at most 64)")
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise AreaError(f"{where}.geometry: must be a Polygon or MultiPolygon")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or not coords:
        raise AreaError(f"{where}.geometry.coordinates: missing or empty")
    polygons = [coords] if geometry["type"] == "Polygon" else coords
    clean: list[list[list[list[float]]]] = []
    vertices = 0
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            raise AreaError(f"{where}.geometry.coordinates[{p}]: a polygon needs at least one ring")
        clean.append([_check_ring(r, f"{where}.geometry.coordinates[{p}][{i}]") for i, r in enumerate(rings)])
        vertices += sum(len(r) for r in rings)
    if vertices > MAX_VERTICES:
        raise AreaError(f"{where}.geometry: {vertices} positions, at most {MAX_VERTICES}")
    geom = {"type": geometry["type"], "coordinates": clean[0] if geometry["type"] == "Polygon" else clean}
    points = [pos for rings in polygons_of(geom) for ring in rings for pos in ring]
    name = props.get("name", area_id)
    kind = props.get("kind", "beat")
    if not isinstance(name, str) or len(name) > 200:
        raise AreaError(f"{where}.properties.name: a text of at most 200 characters")
    if not isinstance(kind, str) or not re.match(r"^[a-z_]{1,32}$", kind):
        raise AreaError(f"{where}.properties.kind: lower-case letters, e.g. 'beat' or 'grid'")
    return ParsedArea(
        id=area_id,
        name=name,
        kind=kind,
        geometry=geom,
        properties=props,
        min_lat=min(p[1] for p in points),
        max_lat=max(p[1] for p in points),
        min_lon=min(p[0] for p in points),
        max_lon=max(p[0] for p in points),
    )


def parse_geojson(document: Any) -> list[ParsedArea]:
    """Validate a FeatureCollection (or one Feature) and return its areas; raises :class:`AreaError`."""
    if isinstance(document, dict) and document.get("type") == "Feature":
        document = {"type": "FeatureCollection", "features": [document]}
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise AreaError("the document must be a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise AreaError("features: must be a list")
    if len(features) > MAX_FEATURES:
        raise AreaError(f"features: {len(features)} features, at most {MAX_FEATURES}")
    areas = [_parse_feature(i, f) for i, f in enumerate(features)]
    seen: set[str] = set()
    for i, a in enumerate(areas):
        if a.id in seen:
            raise AreaError(f"features[{i}].id: {a.id!r} appears twice")
        seen.add(a.id)
    return areas


def load_geojson_file(path: str | Path) -> list[ParsedArea]:
    path = Path(path)
    if path.stat().st_size > MAX_GEOJSON_BYTES:
        raise AreaError(f"{path}: larger than {MAX_GEOJSON_BYTES} bytes")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AreaError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    try:
        return parse_geojson(document)
    except AreaError as exc:
        raise AreaError(f"{path}: {exc}") from exc


def upsert_areas(session: Session, areas: list[ParsedArea], now: datetime) -> tuple[int, int]:
    """Insert new areas and replace those with the same id; returns (created, replaced)."""
    existing = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_([a.id for a in areas])))}
    created = replaced = 0
    for parsed in areas:
        values = {k: getattr(parsed, k) for k in ParsedArea.__dataclass_fields__}
        row = existing.get(parsed.id)
        if row is None:
            session.add(Area(**values, created_at=now, updated_at=now))
            created += 1
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now
            replaced += 1
    return created, replaced


def area_at(session: Session, lat: float, lon: float) -> str | None:
    """The id of the area holding the point; where areas overlap (a grid inside a beat), the
    smallest by bounding box wins, since it is the more specific one."""
    candidates = session.scalars(
        select(Area).where(Area.min_lat <= lat, Area.max_lat >= lat, Area.min_lon <= lon, Area.max_lon >= lon)
    ).all()
    hits = [a for a in candidates if point_in_geometry(lat, lon, a.geometry)]
    if not hits:
        return None
    hits.sort(key=lambda a: ((a.max_lat - a.min_lat) * (a.max_lon - a.min_lon), a.id))
    return hits[0].id


class AreaStore:
    """Areas for the API and the CLI; each call is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def import_areas(self, areas: list[ParsedArea]) -> tuple[int, int]:
        with self.db.write_session() as session, session.begin():
            return upsert_areas(session, areas, utcnow())

    def list_areas(self) -> list[Area]:
        with self.db.session() as session:
            return list(session.scalars(select(Area).order_by(Area.id)))

    def get(self, area_id: str) -> Area | None:
        with self.db.session() as session:
            return session.get(Area, area_id)

    def delete(self, area_id: str) -> bool:
        with self.db.write_session() as session, session.begin():
            row = session.get(Area, area_id)
            if row is None:
                return False
            session.delete(row)
            return True

    def area_at(self, lat: float, lon: float) -> str | None:
        with self.db.session() as session:
            return area_at(session, lat, lon)
