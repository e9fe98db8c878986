"""IncidentPublisher against a real Mosquitto, observed by a plain paho subscriber."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gridwarden.contract import CameraStatus, EdgeStatus, IncidentEvent, Topics, utcnow
from gridwarden.edge.transport.outbox import Outbox
from gridwarden.edge.transport.publisher import IncidentPublisher, MqttSettings
from tests.outbox.conftest import PASSWORD, USERNAME
from tests.outbox.events import EDGE_ID, SITE, make_event
from tests.outbox.hub_probe import HubSubscriber, read_retained
from tests.support.mosquitto import MosquittoBroker

TOPICS = Topics(SITE, EDGE_ID)


def _publisher(outbox: Outbox, port: int, **settings: object) -> IncidentPublisher:
    return IncidentPublisher(
        site=SITE, edge_id=EDGE_ID, outbox=outbox, mqtt=MqttSettings(port=port, **settings), inflight=20
    )


def test_publishes_in_seq_order_removes_on_puback_and_manages_status(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    hub = HubSubscriber(persistent_broker.port, [TOPICS.incidents], client_id="hub-inorder")
    hub.start()
    outbox = Outbox(tmp_path / "o.db")
    for i in range(30):  # a backlog from before the publisher started
        outbox.enqueue(make_event(i))
    publisher = _publisher(outbox, persistent_broker.port)
    publisher.start()
    try:
        assert publisher.wait_connected(10), publisher.last_error
        for i in range(30, 120):
            assert publisher.publish_incident(make_event(i)).seq == i + 1
        assert publisher.wait_drained(20)
        assert outbox.depth() == 0

        hub.wait_for(lambda: len(hub.snapshot()) >= 120, 10, "120 incidents")
        events = [IncidentEvent.model_validate_json(m.payload) for m in hub.snapshot()]
        assert [e.seq for e in events] == list(range(1, 121))  # one connection: no duplicates, in order
        assert all(e.edge_id == EDGE_ID for e in events)

        online = EdgeStatus.model_validate_json(read_retained(persistent_broker.port, TOPICS.status) or b"{}")
        assert online.online is True and online.edge_id == EDGE_ID and online.site == SITE

        for state in ("connecting", "online"):
            publisher.publish_camera_status(
                CameraStatus(edge_id=EDGE_ID, camera="cam-1", state=state, wall_time=utcnow())  # type: ignore[arg-type]
            )
        deadline = time.monotonic() + 10
        latest = None
        while time.monotonic() < deadline:
            latest = read_retained(persistent_broker.port, TOPICS.camera_status("cam-1"), timeout=1)
            if latest and json.loads(latest)["state"] == "online":
                break
        assert latest is not None and CameraStatus.model_validate_json(latest).state == "online"

        with pytest.raises(ValueError, match="another|given to the publisher"):
            publisher.publish_incident(make_event(0, edge_id="edge-99"))
    finally:
        publisher.stop(timeout=5)
        hub.stop()
    # A clean stop marks the edge offline itself (the Last Will is only for crashes).
    offline = read_retained(persistent_broker.port, TOPICS.status)
    assert offline is not None and EdgeStatus.model_validate_json(offline).online is False
    outbox.close()


def test_events_enqueued_while_the_broker_is_unreachable_wait_in_the_outbox(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    outbox = Outbox(tmp_path / "o.db")
    publisher = _publisher(outbox, free_port())  # nothing listens there
    publisher.start()
    try:
        stored = [publisher.publish_incident(make_event(i)) for i in range(5)]
        assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
        assert not publisher.wait_connected(1.5)
        assert publisher.last_error is not None and "cannot connect" in publisher.last_error
        assert outbox.depth() == 5
    finally:
        publisher.stop(timeout=1)
    assert [e.seq for e in outbox.pending()] == [1, 2, 3, 4, 5]
    outbox.close()


def test_wrong_password_is_refused_clearly_and_nothing_is_lost(
    tmp_path: Path, password_broker: MosquittoBroker
) -> None:
    outbox = Outbox(tmp_path / "o.db")
    outbox.enqueue(make_event(0))
    wrong = _publisher(outbox, password_broker.port, username=USERNAME, password="wrong")
    wrong.start()
    try:
        assert not wrong.wait_connected(3)
        assert not wrong.connected()
        assert wrong.last_error is not None
        assert "refused" in wrong.last_error
        assert "Not authorized" in wrong.last_error or "Bad user name or password" in wrong.last_error
        assert "username/password" in wrong.last_error
    finally:
        wrong.stop(timeout=1)
    assert outbox.depth() == 1  # refused edge keeps its events

    right = _publisher(outbox, password_broker.port, username=USERNAME, password=PASSWORD)
    right.start()
    try:
        assert right.wait_connected(10), right.last_error
        assert right.wait_drained(10)
    finally:
        right.stop(timeout=2)
    outbox.close()


def test_tls_with_client_certificate_delivers_and_an_untrusted_broker_is_refused_clearly(
    tmp_path: Path, tls_broker: tuple[MosquittoBroker, Path]
) -> None:
    broker, pki = tls_broker
    outbox = Outbox(tmp_path / "o.db")
    outbox.enqueue(make_event(0))

    untrusting = _publisher(
        outbox,
        broker.port,
        tls_ca=str(pki / "other-ca.pem"),
        tls_cert=str(pki / "client.pem"),
        tls_key=str(pki / "client.key"),
    )
    untrusting.start()
    try:
        assert not untrusting.wait_connected(2)
        assert untrusting.last_error is not None and "certificate verify failed" in untrusting.last_error
    finally:
        untrusting.stop(timeout=1)
    assert outbox.depth() == 1

    trusting = _publisher(
        outbox,
        broker.port,
        tls_ca=str(pki / "ca.pem"),
        tls_cert=str(pki / "client.pem"),
        tls_key=str(pki / "client.key"),
    )
    trusting.start()
    try:
        assert trusting.wait_connected(10), trusting.last_error
        assert trusting.wait_drained(10)  # PUBACK over TLS removed the row
    finally:
        trusting.stop(timeout=2)
    outbox.close()


def test_a_broker_restart_with_a_full_window_in_flight_loses_nothing(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    """The window is full of unacked publishes when the broker goes away: the sender must
    forget them and replay from the outbox on reconnect, not trust paho's memory."""
    hub = HubSubscriber(persistent_broker.port, [TOPICS.incidents], client_id="hub-restart")
    hub.start()
    outbox = Outbox(tmp_path / "o.db", synchronous="NORMAL")
    total = 3000
    for i in range(total):
        outbox.enqueue(make_event(i))
    publisher = _publisher(outbox, persistent_broker.port, reconnect_min_delay=1, reconnect_max_delay=1)
    publisher.start()
    try:
        hub.wait_for(lambda: len(hub.snapshot()) >= 300, 20, "the first 300 events")
        depth_at_outage = outbox.depth()
        persistent_broker.restart()
        assert depth_at_outage > 0, "drained before the restart: the test proved nothing"
        assert publisher.wait_drained(30), f"{outbox.depth()} events still in the outbox"
        hub.wait_for(
            lambda: (
                {IncidentEvent.model_validate_json(m.payload).seq for m in hub.snapshot()}
                >= set(range(1, total + 1))
            ),
            20,
            "every seq at the hub",
        )
    finally:
        publisher.stop(timeout=2)
        hub.stop()
    first_arrival: dict[int, None] = {}
    for m in hub.snapshot():
        first_arrival.setdefault(IncidentEvent.model_validate_json(m.payload).seq, None)
    assert list(first_arrival) == list(range(1, total + 1))  # replay keeps seq order
    outbox.close()
