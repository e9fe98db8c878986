"""Helpers for the resident tests: real pictures, QR point files, an app with the public pages."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI

from gridwarden.hub.app import build_hub
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.wiring import CityServices, ResidentLimits
from gridwarden.hub.settings import HubSettings

POINTS_CSV = (
    "id,lat,lon,description,area_id\n"
    "P-001,31.2304,121.4737,东门公交站北侧,A1\n"
    "P-002,31.2310,121.4750,菜场入口,A2\n"
)
GPS_MARKER = b"GPSLatitude-31.2304-secret"


def photo_jpeg(width: int = 1280, height: int = 960, *, with_exif: bool = True) -> bytes:
    """A real camera-like JPEG (a gradient with a box), optionally with an EXIF block that
    carries a fake GPS position the hub must not keep."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.dstack([(xx * 255 // width), (yy * 255 // height), np.full_like(xx, 90)]).astype(np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (0, 0, 255), -1)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = buf.tobytes()
    if with_exif:
        payload = b"Exif\x00\x00" + GPS_MARKER
        data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]
    return data


def resident_app(
    db: Database, evidence_root: Path, limits: ResidentLimits | None = None, **settings: Any
) -> FastAPI:
    """The hub's app as ``build_hub`` makes it (public pages, Open311, city pages included), on
    ``db``, with the report page's ``limits``. The caller keeps owning ``db``."""
    hub = build_hub(HubSettings(database_url=db.url, evidence_root=str(evidence_root), **settings), db=db)
    if limits is not None:
        assert hub.services.city is not None
        hub.services.city = replace_limits(hub.services.city, limits)
    return hub.app


def replace_limits(city: CityServices, limits: ResidentLimits) -> CityServices:
    return CityServices(
        db=city.db, limits=limits, closure_limit_s=city.closure_limit_s, timezone=city.timezone,
        basemap=city.basemap, forwarder=city.forwarder,
    )  # fmt: skip
