"""The edge follows its config topic: a PUT on the hub reaches it, an invalid message published
directly on the topic is rejected and the last good configuration stays, old versions are ignored,
and the last good version survives a restart."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from gridwarden.contract import EdgeConfigMessage, Topics, utcnow
from gridwarden.edge.config import EdgeConfig
from gridwarden.edge.transport.config_sync import ConfigSync, load_last_good
from gridwarden.edge.transport.publisher import MqttSettings
from tests.config_sync.conftest import EDGE, SITE, auth, edge_yaml, zone_yaml
from tests.support.mosquitto import MosquittoBroker

URL = f"/api/v1/edges/{EDGE}/config"
BOWTIE = "[[0.0, 0.5], [1.0, 1.0], [1.0, 0.5], [0.0, 1.0]]"


class Received:
    def __init__(self) -> None:
        self.calls: list[tuple[EdgeConfig, int]] = []
        self.cond = threading.Condition()

    def __call__(self, config: EdgeConfig, version: int) -> None:
        with self.cond:
            self.calls.append((config, version))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.calls) >= count, timeout)


def _publish_raw(broker: MosquittoBroker, payload: str) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder-test", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(Topics(SITE, EDGE).config, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _message(version: int, text: str) -> str:
    return EdgeConfigMessage(
        edge_id=EDGE,
        version=version,
        yaml=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        author="test",
        wall_time=utcnow(),
    ).model_dump_json()


def test_put_reaches_the_edge_and_invalid_messages_are_rejected(
    client: TestClient, tokens: dict[str, str], mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    received = Received()
    state = tmp_path / "edge-config"
    sync = ConfigSync(SITE, EDGE, MqttSettings(port=mosquitto_broker.port), received, state)
    try:
        assert sync.start(wait_s=5.0), "config sync did not subscribe"
        text = edge_yaml(zone_yaml("kerb-a"), zone_yaml("kerb-b"))
        t0 = time.monotonic()
        r = client.put(URL, json={"yaml": text, "comment": "two kerbs"}, headers=auth(tokens["integrator"]))
        assert r.status_code == 200 and r.json()["published"] is True
        assert received.wait_for(1, timeout=5.0), "the edge did not get the configuration within 5 s"
        latency = time.monotonic() - t0
        config, version = received.calls[0]
        assert version == 1 and [z.id for z in config.cameras[0].zones] == ["kerb-a", "kerb-b"]
        assert _wait(lambda: sync.running_version == 1)  # set just after on_config returns
        assert (state / "config-v1.yaml").read_text() == text

        # Invalid YAML content, sent straight to the topic (bypassing the hub's checks).
        _publish_raw(mosquitto_broker, _message(2, edge_yaml(zone_yaml("kerb-a", polygon=BOWTIE))))
        assert _wait(lambda: sync.seen >= 2)
        assert sync.rejected == 1 and sync.last_rejected is not None and sync.last_rejected.version == 2
        assert "self-intersecting" in sync.last_rejected.problems[0]
        # Garbage, then a stale version.
        _publish_raw(mosquitto_broker, "not json")
        _publish_raw(mosquitto_broker, _message(1, edge_yaml(zone_yaml("kerb-z"))))
        assert _wait(lambda: sync.seen >= 4)
        assert sync.rejected == 2 and sync.applied == 1
        assert received.wait_for(2, timeout=0.5) is False, "nothing invalid or old may be applied"
        assert sync.running_version == 1
        last = load_last_good(state)
        assert (
            last is not None
            and last[1] == 1
            and [z.id for z in last[0].cameras[0].zones] == ["kerb-a", "kerb-b"]
        )
        assert not (state / "config-v2.yaml").exists()
    finally:
        sync.stop()
    print(f"hub PUT -> edge on_config: {latency * 1000:.0f} ms")


def test_rejection_names_every_problem(tmp_path: Path) -> None:
    received = Received()
    sync = ConfigSync(SITE, EDGE, MqttSettings(port=1), received, tmp_path)  # never started
    assert sync.handle_payload(_message(1, edge_yaml(zone_yaml("kerb-a")))) == "applied"
    bad = edge_yaml(zone_yaml("kerb-a", polygon=BOWTIE, dwell_s=-1))
    assert sync.handle_payload(_message(2, bad)) == "rejected"
    assert sync.last_rejected is not None and sync.last_rejected.version == 2
    fields = [p.split(": ")[1] for p in sync.last_rejected.problems]
    assert fields == ["cameras[0].zones[0].polygon", "cameras[0].zones[0].rules[0].dwell_s"]
    assert all(p.startswith("config-v2.yaml:") for p in sync.last_rejected.problems)
    assert sync.handle_payload(_message(1, edge_yaml(zone_yaml("kerb-b")))) == "ignored"
    tampered = json.loads(_message(3, edge_yaml(zone_yaml("kerb-c"))))
    tampered["yaml"] += "# changed\n"
    assert sync.handle_payload(json.dumps(tampered).encode()) == "rejected"
    assert [v for _, v in received.calls] == [1]

    # A restart resumes from the last good version and still ignores what it already runs.
    again = ConfigSync(SITE, EDGE, MqttSettings(port=1), received, tmp_path)
    assert again.running_version == 1
    assert again.handle_payload(_message(1, edge_yaml(zone_yaml("kerb-a")))) == "ignored"


def test_a_version_the_edge_cannot_apply_is_rejected_and_not_kept(tmp_path: Path) -> None:
    applied: list[int] = []

    def on_config(config: EdgeConfig, version: int) -> None:
        if version == 2:
            raise ValueError("unknown class or group 'car'")
        applied.append(version)

    sync = ConfigSync(SITE, EDGE, MqttSettings(port=1), on_config, tmp_path)
    assert sync.handle_payload(_message(1, edge_yaml(zone_yaml("kerb-a")))) == "applied"
    assert sync.handle_payload(_message(2, edge_yaml(zone_yaml("kerb-b")))) == "rejected"
    assert sync.last_rejected is not None and "could not be applied" in sync.last_rejected.problems[0]
    assert sync.running_version == 1 and applied == [1]
    last = load_last_good(tmp_path)
    assert last is not None and last[1] == 1 and not (tmp_path / "config-v2.yaml").exists()
    assert sync.handle_payload(_message(3, edge_yaml(zone_yaml("kerb-c")))) == "applied"
    assert applied == [1, 3]
