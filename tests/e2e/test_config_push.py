"""Central configuration, end to end with real processes: an integrator PUTs a new zone to the
hub; the hub validates it and pushes it on the edge's retained config topic; the running
`gridwarden edge run` applies it live within 5 s (reporting the version in its retained status)
and its next incident carries the new zone id. An invalid polygon is refused by the hub with
file:line: field messages and never reaches the edge."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gridwarden.hub.auth import UserStore
from gridwarden.hub.db.engine import Database
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT, YOLOX_NANO
from tests.support.ports import free_port
from tests.support.processes import is_healthy, terminate
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import PARKING_ZONE, ParkedCarScenario
from tests.support.waiting import wait_until


def edge_yaml(tmp_path: Path, port: int, url: str, zone_id: str, polygon: object = PARKING_ZONE) -> str:
    return f"""\
edge_id: edge-cfg
site: test
data_dir: {tmp_path / "edge-data"}
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
mqtt: {{host: 127.0.0.1, port: {port}}}
cameras:
  - id: cam-lot
    url: {url}
    zones:
      - id: {zone_id}
        polygon: {polygon}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: 10, end_grace_s: 1}}
"""


@pytest.mark.slow
def test_pushed_zone_is_applied_live_and_names_the_next_incident(
    parked_car_short: ParkedCarScenario, tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    camera = RtspServer({"lot": parked_car_short.path}, loop=1, log_dir=tmp_path)
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database.open(db_url)
    _, token = UserStore(db).create("ivan", "admin")
    db.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    hub_log, edge_log = tmp_path / "hub.log", tmp_path / "edge.log"
    with open(hub_log, "wb") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url, "--mqtt-host", "127.0.0.1",
             "--mqtt-port", str(mosquitto_broker.port), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    edge = None
    try:
        wait_until(lambda: hub.poll() is None and is_healthy(base), 30, "hub health")
        camera.start()
        config = tmp_path / "edge.yaml"
        config.write_text(edge_yaml(tmp_path, mosquitto_broker.port, camera.url("lot"), "no-parking"))
        with open(edge_log, "wb") as out:
            edge = subprocess.Popen(
                [sys.executable, "-m", "gridwarden.cli", "edge", "run", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip

        def edge_online() -> bool:
            assert edge is not None and edge.poll() is None, edge_log.read_text()
            edges = httpx.get(f"{base}/api/v1/edges", headers=headers, timeout=5).json()
            return any(e["edge_id"] == "edge-cfg" and e["online"] for e in edges)

        wait_until(edge_online, 30, "the edge online at the hub")

        # An invalid polygon (edges cross) is refused before anything is sent.
        bow_tie = [[0.25, 0.62], [0.70, 0.99], [0.70, 0.62], [0.25, 0.99]]
        bad = httpx.put(
            f"{base}/api/v1/edges/edge-cfg/config", headers=headers, timeout=10,
            json={"yaml": edge_yaml(tmp_path, mosquitto_broker.port, camera.url("lot"), "x", bow_tie)},
        )  # fmt: skip
        assert bad.status_code == 422, bad.text
        assert any(
            "cameras[0].zones[0].polygon" in p and "cross" in p for p in bad.json()["detail"]["problems"]
        )

        new_text = edge_yaml(tmp_path, mosquitto_broker.port, camera.url("lot"), "no-parking-v2")
        pushed_at = time.monotonic()
        put = httpx.put(
            f"{base}/api/v1/edges/edge-cfg/config", headers=headers, timeout=10,
            json={"yaml": new_text, "comment": "rename the zone"},
        )  # fmt: skip
        assert put.status_code == 200 and put.json()["published"] is True, put.text
        version = str(put.json()["version"])

        def applied() -> bool:
            edges = httpx.get(f"{base}/api/v1/edges", headers=headers, timeout=5).json()
            return any(e["edge_id"] == "edge-cfg" and e.get("config_version") == version for e in edges)

        wait_until(applied, 5, "the edge to report the new configuration version")
        assert time.monotonic() - pushed_at <= 5.0

        def a_case() -> dict | None:  # type: ignore[type-arg]
            items = httpx.get(f"{base}/api/v1/cases", headers=headers, timeout=5).json()["items"]
            return items[0] if items else None

        case = wait_until(a_case, 60, "the parked car's case")
        assert case["zone"] == "no-parking-v2"
        history = httpx.get(
            f"{base}/api/v1/edges/edge-cfg/config/versions", headers=headers, timeout=5
        ).json()
        assert [v["comment"] for v in history][:1] == ["rename the zone"]
    finally:
        terminate(edge, hub)
        camera.stop()
