"""Nothing lost between edge and hub: 2,000 incident events from an edge publisher process
through a real Mosquitto into the hub's database, while the broker is stopped for 10 s, the
edge is SIGKILLed once and the hub is SIGKILLed once. Every event is stored exactly once and
every incident's folded state is right. Run against SQLite and PostgreSQL.

What runs is what systemd runs: ``gridwarden hub serve`` (API, ingest, replay in one process)
with its own broker user, behind the shipped broker configuration (users and rights from
``gridwarden.hub.broker_security``: the edge may publish only its own topics). The hub is
killed while a batch is provably in flight: the test holds a write lock on the database, waits
until the hub reports a batch it cannot commit (SQLite: its writer logs "storing N message(s)
failed"; PostgreSQL: its INSERT waits on the lock in pg_stat_activity), and only then SIGKILLs
it -- those messages were delivered and not acknowledged, so the broker must deliver them again.
(That ack-after-commit holds at every single acknowledgement is checked deterministically in
tests/hub/test_ack_after_commit.py; here a replay could heal an early ack.)

The broker restart is the hard part: Mosquitto 2.0.11 does not restore the hub's SHARED
subscription from its persistence file, so events the edge publishes after the broker is back
and before the hub re-subscribes are acknowledged to the edge and delivered to nobody. They reach
the hub only because the hub sees the hole (``EdgeStatus.last_seq`` above what it stored) and
asks the edge, which keeps acknowledged events, to replay them. The edge therefore runs on after
draining (``--serve``), as a real edge does.

What the hub guarantees about order: replayed events are stored when they arrive, so an earlier
seq may be stored after a later one of the same incident (storage order is NOT seq order across
a replay). The guarantee is about the folded incident: it reflects seq order -- its last_seq is
the incident's highest seq, its first_event_seq the lowest, an ``updated`` arriving after the
``ended`` does not reopen it, and it ends up ``ended`` with every event counted once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gridwarden.edge.transport.outbox import Outbox
from gridwarden.hub.db import Database
from gridwarden.hub.db.models import Incident, ReceivedEvent
from tests.hub_api.test_broker_acl import start_secured_broker
from tests.outbox.events import EDGE_ID, EVENTS_PER_INCIDENT
from tests.outbox.test_publisher_outage import _start_edge
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port
from tests.support.waiting import wait_until

COUNT = 2000  # long enough that the edge still publishes through the broker outage
OUTAGE_S = 10.0
# Slow enough that the edge still publishes when the broker goes away (the broker is stopped at
# 60 % of the edge's stream, whatever the hub's speed), after the in-flight kill.
RATE = 20.0


PASSWORDS = {EDGE_ID: "edge-secret-1", "hub": "hub-secret-1"}


def _start_hub(db_url: str, port: int, log_path: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """``gridwarden hub serve`` as the systemd unit runs it, with its own broker credentials."""
    password_file = workdir / "hub-mqtt.pw"
    password_file.write_text(PASSWORDS["hub"] + "\n")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url,
             "--mqtt-port", str(port), "--mqtt-username", "hub", "--mqtt-password-file", str(password_file),
             "--client-id", "hub-1", "--port", str(free_port()), "--evidence-root", str(workdir / "evidence"),
             "--log-level", "INFO"],
            cwd=REPO_ROOT, stdout=log, stderr=log,
        )  # fmt: skip


@contextmanager
def _database_write_lock(db_url: str) -> Iterator[Callable[[], bool]]:
    """Hold a write lock on the hub's database; yields "is the hub's batch stuck on it?"."""
    if db_url.startswith("sqlite"):
        con = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        con.execute("BEGIN EXCLUSIVE")
        try:
            yield lambda: False  # the hub's log says it (see the caller)
        finally:
            con.execute("ROLLBACK")
            con.close()
        return
    import psycopg

    conn = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        conn.execute("LOCK TABLE received_events IN EXCLUSIVE MODE")

        def hub_waits() -> bool:
            with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as probe:
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE '%%received_events%%' AND pid <> %s",
                    (conn.info.backend_pid,),
                ).fetchone()
            return bool(row and row[0])

        yield hub_waits
    finally:
        conn.rollback()
        conn.close()


def _log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _edge_enqueued(outbox: Path) -> int:
    """How many events the edge has put in its outbox (read-only: the edge process owns the file)."""
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute("SELECT value FROM outbox_meta WHERE key = 'next_seq'").fetchone()
    return int(row[0]) - 1 if row else 0


def _stored(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_thousand_events_reach_the_hub_exactly_once_through_outages(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory(prefix="gw-e2e-acl-") as tmp:
        broker = start_secured_broker(Path(tmp), PASSWORDS)
        try:
            _run(backend, tmp_path, broker, request, monkeypatch)
        finally:
            broker.stop()


def _run(
    backend: str,
    tmp_path: Path,
    broker: object,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.mosquitto import MosquittoBroker

    assert isinstance(broker, MosquittoBroker)
    db_url = (
        f"sqlite:///{tmp_path / 'hub.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    if backend == "postgresql":
        from tests.hub.conftest import _empty_postgres

        _empty_postgres(db_url)
    db = Database.open(db_url)
    hub_log, edge_log = tmp_path / "hub.log", tmp_path / "edge.log"
    hub = _start_hub(db_url, broker.port, hub_log, tmp_path)
    wait_until(lambda: "connected to" in hub_log.read_text(), 60, "hub connected")
    monkeypatch.setenv("GW_TEST_EDGE_PASSWORD", PASSWORDS[EDGE_ID])
    serve = (
        "--serve",
        "--status-interval",
        "2",
        "--username",
        EDGE_ID,
        "--password-env",
        "GW_TEST_EDGE_PASSWORD",
    )
    edge = _start_edge(tmp_path / "outbox.sqlite3", broker.port, edge_log, COUNT, RATE, serve)
    try:
        wait_until(lambda: _stored(db) >= 150, 40, "first 150 stored")
        edge.send_signal(signal.SIGKILL)  # the edge dies mid-stream ...
        edge.wait(10)
        edge = _start_edge(tmp_path / "outbox.sqlite3", broker.port, edge_log, COUNT, RATE, serve)
        wait_until(lambda: _stored(db) >= 350, 40, "350 stored")
        with _database_write_lock(db_url) as hub_waits:  # ... then the hub, with a batch in flight ...
            stuck_before = _log_text(hub_log).count("failed (attempt")
            frozen = _stored(db)
            wait_until(
                lambda: hub_waits() or _log_text(hub_log).count("failed (attempt") > stuck_before,
                40,
                "the hub holding a batch it cannot commit",
            )
            assert _stored(db) == frozen  # nothing committed: the batch is delivered, unacknowledged
            hub.send_signal(signal.SIGKILL)
            hub.wait(10)
        time.sleep(1.0)
        hub = _start_hub(db_url, broker.port, hub_log, tmp_path)
        wait_until(lambda: _stored(db) >= 550, 120, "550 stored")  # includes a hub start under load
        # The broker goes away while the edge is still publishing, so that events published after
        # it is back and before the hub re-subscribes are lost and need a replay.
        wait_until(
            lambda: _edge_enqueued(tmp_path / "outbox.sqlite3") >= COUNT * 6 // 10, 120, "60 % enqueued"
        )
        assert _edge_enqueued(tmp_path / "outbox.sqlite3") < COUNT - 100, "the edge finished too early"
        connects_before = _log_text(edge_log).count("connected to")
        broker.stop()  # ... then the broker, for ten seconds
        # The hub stays away a little longer than the edge after the restart (as it does anyway,
        # its reconnect backoff having grown during the outage), so events published in between
        # meet a broker that forgot the shared subscription: only a replay can bring them back.
        hub.send_signal(signal.SIGTERM)
        hub.wait(15)
        time.sleep(OUTAGE_S)
        broker.start()
        wait_until(
            lambda: _log_text(edge_log).count("connected to") > connects_before, 30, "the edge reconnected"
        )
        time.sleep(2.0)
        hub = _start_hub(db_url, broker.port, hub_log, tmp_path)
        wait_until(lambda: "drained, serving" in _log_text(edge_log), 90, "the edge drained its outbox")
        assert edge.poll() is None, _log_text(edge_log)[-3000:]
        wait_until(lambda: _stored(db) >= COUNT, 90, f"all {COUNT} stored")
        time.sleep(1.0)  # anything still in flight would show up as an extra row now
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(timeout=30) == 0, _log_text(edge_log)[-3000:]
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
        incidents = {i.incident_id: i for i in s.scalars(select(Incident))}
    db.dispose()
    assert sorted(r.seq for r in rows) == list(range(1, COUNT + 1)), "lost or duplicated events"
    per_incident: dict[str, dict[int, str]] = defaultdict(dict)
    for r in rows:
        per_incident[r.incident_id][r.seq] = r.event
    assert len(per_incident) == len(incidents) == COUNT // EVENTS_PER_INCIDENT
    for incident_id, events in per_incident.items():
        seqs = sorted(events)
        # By seq (not by storage order, see the module doc) the lifecycle is intact ...
        assert [events[q] for q in seqs] == ["started"] + ["updated"] * (EVENTS_PER_INCIDENT - 2) + ["ended"]
        # ... and the folded incident reflects seq order whatever order the events were stored in.
        incident = incidents[incident_id]
        assert incident.state == "ended" and incident.ended_at is not None, incident_id
        assert incident.event_count == EVENTS_PER_INCIDENT, incident_id
        assert (incident.first_event_seq, incident.last_seq) == (seqs[0], seqs[-1]), incident_id
        assert incident.dwell_s == EVENTS_PER_INCIDENT - 1  # the ended event's dwell, the largest
    edge_text, hub_text = _log_text(edge_log), _log_text(hub_log)
    # The broker restart really lost events that only a replay brought back (else this test
    # proved nothing about replay); and the edge outbox ends empty of unacknowledged events.
    assert "requested a resend of" in hub_text, hub_text[-3000:]
    assert "served 0 resend" not in edge_text and "served " in edge_text, edge_text[-3000:]
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        assert outbox.depth() == 0 and outbox.last_seq() == COUNT
