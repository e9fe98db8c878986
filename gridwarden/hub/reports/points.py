"""QR points: the patrol points where a QR code is posted for residents to report from.

A point has an id (printed under its QR code, part of its URL), a location (WGS-84 lat/lon), a
description people recognise ("东门公交站北侧") and the area it lies in. The district keeps its
points in a spreadsheet or a GIS, so they are imported from CSV (``id,lat,lon,description,area_id``)
or GeoJSON (Point features with ``id``/``description``/``area_id`` properties); an import is
all-or-nothing and names the line or feature and field of every problem.

>>> rows = parse_csv("id,lat,lon,description,area_id\\nP-001,31.23,121.47,东门北侧,A1\\n")
>>> rows[0].id, rows[0].lat, rows[0].area_id
('P-001', 31.23, 'A1')
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, select

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import QrPoint

POINT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_IMPORT_POINTS = 50_000
MAX_DESCRIPTION = 500


class PointIn(BaseModel):
    """A point as imported or edited (validated at the boundary)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=POINT_ID_PATTERN)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    area_id: str | None = Field(default=None, max_length=64)


class PointView(PointIn):
    created_at: datetime
    updated_at: datetime


class PointImportError(ValueError):
    """An import file with problems; ``problems`` lists each as "where: field: what"."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        shown = list(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{source}: " + "; ".join(shown) + more)
        self.problems = list(problems)


def _validated(where: str, raw: dict[str, Any], problems: list[str]) -> PointIn | None:
    try:
        return PointIn.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(record)"
            problems.append(f"{where}: {field}: {err['msg']}")
        return None


def _finish(source: str, points: list[PointIn], problems: list[str]) -> list[PointIn]:
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        if p.id in seen:
            problems.append(f"point {p.id!r} appears twice")
        seen[p.id] = i
    if len(points) > MAX_IMPORT_POINTS:
        problems.append(f"{len(points)} points; at most {MAX_IMPORT_POINTS} in one import")
    if problems:
        raise PointImportError(source, problems)
    return points


def parse_csv(text: str, *, source: str = "CSV") -> list[PointIn]:
    """Points from CSV with a header row naming at least ``id,lat,lon``."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"id", "lat", "lon"} - set(reader.fieldnames or [])
    if missing:
        raise PointImportError(source, [f"line 1: the header lacks {', '.join(sorted(missing))}"])
    unknown = set(reader.fieldnames or []) - set(PointIn.model_fields)
    if unknown:
        raise PointImportError(source, [f"line 1: unknown column(s) {', '.join(sorted(unknown))}"])
    points: list[PointIn] = []
    problems: list[str] = []
    for row in reader:
        raw = {k: (v if v != "" or k in ("id", "lat", "lon") else None) for k, v in row.items() if k}
        if raw.get("description") is None:
            raw.pop("description", None)
        point = _validated(f"line {reader.line_num}", raw, problems)
        if point is not None:
            points.append(point)
    return _finish(source, points, problems)


def parse_geojson(text: str, *, source: str = "GeoJSON") -> list[PointIn]:
    """Points from a GeoJSON FeatureCollection of Point features (coordinates are lon, lat)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PointImportError(source, [f"not JSON: {exc}"]) from exc
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise PointImportError(source, ["expected a FeatureCollection with a features list"])
    points: list[PointIn] = []
    problems: list[str] = []
    for i, feature in enumerate(doc["features"]):
        where = f"features[{i}]"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if (
            not isinstance(geometry, dict)
            or geometry.get("type") != "Point"
            or not isinstance(coords, list)
            or len(coords) < 2
        ):
            problems.append(f"{where}: geometry: must be a Point with [lon, lat] coordinates")
            continue
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            problems.append(f"{where}: properties: must be an object")
            continue
        raw = {
            "id": props.get("id", feature.get("id")), "lat": coords[1], "lon": coords[0],
            "description": props.get("description") or "", "area_id": props.get("area_id"),
        }  # fmt: skip
        point = _validated(where, raw, problems)
        if point is not None:
            points.append(point)
    return _finish(source, points, problems)


def parse_points(text: str, *, filename: str) -> list[PointIn]:
    """CSV or GeoJSON by the file name (``.csv``, ``.geojson``/``.json``)."""
    if filename.lower().endswith((".geojson", ".json")):
        return parse_geojson(text, source=filename)
    if filename.lower().endswith(".csv"):
        return parse_csv(text, source=filename)
    raise PointImportError(filename, ["unknown file type; use .csv or .geojson"])


class PointStore:
    """Reads and writes QR points; imports replace or add points in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _view(row: QrPoint) -> PointView:
        return PointView(
            id=row.id, lat=row.lat, lon=row.lon, description=row.description, area_id=row.area_id,
            created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip

    def get(self, point_id: str) -> PointView | None:
        with self.db.session() as session:
            row = session.get(QrPoint, point_id)
            return self._view(row) if row else None

    def page(
        self, *, area_id: str | None = None, offset: int = 0, limit: int = 1000
    ) -> tuple[list[PointView], int]:
        stmt = select(QrPoint)
        if area_id is not None:
            stmt = stmt.where(QrPoint.area_id == area_id)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(stmt.order_by(QrPoint.id).offset(offset).limit(limit)).all()
            return [self._view(r) for r in rows], total

    def all(self) -> list[PointView]:
        with self.db.session() as session:
            return [self._view(r) for r in session.scalars(select(QrPoint).order_by(QrPoint.id))]

    def upsert(self, points: Sequence[PointIn], *, replace_all: bool = False) -> tuple[int, int]:
        """Add or update ``points`` (all in one transaction); ``replace_all`` first removes the
        points not in ``points``. Returns (created, updated)."""
        now = utcnow()
        created = updated = 0
        with self.db.write_session() as session, session.begin():
            if replace_all:
                session.execute(delete(QrPoint).where(QrPoint.id.not_in([p.id for p in points])))
            existing = {
                r.id: r
                for chunk in range(0, len(points), 500)
                for r in session.scalars(
                    select(QrPoint).where(QrPoint.id.in_([p.id for p in points[chunk : chunk + 500]]))
                )
            }
            for p in points:
                row = existing.get(p.id)
                if row is None:
                    session.add(QrPoint(**p.model_dump(), created_at=now, updated_at=now))
                    created += 1
                else:
                    for key, value in p.model_dump().items():
                        setattr(row, key, value)
                    row.updated_at = now
                    updated += 1
        return created, updated

    def delete(self, point_id: str) -> bool:
        with self.db.write_session() as session, session.begin():
            return bool(session.execute(delete(QrPoint).where(QrPoint.id == point_id)).rowcount)  # type: ignore[attr-defined]


# The demo district's streets and boundary, drawn on the one map when no basemap is configured.
DEMO_OUTLINE = Path(__file__).resolve().parent / "demo_outline.json"


def seed_demo_points(db: Database) -> int:
    """Give a hub with no QR points the demo's four (``demo_qr_points.json``); returns how many
    were added (0 when the district has its own)."""
    store = PointStore(db)
    if store.page(limit=1)[1]:
        return 0
    from importlib import resources

    text = (
        resources.files("gridwarden.hub.reports").joinpath("demo_qr_points.json").read_text(encoding="utf-8")
    )
    return store.upsert(parse_geojson(text, source="demo_qr_points.json"))[0]
