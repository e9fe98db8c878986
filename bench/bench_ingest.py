"""Benchmark: MQTT → hub → database, sustained throughput and publish-to-commit latency.

What it runs, each on a fresh private Mosquitto and a fresh database:

* throughput: N incident events (from four edges, interleaved) published at QoS 1 as fast as the publisher can, into SQLite and
  into PostgreSQL, with one and with two hub processes (``gridwarden hub serve``, a
  shared subscription); events/s = N / (first publish → last row committed). One extra run on
  PostgreSQL with ``--batch-max 1`` shows what batching buys.
* latency: events paced at 200/s for ``--latency-s`` seconds into one hub; latency = the moment a
  poller (every 5 ms) first sees the row committed minus the moment it was published.

Targets (from the product issue): >= 2,000 events/s into PostgreSQL; p95 < 250 ms at 200/s.

    .venv/bin/python bench/bench_ingest.py                 # everything, prints a table
    .venv/bin/python bench/bench_ingest.py --events 4000 --json out.json

PostgreSQL is the server at ``--pg`` (default 127.0.0.1:5432, user postgres); a throwaway
database is created for each run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
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

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridwarden.contract import IncidentEvent, IncidentObject, NormalisedBox, Topics  # noqa: E402
from gridwarden.hub.db import Database, upgrade_database  # noqa: E402
from gridwarden.hub.db.models import ReceivedEvent  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SITE = "bench"
# An incident's life on the wire: a start, eight updates (the edge reports material changes), an end.
EVENT_KINDS = ("started", *["updated"] * 8, "ended")
BASE_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
EDGES = 4  # edges whose streams the throughput runs interleave


def make_events(
    n: int, edge_id: str, *, cameras: int = 16, zones: int = 3, incident_spacing_s: float = 0.25
) -> list[tuple[str, IncidentEvent]]:
    """``n`` events of consecutive seqs: incidents of ten events, spread over cameras and zones,
    one incident starting every ``incident_spacing_s`` of edge time (four a second across the
    district: far more than a real district, but not so dense that every camera and zone has
    dozens of open cases inside one merge window, which no street has)."""
    topic = Topics(SITE, edge_id).incidents
    out = []
    for seq in range(1, n + 1):
        i, step = divmod(seq - 1, len(EVENT_KINDS))
        x = (i % 19) * 0.05
        started = BASE_TIME + timedelta(seconds=i * incident_spacing_s)
        out.append(
            (
                topic,
                IncidentEvent(
                    event=EVENT_KINDS[step],  # type: ignore[arg-type]
                    incident_id=f"{edge_id}-{i}",
                    seq=seq,
                    site=SITE,
                    edge_id=edge_id,
                    camera=f"cam-{i % cameras}",
                    zone=f"zone-{i % zones}",
                    rule="illegal_parking",
                    classes=["car"],
                    objects=[
                        IncidentObject(
                            track_id=i,
                            class_name="car",
                            confidence=0.7,
                            box=NormalisedBox(x1=x, y1=0.4, x2=x + 0.04, y2=0.5),
                        )  # fmt: skip
                    ],
                    confidence=0.7,
                    media_time=5.0 * step,
                    started_media_time=0.0,
                    dwell_s=60.0 + 5.0 * step,
                    wall_time=started + timedelta(seconds=5.0 * step),
                ),
            )
        )
    return out


@contextmanager
def database(kind: str, pg_server: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        upgrade_database(url)
        yield url
        return
    name = f"gw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade_database(url)
        yield url
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Hub:
    def __init__(self, url: str, port: int, client_id: str, workdir: Path, batch_max: int) -> None:
        self.stats = workdir / f"{client_id}-{uuid.uuid4().hex[:4]}.json"
        args = [
            sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", url, "--mqtt-port", str(port),
            "--client-id", client_id, "--batch-max", str(batch_max), "--stats-file", str(self.stats),
            "--no-migrate", "--log-level", "WARNING", "--port", str(free_port()),
            "--evidence-root", str(workdir / f"{client_id}-evidence"),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sel.select(0.5) and self.proc.stdout.readline().startswith(b"ready"):  # type: ignore[union-attr]
                return
        raise RuntimeError(f"hub {client_id} did not get ready")

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        return json.loads(self.stats.read_text())


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def count_rows(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0


def run_throughput(
    kind: str, hubs: int, n: int, args: argparse.Namespace, batch_max: int = 200
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        workdir = Path(tmp)
        broker = MosquittoBroker(workdir)
        broker.start()
        try:
            with database(kind, args.pg, workdir) as url:
                db = Database(url)
                procs = [Hub(url, broker.port, f"hub-{k}", workdir, batch_max) for k in range(1, hubs + 1)]
                # A district has many edges: interleave the streams of four.
                streams = [make_events(n // EDGES, f"edge-{k:02d}") for k in range(1, EDGES + 1)]
                payloads = [
                    (t, e.model_dump_json().encode())
                    for group in zip(*streams, strict=True)
                    for t, e in group
                ]
                n = len(payloads)
                pub = publisher(broker.port)
                start = time.monotonic()
                for topic, payload in payloads:
                    pub.publish(topic, payload, qos=1)
                published = time.monotonic()
                deadline = start + args.timeout_s
                while (stored := count_rows(db)) < n and time.monotonic() < deadline:
                    time.sleep(0.02)
                elapsed = time.monotonic() - start
                stats = [p.stop() for p in procs]
                pub.disconnect()
                pub.loop_stop()
                db.dispose()
        finally:
            broker.stop()
    return {
        "scenario": "throughput",
        "db": kind,
        "hubs": hubs,
        "batch_max": batch_max,
        "events": n,
        "stored": stored,
        "elapsed_s": round(elapsed, 3),
        "publish_s": round(published - start, 3),
        "events_per_s": round(stored / elapsed, 1),
        "per_hub_stored": [s["stored"] for s in stats],
        "batches": sum(s["batches"] for s in stats),
        "store_ms_per_batch": round(
            sum(s["commit_ms_total"] for s in stats) / max(1, sum(s["batches"] for s in stats)), 1
        ),
    }


def run_latency(kind: str, rate: float, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    n = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        workdir = Path(tmp)
        broker = MosquittoBroker(workdir)
        broker.start()
        try:
            with database(kind, args.pg, workdir) as url:
                db = Database(url)
                hub = Hub(url, broker.port, "hub-1", workdir, 200)
                events = make_events(n, "edge-01")
                pub = publisher(broker.port)
                sent = np.zeros(n + 1)
                seen = np.full(n + 1, np.nan)
                last_id = 0
                start = time.monotonic()
                i = 0
                next_poll = start
                while True:
                    now = time.monotonic()
                    # Publish everything that is due by now, then poll for committed rows.
                    while i < n and start + i / rate <= now:
                        topic, event = events[i]
                        payload = event.model_dump_json().encode()
                        sent[event.seq] = time.monotonic()
                        pub.publish(topic, payload, qos=1)
                        i += 1
                    if now >= next_poll:
                        with db.session() as s:
                            rows = s.execute(
                                select(ReceivedEvent.id, ReceivedEvent.seq).where(ReceivedEvent.id > last_id)
                            ).all()
                        t_seen = time.monotonic()
                        for row_id, seq in rows:
                            seen[seq] = t_seen
                            last_id = max(last_id, row_id)
                        next_poll = now + 0.005
                        if i == n and not np.isnan(seen[1:]).any():
                            break
                        if now - start > seconds + args.timeout_s:
                            break
                    time.sleep(0.001)
                hub_stats = hub.stop()
                pub.disconnect()
                pub.loop_stop()
                db.dispose()
        finally:
            broker.stop()
    lat_ms = (seen[1:] - sent[1:]) * 1000
    lat_ms = lat_ms[~np.isnan(lat_ms)]
    return {
        "scenario": "latency",
        "db": kind,
        "rate_per_s": rate,
        "events": n,
        "committed": int(lat_ms.size),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1),
        "p95_ms": round(float(np.percentile(lat_ms, 95)), 1),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1),
        "max_ms": round(float(lat_ms.max()), 1),
        "batches": hub_stats["batches"],
        "store_ms_per_batch": round(hub_stats["commit_ms_total"] / max(1, hub_stats["batches"]), 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=8000)
    p.add_argument("--latency-s", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--timeout-s", type=float, default=120.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        for hubs in (1, 2):
            results.append(run_throughput(kind, hubs, args.events, args))
            print(json.dumps(results[-1]), flush=True)
    if "postgresql" in kinds:
        results.append(run_throughput("postgresql", 1, min(args.events, 2000), args, batch_max=1))
        print(json.dumps(results[-1]), flush=True)
    for kind in kinds:
        results.append(run_latency(kind, args.rate, args.latency_s, args))
        print(json.dumps(results[-1]), flush=True)
    print()
    print(
        f"{'scenario':<11}{'db':<11}{'hubs':>5}{'batch':>6}{'events':>8}{'events/s':>10}{'p50 ms':>8}{'p95 ms':>8}"
    )
    for r in results:
        print(
            f"{r['scenario']:<11}{r['db']:<11}{r.get('hubs', 1):>5}{r.get('batch_max', 200):>6}{r['events']:>8}"
            f"{r.get('events_per_s', ''):>10}{r.get('p50_ms', ''):>8}{r.get('p95_ms', ''):>8}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
