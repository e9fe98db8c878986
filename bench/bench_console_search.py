"""The console's case search on a large SQLite hub database: index-backed filters against the
same queries with the indexes of migration ``0006_console_review`` dropped.

    .venv/bin/python bench/bench_console_search.py [--cases 200000] [--runs 20]

Builds a migrated database in a temporary folder with ``--cases`` cases over 200 cameras and
30 days (a quarter of them with a rejection reason in the history), then times, per query, the
median of ``--runs`` calls of :func:`gridwarden.hub.api.console_review.search_statement` (first
page of 200, newest first, plus the per-state counts the queue tabs show), first with the
indexes, then without. Prints milliseconds and the ratio (without / with) and SQLite's plan.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select, text  # noqa: E402

from gridwarden.hub.api.console_review import search_statement  # noqa: E402
from gridwarden.hub.db.engine import Database, upgrade_database  # noqa: E402
from gridwarden.hub.db.models import Case  # noqa: E402

INDEXES = {
    "ix_cases_state_detected_at": "state, detected_at",
    "ix_cases_camera_detected_at": "camera, detected_at",
    "ix_cases_zone_detected_at": "zone, detected_at",
    "ix_cases_rule_detected_at": "rule, detected_at",
    "ix_cases_detected_at": "detected_at",
    "ix_cases_camera_reviewed_at": "camera, reviewed_at",
}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
QUERIES = {
    "camera, newest page": {"camera": "cam-042"},
    "state new + last day": {"states": ["new"], "since": NOW - timedelta(days=1)},
    "camera unreviewed": {"camera": "cam-117", "reviewed": False},
    "free text + camera": {"q": "licence", "camera": "cam-007"},
    "case id": {"q": "#123456"},
}


def populate(db: Database, n: int) -> None:
    rng = random.Random(7)
    states = ["new"] * 2 + ["in_review", "confirmed", "rejected", "dispatched", "resolved", "closed"]
    with db.engine.begin() as conn:
        rows = []
        history = []
        for i in range(1, n + 1):
            at = NOW - timedelta(seconds=rng.uniform(0, 30 * 86400))
            state = rng.choice(states)
            rows.append(
                {
                    "id": i, "state": state, "site": "north", "edge_id": f"edge-{i % 20:02d}",
                    "camera": f"cam-{rng.randrange(200):03d}", "zone": f"zone-{rng.randrange(8)}",
                    "rule": rng.choice(["illegal_parking", "occupied_space", "static_object"]),
                    "classes": '["car"]', "incident_count": 1, "detected_at": at, "last_activity_at": at,
                    "created_at": at, "updated_at": at,
                    "reviewed_at": at if rng.random() < 0.5 else None, "reviewed_by": None,
                }
            )  # fmt: skip
            if state == "rejected":
                reason = rng.choice(["permitted: market day licence", "moving", "not_in_zone: kerb"])
                history.append(
                    {"case_id": i, "at": at, "actor": "alice", "from_state": "in_review", "to_state": "rejected", "reason": reason}
                )  # fmt: skip
            if len(rows) == 20_000:
                conn.execute(Case.__table__.insert(), rows)
                rows = []
        if rows:
            conn.execute(Case.__table__.insert(), rows)
        conn.execute(Case.__table__.metadata.tables["case_history"].insert(), history)
        conn.execute(text("ANALYZE"))


def run_query(db: Database, spec: dict) -> None:
    spec = dict(spec)
    states = spec.pop("states", None)
    base = search_statement(
        q=spec.get("q"), camera=spec.get("camera"), zone=None, rule=None, object_class=None,
        since=spec.get("since"), until=None, reviewed=spec.get("reviewed"),
    )  # fmt: skip
    stmt = base.where(Case.state.in_(states)) if states else base
    with db.session() as session:
        matches = base.subquery()
        session.execute(select(matches.c.state, func.count()).group_by(matches.c.state)).all()
        session.scalars(stmt.order_by(Case.detected_at.desc(), Case.id.desc()).limit(200)).all()


def timed(db: Database, spec: dict, runs: int) -> float:
    run_query(db, spec)  # warm the page cache
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run_query(db, spec)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'hub.db'}"
        upgrade_database(url)
        db = Database(url)
        t0 = time.perf_counter()
        populate(db, args.cases)
        print(f"{args.cases} cases written in {time.perf_counter() - t0:.1f} s")
        with_ix = {name: timed(db, spec, args.runs) for name, spec in QUERIES.items()}
        with db.engine.begin() as conn:
            for name in INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
        without = {name: timed(db, spec, args.runs) for name, spec in QUERIES.items()}
        with db.engine.begin() as conn:
            for name, columns in INDEXES.items():
                conn.execute(text(f"CREATE INDEX {name} ON cases ({columns})"))
        with db.engine.connect() as conn:
            for name in ("camera, newest page", "state new + last day"):
                spec = dict(QUERIES[name])
                states = spec.pop("states", None)
                stmt = search_statement(
                    q=None, camera=spec.get("camera"), zone=None, rule=None, object_class=None,
                    since=spec.get("since"), until=None, reviewed=None,
                )  # fmt: skip
                if states:
                    stmt = stmt.where(Case.state.in_(states))
                stmt = stmt.order_by(Case.detected_at.desc(), Case.id.desc()).limit(200)
                compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
                plan = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
                print(f"plan of '{name}':", "; ".join(row[-1] for row in plan))
        print(f"{'query':28} {'indexed ms':>11} {'no index ms':>12} {'ratio':>7}")
        for name in QUERIES:
            print(
                f"{name:28} {with_ix[name]:11.1f} {without[name]:12.1f} {without[name] / with_ix[name]:7.1f}x"
            )
        db.dispose()


if __name__ == "__main__":
    main()
