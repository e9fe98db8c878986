"""Benchmark: the hub tier scaled out — three hub processes, fifty edges, one hub killed — and
the console's case list on a PostgreSQL database of a million cases.

Part 1 (ingest): a private Mosquitto, a fresh PostgreSQL database, three ``gridwarden hub serve``
processes on one shared subscription. Fifty simulated edges publish their incident streams
(interleaved, QoS 1, paced at ``--rate`` events/s). A third of the way in, one hub is killed with
SIGKILL (no clean shutdown, its in-flight messages unacknowledged) and restarted with the same
client id, so the broker hands its persistent session back. At the end every event must be
stored exactly once: ``count(*) == count(distinct (edge_id, seq)) == published``. Prints
events/s and publish-to-committed latency (a poller every 10 ms; the killed hub's redelivered
messages are part of the figure, as a city would see them).

Part 2 (case list): a fresh database migrated with the project's Alembic migrations, filled with
``--cases`` cases in one ``INSERT ... SELECT generate_series`` (200 cameras, 60 days, eight
states), ANALYZEd, served by a real ``hub serve``; then ``--requests`` HTTP calls per query to
``GET /api/v1/cases`` (state / camera / time-range filters, the console's case list) and
``GET /api/v1/console/search`` (the review queue), p50/p95 each. With ``--no-index`` the
indexes that serve these queries are dropped first, to show what they buy.

    .venv/bin/python bench/bench_scale_out.py                  # short run (~2 min under load)
    .venv/bin/python bench/bench_scale_out.py --full-day       # a district's day x100 (100,000 events)
    .venv/bin/python bench/bench_scale_out.py --part cases --cases 1000000

PostgreSQL is the server at ``--pg`` (default ``$GRIDWARDEN_TEST_PG`` or 127.0.0.1:5432, user
postgres); each part creates its own throwaway database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.bench_ingest import make_events, publisher  # noqa: E402
from gridwarden.hub.auth import UserStore  # noqa: E402
from gridwarden.hub.db import Database, upgrade_database  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

EDGES = 50
DEFAULT_PG = os.environ.get("GRIDWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@contextmanager
def pg_database(pg_server: str) -> Iterator[tuple[str, str]]:
    """A throwaway database on the server, migrated to head; yields (sqlalchemy url, libpq url)."""
    name = f"gw_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    plain = pg_server.rsplit("/", 1)[0] + f"/{name}"
    url = plain.replace("postgresql://", "postgresql+psycopg://")
    try:
        upgrade_database(url)
        yield url, plain
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class HubProcess:
    """One ``gridwarden hub serve`` child; ``kill`` is SIGKILL, ``stop`` a clean SIGTERM."""

    def __init__(self, url: str, mqtt_port: int, client_id: str, workdir: Path, http_port: int) -> None:
        self.http_port = http_port
        args = [
            sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", url, "--mqtt-port", str(mqtt_port),
            "--client-id", client_id, "--no-migrate", "--log-level", "WARNING", "--port", str(http_port),
            "--evidence-root", str(workdir / f"{client_id}-evidence"),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if sel.select(0.5) and self.proc.stdout.readline().startswith(b"ready"):  # type: ignore[union-attr]
                return
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"hub {client_id} did not get ready")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


# ---------------------------------------------------------------- part 1: ingest, one hub killed


def run_ingest(args: argparse.Namespace) -> dict[str, Any]:
    per_edge = max(10, args.events // EDGES)
    streams = [make_events(per_edge, f"edge-{k:02d}") for k in range(1, EDGES + 1)]
    payloads = [
        (e.edge_id, e.seq, t, e.model_dump_json().encode())
        for group in zip(*streams, strict=True)
        for t, e in group
    ]
    n = len(payloads)
    index = {(edge, seq): i for i, (edge, seq, _, _) in enumerate(payloads)}
    sent = np.full(n, np.nan)
    seen = np.full(n, np.nan)
    kill_at = n // 3
    with tempfile.TemporaryDirectory(prefix="gw-scale-") as tmp:
        workdir = Path(tmp)
        broker = MosquittoBroker(workdir)
        broker.start()
        try:
            with pg_database(args.pg) as (url, plain):
                hubs = [HubProcess(url, broker.port, f"hub-{k}", workdir, free_port()) for k in range(1, 4)]
                pub = publisher(broker.port)
                poll = psycopg.connect(plain, autocommit=True)
                last_id = 0
                restart_s = 0.0
                start = time.monotonic()
                i = 0
                next_poll = start
                while True:
                    now = time.monotonic()
                    while i < n and start + i / args.rate <= now:
                        _, _, topic, payload = payloads[i]
                        sent[i] = time.monotonic()
                        pub.publish(topic, payload, qos=1)
                        i += 1
                    if i >= kill_at and restart_s == 0.0:
                        hubs[1].kill()
                        t_kill = time.monotonic()
                        hubs[1] = HubProcess(url, broker.port, "hub-2", workdir, free_port())
                        restart_s = time.monotonic() - t_kill
                        continue
                    if now >= next_poll:
                        # Rows commit out of id order across three hubs: look back a margin.
                        rows = poll.execute(
                            "SELECT id, edge_id, seq FROM received_events WHERE id > %s",
                            (max(0, last_id - 5000),),
                        ).fetchall()
                        t_seen = time.monotonic()
                        for row_id, edge, seq in rows:
                            j = index.get((edge, seq))
                            if j is not None and np.isnan(seen[j]):
                                seen[j] = t_seen
                            last_id = max(last_id, row_id)
                        next_poll = now + 0.01
                        if i == n and not np.isnan(seen).any():
                            break
                        if now - start > n / args.rate + args.timeout_s:
                            break
                    time.sleep(0.001)
                elapsed = time.monotonic() - start
                total, distinct = poll.execute(
                    "SELECT count(*), count(DISTINCT (edge_id, seq)) FROM received_events"
                ).fetchone()  # type: ignore[misc]
                per_hub = dict(
                    poll.execute(
                        "SELECT received_by, count(*) FROM received_events GROUP BY received_by"
                    ).fetchall()
                )
                cases = poll.execute("SELECT count(*) FROM cases").fetchone()[0]  # type: ignore[index]
                poll.close()
                for hub in hubs:
                    hub.stop()
                pub.disconnect()
                pub.loop_stop()
        finally:
            broker.stop()
    lat_ms = (seen - sent) * 1000
    lat_ms = lat_ms[~np.isnan(lat_ms)]
    return {
        "part": "ingest",
        "hubs": 3,
        "edges": EDGES,
        "events": n,
        "rate_per_s": args.rate,
        "stored": total,
        "distinct_stored": distinct,
        "exactly_once": total == distinct == n,
        "cases": cases,
        "per_hub_stored": per_hub,
        "killed_after_event": kill_at,
        "hub_restart_s": round(restart_s, 2),
        "elapsed_s": round(elapsed, 1),
        "events_per_s": round(total / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1) if lat_ms.size else None,
        "p95_ms": round(float(np.percentile(lat_ms, 95)), 1) if lat_ms.size else None,
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1) if lat_ms.size else None,
        "max_ms": round(float(lat_ms.max()), 1) if lat_ms.size else None,
    }


# ---------------------------------------------------------------- part 2: case list at 1M cases

STATES = ["new", "new", "in_review", "confirmed", "rejected", "dispatched", "resolved", "closed"]
BULK_INSERT = """
INSERT INTO cases (state, site, edge_id, camera, zone, rule, classes, incident_count, detected_at,
                   last_activity_at, created_at, updated_at, reviewed_at, source, category)
SELECT (ARRAY['new','new','in_review','confirmed','rejected','dispatched','resolved','closed'])[1 + (g * 7919) % 8],
       'north',
       'edge-' || lpad(((g * 31) % 50)::text, 2, '0'),
       'cam-' || lpad(((g * 104729) % 200)::text, 3, '0'),
       'zone-' || ((g * 13) % 8)::text,
       (ARRAY['illegal_parking','occupied_space','static_object'])[1 + (g * 17) % 3],
       '["car"]'::jsonb,
       1,
       t, t, t, t,
       CASE WHEN g % 2 = 0 THEN t END,
       'camera', 'other'
FROM (SELECT g, '{now}'::timestamptz - ((g * 2654435761) % (60 * 86400)) * interval '1 second' AS t
      FROM generate_series(1::bigint, {n}) AS g) AS s
"""
# A live hub gives every confirmed case a dispatch row at once; without them the hub's dispatch
# tick would spend the timed minutes enqueueing a hundred thousand old cases.
DISPATCH_ROWS = """
INSERT INTO case_dispatch (case_id, status, due_at, tried, offers, rework_count, created_at, updated_at)
SELECT id, 'done', detected_at, '[]'::jsonb, 1, 0, detected_at, detected_at
FROM cases WHERE state IN ('confirmed', 'dispatched', 'resolved', 'closed')
"""


def bulk_load(plain: str, n: int) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(BULK_INSERT.format(now=NOW.isoformat(), n=int(n)).encode())
        conn.execute(DISPATCH_ROWS.encode())
        conn.execute("VACUUM ANALYZE")  # as autovacuum leaves a settled table
    return time.perf_counter() - t0


def case_queries() -> dict[str, tuple[str, dict[str, Any]]]:
    day = (NOW - timedelta(days=1)).isoformat()
    week = (NOW - timedelta(days=7)).isoformat()
    three_days = (NOW - timedelta(days=3)).isoformat()
    return {
        "list: state=new": ("/api/v1/cases", {"state": "new", "sort": "-created_at"}),
        "list: camera": ("/api/v1/cases", {"camera": "cam-042", "sort": "-created_at"}),
        "list: last day": ("/api/v1/cases", {"since": day, "until": NOW.isoformat(), "sort": "-created_at"}),
        "list: state+camera+week": (
            "/api/v1/cases",
            {"state": "new", "camera": "cam-117", "since": week, "sort": "-created_at"},
        ),
        "list: default (no filter)": ("/api/v1/cases", {}),
        "search: state=new, 3 days": (
            "/api/v1/console/search",
            {"state": "new", "since": three_days, "sort": "-detected_at"},
        ),
        "search: camera": ("/api/v1/console/search", {"camera": "cam-042", "sort": "-detected_at"}),
        "search: camera+time": (
            "/api/v1/console/search",
            {"camera": "cam-007", "since": week, "until": day, "sort": "-detected_at"},
        ),
    }


def time_route(client: httpx.Client, path: str, params: dict[str, Any], requests: int) -> dict[str, float]:
    cameras = [f"cam-{k:03d}" for k in range(200)]
    rng = random.Random(11)
    client.get(path, params=params).raise_for_status()  # warm
    samples = []
    for _ in range(requests):
        p = dict(params)
        if "camera" in p:
            p["camera"] = rng.choice(cameras)  # different cameras: no one hot page
        t0 = time.perf_counter()
        r = client.get(path + "?" + urlencode(p))
        samples.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(float(np.percentile(samples, 95)), 1),
        "max_ms": round(max(samples), 1),
    }


def drop_case_indexes(plain: str) -> list[str]:
    with psycopg.connect(plain, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'cases' AND indexname LIKE 'ix_%'"
            ).fetchall()
        ]
        for name in names:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("ANALYZE cases")
    return names


def run_cases(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gw-scale-") as tmp:
        workdir = Path(tmp)
        broker = MosquittoBroker(workdir)
        broker.start()
        try:
            with pg_database(args.pg) as (url, plain):
                load_s = bulk_load(plain, args.cases)
                print(f"{args.cases} cases loaded + VACUUM ANALYZE in {load_s:.1f} s", flush=True)
                dropped = drop_case_indexes(plain) if args.no_index else []
                db = Database(url)
                _, token = UserStore(db).create("bench-reader", "staff")
                db.dispose()
                hub = HubProcess(url, broker.port, "hub-cases", workdir, free_port())
                results: dict[str, Any] = {}
                try:
                    with httpx.Client(
                        base_url=f"http://127.0.0.1:{hub.http_port}",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=60,
                    ) as client:
                        for name, (path, params) in case_queries().items():
                            results[name] = time_route(client, path, params, args.requests)
                            print(f"{name:30} {json.dumps(results[name])}", flush=True)
                finally:
                    hub.stop()
        finally:
            broker.stop()
    return {
        "part": "cases",
        "cases": args.cases,
        "load_s": round(load_s, 1),
        "dropped_indexes": dropped,
        "requests_per_query": args.requests,
        "queries": results,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["ingest", "cases", "both"], default="both")
    p.add_argument("--events", type=int, default=10_000, help="events over all 50 edges (part 1)")
    p.add_argument(
        "--full-day", action="store_true", help="a district's day x100: 100 cases x 10 events x 100"
    )
    p.add_argument("--rate", type=float, default=250.0, help="publish rate, events/s (part 1)")
    p.add_argument("--cases", type=int, default=1_000_000, help="cases to bulk-load (part 2)")
    p.add_argument("--requests", type=int, default=200, help="HTTP requests per query (part 2)")
    p.add_argument("--no-index", action="store_true", help="drop the cases indexes first (part 2)")
    p.add_argument("--pg", default=DEFAULT_PG)
    p.add_argument("--timeout-s", type=float, default=120.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.full_day:
        args.events = 100 * 10 * 100
    out = []
    if args.part in ("ingest", "both"):
        out.append(run_ingest(args))
        print(json.dumps(out[-1]), flush=True)
    if args.part in ("cases", "both"):
        out.append(run_cases(args))
        print(json.dumps(out[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    ok = all(r.get("exactly_once", True) for r in out)
    if not ok:
        print("FAILED: events lost or stored twice", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
