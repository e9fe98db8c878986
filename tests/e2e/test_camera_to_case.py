"""The whole product on one machine: a real RTSP camera → `gridwarden edge run` → Mosquitto →
`gridwarden hub serve` → a case in the REST API. Both services stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gridwarden.hub.auth import UserStore
from gridwarden.hub.db.engine import Database
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT, YOLOX_NANO
from tests.support.ports import free_port
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import PARKING_ZONE, ParkedCarScenario
from tests.support.waiting import wait_until

DWELL_S = 10.0


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"did not stop on SIGTERM:\n{log.read_text()[-3000:]}") from None


@pytest.mark.slow
def test_rtsp_camera_incident_becomes_a_case(
    parked_car_short: ParkedCarScenario, tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    camera = RtspServer({"lot": parked_car_short.path}, loop=1, log_dir=tmp_path)
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database.open(db_url)
    _, token = UserStore(db).create("olga", "staff")
    _, integrator_token = UserStore(db).create("ivan", "integrator")
    db.dispose()
    api_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    hub_log, edge_log = tmp_path / "hub.log", tmp_path / "edge.log"
    hub_cmd = [
        sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url,
        "--mqtt-host", "127.0.0.1", "--mqtt-port", str(mosquitto_broker.port),
        "--host", "127.0.0.1", "--port", str(api_port), "--client-id", "hub-e2e",
    ]  # fmt: skip
    with open(hub_log, "wb") as out:
        hub = subprocess.Popen(hub_cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {token}"}
    edge = None
    try:

        def hub_healthy() -> bool:
            assert hub.poll() is None, hub_log.read_text()
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(hub_healthy, 30, "hub health")
        camera.start()
        config = tmp_path / "edge.yaml"
        config.write_text(
            f"""\
edge_id: edge-e2e
site: test
data_dir: {tmp_path / "edge-data"}
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
mqtt: {{host: 127.0.0.1, port: {mosquitto_broker.port}}}
cameras:
  - id: cam-lot
    url: {camera.url("lot")}
    zones:
      - id: no-parking
        polygon: {PARKING_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: {DWELL_S}, end_grace_s: 1}}
"""
        )
        with open(edge_log, "wb") as out:
            edge = subprocess.Popen(
                [sys.executable, "-m", "gridwarden.cli", "edge", "run", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            )  # fmt: skip

        def ended_case() -> dict | None:  # type: ignore[type-arg]
            assert edge is not None and edge.poll() is None, edge_log.read_text()
            page = httpx.get(f"{base}/api/v1/cases", headers=headers, timeout=5).json()
            for item in page["items"]:
                detail = httpx.get(f"{base}/api/v1/cases/{item['id']}", headers=headers, timeout=5).json()
                if any(inc.get("state") == "ended" for inc in detail.get("incidents", [])):
                    return detail  # type: ignore[no-any-return]
            return None

        case = wait_until(ended_case, 90, "a case whose incident has ended")
        assert case["camera"] == "cam-lot" and case["zone"] == "no-parking"
        assert case["rule"] == "illegal_parking" and case["state"] == "new"
        assert len(case["incidents"]) == 1
        # the camera's retained status reached the hub too
        cameras = httpx.get(
            f"{base}/api/v1/cameras", headers={"Authorization": f"Bearer {integrator_token}"}, timeout=5
        ).json()
        assert [(c["edge_id"], c["camera_id"], c["state"]) for c in cameras] == [
            ("edge-e2e", "cam-lot", "online")
        ]
        assert _stop(edge, edge_log) == 0, edge_log.read_text()[-3000:]
        edge = None
    finally:
        if edge is not None and edge.poll() is None:
            edge.kill()
        camera.stop()
        code = _stop(hub, hub_log)
    assert code == 0, hub_log.read_text()[-3000:]
