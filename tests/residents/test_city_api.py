"""The map's data and the offline basemap tiles from an MBTiles file (TMS rows flipped to XYZ)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.points import PointStore, parse_csv
from tests.hub_api.conftest import bearer
from tests.residents.helpers import POINTS_CSV, resident_app


def _mbtiles(path: Path) -> bytes:
    png = cv2.imencode(".png", np.full((256, 256, 3), 200, np.uint8))[1].tobytes()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
        )
        conn.execute("INSERT INTO tiles VALUES (1, 0, 1, ?)", (png,))  # TMS row 1 at z1 = XYZ y 0
    return png


def test_basemap_tiles_and_map_data(db: Database, tokens, tmp_path: Path) -> None:
    png = _mbtiles(tmp_path / "district.mbtiles")
    app = resident_app(db, tmp_path / "ev", basemap_mbtiles=str(tmp_path / "district.mbtiles"))
    PointStore(db).upsert(parse_csv(POINTS_CSV))
    c = TestClient(app)
    tile = c.get("/city/tiles/1/0/0")
    assert tile.status_code == 200 and tile.content == png and tile.headers["content-type"] == "image/png"
    assert c.get("/city/tiles/1/0/1").status_code == 204
    assert c.get("/city/tiles/1/2/0").status_code == 404
    data = c.get("/api/v1/map", headers=bearer(tokens["staff"])).json()
    assert data["basemap"]["tiles"] == "/city/tiles/{z}/{x}/{y}"
    assert [p["id"] for p in data["points"]] == ["P-001", "P-002"]
    assert c.get("/api/v1/map").status_code == 401
    page = c.get("/city/map.html")
    assert page.status_code == 200 and "<script>" not in page.text and "style=" not in page.text


def test_missing_basemap_file_is_a_clear_error(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere.mbtiles"):
        resident_app(db, tmp_path / "ev", basemap_mbtiles=str(tmp_path / "nowhere.mbtiles"))
