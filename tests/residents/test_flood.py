"""A flood of reports at one point from one address is refused cheaply: the API, the console's
reads and other residents' reports keep answering as before (real uvicorn, real HTTP)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.reports.points import PointStore, parse_csv
from tests.residents.helpers import POINTS_CSV, photo_jpeg
from tests.support.ports import free_port, wait_for_port


def _latencies(client: httpx.Client, token: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get("/api/v1/cases?limit=20", headers={"Authorization": f"Bearer {token}"})
        out.append(time.perf_counter() - t0)
        assert resp.status_code == 200
        time.sleep(0.02)
    return out


@pytest.mark.slow
def test_flooding_one_point_does_not_slow_anything_else(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    db = Database.open(url)
    token = UserStore(db).create("staff-user", Role.STAFF)[1]
    PointStore(db).upsert(parse_csv(POINTS_CSV))
    db.dispose()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.residents.serve_resident_hub",
            url,
            str(tmp_path / "evidence"),
            str(port),
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=30)
        with httpx.Client(base_url=base, timeout=10) as api:
            baseline = _latencies(api, token, 30)
            flood = subprocess.Popen(
                [sys.executable, "-m", "tests.residents.flood_reports", base, "P-001", "4", "6"],
                env=env, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(0.5)
            during = _latencies(api, token, 30)
            # another resident, at another point, from another address, is served meanwhile
            with httpx.Client(
                base_url=base, timeout=10, transport=httpx.HTTPTransport(local_address="127.0.0.2")
            ) as other:
                resp = other.post(
                    "/r/P-002",
                    data={"category": "0507"},
                    files={"photo": ("p.jpg", photo_jpeg(), "image/jpeg")},
                )
            assert resp.status_code == 201, resp.text
            out, _ = flood.communicate(timeout=60)
        codes = json.loads(out)
        assert codes.get("201", 0) == 5  # the per-address limit, then only refusals
        assert codes.get("429", 0) >= 50, codes
        base_median, during_median = statistics.median(baseline), statistics.median(during)
        print(
            f"case-list latency median {base_median * 1000:.1f} ms before, {during_median * 1000:.1f} ms during the flood"
        )
        # Refusals are decided before the body is read: the API's median stays within a few
        # times its idle value (a generous bound for a shared 2-core machine).
        assert during_median < max(4 * base_median, 0.15), (base_median, during_median)
    finally:
        server.terminate()
        server.wait(timeout=20)
