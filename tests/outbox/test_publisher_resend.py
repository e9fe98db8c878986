"""The publisher answers the hub's replay requests over a real Mosquitto, ignores malformed ones,
and keeps the retained edge status (with ``last_seq``) fresh."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridwarden.contract import EdgeStatus, IncidentEvent, ReplayRequest, Topics, utcnow
from gridwarden.edge.transport.outbox import Outbox
from gridwarden.edge.transport.publisher import IncidentPublisher, MqttSettings
from tests.outbox.events import EDGE_ID, SITE, make_event
from tests.outbox.hub_probe import HubSubscriber, read_retained
from tests.support.mosquitto import MosquittoBroker

TOPICS = Topics(SITE, EDGE_ID)


def _send(port: int, topic: str, payloads: list[bytes]) -> None:
    """Publish QoS 1 from a plain client standing in for the hub, waiting for each PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hub-replay-probe", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _request(from_seq: int, to_seq: int, edge_id: str = EDGE_ID) -> bytes:
    return (
        ReplayRequest(
            edge_id=edge_id, from_seq=from_seq, to_seq=to_seq, requested_by="hub-t", wall_time=utcnow()
        )
        .model_dump_json()
        .encode()
    )


def _seqs(hub: HubSubscriber) -> list[int]:
    return [IncidentEvent.model_validate_json(m.payload).seq for m in hub.snapshot(TOPICS.incidents)]


def test_a_replay_request_resends_that_span_and_malformed_requests_are_ignored(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    port = persistent_broker.port
    hub = HubSubscriber(port, [TOPICS.incidents], client_id="hub-replay")
    hub.start()
    outbox = Outbox(tmp_path / "o.db")
    publisher = IncidentPublisher(
        site=SITE, edge_id=EDGE_ID, outbox=outbox, mqtt=MqttSettings(port=port), status_interval_s=0.5
    )
    publisher.start()
    try:
        assert publisher.wait_connected(10), publisher.last_error
        for i in range(20):
            publisher.publish_incident(make_event(i))
        assert publisher.wait_drained(20)
        hub.wait_for(lambda: len(_seqs(hub)) >= 20, 10, "the first 20 events")
        assert outbox.stored_rows() == 20  # acknowledged, still retained

        _send(
            port,
            TOPICS.replay,
            [
                b"not json",
                b'{"type": "replay_request", "edge_id": "edge-01"}',  # schema: no span
                _request(1, 20, edge_id="edge-02"),  # another edge's id on our topic
                b'{"type": "replay_request", "edge_id": "edge-01", "from_seq": 9, "to_seq": 3, '
                b'"wall_time": "2025-03-01T08:00:00Z"}',  # inverted span
                _request(5, 8),
            ],
        )
        hub.wait_for(lambda: len(_seqs(hub)) >= 24, 10, "the replayed span")
        time.sleep(1.0)  # anything the malformed requests wrongly triggered would arrive now
        assert _seqs(hub) == list(range(1, 21)) + [5, 6, 7, 8]
        assert publisher.resends_served == 1
        assert publisher.wait_drained(10) and outbox.depth() == 0

        # A second request, for a span partly beyond what exists, resends what is there.
        _send(port, TOPICS.replay, [_request(19, 40)])
        hub.wait_for(lambda: len(_seqs(hub)) >= 26, 10, "the second replayed span")
        assert _seqs(hub)[24:] == [19, 20]
        assert publisher.wait_drained(10)

        # The retained status is republished periodically and carries the tail of the stream.
        first = EdgeStatus.model_validate_json(read_retained(port, TOPICS.status) or b"{}")
        time.sleep(1.2)
        second = EdgeStatus.model_validate_json(read_retained(port, TOPICS.status) or b"{}")
        assert first.online and first.last_seq == 20
        assert second.wall_time > first.wall_time and second.last_seq == 20 and second.outbox_depth == 0
    finally:
        publisher.stop(timeout=5)
        hub.stop()
    offline = EdgeStatus.model_validate_json(read_retained(port, TOPICS.status) or b"{}")
    assert offline.online is False and offline.last_seq == 20  # a clean stop tells the tail too
    outbox.close()


def test_a_request_for_rows_still_in_flight_does_not_send_them_twice(
    tmp_path: Path, persistent_broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A replay that rewinds the sender's cursor over rows it has published and not yet had
    acknowledged skips those rows; the acknowledged ones in the span go again, once."""
    port = persistent_broker.port
    hub = HubSubscriber(port, [TOPICS.incidents], client_id="hub-inflight")
    hub.start()
    outbox = Outbox(tmp_path / "o.db", synchronous="NORMAL")
    for i in range(5000):
        outbox.enqueue(make_event(i))
    publisher = IncidentPublisher(site=SITE, edge_id=EDGE_ID, outbox=outbox, mqtt=MqttSettings(port=port))
    publisher.start()
    try:
        caplog.set_level(logging.INFO, logger="gridwarden.edge.transport.publisher")
        hub.wait_for(lambda: len(_seqs(hub)) >= 200, 20, "200 events")
        _send(port, TOPICS.replay, [_request(1, 5000)])
        assert publisher.wait_drained(30)
        hub.wait_for(lambda: publisher.resends_served == 1 and outbox.depth() == 0, 10, "replay served")
        time.sleep(0.5)
    finally:
        publisher.stop(timeout=5)
        hub.stop()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resend 1..5000")]
    resent, in_flight = (int(n) for n in re.findall(r": (\d+) to resend, (\d+) already pending", line)[0])
    assert resent > 0 and in_flight > 0, line  # the request did land mid-stream
    counts = Counter(_seqs(hub))
    assert set(counts) == set(range(1, 5001))
    # Exactly the acknowledged rows went a second time; the pending ones (in flight or not yet
    # sent) went once, although the rewound cursor passed over them again.
    assert sum(1 for n in counts.values() if n == 2) == resent and max(counts.values()) == 2
    outbox.close()
