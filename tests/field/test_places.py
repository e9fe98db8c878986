"""Places: camera locations travel edge config -> camera status -> case; areas from GeoJSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwarden.contract import CameraLocation, CameraStatus
from gridwarden.edge.config import load_edge_config_text
from gridwarden.hub.db.engine import Database
from gridwarden.hub.places.areas import AreaError, AreaStore, parse_geojson
from tests.field.geo import LAT0, LON0, district, square
from tests.hub.factories import EDGE, T0, incident_event
from tests.hub_api.conftest import bearer, ingest


def located_camera(camera: str, lat: float, lon: float) -> CameraStatus:
    return CameraStatus(
        edge_id=EDGE,
        camera=camera,
        state="online",
        location=CameraLocation(lat=lat, lon=lon, heading_deg=90, description="东门路口"),
        wall_time=T0,
    )


def test_edge_config_carries_camera_location() -> None:
    text = """
edge_id: edge-01
site: north
cameras:
  - id: cam-1
    url: rtsp://127.0.0.1/x
    location: {lat: 31.2305, lon: 121.4755, heading_deg: 270, description: "东门路口"}
"""
    cfg = load_edge_config_text(text)
    assert cfg.cameras[0].location == CameraLocation(
        lat=31.2305, lon=121.4755, heading_deg=270, description="东门路口"
    )
    with pytest.raises(Exception, match="lat"):
        load_edge_config_text(text.replace("lat: 31.2305", "lat: 131.2"))


def test_case_inherits_camera_location_and_area(db: Database) -> None:
    AreaStore(db).import_areas(parse_geojson(district()))
    # cam-1 in the east beat but inside the estate grid (the smaller, more specific area wins);
    # cam-2 in the west beat; cam-3 reports no location.
    ingest(
        db,
        located_camera("cam-1", LAT0 + 0.003, LON0 + 0.013),
        located_camera("cam-2", LAT0 + 0.005, LON0 + 0.005),
    )
    ids = ingest(
        db,
        incident_event(seq=1, incident_id="a", camera="cam-1"),
        incident_event(seq=2, incident_id="b", camera="cam-2"),
        incident_event(seq=3, incident_id="c", camera="cam-3"),
    )
    from gridwarden.hub.cases import CaseService

    cases = [CaseService(db).get_case(i) for i in ids if i is not None]
    assert [(c.area_id, c.lat is not None) for c in cases] == [
        ("grid-e1", True),
        ("beat-west", True),
        (None, False),
    ]
    assert cases[0].lat == pytest.approx(LAT0 + 0.003) and cases[0].lon == pytest.approx(LON0 + 0.013)


def test_geojson_errors_name_feature_and_field() -> None:
    bad = district()
    bad["features"][1]["geometry"]["coordinates"][0][2] = [121.5, 95.0]
    with pytest.raises(AreaError, match=r"features\[1\]\.geometry\.coordinates\[0\]\[0\]\[2\]"):
        parse_geojson(bad)
    open_ring = square("x", LAT0, LON0, 0.01)
    open_ring["geometry"]["coordinates"][0].pop()
    with pytest.raises(AreaError, match="not closed"):
        parse_geojson({"type": "FeatureCollection", "features": [open_ring]})
    twice = {"type": "FeatureCollection", "features": [square("x", 0, 0, 1), square("x", 2, 2, 1)]}
    with pytest.raises(AreaError, match=r"features\[1\]\.id: 'x' appears twice"):
        parse_geojson(twice)


def test_areas_api_import_lookup_and_permissions(app_client: TestClient, tokens: dict[str, str]) -> None:
    staff, admin = bearer(tokens["staff"]), bearer(tokens["admin"])
    assert app_client.post("/api/v1/areas", json=district(), headers=staff).status_code == 403
    r = app_client.post("/api/v1/areas", json=district(), headers=admin)
    assert r.status_code == 200 and r.json() == {"created": 3, "replaced": 0}
    assert app_client.post("/api/v1/areas", json=district(), headers=admin).json()["replaced"] == 3
    listed = app_client.get("/api/v1/areas", headers=staff).json()
    assert [f["id"] for f in listed["features"]] == ["beat-east", "beat-west", "grid-e1"]
    at = app_client.get(f"/api/v1/areas/at?lat={LAT0 + 0.005}&lon={LON0 + 0.015}", headers=staff).json()
    assert at["area_id"] == "beat-east"
    outside = app_client.get(f"/api/v1/areas/at?lat={LAT0 - 1}&lon={LON0}", headers=staff).json()
    assert outside["area_id"] is None
    r = app_client.post("/api/v1/areas", json={"type": "FeatureCollection", "features": [{}]}, headers=admin)
    assert r.status_code == 422 and "features[0]" in r.json()["detail"]["message"]
    assert app_client.delete("/api/v1/areas/grid-e1", headers=admin).status_code == 204
    assert app_client.get("/api/v1/areas/grid-e1", headers=staff).status_code == 404


def test_cli_imports_geojson_and_reports_bad_file(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/hub.db"
    good = tmp_path / "beats.geojson"
    good.write_text(json.dumps(district()))
    run = [
        sys.executable,
        "-c",
        "import sys; from gridwarden.cli import main; sys.exit(main())",
        "areas",
        "--db",
        db_url,
    ]
    out = subprocess.run([*run, "import", str(good)], capture_output=True, text=True, check=True)
    assert "3 areas created" in out.stdout
    listed = subprocess.run([*run, "list"], capture_output=True, text=True, check=True).stdout
    assert "grid-e1\tgrid\t东一网格" in listed
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection",\n "features": [}')
    out = subprocess.run([*run, "import", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and f"{bad}:2:" in out.stderr
