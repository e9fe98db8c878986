"""OwnTracks positions through a real Mosquitto with the shipped security settings: an officer
publishes only under its own name; the hub's consumer stores each fix once."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gridwarden.hub.broker_security import write_document
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import OfficerPosition
from gridwarden.hub.officers.owntracks import OwnTracksConsumer
from gridwarden.hub.officers.roster import OfficerSpec, Roster
from tests.hub_api.test_broker_acl import NOT_AUTHORIZED, Probe, security_conf
from tests.support.mosquitto import MosquittoBroker

EDGES = {"hub": "pw-hub"}
OFFICERS = {"li": "pw-li", "wang": "pw-wang"}


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with tempfile.TemporaryDirectory(prefix="gw-mosq-owntracks-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        users = workdir / "dynamic-security.json"
        write_document(users, EDGES, officers=OFFICERS)
        users.chmod(0o644)
        b = MosquittoBroker(workdir, extra_conf=security_conf(users), persistence=False)  # type: ignore[arg-type]
        b.start()
        try:
            yield b
        finally:
            b.stop()


def location(lat: float, tst: int) -> bytes:
    return json.dumps(
        {"_type": "location", "lat": lat, "lon": 121.47, "tst": tst, "acc": 9, "batt": 80}
    ).encode()


def test_officer_publishes_only_its_own_topic_and_hub_stores_once(
    broker: MosquittoBroker, db: Database
) -> None:
    roster = Roster(db)
    for name in OFFICERS:
        roster.upsert(OfficerSpec(username=name, name=name))
    consumer = OwnTracksConsumer(
        db=db, mqtt_host="127.0.0.1", mqtt_port=broker.port, client_id="hub-owntracks-test",
        username="hub", password=EDGES["hub"], batch_wait_s=0.01,
    )  # fmt: skip
    consumer.start()
    try:
        assert consumer.wait_ready(10)
        li = Probe(broker.port, "li", OFFICERS["li"])
        assert not li.connect().is_failure
        tst = int(time.time()) - 5
        # Posing as another officer is refused by the broker; the own topic is accepted.
        assert li.publish("owntracks/wang/phone", location(31.0, tst)).value == NOT_AUTHORIZED
        assert li.publish("gridwarden/v1/north/edge-01/incidents", b"{}").value == NOT_AUTHORIZED
        assert not li.publish("owntracks/li/phone", location(31.2, tst)).is_failure
        assert not li.publish("owntracks/li/phone", location(31.2, tst)).is_failure  # a resend
        assert not li.publish("owntracks/li/phone", b'{"_type": "waypoint"}').is_failure
        assert not li.publish("owntracks/li/phone", location(31.3, tst + 1)).is_failure
        deadline = time.monotonic() + 10
        while consumer.stats().get("received", 0) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        with db.session() as session:
            rows = session.execute(select(OfficerPosition.lat, OfficerPosition.source)).all()
        assert sorted(rows) == [(31.2, "owntracks"), (31.3, "owntracks")]
        assert roster.by_username("li").lat == 31.3 and roster.by_username("wang").lat is None
        assert consumer.stats()["ignored"] == 1
        li.client.disconnect()
    finally:
        consumer.stop()
