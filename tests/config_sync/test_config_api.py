"""The hub's configuration API: versions with history and diffs, rollback, refusal of invalid
configurations with file:line: field messages, and retained publication on the edge's topic."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from gridwarden.contract import Topics
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import UserStore
from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.config_store import sha256_text
from gridwarden.hub.db.engine import Database
from gridwarden.hub.settings import HubSettings
from tests.config_sync.conftest import EDGE, SITE, auth, edge_yaml, zone_yaml
from tests.support.mosquitto import MosquittoBroker

URL = f"/api/v1/edges/{EDGE}/config"


def _retained(broker: MosquittoBroker, topic: str, wait_s: float = 3.0) -> list[dict]:
    """What a fresh subscriber gets on ``topic`` within ``wait_s`` (the retained message, if any)."""
    got: list[dict] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append({"retain": msg.retain, **json.loads(msg.payload)})
        done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        done.wait(wait_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_versions_history_diff_and_rollback(client: TestClient, tokens: dict[str, str]) -> None:
    integrator = auth(tokens["integrator"])
    v1_text = edge_yaml(zone_yaml("kerb-a"))
    v2_text = edge_yaml(zone_yaml("kerb-a"), zone_yaml("kerb-b", dwell_s=30))

    assert client.get(URL, headers=integrator).status_code == 404
    r1 = client.put(URL, json={"yaml": v1_text, "comment": "first"}, headers=integrator)
    assert r1.status_code == 200, r1.text
    assert r1.json()["version"] == 1 and r1.json()["published"] is True
    r2 = client.put(URL, json={"yaml": v2_text, "comment": "add kerb-b"}, headers=auth(tokens["admin"]))
    assert r2.status_code == 200 and r2.json()["version"] == 2

    current = client.get(URL, headers=integrator).json()
    assert (
        current["version"] == 2 and current["yaml"] == v2_text and current["sha256"] == sha256_text(v2_text)
    )
    assert current["author"] == "admin" and current["comment"] == "add kerb-b"
    assert "+      - id: kerb-b" in current["diff"] and current["published_at"] is not None

    history = client.get(f"{URL}/versions", headers=integrator).json()
    assert [(h["version"], h["author"], h["comment"]) for h in history] == [
        (2, "admin", "add kerb-b"),
        (1, "integrator", "first"),
    ]
    assert client.get(f"{URL}/versions/1", headers=integrator).json()["yaml"] == v1_text
    assert client.get(f"{URL}/versions/9", headers=integrator).status_code == 404

    back = client.post(f"{URL}/rollback", json={"version": 1, "comment": "kerb-b wrong"}, headers=integrator)
    assert back.status_code == 200, back.text
    body = back.json()
    assert body["version"] == 3 and body["rollback_of"] == 1 and body["yaml"] == v1_text
    assert "-      - id: kerb-b" in body["diff"]
    assert client.get(URL, headers=integrator).json()["version"] == 3
    assert client.post(f"{URL}/rollback", json={"version": 42}, headers=integrator).status_code == 404


def test_permissions(client: TestClient, tokens: dict[str, str]) -> None:
    text = edge_yaml()
    assert client.put(URL, json={"yaml": text}).status_code == 401
    assert client.put(URL, json={"yaml": text}, headers=auth(tokens["staff"])).status_code == 403
    assert client.get(URL, headers=auth(tokens["staff"])).status_code == 403
    assert client.put(URL, json={"yaml": text}, headers=auth(tokens["integrator"])).status_code == 200


def test_invalid_configs_are_refused_with_where_and_nothing_is_published(
    client: TestClient, tokens: dict[str, str], mosquitto_broker: MosquittoBroker
) -> None:
    headers = auth(tokens["integrator"])
    bowtie = "[[0.0, 0.5], [1.0, 1.0], [1.0, 0.5], [0.0, 1.0]]"
    cases = {
        "self-intersecting polygon": (
            edge_yaml(zone_yaml("kerb-a"), zone_yaml("kerb-b", polygon=bowtie)),
            "edge-07.yaml:12: cameras[0].zones[1].polygon: edges 1-2 and 3-4 cross",
        ),
        "unknown class": (
            edge_yaml(zone_yaml("kerb-a", classes="[car, hovercraft]")),
            "edge-07.yaml:10: cameras[0].zones[0].rules[0].classes[1]: unknown class or group 'hovercraft'",
        ),
        "dwell out of range": (
            edge_yaml(zone_yaml("kerb-a", dwell_s=0)),
            "edge-07.yaml:10: cameras[0].zones[0].rules[0].dwell_s: Input should be greater than 0",
        ),
        "another edge's file": (
            edge_yaml(edge_id="edge-99"),
            "edge-07.yaml:1: edge_id: this file is for edge 'edge-99', not 'edge-07'",
        ),
    }
    for name, (text, expected) in cases.items():
        r = client.put(URL, json={"yaml": text, "comment": name}, headers=headers)
        assert r.status_code == 422, (name, r.text)
        detail = r.json()["detail"]
        assert detail["error"] == "invalid_config"
        assert any(p.startswith(expected) for p in detail["problems"]), (name, detail["problems"])
    assert client.get(f"{URL}/versions", headers=headers).json() == []
    assert _retained(mosquitto_broker, Topics(SITE, EDGE).config, wait_s=1.5) == []


def test_put_publishes_retained_message(
    client: TestClient, tokens: dict[str, str], mosquitto_broker: MosquittoBroker
) -> None:
    text = edge_yaml(zone_yaml("kerb-a"))
    assert client.put(URL, json={"yaml": text}, headers=auth(tokens["admin"])).status_code == 200
    [message] = _retained(mosquitto_broker, Topics(SITE, EDGE).config)
    assert message["retain"] is True
    assert message["type"] == "edge_config" and message["schema_version"] == 1
    assert (message["edge_id"], message["version"], message["author"]) == (EDGE, 1, "admin")
    assert message["yaml"] == text and message["sha256"] == sha256_text(text)


def test_broker_down_stores_the_version_and_says_it_was_not_sent(
    db: Database, tokens: dict[str, str], mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    publisher = ConfigPublisher(host="127.0.0.1", port=mosquitto_broker.port, timeout_s=1.0)
    assert publisher.connect()
    settings = HubSettings(database_url=db.url, evidence_root=str(tmp_path / "evidence"))
    hub = build_hub(settings, db=db, config_publisher=publisher)
    mosquitto_broker.stop()
    try:
        with TestClient(hub.app) as c:
            r = c.put(URL, json={"yaml": edge_yaml()}, headers=auth(tokens["admin"]))
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["published"] is False and "127.0.0.1" in body["publish_error"]
            assert body["version"] == 1 and body["published_at"] is None
            assert c.get(URL, headers=auth(tokens["admin"])).json()["version"] == 1
    finally:
        hub.stop()
        publisher.close()


def test_raw_yaml_body_is_accepted_with_a_yaml_content_type(
    client: TestClient, tokens: dict[str, str]
) -> None:
    integrator = auth(tokens["integrator"])
    text = edge_yaml(zone_yaml("kerb-a"))
    for media in ("application/yaml", "text/yaml; charset=utf-8"):
        r = client.put(
            f"{URL}?comment=from+curl",
            content=text.encode(),
            headers={**integrator, "Content-Type": media},
        )
        assert r.status_code == 200, r.text
        assert r.json()["yaml"] == text and r.json()["comment"] == "from curl"
    bad = client.put(URL, content=b"edge_id: [", headers={**integrator, "Content-Type": "application/yaml"})
    assert bad.status_code == 422 and "YAML syntax error" in bad.json()["detail"]["problems"][0]
    other = client.put(URL, content=text.encode(), headers={**integrator, "Content-Type": "image/png"})
    assert other.status_code == 415
    huge = client.put(URL, content=b"#" * 900_000, headers={**integrator, "Content-Type": "application/yaml"})
    assert huge.status_code == 413


def test_an_edge_registers_its_running_config_once(
    client: TestClient, db: Database, tokens: dict[str, str], mosquitto_broker: MosquittoBroker
) -> None:
    _, edge_token = UserStore(db).create("edge-box", "edge")
    edge = {**auth(edge_token), "Content-Type": "application/yaml"}
    running = edge_yaml(zone_yaml("kerb-a"))
    r = client.put(f"{URL}/running", content=running.encode(), headers=edge)
    assert r.status_code == 200, r.text
    assert r.json() == {"edge_id": EDGE, "registered": True, "version": 1, "published": True}
    current = client.get(URL, headers=auth(tokens["integrator"])).json()
    assert current["version"] == 1 and current["yaml"] == running and current["author"] == "edge-box"
    [message] = _retained(mosquitto_broker, Topics(SITE, EDGE).config)
    assert message["version"] == 1 and message["yaml"] == running
    # Reconnecting later never overwrites what the hub has (here: an integrator's version 2).
    edited = edge_yaml(zone_yaml("kerb-a"), zone_yaml("kerb-b"))
    assert client.put(URL, json={"yaml": edited}, headers=auth(tokens["integrator"])).json()["version"] == 2
    again = client.put(f"{URL}/running", content=running.encode(), headers=edge)
    assert again.json() == {"edge_id": EDGE, "registered": False, "version": 2, "published": False}
    assert client.get(URL, headers=auth(tokens["integrator"])).json()["yaml"] == edited
    # Only for edges (and configurers); staff may not; an invalid file is refused with where.
    assert (
        client.put(
            f"{URL}/running",
            content=running.encode(),
            headers={**auth(tokens["staff"]), "Content-Type": "application/yaml"},
        ).status_code
        == 403
    )
    wrong = client.put("/api/v1/edges/other-edge/config/running", content=running.encode(), headers=edge)
    assert wrong.status_code == 422, wrong.text
