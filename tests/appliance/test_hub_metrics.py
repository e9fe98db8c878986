"""Hub metrics on the real hub: ingest outcomes, SQL latency, cases by state, SLA overdue cases.

Runs on SQLite and PostgreSQL (the hub tests' ``db`` fixture) through the real FastAPI app.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from gridwarden.hub.app import build_hub
from gridwarden.hub.case_stats import case_counts_by_state, sla_overdue_counts
from gridwarden.hub.cases import STATES, CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.ingest import IngestStats, ingest_batch
from gridwarden.hub.settings import HubSettings
from gridwarden.hub.sla import MILESTONES
from gridwarden.observability import HubMetrics, add_metrics_route
from gridwarden.observability.metrics import sql_operation
from tests.appliance.metrics_parsing import parse, value
from tests.hub.factories import T0, camera_status, incident_event, topic_of, wire

TARGET_S = 600.0


def _ingest(db: Database, stats: IngestStats) -> None:
    events = [incident_event(seq=i, incident_id=f"inc-{i}", zone=f"zone-{i}") for i in (1, 2, 3)]
    messages = [(topic_of(e), wire(e)) for e in events]
    messages.append(messages[0])  # redelivered after a reconnect: a duplicate
    messages.append((topic_of(events[0]), b"{not json"))
    status = camera_status()
    messages.append(
        (f"gridwarden/v1/{events[0].site}/{status.edge_id}/cameras/{status.camera}/status", wire(status))
    )
    with db.write_session() as session, session.begin():
        results = ingest_batch(session, messages, now=T0 + timedelta(seconds=1), received_by="hub-test")
    stats.add(results, commit_s=0.25)


def test_hub_metrics_through_the_real_app(db: Database, db_url: str, tmp_path: Path) -> None:
    scrape_time = [T0 + timedelta(minutes=5)]
    settings = HubSettings(
        database_url=db_url, evidence_root=str(tmp_path / "evidence"), sla_target_s=TARGET_S
    )
    hub = build_hub(settings, db=db, clock=lambda: scrape_time[0])
    _ingest(db, hub.ingestor.counters)  # as the hub's consumer would count a batch
    cases = CaseService(db, sla_target_s=TARGET_S, clock=lambda: T0 + timedelta(minutes=3))
    views, total = cases.list_cases(limit=10)
    assert total == 3
    cases.transition(views[0].id, "in_review", actor="ana")
    cases.transition(views[0].id, "confirmed", actor="ana")  # confirmed 3 min after detection: on time

    with hub, TestClient(hub.app) as client:
        response = client.get("/metrics")  # no token needed, like /healthz
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        s = parse(response.text)
        scrape_time[0] = T0 + timedelta(minutes=20)
        later = parse(client.get("/metrics").text)
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]

    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="stored", reason="") == 3
    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="duplicate", reason="") == 1
    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="status", reason="") == 1
    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="rejected", reason="not_json") == 1
    assert value(s, "gridwarden_hub_ingest_batch_seconds_count") == 1
    assert value(s, "gridwarden_hub_ingest_batch_seconds_sum") == 0.25

    assert value(s, "gridwarden_hub_db_statement_seconds_count", operation="insert") >= 1
    assert value(s, "gridwarden_hub_db_statement_seconds_count", operation="select") >= 1
    assert value(s, "gridwarden_hub_db_statement_seconds_bucket", operation="select", le="+Inf") >= 1

    assert {state: value(s, "gridwarden_hub_cases", state=state) for state in STATES} == {
        "new": 2, "in_review": 0, "confirmed": 1, "rejected": 0, "dispatched": 0, "resolved": 0, "closed": 0,
    }  # fmt: skip

    # Five minutes after detection nothing is late; at twenty minutes the two unconfirmed cases
    # are late for confirmation and all three for dispatch and resolution.
    assert {
        m: value(s, "gridwarden_hub_sla_overdue_cases", milestone=m) for m in MILESTONES
    } == dict.fromkeys(MILESTONES, 0)
    overdue = {m: value(later, "gridwarden_hub_sla_overdue_cases", milestone=m) for m in MILESTONES}
    assert overdue == {"confirmed": 2, "dispatched": 3, "resolved": 3}
    # ... and that agrees with the SLA the case API reports for each case at that instant.
    at_twenty = CaseService(db, sla_target_s=TARGET_S, clock=lambda: T0 + timedelta(minutes=20))
    per_case = [v.sla.milestones for v in at_twenty.list_cases(limit=10)[0]]
    assert overdue == {m: sum(ms[m].running and ms[m].breached for ms in per_case) for m in MILESTONES}
    for source in ("ingest", "cases", "sla"):
        assert value(later, "gridwarden_metrics_source_up", source=source) == 1


def test_a_broken_database_shows_as_a_metric_not_a_failed_scrape(tmp_path: Path) -> None:
    from fastapi import FastAPI

    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every query fails
    try:
        metrics = HubMetrics()
        metrics.watch_cases(case_counts_by_state(unmigrated), states=STATES)
        metrics.watch_sla(sla_overdue_counts(unmigrated, target_s={m: 60.0 for m in MILESTONES}))
        app = FastAPI()
        add_metrics_route(app, metrics.registry)
        with TestClient(app) as client:
            response = client.get("/metrics")
    finally:
        unmigrated.dispose()
    assert response.status_code == 200
    s = parse(response.text)
    assert value(s, "gridwarden_metrics_source_up", source="cases") == 0
    assert value(s, "gridwarden_metrics_source_up", source="sla") == 0
    assert not any(name == "gridwarden_hub_cases" for name, _ in s)


def test_sql_operation_labels_stay_bounded() -> None:
    assert sql_operation("  SELECT 1") == "select"
    assert sql_operation("INSERT INTO x VALUES (1)") == "insert"
    assert sql_operation("COPY received_events FROM STDIN") == "other"
    assert sql_operation("") == "other"


def test_rejections_without_a_reason_breakdown_are_not_lost() -> None:
    from prometheus_client import generate_latest

    metrics = HubMetrics()
    metrics.watch_ingest(lambda: {"stored": 4, "rejected": 3, "rejected_by_reason": {"schema": 2}})
    s = parse(generate_latest(metrics.registry).decode())
    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="rejected", reason="schema") == 2
    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="rejected", reason="unknown") == 1
    assert value(s, "gridwarden_hub_ingest_messages_total", outcome="stored", reason="") == 4


def test_resend_requests_are_exported_under_their_old_metric_names() -> None:
    from prometheus_client import generate_latest

    metrics = HubMetrics()
    metrics.watch_ingest(lambda: {"resend_requests": 2, "resend_seqs_requested": 297})
    s = parse(generate_latest(metrics.registry).decode())
    assert value(s, "gridwarden_hub_replay_requests_total") == 2
    assert value(s, "gridwarden_hub_replay_seqs_requested_total") == 297


def test_hub_wiring_ready_and_watchdog_under_uvicorn(tmp_path: Path, notify_socket) -> None:
    """The lines serve_cli uses: READY=1 once uvicorn listens, keep-alives while /healthz answers."""
    import threading
    import time

    import httpx
    import uvicorn

    from gridwarden.observability import (
        SystemdNotifier,
        Watchdog,
        WatchdogPinger,
        http_probe,
        notify_ready_when,
    )
    from tests.support.ports import free_port

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database.open(url)
    port = free_port()
    try:
        hub = build_hub(HubSettings(database_url=url, evidence_root=str(tmp_path / "evidence")), db=db)
        server = uvicorn.Server(uvicorn.Config(hub.app, host="127.0.0.1", port=port, log_config=None))
        notifier = SystemdNotifier(socket_path=notify_socket.address)
        pinger = WatchdogPinger(
            Watchdog(notifier, usec=400_000), http_probe(f"http://127.0.0.1:{port}/healthz")
        )
        notify_ready_when(
            lambda: server.started, notifier, status=f"serving on :{port}",
            give_up=lambda: server.should_exit, then=pinger.start,
        )  # fmt: skip
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            assert notify_socket.wait_for("READY=1", timeout=20)[-1] == f"READY=1\nSTATUS=serving on :{port}"
            notify_socket.wait_for("WATCHDOG=1", timeout=5)
            s = parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
            assert value(s, "gridwarden_hub_cases", state="new") == 0
            assert value(s, "gridwarden_hub_db_statement_seconds_count", operation="select") >= 1  # /healthz
            server.should_exit = True
            thread.join(10)
            time.sleep(0.3)  # a probe that was answered just before the stop may still beat
            notify_socket.drain()
            assert notify_socket.collect(0.6) == []  # API gone: the pinger runs, its probe fails
            assert pinger.failures > 0
        finally:
            server.should_exit = True
            pinger.stop()
    finally:
        db.dispose()
