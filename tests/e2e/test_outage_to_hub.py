"""Nothing lost between edge and hub: 1,000 incident events from an edge publisher process
through a real Mosquitto into the hub's database, while the broker is stopped for 10 s, the
edge is SIGKILLed once and the hub is SIGKILLed once. Every event is stored exactly once, in
order per incident, and every incident ends. Run against SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gridwarden.hub.db import Database
from gridwarden.hub.db.models import Incident, ReceivedEvent
from tests.outbox.events import EVENTS_PER_INCIDENT
from tests.outbox.test_publisher_outage import _start_edge
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT

COUNT = 1000
OUTAGE_S = 10.0


def _start_hub(db_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gridwarden.hub.ingest", "--db", db_url, "--mqtt-port", str(port),
             "--client-id", "hub-1", "--no-migrate"],
            cwd=REPO_ROOT, stdout=log, stderr=log,
        )  # fmt: skip


def _stored(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0)


def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_thousand_events_reach_the_hub_exactly_once_through_outages(
    backend: str, tmp_path: Path, mosquitto_broker: MosquittoBroker, request: pytest.FixtureRequest
) -> None:
    db_url = (
        f"sqlite:///{tmp_path / 'hub.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    if backend == "postgresql":
        from tests.hub.conftest import _empty_postgres

        _empty_postgres(db_url)
    db = Database.open(db_url)
    broker = mosquitto_broker
    hub_log, edge_log = tmp_path / "hub.log", tmp_path / "edge.log"
    hub = _start_hub(db_url, broker.port, hub_log)
    _wait(lambda: "connected to" in hub_log.read_text(), 30, "hub connected")
    edge = _start_edge(tmp_path / "outbox.sqlite3", broker.port, edge_log, count=COUNT, rate=100.0)
    try:
        _wait(lambda: _stored(db) >= 150, 40, "first 150 stored")
        edge.send_signal(signal.SIGKILL)  # the edge dies mid-stream ...
        edge.wait(10)
        edge = _start_edge(tmp_path / "outbox.sqlite3", broker.port, edge_log, count=COUNT, rate=100.0)
        _wait(lambda: _stored(db) >= 350, 40, "350 stored")
        hub.send_signal(signal.SIGKILL)  # ... then the hub, mid-batch ...
        hub.wait(10)
        time.sleep(1.0)
        hub = _start_hub(db_url, broker.port, hub_log)
        _wait(lambda: _stored(db) >= 550, 40, "550 stored")
        broker.stop()  # ... then the broker, for ten seconds
        time.sleep(OUTAGE_S)
        broker.start()
        assert edge.wait(timeout=90) == 0, edge_log.read_text()[-3000:]
        _wait(lambda: _stored(db) >= COUNT, 60, f"all {COUNT} stored")
        time.sleep(1.0)  # anything still in flight would show up as an extra row now
    finally:
        for proc in (edge, hub):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

    with db.session() as s:
        rows = s.execute(select(ReceivedEvent.seq, ReceivedEvent.incident_id, ReceivedEvent.event)
                         .order_by(ReceivedEvent.id)).all()  # fmt: skip
        incidents = s.scalars(select(Incident)).all()
    db.dispose()
    assert sorted(r.seq for r in rows) == list(range(1, COUNT + 1)), "lost or duplicated events"
    per_incident: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in rows:  # storage order
        per_incident[r.incident_id].append((r.seq, r.event))
    assert len(per_incident) == COUNT // EVENTS_PER_INCIDENT
    for incident_id, events in per_incident.items():
        seqs = [seq for seq, _ in events]
        assert seqs == sorted(seqs), f"{incident_id} stored out of order: {seqs}"
        assert events[0][1] == "started" and events[-1][1] == "ended", incident_id
    assert len(incidents) == COUNT // EVENTS_PER_INCIDENT
    assert all(i.state == "ended" and i.event_count == EVENTS_PER_INCIDENT for i in incidents)
