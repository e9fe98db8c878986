"""Every case carries a city event code, mapped from rule and classes by a configurable table."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwarden.hub.app import build_hub
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.categories import CategoryTableError, default_table, load_table, use_table
from gridwarden.hub.settings import HubSettings
from tests.hub.factories import T0, incident_event
from tests.hub_api.conftest import bearer, ingest


def _events() -> list:
    spec = [
        ("cam-1", "illegal_parking", ("car",)),
        ("cam-1", "illegal_parking", ("bicycle", "person")),
        ("cam-2", "occupied_space", ("person",)),
        ("cam-2", "static_object", ("object",)),
        ("cam-3", "illegal_parking", ("dog",)),
    ]
    return [
        incident_event(
            seq=i + 1, incident_id=f"inc-{i}", camera=cam, zone=f"z{i}", rule=rule, classes=classes,
            started=T0 + timedelta(minutes=10 * i), track_id=i,
        )
        for i, (cam, rule, classes) in enumerate(spec)
    ]  # fmt: skip


def test_ingested_cases_get_codes_and_filter_by_them(app_client: TestClient, db: Database, tokens) -> None:
    ids = ingest(db, *_events())
    auth = bearer(tokens["staff"])
    got = {
        c["id"]: c["category"] for c in app_client.get("/api/v1/cases?limit=50", headers=auth).json()["items"]
    }
    assert [got[i] for i in ids] == ["0505", "0506", "0504", "0507", "other"]
    page = app_client.get("/api/v1/cases?category=0505,0506", headers=auth).json()
    assert sorted(c["id"] for c in page["items"]) == sorted(ids[:2])
    assert all(c["source"] == "camera" for c in page["items"])
    bad = app_client.get("/api/v1/cases?category=9999", headers=auth)
    assert bad.status_code == 422 and bad.json()["detail"]["error"] == "unknown_category"


def test_csv_export_carries_code_and_names(app_client: TestClient, db: Database, tokens) -> None:
    ids = ingest(db, *_events())
    resp = app_client.get("/api/v1/exports/cases.csv?category=0506", headers=bearer(tokens["staff"]))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [(int(r["id"]), r["category"], r["category_zh"]) for r in rows] == [
        (ids[1], "0506", "非机动车乱停放")
    ]
    assert app_client.get("/api/v1/exports/cases.csv").status_code == 401


def test_configured_table_decides(db: Database, tokens, tmp_path: Path) -> None:
    table = tmp_path / "categories.yaml"
    table.write_text(
        "categories:\n"
        "  - {code: '0599', name_zh: 人员聚集, name_en: People gathering, rules: [illegal_parking], classes_any: [person]}\n"
        "  - {code: other, name_zh: 其他, name_en: Other}\n",
        encoding="utf-8",
    )
    app = build_hub(
        HubSettings(database_url=db.url, category_table=str(table), evidence_root=str(tmp_path / "ev")), db=db
    ).app
    try:
        with TestClient(app) as client:
            ids = ingest(db, *_events()[:2])
            cats = client.get("/api/v1/categories", headers=bearer(tokens["staff"])).json()
            assert [c["code"] for c in cats] == ["0599", "other"]
            items = client.get("/api/v1/cases", headers=bearer(tokens["staff"])).json()["items"]
            assert {c["id"]: c["category"] for c in items} == {ids[0]: "other", ids[1]: "0599"}
    finally:
        use_table(default_table())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("categories: [{code: '05x5', name_zh: a, name_en: b}]", "categories.0.code"),
        ("categories: [{code: '0505', name_zh: a, name_en: b}]", "code 'other'"),
        ("categories: [{code: other, name_zh: a, name_en: b, colour: red}]", "categories.0.colour"),
        ("categories: [", "not valid YAML"),
    ],
)
def test_bad_table_names_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CategoryTableError) as err:
        load_table(path)
    assert str(path) in str(err.value) and needle in str(err.value)
