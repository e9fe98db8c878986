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
from tests.residents.pmtiles_writer import write_pmtiles


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


@pytest.mark.parametrize("leaf", [False, True])
def test_pmtiles_basemap(db: Database, tokens, tmp_path: Path, leaf: bool) -> None:
    tiles = {
        (z, x, y): cv2.imencode(".png", np.full((8, 8, 3), 10 * z + x + y, np.uint8))[1].tobytes()
        for z in (0, 1, 2)
        for x in range(1 << z)
        for y in range(1 << z)
    }
    write_pmtiles(tmp_path / "district.pmtiles", tiles, leaf=leaf)
    c = TestClient(resident_app(db, tmp_path / "ev", basemap_mbtiles=str(tmp_path / "district.pmtiles")))
    for (z, x, y), png in tiles.items():
        got = c.get(f"/city/tiles/{z}/{x}/{y}")
        assert (got.status_code, got.content, got.headers["content-type"]) == (200, png, "image/png"), (
            z,
            x,
            y,
        )
    assert c.get("/city/tiles/3/0/0").status_code == 204


def test_a_file_that_is_not_pmtiles_stops_the_hub(db: Database, tmp_path: Path) -> None:
    (tmp_path / "bad.pmtiles").write_bytes(b"not a tile archive" * 10)
    with pytest.raises(ValueError, match="not a PMTiles version 3 file"):
        resident_app(db, tmp_path / "ev", basemap_mbtiles=str(tmp_path / "bad.pmtiles"))


def test_tile_ids_follow_the_specification() -> None:
    # The PMTiles v3 specification's examples: zoom order, then a Hilbert curve within a zoom.
    from gridwarden.hub.reports.pmtiles import zxy_to_tileid

    got = [zxy_to_tileid(*t) for t in ((0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 1), (1, 1, 0), (2, 0, 0))]
    assert got == [0, 1, 2, 3, 4, 5]
    # Within zoom 2 the curve turns (the classic Hilbert xy2d: (1, 0) is step 1, (0, 1) step 3).
    assert (zxy_to_tileid(2, 1, 0), zxy_to_tileid(2, 0, 1)) == (5 + 1, 5 + 3)
    assert sorted(zxy_to_tileid(3, x, y) for x in range(8) for y in range(8)) == list(range(21, 85))


def test_map_outline_is_served_and_a_bad_one_refused(db: Database, tokens, tmp_path: Path) -> None:
    from gridwarden.hub.reports.points import DEMO_OUTLINE

    c = TestClient(resident_app(db, tmp_path / "ev", map_outline=str(DEMO_OUTLINE)))
    outline = c.get("/api/v1/map", headers=bearer(tokens["staff"])).json()["outline"]
    assert [f["properties"]["kind"] for f in outline["features"]] == [
        "boundary",
        "street",
        "street",
        "street",
    ]
    (tmp_path / "bad.json").write_text('{"type": "Point"}', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: expected a GeoJSON FeatureCollection"):
        resident_app(db, tmp_path / "ev", map_outline=str(tmp_path / "bad.json"))
