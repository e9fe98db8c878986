"""The MQTT consumer against a private real Mosquitto, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gridwarden.contract import MAX_PAYLOAD_BYTES, Topics
from gridwarden.hub.db import Database
from gridwarden.hub.db.models import Edge, Incident, ReceivedEvent, RejectedMessage
from gridwarden.hub.ingest import HubIngestor
from tests.hub.factories import EDGE, SITE, edge_status, incident_event, incident_stream, topic_of, wire
from tests.hub.mqtt_helpers import HubProcess, Publisher, wait_until


def _stored(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0


def _stored_keys(db: Database) -> list[tuple[str, int]]:
    with db.session() as s:
        return sorted(s.execute(select(ReceivedEvent.edge_id, ReceivedEvent.seq)).all())


@pytest.fixture
def publisher(mosquitto_broker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto_broker.port)
    yield pub
    pub.close()


@pytest.fixture
def ingestor(db: Database, mosquitto_broker) -> Iterator[HubIngestor]:
    ing = HubIngestor(db=db, mqtt_host="127.0.0.1", mqtt_port=mosquitto_broker.port, client_id="hub-test")
    ing.start()
    assert ing.wait_ready(15), "hub did not connect and subscribe"
    yield ing
    ing.stop()


def test_malformed_messages_are_rejected_and_the_consumer_keeps_going(
    db: Database, ingestor: HubIngestor, publisher: Publisher
) -> None:
    topics = Topics(SITE, EDGE)
    bad = [
        (topics.incidents, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"),
        (topics.incidents, b"not json at all"),
        (topics.incidents, b'{"type": "incident", "seq": 3}'),
        (Topics(SITE, "edge-77").incidents, wire(incident_event(seq=4))),
        (topics.camera_status("cam-1"), wire(incident_event(seq=5))),
    ]
    good = [incident_event(seq=n, incident_id=f"g{n}") for n in (10, 11, 12)]
    publisher.publish_all([bad[0], (topic_of(good[0]), wire(good[0])), *bad[1:]])
    publisher.publish_all([(topic_of(e), wire(e)) for e in good[1:]])

    wait_until(lambda: ingestor.stats()["received"] >= 8, 20, what="all messages consumed")
    stats = ingestor.stats()
    assert stats["rejected_by_reason"] == {
        "oversized": 1, "not_json": 1, "schema": 1, "edge_mismatch": 1, "wrong_topic": 1,
    }  # fmt: skip
    assert stats["stored"] == 3
    assert _stored_keys(db) == [(EDGE, 10), (EDGE, 11), (EDGE, 12)]
    with db.session() as s:
        assert {r.reason: r.count for r in s.scalars(select(RejectedMessage))} == stats["rejected_by_reason"]


_POISON_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON incidents WHEN NEW.zone = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'zone poison refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.zone = 'poison' THEN RAISE EXCEPTION 'zone poison refused'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON incidents FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ],
}
_POISON_CLEANUP = {
    "sqlite": ["DROP TRIGGER IF EXISTS refuse_poison"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS refuse_poison ON incidents",
        "DROP FUNCTION IF EXISTS refuse_poison()",
    ],
}


def test_a_message_the_database_refuses_is_isolated_and_the_rest_stored(
    db: Database, ingestor: HubIngestor, publisher: Publisher
) -> None:
    """A valid message that the database refuses (here a trigger stands in for any such failure)
    must not block the messages batched with it, nor the stream after it."""
    with db.engine.begin() as conn:
        for sql in _POISON_TRIGGER[db.dialect]:
            conn.exec_driver_sql(sql)
    try:
        events = [
            incident_event(seq=n, incident_id=f"i{n}", zone="poison" if n == 3 else "kerb-a")
            for n in range(1, 7)
        ]
        publisher.publish_all([(topic_of(e), wire(e)) for e in events])
        wait_until(lambda: ingestor.stats()["received"] >= 6, 30, what="all consumed")
        stats = ingestor.stats()
        assert stats["rejected_by_reason"] == {"storage_error": 1} and stats["stored"] == 5
        assert _stored_keys(db) == [(EDGE, n) for n in (1, 2, 4, 5, 6)]
        with db.session() as s:
            assert "poison" in s.get(RejectedMessage, "storage_error").last_detail
    finally:
        with db.engine.begin() as conn:
            for sql in _POISON_CLEANUP[db.dialect]:
                conn.exec_driver_sql(sql)


@pytest.mark.slow
def test_hundreds_of_qos1_events_are_stored_exactly_once(
    db: Database, mosquitto_broker, publisher: Publisher
) -> None:
    # A retained status published before the hub exists still reaches it.
    publisher.publish_all([(Topics(SITE, EDGE).status, wire(edge_status()))], retain=True)
    ing = HubIngestor(db=db, mqtt_host="127.0.0.1", mqtt_port=mosquitto_broker.port, client_id="hub-1")
    ing.start()
    try:
        assert ing.wait_ready(15)
        events = incident_stream(330)
        pairs = [(topic_of(e), wire(e)) for e in events]
        publisher.publish_all(pairs)
        publisher.publish_all(pairs[100:150])  # an edge retrying after a lost PUBACK
        wait_until(lambda: ing.stats()["received"] >= 381, 60, what="all events consumed")
    finally:
        ing.stop()
    stats = ing.stats()
    assert (stats["stored"], stats["duplicates"], stats["gaps"]) == (330, 50, 0)
    assert _stored_keys(db) == [(EDGE, n) for n in range(1, 331)]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 110
        assert s.get(Edge, EDGE) is not None


@pytest.mark.slow
def test_hub_killed_mid_stream_loses_nothing_and_duplicates_nothing(
    db_url: str, db: Database, mosquitto_broker, publisher: Publisher, tmp_path: Path
) -> None:
    events = incident_stream(600)
    pairs = [(topic_of(e), wire(e)) for e in events]
    hub = HubProcess(db_url, mosquitto_broker.port, "hub-1", tmp_path).start()
    # The edge keeps publishing (300/s for two seconds) while the hub is killed and comes back.
    sender = threading.Thread(target=publisher.publish_all, args=(pairs,), kwargs={"rate_per_s": 300})
    try:
        sender.start()
        wait_until(lambda: _stored(db) >= 100, 30, what="hub storing")
        hub.kill()  # SIGKILL: no chance to finish a batch or acknowledge anything
        at_kill = _stored(db)
        assert at_kill < 500, "the kill must land mid-stream"
        sender.join(30)  # what is published now is queued by the broker for the hub's session
        hub.start()
        wait_until(lambda: _stored(db) >= 600, 60, what="all 600 stored after restart")
        stats = hub.terminate()
    finally:
        hub.stop_quietly()
    assert _stored_keys(db) == [(EDGE, n) for n in range(1, 601)]
    assert stats["stored"] == 600 - at_kill
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 200


@pytest.mark.slow
def test_two_hub_processes_share_the_stream(
    db_url: str, db: Database, mosquitto_broker, publisher: Publisher, tmp_path: Path
) -> None:
    publisher.publish_all([(Topics(SITE, EDGE).status, wire(edge_status()))], retain=True)
    hubs = [HubProcess(db_url, mosquitto_broker.port, f"hub-{n}", tmp_path) for n in (1, 2)]
    try:
        for hub in hubs:
            hub.start()
        streams = [incident_stream(240, edge_id=f"edge-{n:02d}") for n in range(1, 3)]
        publisher.publish_all([(topic_of(e), wire(e)) for pair in zip(*streams, strict=True) for e in pair])
        wait_until(lambda: _stored(db) >= 480, 60, what="all 480 stored")
        stats = [hub.terminate() for hub in hubs]
    finally:
        for hub in hubs:
            hub.stop_quietly()
    assert len(_stored_keys(db)) == len(set(_stored_keys(db))) == 480
    stored = [s["stored"] for s in stats]
    assert sum(stored) == 480 and min(stored) > 0, stored
    assert all(s["status"] >= 1 for s in stats), "every hub process must see retained status"
    with db.session() as s:
        by_process = dict(
            s.execute(
                select(ReceivedEvent.received_by, func.count()).group_by(ReceivedEvent.received_by)
            ).all()
        )
    assert by_process == {"hub-1": stored[0], "hub-2": stored[1]}
