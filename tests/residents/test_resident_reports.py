"""A resident scans a QR point, reports with a photo, and follows the case; abuse is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwarden.hub import security_counters
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.wiring import ResidentLimits
from tests.hub_api.conftest import bearer
from tests.residents.helpers import GPS_MARKER, POINTS_CSV, photo_jpeg, resident_app


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Where the hub keeps evidence (its store is ``app.state.services.evidence``)."""
    return tmp_path / "evidence"


def _client(app, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, client=(address, 40000))


def _import(app, tokens) -> None:
    resp = _client(app).post(
        "/api/v1/qr-points/import",
        content=POINTS_CSV.encode(),
        headers={**bearer(tokens["admin"]), "Content-Type": "text/csv"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"created": 2, "updated": 0, "total": 2}


def _report(
    client: TestClient, point: str, category: str, *, photo: bytes | None = None, note: str = "", lang="zh-CN"
):
    files = {"photo": ("p.jpg", photo, "image/jpeg")} if photo is not None else None
    return client.post(f"/r/{point}?lang={lang}", data={"category": category, "note": note}, files=files)


def _case_id(resp) -> int:
    match = re.search(r'data-case-id="(\d+)"', resp.text)
    assert match, resp.text
    return int(match.group(1))


def _status_link(resp) -> str:
    match = re.search(r'id="status-link" href="([^"]+)"', resp.text)
    assert match, resp.text
    return match.group(1).replace("&amp;", "&")


def test_report_opens_a_case_the_next_joins_it_and_the_reporter_follows_it(
    db: Database, store: Path, tokens
) -> None:
    app = resident_app(db, store)
    _import(app, tokens)
    phone = _client(app, "10.0.0.1")
    form = phone.get("/r/P-001")
    assert form.status_code == 200 and "非机动车乱停放" in form.text and 'capture="environment"' in form.text
    assert "<script" not in form.text and "style=" not in form.text  # strict CSP: nothing inline
    assert "Non-motor vehicle" in phone.get("/r/P-001?lang=en").text

    first = _report(phone, "P-001", "0506", photo=photo_jpeg(), note="共享单车堵住盲道")
    assert first.status_code == 201, first.text
    case_id = _case_id(first)
    staff = bearer(tokens["staff"])
    case = phone.get(f"/api/v1/cases/{case_id}", headers=staff).json()
    assert (case["source"], case["category"], case["report_point_id"], case["state"]) == (
        "resident",
        "0506",
        "P-001",
        "new",
    )
    assert case["site"] == "A1"
    reports = phone.get(f"/api/v1/cases/{case_id}/reports", headers=staff).json()
    assert [(r["note"], r["lat"], r["area_id"]) for r in reports] == [("共享单车堵住盲道", 31.2304, "A1")]
    kept = app.state.services.evidence.path_for(reports[0]["photo_sha256"]).read_bytes()
    assert kept[:3] == b"\xff\xd8\xff" and GPS_MARKER not in kept and b"Exif" not in kept

    second = _report(_client(app, "10.0.0.2"), "P-001", "0506", lang="en")
    assert second.status_code == 201 and _case_id(second) == case_id and "joined case" in second.text
    other_category = _report(_client(app, "10.0.0.3"), "P-001", "0507")
    assert _case_id(other_category) != case_id
    other_point = _report(_client(app, "10.0.0.4"), "P-002", "0506")
    assert _case_id(other_point) != case_id

    status_url = _status_link(first)
    page = phone.get(status_url)
    assert page.status_code == 200 and 'data-state="new"' in page.text and "非机动车乱停放" in page.text
    for to in ("in_review", "rejected", "closed"):
        assert (
            phone.post(
                f"/api/v1/cases/{case_id}/transitions", json={"to": to, "reason": "车已挪走"}, headers=staff
            ).status_code
            == 200
        )
    page = phone.get(status_url)
    assert 'data-state="closed"' in page.text and "已结案" in page.text
    # a closed case is not joined: the next report at the point opens a new one
    again = _report(_client(app, "10.0.0.5"), "P-001", "0506")
    assert _case_id(again) not in (case_id,)
    assert phone.get("/r/status/not-a-token").status_code == 404


def _refused(reason: str) -> int:
    return security_counters.snapshot().get("gridwarden_hub_reports_refused_total", {}).get((reason,), 0)


def test_hostile_reports_are_refused_clearly_and_counted(db: Database, store: Path, tokens) -> None:
    app = resident_app(db, store, ResidentLimits(per_client=100, per_point=100, max_photo_bytes=1024 * 1024))
    _import(app, tokens)
    c = _client(app)
    before = {
        r: _refused(r)
        for r in ("bad_photo", "note_too_long", "unknown_category", "too_large", "unknown_point")
    }

    fake = b"\xff\xd8\xff\xe0" + b"<html>not a picture</html>" * 10 + b"\xff\xd9"
    resp = _report(c, "P-001", "0506", photo=fake)
    assert resp.status_code == 422 and "照片无法识别" in resp.text
    truncated = photo_jpeg()[:5000]
    assert _report(c, "P-001", "0506", photo=truncated).status_code == 422
    resp = _report(c, "P-001", "0506", note="长" * 501, lang="en")
    assert resp.status_code == 422 and "at most 500" in resp.text
    assert _report(c, "P-001", "9999").status_code == 422
    assert _report(c, "P-001", "").status_code == 422
    huge = photo_jpeg(4000, 3000, with_exif=False) + b"\x00" * (1024 * 1024)
    assert _report(c, "P-001", "0506", photo=huge).status_code == 413
    assert _report(c, "NOPE", "0506").status_code == 404
    after = {r: _refused(r) for r in before}
    assert after == {"bad_photo": before["bad_photo"] + 2, "note_too_long": before["note_too_long"] + 1,
                     "unknown_category": before["unknown_category"] + 2, "too_large": before["too_large"] + 1,
                     "unknown_point": before["unknown_point"] + 1}  # fmt: skip
    staff = bearer(tokens["staff"])
    assert c.get("/api/v1/cases?source=resident", headers=staff).json()["total"] == 0


def test_rate_limits_per_address_and_per_point(db: Database, store: Path, tokens) -> None:
    app = resident_app(db, store, ResidentLimits(per_client=3, per_point=5))
    _import(app, tokens)
    flooder = _client(app, "10.9.9.9")
    codes = [_report(flooder, "P-001", "0506").status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    refused = _report(flooder, "P-002", "0506")
    assert refused.status_code == 429 and "请" in refused.text and int(refused.headers["Retry-After"]) > 0
    # another address still reports; the point's own limit (5) then stops everyone at P-001 only
    assert [_report(_client(app, f"10.1.0.{i}"), "P-001", "0506").status_code for i in range(3)] == [
        201,
        201,
        429,
    ]
    assert _report(_client(app, "10.1.0.9"), "P-002", "0506").status_code == 201
