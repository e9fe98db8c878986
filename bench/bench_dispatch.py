"""Benchmark: dispatch decisions and officer position ingest at district scale.

Load (from issue 13): 300 officers on duty, each reporting its position every 10 s (30 fixes a
second), and 100x the seed's case rate (the seed had ~36,466 cases in its first period, of the
order of 100 a day; 100x is ~10,000 a day, one confirmed case every ~8.6 s).

What it measures, on a fresh SQLite database (``--db`` for PostgreSQL), with a simulated clock
so that an hour of district time runs in seconds of machine time:

* **dispatch decision**: for each queued case, the time to rank every free officer (travel-time
  estimate, area first) and write the offer, inside the dispatcher's tick; p50/p95/max. Officers
  answer like people: most accept after 5-40 s, some decline, some let the offer time out; they
  arrive after the estimated travel time and resolve two minutes later.
* **tick**: the whole tick (queue, expiries, offers, verification) per simulated second.
* **position ingest**: OwnTracks JSON parsed, validated and stored (history row + last position)
  in the batches the MQTT consumer makes; positions per second of machine time.

Baseline, measured in the same process: a plain SQLAlchemy Core insert of the same position
rows (no parsing, no officer lookup, no last-position update), so the printed ratio is what the
validation and bookkeeping cost.

    .venv/bin/python bench/bench_dispatch.py                 # 20 simulated minutes
    .venv/bin/python bench/bench_dispatch.py --minutes 60 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridwarden.hub.db import Database  # noqa: E402
from gridwarden.hub.db.models import Case, DispatchTask, Officer, OfficerPosition  # noqa: E402
from gridwarden.hub.dispatch.service import DispatchService, TaskConflict  # noqa: E402
from gridwarden.hub.dispatch.settings import DispatchSettings  # noqa: E402
from gridwarden.hub.officers.owntracks import OwnTracksConsumer  # noqa: E402
from gridwarden.hub.officers.roster import OfficerSpec, Roster  # noqa: E402

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LAT0, LON0 = 31.2300, 121.4700
SPAN = 0.03  # degrees: a district of about 3 x 3 km
OFFICERS = 300
REPORT_EVERY_S = 10
CASE_EVERY_S = 86_400 / 10_000  # 100x the seed's ~100 cases a day


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def owntracks(name: str, rng: random.Random, at: datetime) -> tuple[str, bytes]:
    body = {
        "_type": "location", "lat": LAT0 + rng.random() * SPAN, "lon": LON0 + rng.random() * SPAN,
        "tst": int(at.timestamp()), "acc": 12, "vel": 4, "batt": 77,
    }  # fmt: skip
    return f"owntracks/{name}/phone", json.dumps(body).encode()


def run(db: Database, minutes: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    clock = Clock()
    service = DispatchService(db, DispatchSettings(accept_timeout_s=60), clock=clock)
    roster = Roster(db)
    names = [f"officer-{i:03d}" for i in range(OFFICERS)]
    for i, name in enumerate(names):
        roster.upsert(
            OfficerSpec(
                username=name,
                name=name,
                areas=[f"beat-{i % 12}"],
                transport=rng.choice(["foot", "ebike", "car"]),
            )
        )
        roster.set_duty(name, True, now=clock.now)
    consumer = OwnTracksConsumer(
        db=db, mqtt_host="127.0.0.1", mqtt_port=1
    )  # never started: only its store path
    ingest_s: list[float] = []
    positions = 0
    tick_s: list[float] = []
    plans: dict[int, tuple[str, datetime]] = {}  # task id -> (next action, when)
    next_case = clock.now
    cases = 0
    end = T0 + timedelta(minutes=minutes)
    while clock.now < end:
        # 300 officers every 10 s: the tenth of them whose turn it is this second.
        second = int((clock.now - T0).total_seconds())
        batch = [
            owntracks(n, rng, clock.now)
            for i, n in enumerate(names)
            if i % REPORT_EVERY_S == second % REPORT_EVERY_S
        ]
        started = time.perf_counter()
        consumer.store_messages(batch)
        ingest_s.append(time.perf_counter() - started)
        positions += len(batch)
        while next_case <= clock.now:
            with db.write_session() as session, session.begin():
                session.add(
                    Case(
                        state="confirmed", site="bench", edge_id="edge-b", camera=f"cam-{cases % 40}", zone="z",
                        rule="illegal_parking", classes=["car"], incident_count=0, detected_at=clock.now - timedelta(seconds=30),
                        last_activity_at=clock.now, created_at=clock.now, updated_at=clock.now, confirmed_at=clock.now,
                        lat=LAT0 + rng.random() * SPAN, lon=LON0 + rng.random() * SPAN, area_id=f"beat-{cases % 12}",
                    )
                )  # fmt: skip
            cases += 1
            next_case += timedelta(seconds=CASE_EVERY_S)
        started = time.perf_counter()
        service.tick(clock.now)
        tick_s.append(time.perf_counter() - started)
        # The officers answer.
        with db.session() as session:
            rows = session.execute(
                select(DispatchTask.id, DispatchTask.state, Officer.username, DispatchTask.eta_s)
                .join(Officer, Officer.id == DispatchTask.officer_id)
                .where(DispatchTask.state.in_(("offered", "accepted", "arrived")))
            ).all()
        for task_id, state, username, eta in rows:
            plan = plans.get(task_id)
            if plan is None or (
                plan[0] != state and not (state == "offered" and plan[0] in ("decline", "ignore"))
            ):
                if state == "offered":
                    # 85 % accept after 5-40 s, 10 % decline, 5 % let it time out.
                    roll = rng.random()
                    if roll < 0.85:
                        plans[task_id] = ("offered", clock.now + timedelta(seconds=5 + rng.random() * 35))
                    elif roll < 0.95:
                        plans[task_id] = ("decline", clock.now + timedelta(seconds=3))
                    else:
                        plans[task_id] = ("ignore", clock.now)
                elif state == "accepted":
                    plans[task_id] = (state, clock.now + timedelta(seconds=min(eta or 300, 900)))
                else:
                    plans[task_id] = (state, clock.now + timedelta(seconds=120))
                continue
            what, when = plan
            if when > clock.now or what == "ignore":
                continue
            action = {"offered": "accept", "decline": "decline", "accepted": "arrive", "arrived": "resolve"}[
                what
            ]
            with contextlib.suppress(TaskConflict):
                service.act(username, task_id, action, now=clock.now, reason="busy", note="done")
            plans.pop(task_id, None)
        clock.now += timedelta(seconds=1)
    decisions = np.array(service.counters.decision_s) * 1000
    ticks = np.array(tick_s) * 1000
    ingest_rate = positions / sum(ingest_s)
    return {
        "simulated_minutes": minutes,
        "cases": cases,
        "offers": service.counters.offers,
        "escalations": service.counters.escalations,
        "decisions": len(decisions),
        "decision_p50_ms": float(np.percentile(decisions, 50)) if len(decisions) else float("nan"),
        "decision_p95_ms": float(np.percentile(decisions, 95)) if len(decisions) else float("nan"),
        "decision_max_ms": float(decisions.max()) if len(decisions) else float("nan"),
        "tick_p95_ms": float(np.percentile(ticks, 95)),
        "positions": positions,
        "position_ingest_per_s": ingest_rate,
        "position_batch_p95_ms": float(np.percentile(np.array(ingest_s) * 1000, 95)),
    }


def baseline_insert_rate(db: Database, rows: int = 3000) -> float:
    """Plain Core insert of position rows, in batches of 30 (one second of 300 officers)."""
    values = [
        {"officer_id": 1 + i % OFFICERS, "fix_at": T0 + timedelta(days=1, seconds=i), "lat": LAT0, "lon": LON0,
         "accuracy_m": 12.0, "speed_mps": 1.0, "battery": 77, "source": "baseline", "received_at": T0}
        for i in range(rows)
    ]  # fmt: skip
    started = time.perf_counter()
    for i in range(0, rows, 30):
        with db.write_session() as session, session.begin():
            session.execute(insert(OfficerPosition), values[i : i + 30])
    return rows / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated district minutes (default 20)")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(args.db or f"sqlite:///{tmp}/bench.db")
        try:
            figures = run(db, args.minutes, args.seed)
            base = baseline_insert_rate(db)
        finally:
            db.dispose()
    figures["baseline_plain_insert_per_s"] = base
    figures["ingest_vs_plain_insert"] = figures["position_ingest_per_s"] / base
    need = OFFICERS / REPORT_EVERY_S
    figures["ingest_headroom_vs_30_per_s"] = figures["position_ingest_per_s"] / need
    for k, v in figures.items():
        print(f"{k:32s} {v:,.3f}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
