"""Statistics over cases whose every milestone time is known: each figure checked by hand."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient

from gridwarden.hub.app import build_hub
from gridwarden.hub.cases import CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.points import PointStore, parse_csv
from gridwarden.hub.reports.resident import NewReport, ReportService
from gridwarden.hub.settings import HubSettings
from tests.hub.factories import T0
from tests.hub_api.conftest import bearer, ingest, seed_events
from tests.residents.helpers import POINTS_CSV

# case -> [(seconds after its detection, state, reason)]
PLAN = {
    0: [(60, "in_review", None), (180, "confirmed", None), (300, "dispatched", None), (480, "resolved", None), (1200, "closed", None)],
    1: [(120, "in_review", None), (150, "rejected", "glare 反光"), (300, "closed", None)],
    2: [(60, "in_review", None), (120, "confirmed", None), (600, "dispatched", None), (1800, "resolved", None), (2 * 86400, "closed", None)],
    3: [],
}  # fmt: skip


def _build(db: Database) -> list[int]:
    events = seed_events()[:4]
    ids = ingest(db, *events)
    for i, steps in PLAN.items():
        detected = T0 + timedelta(minutes=10 * i)
        for offset, to, reason in steps:
            at = detected + timedelta(seconds=offset)
            CaseService(db, clock=lambda at=at: at).transition(ids[i], to, actor="op", reason=reason)
    PointStore(db).upsert(parse_csv(POINTS_CSV))
    resident = ReportService(db, clock=lambda: T0 + timedelta(hours=1)).submit(
        NewReport(source="resident", category="0506", point_id="P-001")
    )
    return [*ids, resident.case_id]


def test_figures_match_the_hand_count(db: Database, tokens, tmp_path) -> None:
    _build(db)
    settings = HubSettings(
        database_url=db.url,
        sla_target_s=600,
        closure_limit_s=86400,
        timezone="UTC",
        evidence_root=str(tmp_path / "ev"),
    )
    app = build_hub(settings, db=db).app
    c = TestClient(app)
    q = {"since": (T0 - timedelta(days=1)).isoformat(), "until": (T0 + timedelta(days=1)).isoformat()}
    data = c.get("/api/v1/statistics", params=q, headers=bearer(tokens["staff"])).json()
    assert data["cases"] == 5 and data["truncated"] is False
    assert data["series"] == [{"bucket": "2025-03-01", "counts": {"camera": 4, "resident": 1}}]
    # due to be solved: A (on time), C (30 min: late), D and E (unsolved, past 10 min); B rejected
    assert data["solved_within_limit"] == {"limit_s": 600.0, "due": 4, "on_time": 1, "share": 0.25}
    assert data["on_time_closure"] == {"limit_s": 86400.0, "due": 4, "on_time": 1, "share": 0.25}
    assert {k: v["median_s"] for k, v in data["stages"].items()} == {
        "review": 60.0, "confirm": 90.0, "dispatch": 300.0, "resolve": 690.0, "close": 85860.0,
    }  # fmt: skip
    fp = data["false_positives"]
    assert [(e["camera"], e["decided"], e["rejected"], e["rate"], e["reasons"]) for e in fp["camera"]] == [
        ("cam-1", 2, 1, 0.5, {"glare 反光": 1}),
        ("cam-2", 1, 0, 0.0, {}),
    ]
    assert [(e["rule"], e["rate"]) for e in fp["rule"]] == [("illegal_parking", 0.5), ("occupied_space", 0.0)]

    by_cat = c.get(
        "/api/v1/statistics",
        params={**q, "group_by": "category", "bucket": "week"},
        headers=bearer(tokens["staff"]),
    ).json()
    assert by_cat["series"] == [
        {"bucket": "2025-02-24", "counts": {"0505": 2, "0504": 1, "0507": 1, "0506": 1}}
    ]
    by_area = c.get(
        "/api/v1/statistics", params={**q, "group_by": "area"}, headers=bearer(tokens["staff"])
    ).json()
    assert by_area["totals"] == {"(none)": 4, "A1": 1}

    table = c.get("/api/v1/statistics/false-positives.csv", params=q, headers=bearer(tokens["staff"]))
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert rows[0] == {
        "by": "camera",
        "key": "cam-1",
        "decided": "2",
        "rejected": "1",
        "rate": "0.5",
        "reasons": "glare 反光: 1",
    }
    timeliness = list(
        csv.DictReader(
            io.StringIO(
                c.get("/api/v1/statistics/timeliness.csv", params=q, headers=bearer(tokens["staff"])).text
            )
        )
    )
    assert timeliness[1] == {
        "measure": "on_time_closure",
        "limit_s": "86400.0",
        "due": "4",
        "on_time": "1",
        "share": "0.25",
    }
    assert (
        c.get(
            "/api/v1/statistics", params={**q, "tz": "Mars/Base"}, headers=bearer(tokens["staff"])
        ).status_code
        == 422
    )
    assert c.get("/api/v1/statistics").status_code == 401
