"""From camera to street and back, with every part real: an RTSP camera replaying a car that
stops in a no-parking zone, stays and drives off; `gridwarden edge run`; Mosquitto with the
shipped dynamic-security ACL (edge, hub and three officers each with their own rights);
`gridwarden hub serve` (dispatch loop, OwnTracks consumer); three officers' phones sending
OwnTracks positions over MQTT; the officers' app API.

The case is confirmed through the API and offered to the nearest officer, who lets the offer
time out; the second nearest accepts, arrives and resolves it with a photo; the edge reports the
car gone and the hub closes the case as verified by camera. History and SLA figures are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from gridwarden.hub.broker_security import write_document
from tests.field.geo import district
from tests.hub_api.test_broker_acl import Probe, security_conf
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT, YOLOX_NANO
from tests.support.ports import free_port
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import PARKING_ZONE, ParkedCarScenario, build_parked_car_clip
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DWELL_S = 5.0
CAMERA = (31.2350, 121.4850)  # in beat-east of tests/field/geo.py
OFFICERS = {"near": 100.0, "second": 300.0, "far": 900.0}  # metres north of the camera
ACCEPT_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def parked_long(tmp_path_factory: pytest.TempPathFactory) -> ParkedCarScenario:
    """The car stands 40 s (enough for the whole dispatch loop), then drives off; ~48 s clip."""
    return build_parked_car_clip(
        tmp_path_factory.mktemp("scenarios") / "parked-40s.mp4", hold_s=40.0, last_frame=110
    )


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"did not stop on SIGTERM:\n{log.read_text()[-3000:]}") from None


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gridwarden.cli", *args], input=stdin, capture_output=True, text=True, env=env,
        check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_offer_timeout_accept_resolve_verified_by_camera(
    parked_long: ParkedCarScenario, tmp_path: Path
) -> None:
    passwords = {"hub": "pw-hub", "edge-e2e": "pw-edge"}
    officer_pw = {name: f"pw-{name}" for name in OFFICERS}
    # Mosquitto drops to its own user before reading the users file: a folder others can read.
    workdir = Path(tempfile.mkdtemp(prefix="gw-mosq-dispatch-"))
    workdir.chmod(0o755)
    users_file = workdir / "dynamic-security.json"
    write_document(users_file, passwords, officers=officer_pw)
    users_file.chmod(0o644)
    broker = MosquittoBroker(workdir, extra_conf=security_conf(users_file), persistence=False)  # type: ignore[arg-type]
    broker.start()
    camera = RtspServer({"lot": parked_long.path}, loop=1, log_dir=tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "GRIDWARDEN_DISPATCH_ACCEPT_TIMEOUT_S": str(ACCEPT_TIMEOUT_S),
        "GRIDWARDEN_DISPATCH_INTERVAL_S": "0.2",
    }
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    areas = tmp_path / "areas.geojson"
    areas.write_text(json.dumps(district()))
    assert "3 areas created" in _cli(env, "areas", "--db", db_url, "import", str(areas))
    staff = _cli(env, "users", "--db", db_url, "create", "olga", "--role", "staff")
    admin = _cli(env, "users", "--db", db_url, "create", "root", "--role", "admin")
    tokens = {
        name: _cli(env, "users", "--db", db_url, "create", name, "--role", "officer") for name in OFFICERS
    }
    (tmp_path / "hub-pw").write_text(passwords["hub"])
    api_port = free_port()
    hub_log, edge_log = tmp_path / "hub.log", tmp_path / "edge.log"
    hub_cmd = [
        sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url,
        "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port), "--mqtt-username", "hub",
        "--mqtt-password-file", str(tmp_path / "hub-pw"),
        "--host", "127.0.0.1", "--port", str(api_port), "--client-id", "hub-e2e",
    ]  # fmt: skip
    with open(hub_log, "wb") as out:
        hub = subprocess.Popen(hub_cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{api_port}"
    auth = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    as_staff = {"Authorization": f"Bearer {staff}"}
    edge = None
    phones: list[Probe] = []
    try:
        wait_until(lambda: _healthy(hub, hub_log, base), 30, "hub health")
        for name in OFFICERS:
            spec = {"username": name, "name": name.title(), "areas": ["beat-east"], "transport": "foot"}
            r = httpx.put(
                f"{base}/api/v1/officers/{name}", json=spec, headers={"Authorization": f"Bearer {admin}"}
            )
            assert r.status_code == 200, r.text
            assert (
                httpx.put(
                    f"{base}/api/v1/field/me/duty", json={"on_duty": True}, headers=auth[name]
                ).status_code
                == 200
            )

        # Each phone publishes its OwnTracks position over MQTT with its own credentials.
        for name, north in OFFICERS.items():
            phone = Probe(broker.port, name, officer_pw[name], client_id=f"phone-{name}")
            assert not phone.connect().is_failure
            payload = {"_type": "location", "lat": CAMERA[0] + north / 111_195.0, "lon": CAMERA[1],
                       "tst": int(time.time()), "acc": 10, "batt": 90}  # fmt: skip
            assert not phone.publish(f"owntracks/{name}/phone", json.dumps(payload).encode()).is_failure
            phones.append(phone)

        def positions_known() -> bool:
            roster = httpx.get(f"{base}/api/v1/officers", headers=as_staff).json()
            return all(o["lat"] is not None for o in roster)

        wait_until(positions_known, 20, "three OwnTracks positions at the hub")

        camera.start()
        config = tmp_path / "edge.yaml"
        config.write_text(
            f"""\
edge_id: edge-e2e
site: test
data_dir: {tmp_path / "edge-data"}
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: edge-e2e, password: {passwords["edge-e2e"]}}}
cameras:
  - id: cam-lot
    url: {camera.url("lot")}
    location: {{lat: {CAMERA[0]}, lon: {CAMERA[1]}, heading_deg: 180, description: "东门停车场入口"}}
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

        def open_case() -> dict | None:  # type: ignore[type-arg]
            assert edge is not None and edge.poll() is None, edge_log.read_text()[-3000:]
            items = httpx.get(f"{base}/api/v1/cases", headers=as_staff, timeout=5).json()["items"]
            return items[0] if items else None

        case = wait_until(open_case, 90, "a case from the camera")
        case_id = case["id"]
        assert case["area_id"] == "beat-east" and abs(case["lat"] - CAMERA[0]) < 1e-9
        for to in ("in_review", "confirmed"):
            r = httpx.post(f"{base}/api/v1/cases/{case_id}/transitions", json={"to": to}, headers=as_staff)
            assert r.status_code == 200, r.text

        def offer_for(name: str) -> dict | None:  # type: ignore[type-arg]
            tasks = httpx.get(f"{base}/api/v1/field/me", headers=auth[name], timeout=5).json()["tasks"]
            return next((t for t in tasks if t["state"] == "offered" and t["case_id"] == case_id), None)

        wait_until(lambda: offer_for("near"), 15, "the offer to the nearest officer")
        # "near" does not answer; after the accept timeout the offer moves on to "second".
        offer = wait_until(lambda: offer_for("second"), 15 + ACCEPT_TIMEOUT_S, "the offer to the second")
        task = f"{base}/api/v1/field/tasks/{offer['id']}"
        r = httpx.post(f"{task}/accept", headers={**auth["second"], "Idempotency-Key": "e2e-accept-1"})
        assert r.status_code == 200, r.text
        assert httpx.post(f"{task}/arrive", headers=auth["second"]).status_code == 200
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00" + bytes(512) + b"\xff\xd9"
        photo = httpx.post(f"{base}/api/v1/field/photos", content=jpeg, headers=auth["second"]).json()[
            "photo"
        ]
        r = httpx.post(
            f"{task}/resolve", json={"note": "已联系车主挪车", "photo": photo}, headers=auth["second"]
        )
        assert r.status_code == 200, r.text

        def closed() -> dict | None:  # type: ignore[type-arg]
            detail = httpx.get(f"{base}/api/v1/cases/{case_id}", headers=as_staff, timeout=5).json()
            return detail if detail["state"] == "closed" else None

        detail = wait_until(closed, 60, "the camera to see the car gone and the case closed")
        events = [(h["event"], h["actor"]) for h in detail["history"] if h["event"]]
        assert events == [
            ("queued", "dispatch"),
            ("offered", "dispatch"),
            ("offer_expired", "near"),
            ("offered", "dispatch"),
            ("accepted", "second"),
            ("arrived", "second"),
            ("resolved", "second"),
            ("verified", "dispatch"),
        ]
        assert "verified by camera" in detail["history"][-1]["reason"]
        assert [i["state"] for i in detail["incidents"]] == ["ended"]
        sla = httpx.get(f"{base}/api/v1/dispatch/sla", headers=as_staff).json()
        assert sla["overall"]["cases"] == 1 and sla["overall"]["within_limit"] == 1
        assert sla["overall"]["rework_rate"] == 0.0
        assert list(sla["by_officer"]) == ["second"] and list(sla["by_area"]) == ["beat-east"]
        accept = sla["overall"]["stages"]["accept"]["median_s"]
        assert ACCEPT_TIMEOUT_S <= accept < ACCEPT_TIMEOUT_S + 15  # the first offer's timeout counts
        metrics = httpx.get(f"{base}/metrics").text
        assert "gridwarden_dispatch_offers_expired_total 1.0" in metrics
        assert _stop(edge, edge_log) == 0, edge_log.read_text()[-3000:]
        edge = None
    finally:
        for phone in phones:
            phone.client.disconnect()
        if edge is not None and edge.poll() is None:
            edge.kill()
        camera.stop()
        code = _stop(hub, hub_log)
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert code == 0, hub_log.read_text()[-3000:]


def _healthy(hub: subprocess.Popen[bytes], log: Path, base: str) -> bool:
    assert hub.poll() is None, log.read_text()[-3000:]
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
