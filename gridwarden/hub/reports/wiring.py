"""What the residents-and-city part of a hub holds, built once by ``build_hub`` from the settings.

:class:`CityServices` sits on :class:`~gridwarden.hub.api.deps.HubServices` (``services.city``);
routes ask for it with the :data:`City` dependency. It holds the report service, the public
page's rate limiters (per hub process), the statistics settings, the map's basemap and the
Open311 forwarder, which :meth:`start`/:meth:`stop` run with the hub's other workers.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, status

from gridwarden.hub.api.deps import Services, error
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.categories import default_table, load_table, use_table
from gridwarden.hub.reports.open311_forward import Open311Forwarder
from gridwarden.hub.reports.pmtiles import PMTilesReader
from gridwarden.hub.reports.rate_limit import SlidingWindowLimiter
from gridwarden.hub.reports.resident import ReportService

PHOTO_WORKERS = 2

if TYPE_CHECKING:
    from gridwarden.hub.settings import HubSettings


@dataclass(frozen=True)
class ResidentLimits:
    """The public report page's limits; the defaults suit one district's posted points."""

    per_client: int = 5
    per_client_window_s: float = 600.0
    per_point: int = 30
    per_point_window_s: float = 3600.0
    max_photo_bytes: int = 8 * 1024 * 1024


@dataclass
class CityServices:
    db: Database
    limits: ResidentLimits = field(default_factory=ResidentLimits)
    closure_limit_s: float = 86400.0
    timezone: str = "Asia/Shanghai"
    basemap: Path | None = None
    outline: dict[str, Any] | None = None
    forwarder: Open311Forwarder | None = None
    client_key_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self.reports = ReportService(self.db)
        self.by_client = SlidingWindowLimiter(
            limit=self.limits.per_client, window_s=self.limits.per_client_window_s
        )
        self.by_point = SlidingWindowLimiter(
            limit=self.limits.per_point, window_s=self.limits.per_point_window_s
        )
        # Photos are decoded on worker threads, at most this many at once (see api.resident_pages).
        self.photo_slots = asyncio.Semaphore(PHOTO_WORKERS)

    def start(self) -> None:
        if self.forwarder is not None:
            self.forwarder.start()

    def stop(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()


def build_city_services(
    settings: HubSettings, db: Database, *, limits: ResidentLimits | None = None
) -> CityServices:
    """From the settings: the category table (made this process's), limits, basemap, forwarder.
    Raises ``ValueError`` naming the file for a bad category table or a missing basemap."""
    use_table(load_table(settings.category_table) if settings.category_table else default_table())
    basemap = Path(settings.basemap_mbtiles) if settings.basemap_mbtiles else None
    if basemap is not None and not basemap.is_file():
        raise ValueError(
            f"GRIDWARDEN_HUB_BASEMAP_MBTILES: {basemap} does not exist (an MBTiles or PMTiles file)"
        )
    if basemap is not None and basemap.suffix.lower() == ".pmtiles":
        PMTilesReader(basemap)  # a file that is not PMTiles v3 stops the hub at start, named
    outline = _outline(settings.map_outline) if settings.map_outline else None
    forwarder = None
    if settings.open311_forward_url and settings.open311_forward_api_key is not None:
        forwarder = Open311Forwarder(
            db, settings.open311_forward_url, api_key=settings.open311_forward_api_key.get_secret_value(),
            since=settings.open311_forward_since, public_url=settings.public_url,
        )  # fmt: skip
    return CityServices(
        db=db, limits=limits or ResidentLimits(), closure_limit_s=settings.closure_limit_s,
        timezone=settings.timezone, basemap=basemap, outline=outline, forwarder=forwarder,
    )  # fmt: skip


def _outline(path: str) -> dict[str, Any]:
    """The map outline (a GeoJSON FeatureCollection, at most 5 MB), or ValueError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        if len(text) > 5 * 1024 * 1024:
            raise ValueError("larger than 5 MB")
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ValueError(f"GRIDWARDEN_HUB_MAP_OUTLINE: {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ValueError(f"GRIDWARDEN_HUB_MAP_OUTLINE: {path}: expected a GeoJSON FeatureCollection")
    return doc


def get_city(services: Services) -> CityServices:
    if services.city is None:
        raise error(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "no_city_services",
            "this hub serves no resident or city pages",
        )
    return services.city


City = Annotated[CityServices, Depends(get_city)]
