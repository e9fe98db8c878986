"""The hub acknowledges a message only after its row is committed, and never when storing it
failed (issue 12 items 12 and 14). Checked from the acknowledgement itself, not from timing: at
every PUBACK the hub sends, a separate database connection must already see the message's row.
So the ack-before-commit mutation is caught every run, not 2 runs in 3 as a kill test did.
Real Mosquitto, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gridwarden.hub.db import Database
from gridwarden.hub.db.models import ReceivedEvent
from gridwarden.hub.ingest import HubIngestor
from tests.hub.factories import incident_event, topic_of, wire
from tests.hub.mqtt_helpers import Publisher, wait_until
from tests.support.mosquitto import MosquittoBroker


class AckAudit:
    """Wraps the hub's MQTT client: remembers which (edge, seq) each delivery carried and, at each
    acknowledgement, whether that row was already committed (seen from another connection)."""

    def __init__(self, ingestor: HubIngestor, db: Database) -> None:
        self.db = db
        self.lock = threading.Lock()
        self.keys: dict[int, tuple[str, int]] = {}
        self.acked: list[tuple[str, int]] = []
        self.early: list[tuple[str, int]] = []
        client = ingestor._client
        deliver, ack = client.on_message, client.ack

        def on_message(c: Any, userdata: Any, message: Any) -> None:
            data = json.loads(bytes(message.payload))
            with self.lock:
                self.keys[message.mid] = (data["edge_id"], data["seq"])
            deliver(c, userdata, message)  # type: ignore[misc]

        def audited_ack(mid: int, qos: int) -> Any:
            with self.lock:
                key = self.keys[mid]
            with self.db.session() as session:
                committed = session.scalar(
                    select(ReceivedEvent.seq).where(
                        ReceivedEvent.edge_id == key[0], ReceivedEvent.seq == key[1]
                    )
                )
            with self.lock:
                self.acked.append(key)
                if committed is None:
                    self.early.append(key)
            return ack(mid, qos)

        client.on_message = on_message
        client.ack = audited_ack  # type: ignore[method-assign]


@pytest.fixture
def publisher(mosquitto_broker: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto_broker.port)
    yield pub
    pub.close()


def _ingestor(db: Database, broker: MosquittoBroker) -> HubIngestor:
    return HubIngestor(
        db=db,
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        client_id="hub-acks",
        batch_max=20,
        request_replays=False,
    )


def test_no_message_is_acknowledged_before_its_row_is_committed(
    db: Database, mosquitto_broker: MosquittoBroker, publisher: Publisher
) -> None:
    ingestor = _ingestor(db, mosquitto_broker)
    audit = AckAudit(ingestor, db)
    ingestor.start()
    try:
        assert ingestor.wait_ready(15)
        events = [incident_event(seq=n, incident_id=f"a{n // 10}") for n in range(1, 201)]
        publisher.publish_all([(topic_of(e), wire(e)) for e in events])
        wait_until(lambda: len(audit.acked) >= 200, 30, what="200 acknowledgements")
    finally:
        ingestor.stop()
    assert audit.early == [], f"{len(audit.early)} acknowledged before their commit, e.g. {audit.early[:5]}"
    assert sorted(audit.acked) == sorted((e.edge_id, e.seq) for e in events)


def test_a_message_whose_storage_fails_is_not_acknowledged_until_stored(
    db: Database, mosquitto_broker: MosquittoBroker, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the first attempts (as when it is away): nothing is acknowledged
    meanwhile; once a retry commits, everything is, exactly once."""
    failures = {"left": 3}
    real_store = HubIngestor._store

    def flaky_store(self: HubIngestor, batch: list[Any]) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is away (injected)"))
        return real_store(self, batch)

    monkeypatch.setattr(HubIngestor, "_store", flaky_store)
    ingestor = _ingestor(db, mosquitto_broker)
    audit = AckAudit(ingestor, db)
    ingestor.start()
    try:
        assert ingestor.wait_ready(15)
        events = [incident_event(seq=n, incident_id=f"f{n}") for n in range(1, 6)]
        publisher.publish_all([(topic_of(e), wire(e)) for e in events])
        wait_until(lambda: failures["left"] == 0, 15, what="the injected failures")
        wait_until(lambda: len(audit.acked) >= 5, 30, what="the acknowledgements after the retry")
    finally:
        ingestor.stop()
    assert audit.early == [], f"acknowledged while storing failed: {audit.early}"
    assert sorted(audit.acked) == sorted((e.edge_id, e.seq) for e in events)
