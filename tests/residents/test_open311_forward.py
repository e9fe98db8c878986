"""Confirmed cases reach another hub's own Open311 server: durably queued, retried while it is
down or refuses, recorded with the remote request id once it answers, never sent twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gridwarden.backoff import Backoff
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.cases import CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Open311Forward
from gridwarden.hub.reports.open311_forward import Open311Forwarder
from gridwarden.hub.reports.points import PointStore, parse_csv
from gridwarden.hub.reports.resident import NewReport, ReportService
from tests.hub_api.conftest import ingest, seed_events
from tests.residents.helpers import POINTS_CSV
from tests.support.ports import free_port, wait_for_port
from tests.support.waiting import wait_until


def _rows(db: Database) -> list[Open311Forward]:
    with db.session() as s:
        return list(s.query(Open311Forward).order_by(Open311Forward.case_id))


def _confirm(db: Database, case_id: int) -> None:
    cases = CaseService(db)
    for to in ("in_review", "confirmed"):
        cases.transition(case_id, to, actor="op")


@pytest.mark.slow
def test_confirmed_cases_forwarded_to_a_second_hub(db: Database, tmp_path: Path) -> None:
    # hub A (this test's database): a camera case and a resident case, both confirmed; one more unconfirmed
    PointStore(db).upsert(parse_csv(POINTS_CSV))
    camera_case, unconfirmed = ingest(db, *seed_events()[:2])
    resident = ReportService(db).submit(
        NewReport(source="resident", category="0506", point_id="P-001", note="单车堵路")
    )
    _confirm(db, camera_case)
    _confirm(db, resident.case_id)

    # hub B: its own database and user, served over real HTTP (not started yet)
    b_url = f"sqlite:///{tmp_path}/hub-b.db"
    b_db = Database.open(b_url)
    b_key = UserStore(b_db).create("hub-a", Role.STAFF)[1]
    b_db.dispose()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/open311/v2"
    forwarder = Open311Forwarder(db, endpoint, api_key=b_key, backoff=Backoff(0.05, 0.2))

    assert forwarder.run_once() == 2  # both attempted, B is down
    rows = _rows(db)
    assert [(r.case_id, r.attempts, r.delivered_at) for r in rows] == [
        (camera_case, 1, None),
        (resident.case_id, 1, None),
    ]
    assert all("Connect" in (r.last_error or "") for r in rows)
    assert unconfirmed not in {r.case_id for r in rows}

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.residents.serve_resident_hub",
            b_url,
            str(tmp_path / "evidence-b"),
            str(port),
        ],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        wait_for_port(port, timeout=30)
        wait_until(
            lambda: forwarder.run_once() == 0 and all(r.delivered_at for r in _rows(db)), 20, "forwarded"
        )
        rows = _rows(db)
        assert all(r.remote_request_id and r.last_error is None for r in rows)
        remote = {
            r.case_id: httpx.get(f"{endpoint}/requests/{r.remote_request_id}.json").json()[0] for r in rows
        }
        assert remote[camera_case]["service_code"] == "0505" and remote[camera_case]["status"] == "open"
        assert f"[gridwarden case {camera_case}]" in remote[camera_case]["description"]
        assert (remote[resident.case_id]["service_code"], remote[resident.case_id]["lat"]) == (
            "0506",
            31.2304,
        )
        assert "单车堵路" in remote[resident.case_id]["description"]
        # nothing is sent twice, and B's own cases (source open311) would not echo back
        assert forwarder.run_once() == 0
        listed = httpx.get(f"{endpoint}/requests.json").json()
        assert len(listed) == 2

        # a refused key is an error recorded and retried, not a delivery
        later = ingest(db, *seed_events()[2:3])[0]
        _confirm(db, later)
        wrong = Open311Forwarder(db, endpoint, api_key="wrong", backoff=Backoff(60.0, 600.0))
        assert wrong.run_once() == 1
        row = next(r for r in _rows(db) if r.case_id == later)
        assert row.delivered_at is None and row.last_error.startswith("HTTP 403") and row.attempts == 1
        wrong.stop()
    finally:
        forwarder.stop()
        server.terminate()
        server.wait(timeout=20)
