"""The shipped Mosquitto configuration (configs/mosquitto/) on a real private broker.

Each edge has its own credentials (the dynamic-security file written by
``gridwarden.hub.broker_security``): it publishes only below its own edge id and subscribes only
to its own command topics. Measured on Mosquitto 2.0.11: with MQTT 5 a QoS 1 publish to a denied
topic is answered with a PUBACK whose reason code is 135 "Not authorized"; with MQTT 3.1.1 the
broker acknowledges it as if delivered and drops it. Either way no subscriber receives it, which
is what these tests check (after a later allowed message from the same client has arrived, so
the absence is certain, not a timeout). A denied SUBSCRIBE gets SUBACK 135 (MQTT 5) or 0x80
(MQTT 3.1.1).
"""

from __future__ import annotations

import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gridwarden.contract import Topics
from gridwarden.hub.broker_security import write_document
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT

CONF_DIR = REPO_ROOT / "configs" / "mosquitto"
PASSWORDS = {"edge-01": "pw-edge-01", "edge-02": "pw-edge-02", "hub": "pw-hub"}
NOT_AUTHORIZED = 135
NO_SUBSCRIBERS = 16
SUBACK_FAILURE_311 = 0x80
TIMEOUT = 10.0


def security_conf(users_file: Path) -> str:
    """The security lines of the shipped mosquitto.conf, with the users file swapped for a test one."""
    lines = []
    for line in (CONF_DIR / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "plugin_opt_config_file":
            line = f"plugin_opt_config_file {users_file}"
        elif key not in ("allow_anonymous", "per_listener_settings", "plugin"):
            continue
        lines.append(line)
    assert sorted(ln.split()[0] for ln in lines) == [
        "allow_anonymous",
        "per_listener_settings",
        "plugin",
        "plugin_opt_config_file",
    ]
    return "\n".join(lines)


def start_secured_broker(workdir: Path, passwords: dict[str, str], **kwargs: object) -> MosquittoBroker:
    """A private broker with the shipped security settings and ``passwords`` as its users.

    Started as root, Mosquitto drops to the 'mosquitto' user before it reads the users file, so
    the file and every folder above it must be readable by others (pytest's tmp_path is not)."""
    workdir.chmod(0o755)
    users_file = workdir / "dynamic-security.json"
    write_document(users_file, passwords)
    users_file.chmod(0o644)
    broker = MosquittoBroker(workdir, extra_conf=security_conf(users_file), **kwargs)  # type: ignore[arg-type]
    try:
        broker.start()
    except TimeoutError as exc:
        raise RuntimeError(f"broker did not start:\n{broker.log_path.read_text()}") from exc
    return broker


@pytest.fixture
def secured_broker() -> Iterator[MosquittoBroker]:
    with tempfile.TemporaryDirectory(prefix="gw-mosq-acl-") as tmp:
        broker = start_secured_broker(Path(tmp), PASSWORDS, persistence=False)
        try:
            yield broker
        finally:
            broker.stop()


class Probe:
    """A paho client that waits for its CONNACK, SUBACKs and PUBACKs and queues what it receives."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        protocol: int = mqtt.MQTTv5,
        client_id: str = "",
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.port = port
        self.protocol = protocol
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{user}-{protocol}", protocol=protocol
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._pubacks: dict[int, ReasonCode] = {}
        self._puback_cv = threading.Condition()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_publish = self._on_publish

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._puback_cv:
            self._pubacks[mid] = rc
            self._puback_cv.notify_all()

    def connect(self) -> ReasonCode:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        return self.connack.get(timeout=TIMEOUT)

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        self.client.subscribe([(t, 1) for t in topics])
        return self.subacks.get(timeout=TIMEOUT)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._puback_cv:
            assert self._puback_cv.wait_for(lambda: info.mid in self._pubacks, TIMEOUT), (
                f"no PUBACK for {topic}"
            )
            return self._pubacks[info.mid]

    def receive(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def hub(secured_broker: MosquittoBroker) -> Iterator[Probe]:
    """Subscribed as the real hub subscribes: incidents through a shared subscription, status plain."""
    probe = Probe(secured_broker.port, "hub", PASSWORDS["hub"])
    assert not probe.connect().is_failure
    codes = probe.subscribe(
        f"$share/hub/{Topics.ALL_INCIDENTS}", Topics.ALL_EDGE_STATUS, Topics.ALL_CAMERA_STATUS
    )
    assert [c.value for c in codes] == [1, 1, 1]
    yield probe
    probe.close()


def edge(broker: MosquittoBroker, name: str = "edge-01", **kwargs: object) -> Probe:
    probe = Probe(broker.port, name, PASSWORDS[name], **kwargs)  # type: ignore[arg-type]
    assert not probe.connect().is_failure
    return probe


def test_edge_publishes_under_its_own_id_and_is_refused_elsewhere(
    secured_broker: MosquittoBroker, hub: Probe
) -> None:
    own, other = Topics("north", "edge-01"), Topics("north", "edge-02")
    e1 = edge(secured_broker)
    try:
        for topic in (own.incidents, own.status, own.camera_status("cam-1")):
            assert e1.publish(topic, b"mine").value == 0
            assert hub.receive() == (topic, b"mine")
        # Another edge's topics, also under another site, and the config topic the hub writes.
        for topic in (
            other.incidents,
            other.status,
            other.camera_status("cam-1"),
            Topics("south", "edge-02").incidents,
            own.config,
        ):
            assert e1.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        assert e1.publish(own.incidents, b"sentinel").value == 0
        assert hub.receive() == (own.incidents, b"sentinel"), "a refused publish reached the hub"
    finally:
        e1.close()


def test_mqtt311_publish_to_a_foreign_topic_is_dropped(secured_broker: MosquittoBroker, hub: Probe) -> None:
    e1 = edge(secured_broker, protocol=mqtt.MQTTv311)
    try:
        e1.publish(Topics("north", "edge-02").incidents, b"forged")  # acknowledged, yet dropped
        e1.publish(Topics("north", "edge-01").incidents, b"sentinel")
        assert hub.receive() == (Topics("north", "edge-01").incidents, b"sentinel")
        assert hub.messages.empty()
    finally:
        e1.close()


def test_second_edge_has_its_own_rights(secured_broker: MosquittoBroker, hub: Probe) -> None:
    e2 = edge(secured_broker, "edge-02")
    try:
        assert e2.publish(Topics("north", "edge-01").incidents, b"forged").value == NOT_AUTHORIZED
        assert e2.publish(Topics("north", "edge-02").incidents, b"mine").value == 0
        assert hub.receive() == (Topics("north", "edge-02").incidents, b"mine")
    finally:
        e2.close()


@pytest.mark.parametrize(("user", "password"), [("edge-01", "wrong"), ("nobody", "x"), (None, None)])
def test_unknown_or_anonymous_clients_cannot_connect(
    secured_broker: MosquittoBroker, user: str | None, password: str | None
) -> None:
    probe = Probe(secured_broker.port, user, password)
    try:
        code = probe.connect()
        assert code.is_failure and code.value == NOT_AUTHORIZED
    finally:
        probe.close()


def test_edge_receives_only_its_own_config(secured_broker: MosquittoBroker, hub: Probe) -> None:
    """The broker refuses a subscription to another edge's config or to the incidents, and what
    reaches the edge is its own config only."""
    e1, e2 = edge(secured_broker), edge(secured_broker, "edge-02")
    try:
        codes = e1.subscribe(
            Topics("north", "edge-01").config, Topics("north", "edge-02").config, Topics.ALL_INCIDENTS
        )
        assert [c.value for c in codes] == [1, NOT_AUTHORIZED, NOT_AUTHORIZED]
        assert e2.publish(Topics("north", "edge-02").incidents, b"e2-incident").value == 0
        assert hub.publish(Topics("north", "edge-02").config, b"e2-config").value in (0, NO_SUBSCRIBERS)
        assert hub.publish(Topics("north", "edge-01").config, b"e1-config").value == 0
        # The broker queued anything e1 could read in this order before acknowledging each publish.
        assert e1.receive() == (Topics("north", "edge-01").config, b"e1-config")
        assert e1.messages.empty()
    finally:
        e1.close()
        e2.close()


SHARED_INCIDENTS = f"$share/hub/{Topics.ALL_INCIDENTS}"


@pytest.mark.parametrize(
    "topic",
    [
        SHARED_INCIDENTS,
        "$share/other/gridwarden/v1/#",
        Topics.ALL_INCIDENTS,
        "#",
        "gridwarden/v1/north/edge-02/replay",
    ],
)
def test_edge_cannot_subscribe_to_the_hubs_share_or_foreign_topics_mqtt5(
    secured_broker: MosquittoBroker, topic: str
) -> None:
    e1 = edge(secured_broker)
    try:
        assert [c.value for c in e1.subscribe(topic)] == [NOT_AUTHORIZED]
    finally:
        e1.close()


def test_edge_cannot_subscribe_to_the_hubs_share_mqtt311(secured_broker: MosquittoBroker) -> None:
    """MQTT 3.1.1 has no reason codes: the SUBACK carries 0x80 *Failure* for the refused filter."""
    e1 = edge(secured_broker, protocol=mqtt.MQTTv311)
    try:
        codes = e1.subscribe(SHARED_INCIDENTS, Topics("north", "edge-01").config)
        assert [c.value for c in codes] == [SUBACK_FAILURE_311, 1]
    finally:
        e1.close()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311])
def test_an_edge_in_the_hubs_share_group_takes_no_incidents_away(
    secured_broker: MosquittoBroker, hub: Probe, protocol: int
) -> None:
    """The attack: an edge joins ``$share/hub/...`` so the broker hands it its round-robin share of
    the incidents, which its read rights then drop. Refused at SUBSCRIBE, every incident reaches
    the hub (with the classic acl_file the hub received 4 of 10)."""
    thief = edge(secured_broker, "edge-02", protocol=protocol, client_id=f"thief-{protocol}")
    e1 = edge(secured_broker)
    try:
        thief.subscribe(SHARED_INCIDENTS, f"$share/hub/{Topics('north', 'edge-02').incidents}")
        sent = [b"incident-%d" % i for i in range(20)]
        for payload in sent:
            assert e1.publish(Topics("north", "edge-01").incidents, payload).value == 0
        got = [hub.receive() for _ in sent]
        assert got == [(Topics("north", "edge-01").incidents, p) for p in sent]
        assert thief.messages.empty()
    finally:
        thief.close()
        e1.close()


def test_last_will_only_on_its_own_status_topic(secured_broker: MosquittoBroker, hub: Probe) -> None:
    """The broker publishes a client's will with that client's rights: a will aimed at another
    edge's status (to mark it offline) is dropped; one on its own status topic arrives."""
    forger = edge(
        secured_broker, will=(Topics("north", "edge-02").status, b"forged-offline"), client_id="forger"
    )
    honest = edge(secured_broker, will=(Topics("north", "edge-01").status, b"offline"), client_id="honest")
    for probe in (forger, honest):  # die without DISCONNECT, so the broker sends the wills
        probe.client.socket().close()  # type: ignore[union-attr]
        probe.client.loop_stop()
    assert hub.receive() == (Topics("north", "edge-01").status, b"offline")
    sentinel = edge(secured_broker, client_id="sentinel")
    try:
        assert sentinel.publish(Topics("north", "edge-01").status, b"sentinel").value == 0
        assert hub.receive() == (Topics("north", "edge-01").status, b"sentinel")
    finally:
        sentinel.close()


def test_edge_receives_only_its_own_replay_requests_and_cannot_send_any(
    secured_broker: MosquittoBroker, hub: Probe
) -> None:
    """The hub asks an edge to replay missing events on ``.../<edge_id>/replay``: only that edge
    may read it, and no edge may write a replay topic (it could make another edge flood the
    broker with old events)."""
    own, other = Topics("north", "edge-01"), Topics("north", "edge-02")
    e1, e2 = edge(secured_broker), edge(secured_broker, "edge-02")
    try:
        codes = e1.subscribe(own.replay, other.replay, "gridwarden/v1/+/+/replay")
        assert [c.value for c in codes] == [1, NOT_AUTHORIZED, NOT_AUTHORIZED]
        for topic in (own.replay, other.replay):
            assert e2.publish(topic, b"forged-request").value == NOT_AUTHORIZED, topic
        assert hub.publish(other.replay, b"e2-replay").value in (0, NO_SUBSCRIBERS)
        assert hub.publish(own.replay, b"e1-replay").value == 0
        assert e1.receive() == (own.replay, b"e1-replay")
        assert e1.messages.empty()
    finally:
        e1.close()
        e2.close()


def test_broker_cli_writes_users_the_broker_accepts() -> None:
    """``gridwarden broker set-password`` (password on stdin) writes a file this broker logs in with;
    a name that could widen a topic filter is refused."""
    with tempfile.TemporaryDirectory(prefix="gw-mosq-cli-") as tmp:
        _check_broker_cli(Path(tmp))


def _check_broker_cli(users: Path) -> None:
    cli = [sys.executable, "-m", "gridwarden.cli", "broker"]
    for name, password in (("hub", "pw-hub"), ("edge-01", "pw-e1")):
        done = subprocess.run(
            [*cli, "set-password", name, "--file", str(users / "dynsec.json")],
            input=password + "\n",
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [*cli, "set-password", "edge/+", "--file", str(users / "dynsec.json")],
        input="x\n",
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a valid edge id" in bad.stderr
    shown = subprocess.run(
        [*cli, "show", "--file", str(users / "dynsec.json")], capture_output=True, text=True
    )
    assert shown.stdout.split("\n")[:2] == ["hub hub", "edge-01 edge:edge-01"]
    (users / "dynsec.json").chmod(0o644)
    users.chmod(0o755)
    broker = MosquittoBroker(users, extra_conf=security_conf(users / "dynsec.json"), persistence=False)
    broker.start()
    try:
        e1 = Probe(broker.port, "edge-01", "pw-e1")
        assert not e1.connect().is_failure
        assert e1.publish(Topics("north", "edge-01").incidents, b"x").value in (0, NO_SUBSCRIBERS)
        e1.close()
        wrong = Probe(broker.port, "edge-01", "pw-hub")
        assert wrong.connect().value == NOT_AUTHORIZED
        wrong.close()
    finally:
        broker.stop()
