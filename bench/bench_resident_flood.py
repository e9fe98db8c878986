"""What a flood of resident reports costs everyone else.

A hub with the public report pages runs under uvicorn in its own process; this process measures
the case list's latency (median and p95 of 40 calls) idle, then while a second process floods one
QR point from one address with photo reports (6 threads, 5 s), and prints the ratios against the
idle baseline from the same run, plus what the flood got back (201s, then 429s).

    PYTHONPATH=. .venv/bin/python bench/bench_resident_flood.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.points import PointStore, parse_csv
from tests.residents.helpers import POINTS_CSV
from tests.support.ports import free_port, wait_for_port


def latencies(client: httpx.Client, token: str, n: int = 40) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.get("/api/v1/cases?limit=20", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        out.append(time.perf_counter() - t0)
        time.sleep(0.02)
    return out


def summary(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[int(0.95 * (len(xs) - 1))]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    url = f"sqlite:///{tmp}/hub.db"
    db = Database.open(url)
    token = UserStore(db).create("bench", Role.STAFF)[1]
    PointStore(db).upsert(parse_csv(POINTS_CSV))
    db.dispose()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.residents.serve_resident_hub", url, str(tmp / "ev"), str(port)], env=env
    )
    try:
        wait_for_port(port, timeout=30)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as api:
            idle = summary(latencies(api, token))
            flood = subprocess.Popen(
                [sys.executable, "-m", "tests.residents.flood_reports", base, "P-001", "5", "6"],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)
            during = summary(latencies(api, token))
            codes = json.loads(flood.communicate(timeout=120)[0])
        print(f"case list idle:   median {idle[0] * 1000:.1f} ms, p95 {idle[1] * 1000:.1f} ms (baseline)")
        print(
            f"during the flood: median {during[0] / idle[0]:.2f}x, p95 {during[1] / idle[1]:.2f}x the baseline"
        )
        print(f"flood answers: {codes}")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
