"""``gridwarden hub serve`` as a real process: API, MQTT ingest and webhooks together; SIGTERM stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridwarden.contract import Topics
from gridwarden.hub.auth import UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.hub.factories import SITE, edge_status, incident_event, topic_of, wire
from tests.hub_api.test_webhooks import SECRET, Receiver
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port


def _wait(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _publish(port: int, messages: list[tuple[str, bytes, bool]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-edge-01", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_hub_serve_runs_api_ingest_and_webhooks_and_stops_on_sigterm(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database.open(db_url)
    _, token = UserStore(db).create("olga", "staff")
    db.dispose()
    (tmp_path / "webhook.secret").write_text(SECRET.decode() + "\n")
    receiver = Receiver(free_port(), fail_first=1)
    api_port = free_port()
    log_path = tmp_path / "hub.log"
    command = [
        sys.executable, "-m", "gridwarden.hub.serve_cli", "--db", db_url,
        "--mqtt-host", "127.0.0.1", "--mqtt-port", str(mosquitto_broker.port),
        "--host", "127.0.0.1", "--port", str(api_port), "--client-id", "hub-serve-test",
        "--webhook-url", receiver.url, "--webhook-secret-file", str(tmp_path / "webhook.secret"),
        "--webhook-backoff-s", "0.2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(healthy, 30, "the hub's health check")
        started = incident_event(seq=1, incident_id="serve-1")
        _publish(
            mosquitto_broker.port,
            [
                (Topics(SITE, "edge-01").status, wire(edge_status()), True),
                (topic_of(started), wire(started), False),
            ],
        )

        def one_case() -> list:
            return httpx.get(f"{base}/api/v1/cases", headers=headers, timeout=5).json()["items"]

        (case,) = _wait(one_case, 20, "the published incident to become a case")
        for to in ("in_review", "confirmed"):
            response = httpx.post(
                f"{base}/api/v1/cases/{case['id']}/transitions", json={"to": to}, headers=headers, timeout=5
            )
            assert response.status_code == 200, response.text
        receiver.wait_for(lambda reqs: any(r.status == 200 for r in reqs), timeout=20)
        delivered = receiver.requests[-1]
        assert verify_signature(
            SECRET, delivered.body, delivered.headers[SIGNATURE_HEADER], delivered.headers[TIMESTAMP_HEADER]
        )
        assert json.loads(delivered.body)["event"]["actor"] == "olga"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        receiver.close()
    log_text = log_path.read_text()
    assert "hub stopped" in log_text and "Traceback" not in log_text, log_text
