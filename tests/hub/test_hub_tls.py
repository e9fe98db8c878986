"""The hub reaches a TLS-only broker that requires client certificates, through the one MQTT
client factory the edge uses too (before it, only the edge could use TLS)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import ReceivedEvent
from gridwarden.hub.ingest import HubIngestor
from gridwarden.mqtt import MqttSettings, make_client
from tests.hub.factories import incident_event, topic_of, wire
from tests.outbox.conftest import tls_broker  # noqa: F401 - fixture
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import wait_until


def _stored(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0)


def test_hub_ingests_and_publishes_over_tls_with_a_client_certificate(
    db: Database,
    tls_broker: tuple[MosquittoBroker, Path],  # noqa: F811
) -> None:
    broker, pki = tls_broker
    tls = {
        "tls_ca": str(pki / "ca.pem"),
        "tls_cert": str(pki / "client.pem"),
        "tls_key": str(pki / "client.key"),
    }
    ingestor = HubIngestor(db=db, mqtt_host="127.0.0.1", mqtt_port=broker.port, client_id="hub-tls", **tls)
    publisher = ConfigPublisher(host="127.0.0.1", port=broker.port, timeout_s=10.0, **tls)
    edge = make_client(MqttSettings(port=broker.port, **tls), client_id="edge-tls")
    ingestor.start()
    try:
        assert ingestor.wait_ready(15), "the hub did not connect over TLS"
        assert publisher.connect(), "the hub's config publisher did not connect over TLS"
        edge.connect("127.0.0.1", broker.port)
        edge.loop_start()
        event = incident_event(seq=1)
        edge.publish(topic_of(event), wire(event), qos=1).wait_for_publish(10)
        wait_until(lambda: _stored(db) == 1, 20, "the event stored")
    finally:
        edge.disconnect()
        edge.loop_stop()
        publisher.close()
        ingestor.stop()


def test_a_hub_that_does_not_trust_the_broker_never_connects(
    db: Database,
    tls_broker: tuple[MosquittoBroker, Path],  # noqa: F811
) -> None:
    broker, pki = tls_broker
    ingestor = HubIngestor(
        db=db,
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        client_id="hub-untrusting",
        tls_ca=str(pki / "other-ca.pem"),
        tls_cert=str(pki / "client.pem"),
        tls_key=str(pki / "client.key"),
    )
    ingestor.start()
    try:
        assert not ingestor.wait_ready(3)
        time.sleep(0.2)
        assert ingestor.stats()["connects"] == 0
    finally:
        ingestor.stop()
