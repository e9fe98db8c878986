"""Helpers for the resident tests: real pictures, QR point files, an app with the public pages."""

from __future__ import annotations

import struct

import cv2
import numpy as np
from fastapi import FastAPI

from gridwarden.hub.api.open311 import install_open311
from gridwarden.hub.api.resident_pages import ResidentLimits, install_resident_pages
from gridwarden.hub.app import create_app
from gridwarden.hub.db.engine import Database
from gridwarden.hub.evidence_store import EvidenceStore
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


def resident_app(db: Database, store: EvidenceStore, limits: ResidentLimits | None = None) -> FastAPI:
    app = create_app(HubSettings(database_url=db.url), db=db)
    install_resident_pages(app, store, limits=limits)
    install_open311(app, store)
    return app
