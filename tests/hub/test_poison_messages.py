"""No message, however hostile, stops ingestion (issue 12 item 1).

One schema-valid event with ``media_time: 1e20`` (or Infinity, year 1, ``seq >= 2**63``) once
killed the writer thread on an OverflowError while ``/healthz`` kept saying "ok", and the broker
redelivered it after every restart. Now the contract bounds such values (rejected as ``schema``),
any message that still cannot be stored becomes a dead letter on its own while the rest of its
batch is stored, and a writer that dies anyway turns ``/healthz`` to 503 and the process exits
non-zero. Real Mosquitto, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlalchemy import func, select

import gridwarden.hub.ingest.storage as ingest_module
from gridwarden.contract import MAX_OBJECTS_PER_EVENT, Topics
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db import Database
from gridwarden.hub.db.models import DeadLetter, ReceivedEvent
from gridwarden.hub.ingest import HubIngestor
from gridwarden.hub.settings import HubSettings
from gridwarden.observability import HubMetrics
from tests.hub.factories import EDGE, SITE, incident_event, topic_of, wire
from tests.hub.mqtt_helpers import Publisher, wait_until
from tests.support.mosquitto import MosquittoBroker
from tests.support.ports import free_port, wait_for_port


def _raw(seq: int, **changes: Any) -> bytes:
    data = json.loads(wire(incident_event(seq=min(seq, 1000), incident_id=f"p{seq % 1000}")))
    data.update(seq=seq, **changes)
    return json.dumps(data).encode()  # json.dumps writes float("inf") as Infinity


def _box(i: int) -> dict[str, Any]:
    return {
        "track_id": i,
        "class_name": "car",
        "confidence": 0.5,
        "box": {"x1": 0.5, "y1": 0.5, "x2": 0.5, "y2": 0.5},
    }


POISON: dict[str, bytes] = {
    "media_time_1e20": _raw(2, media_time=1e20),
    "media_time_infinity": _raw(3, media_time=float("inf")),
    "wall_time_year_1": _raw(4, wall_time="0001-01-01T00:00:00Z"),
    "seq_2_pow_63": _raw(2**63),
    "too_many_objects": _raw(5, objects=[_box(i) for i in range(MAX_OBJECTS_PER_EVENT + 1)]),
    "naive_wall_time": _raw(6, wall_time="2026-11-30T12:00:00"),
}


def _stored_seqs(db: Database, edge: str = EDGE) -> list[int]:
    with db.session() as s:
        return sorted(s.scalars(select(ReceivedEvent.seq).where(ReceivedEvent.edge_id == edge)))


def _dead(db: Database) -> list[DeadLetter]:
    with db.session() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def dead_letter_metric(reason: str) -> float:
    text = generate_latest(HubMetrics().registry).decode()
    line = f'gridwarden_hub_dead_letters_total{{reason="{reason}"}}'
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(line))


@pytest.fixture
def publisher(mosquitto_broker: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto_broker.port)
    yield pub
    pub.close()


@pytest.fixture
def ingestor(db: Database, mosquitto_broker: MosquittoBroker) -> Iterator[HubIngestor]:
    ing = HubIngestor(db=db, mqtt_host="127.0.0.1", mqtt_port=mosquitto_broker.port, client_id="hub-poison")
    ing.start()
    assert ing.wait_ready(15), "hub did not connect and subscribe"
    yield ing
    ing.stop()


@pytest.mark.parametrize("name", sorted(POISON))
def test_an_out_of_range_event_is_a_dead_letter_and_ingestion_goes_on(
    db: Database, ingestor: HubIngestor, publisher: Publisher, name: str
) -> None:
    before = dead_letter_metric("schema")
    other = incident_event(seq=1, incident_id="o1", edge_id="edge-02")
    publisher.publish_all(
        [
            (topic_of(incident_event(seq=1)), wire(incident_event(seq=1))),
            (Topics(SITE, EDGE).incidents, POISON[name]),
            (
                topic_of(incident_event(seq=7, incident_id="g7")),
                wire(incident_event(seq=7, incident_id="g7")),
            ),
            (topic_of(other), wire(other)),
        ]
    )
    wait_until(
        lambda: len(_stored_seqs(db)) == 2 and _stored_seqs(db, "edge-02") == [1], 20, what="good events"
    )
    wait_until(lambda: len(_dead(db)) == 1, 10, what="the dead letter")
    (letter,) = _dead(db)
    assert letter.reason == "schema" and letter.edge_id == EDGE
    assert bytes(letter.payload) == POISON[name] and letter.payload_size == len(POISON[name])
    assert ingestor.failed is None and ingestor.health_problem() is None
    assert dead_letter_metric("schema") == before + 1


def test_a_message_that_makes_storage_raise_is_isolated_not_fatal(
    db: Database, ingestor: HubIngestor, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the contract misses: a message whose storage raises anything (here an injected
    OverflowError for zone 'poison', as year 1 once did) is a dead letter; its batch-mates are stored."""
    real = ingest_module._apply_event

    def fragile(session, ctx, matcher, topic, event, raw, now, received_by):  # type: ignore[no-untyped-def]
        if event.zone == "poison":
            raise OverflowError("date value out of range (injected)")
        return real(session, ctx, matcher, topic, event, raw, now, received_by)

    monkeypatch.setattr(ingest_module, "_apply_event", fragile)
    events = [
        incident_event(seq=n, incident_id=f"s{n}", zone="poison" if n == 3 else "kerb") for n in range(1, 7)
    ]
    publisher.publish_all([(topic_of(e), wire(e)) for e in events])
    wait_until(lambda: _stored_seqs(db) == [1, 2, 4, 5, 6], 20, what="the five good events")
    wait_until(lambda: len(_dead(db)) == 1, 10, what="the dead letter")
    (letter,) = _dead(db)
    assert letter.reason == "storage_error" and "OverflowError" in letter.detail
    assert ingestor.failed is None
    later = incident_event(seq=9, incident_id="s9")
    publisher.publish_all([(topic_of(later), wire(later))])
    wait_until(lambda: 9 in _stored_seqs(db), 10, what="a later event")


def test_dead_letters_are_listed_for_admins_only(
    db: Database, ingestor: HubIngestor, publisher: Publisher, tmp_path: Path
) -> None:
    publisher.publish_all([(Topics(SITE, EDGE).incidents, POISON["media_time_1e20"])])
    wait_until(lambda: len(_dead(db)) == 1, 20, what="the dead letter")
    users = UserStore(db)
    admin, staff = users.create("root", Role.ADMIN)[1], users.create("clerk", Role.STAFF)[1]
    with (
        build_hub(HubSettings(database_url=db.url, evidence_root=str(tmp_path / "ev")), db=db) as hub,
        TestClient(hub.app) as client,
    ):
        page = client.get("/api/v1/dead-letters", headers={"Authorization": f"Bearer {admin}"})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["total"] == 1 and body["items"][0]["reason"] == "schema"
        assert (
            "media_time" in body["items"][0]["detail"]
            and '"media_time": 1e+20' in body["items"][0]["payload"]
        )
        denied = client.get("/api/v1/dead-letters", headers={"Authorization": f"Bearer {staff}"})
        assert denied.status_code == 403


def test_a_dead_writer_makes_healthz_503_and_calls_on_fatal(
    db: Database,
    mosquitto_broker: MosquittoBroker,
    publisher: Publisher,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    def broken(self: HubIngestor, batch: list[Any]) -> None:
        raise SystemError("injected: the writer thread dies")

    monkeypatch.setattr(HubIngestor, "_store_and_ack", broken)
    fatal: list[BaseException] = []
    ing = HubIngestor(
        db=db,
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto_broker.port,
        client_id="hub-dies",
        on_fatal=fatal.append,
    )
    hub = build_hub(HubSettings(database_url=db.url, evidence_root=str(tmp_path / "ev")), db=db)
    hub.app.state.health_checks = [ing.health_problem]
    ing.start()
    try:
        assert ing.wait_ready(15)
        with TestClient(hub.app) as client:
            assert client.get("/healthz").status_code == 200
            publisher.publish_all([(topic_of(incident_event(seq=1)), wire(incident_event(seq=1)))])
            wait_until(lambda: bool(fatal), 10, what="on_fatal")
            assert isinstance(ing.failed, SystemError)
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["workers"] == "failed"
    finally:
        ing.stop()
        hub.stop()


@pytest.mark.slow
def test_hub_serve_exits_non_zero_when_its_writer_dies(tmp_path: Path) -> None:
    """The real ``gridwarden hub serve`` with a fault injected into its writer: /healthz goes 503
    and the process exits with status 1, so systemd's Restart=on-failure brings it back."""
    with tempfile.TemporaryDirectory(prefix="gw-poison-") as tmp:
        broker = MosquittoBroker(Path(tmp))
        broker.start()
        port = free_port()
        script = (
            "import sys\n"
            "from gridwarden.hub.ingest import HubIngestor\n"
            "def broken(self, batch): raise SystemError('injected')\n"
            "HubIngestor._store_and_ack = broken\n"
            "from gridwarden.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n"
        )
        args = ["hub", "serve", "--db", f"sqlite:///{tmp_path / 'hub.db'}", "--mqtt-port", str(broker.port)]
        args += [
            "--port",
            str(port),
            "--evidence-root",
            str(tmp_path / "evidence"),
            "--client-id",
            "hub-exit",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, timeout=60)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            pub = Publisher(broker.port)
            deadline = time.monotonic() + 30
            code = None
            while code is None and time.monotonic() < deadline:
                pub.publish_all([(topic_of(incident_event(seq=1)), wire(incident_event(seq=1)))])
                try:
                    code = proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
            pub.close()
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            assert code == 1, f"exit status {code}\n{output[-3000:]}"
            assert "ingest writer died" in output
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            broker.stop()


def test_the_store_counts_no_rows_for_refused_messages(
    db: Database, ingestor: HubIngestor, publisher: Publisher
) -> None:
    """Dead letters do not leak into received_events (a later replay of the real event is stored)."""
    publisher.publish_all([(Topics(SITE, EDGE).incidents, POISON["seq_2_pow_63"])])
    wait_until(lambda: len(_dead(db)) == 1, 20, what="the dead letter")
    with db.session() as s:
        assert (s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0) == 0


def test_a_nul_character_is_a_schema_rejection_that_does_not_poison_its_batch(
    db: Database, ingestor: HubIngestor, publisher: Publisher
) -> None:
    """PostgreSQL stores neither NUL in text nor ``\\u0000`` in jsonb: such a payload is refused
    at validation, so its batch-mates commit in the same batch without a single database error."""
    nul = _raw(3, zone="kerb\u0000a")
    assert b"\\u0000" in nul
    goods = [incident_event(seq=n, incident_id=f"n{n}") for n in (1, 2, 4, 5)]
    publisher.publish_all(
        [
            (topic_of(goods[0]), wire(goods[0])),
            (topic_of(goods[1]), wire(goods[1])),
            (Topics(SITE, EDGE).incidents, nul),
        ]
        + [(topic_of(e), wire(e)) for e in goods[2:]]
    )
    wait_until(lambda: _stored_seqs(db) == [1, 2, 4, 5], 20, what="the four good events")
    wait_until(lambda: len(_dead(db)) == 1, 10, what="the dead letter")
    assert _dead(db)[0].reason == "schema" and "NUL" in _dead(db)[0].detail
    assert ingestor.stats()["db_errors"] == 0
