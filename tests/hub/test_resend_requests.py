"""The hub asks edges to replay what it never stored: the planner's rules (pure, driven by a fake
clock), the database view on SQLite and PostgreSQL, one in-process consumer over a real broker,
and two hub processes sharing a stream that must not ask for each other's seqs."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridwarden.contract import EdgeStatus, ReplayRequest, Topics
from gridwarden.hub.db import Database
from gridwarden.hub.ingest import HubIngestor, ingest_batch
from gridwarden.hub.resend_requests import (
    MissingView,
    ResendPlanner,
    ResendRequester,
    ResendSettings,
    StatusNote,
    load_missing,
    merge_spans,
)
from tests.hub.factories import EDGE, SITE, T0, incident_stream, topic_of, wire
from tests.hub.mqtt_helpers import HubProcess, Publisher, wait_until

REPLAY_TOPIC = Topics(SITE, EDGE).replay


def _status(last_seq: int | None, *, online: bool = True, edge_id: str = EDGE, at_s: float = 0) -> EdgeStatus:
    from datetime import timedelta

    return EdgeStatus(
        edge_id=edge_id, site=SITE, online=online, last_seq=last_seq, wall_time=T0 + timedelta(seconds=at_s)
    )


# --------------------------------------------------------------------------- the planner, pure


def test_merge_spans_bridges_small_holes_and_caps_the_span() -> None:
    assert merge_spans([], max_span=10) == []
    assert merge_spans([1, 2, 3, 7, 20], max_span=1000, merge_gap=4) == [(1, 7), (20, 20)]
    assert merge_spans([1, 2, 3, 7], max_span=1000, merge_gap=0) == [(1, 3), (7, 7)]
    assert merge_spans(list(range(1, 2501)), max_span=1000) == [(1, 1000), (1001, 2000), (2001, 2500)]


def test_a_gap_is_requested_after_settling_then_rate_limited_and_forgotten_once_filled() -> None:
    planner = ResendPlanner(ResendSettings(settle_s=2.0, retry_s=5.0, max_retry_s=60.0))
    view = MissingView(EDGE, highest_stored=10, missing=[6, 7])
    assert planner.plan(view, now=100.0) == []  # just noticed: could still be in flight
    assert planner.plan(view, now=101.9) == []
    assert planner.plan(view, now=102.0) == [(6, 7)]
    assert planner.plan(view, now=106.9) == []  # at most once per retry_s
    assert planner.plan(view, now=107.0) == [(6, 7)]
    assert planner.plan(view, now=116.9) == []  # then the wait doubles (10 s)
    assert planner.plan(view, now=117.0) == [(6, 7)]
    assert planner.plan(MissingView(EDGE, 10, [7]), now=118.0) == []  # 6 arrived
    assert not planner.done(EDGE)
    assert planner.plan(MissingView(EDGE, 10, []), now=119.0) == []
    assert planner.done(EDGE)
    # A new hole later is a new hole: settle again, then ask.
    assert planner.plan(MissingView(EDGE, 20, [15]), now=200.0) == []
    assert planner.plan(MissingView(EDGE, 20, [15]), now=202.0) == [(15, 15)]


def test_the_tail_is_requested_only_once_the_stream_stops_moving() -> None:
    planner = ResendPlanner(ResendSettings(settle_s=2.0))
    # The edge says last_seq 15; the hub has stored up to 10 and more keeps arriving.
    assert planner.plan(MissingView(EDGE, 10, [11, 12, 13, 14, 15]), now=0.0) == []
    assert planner.plan(MissingView(EDGE, 12, [13, 14, 15]), now=2.5) == []  # progress at 2.5
    assert planner.plan(MissingView(EDGE, 12, [13, 14, 15]), now=4.4) == []
    assert planner.plan(MissingView(EDGE, 12, [13, 14, 15]), now=4.5) == [(13, 15)]
    # A hole below the highest stored seq does not wait for the stream to stop.
    assert planner.plan(MissingView(EDGE, 30, [20, 31]), now=10.0) == []
    assert planner.plan(MissingView(EDGE, 30, [20]), now=12.0) == [(20, 20)]


def test_no_requests_to_an_offline_edge_and_attempts_restart_when_it_returns() -> None:
    planner = ResendPlanner(ResendSettings(settle_s=0.0, retry_s=1.0, max_retry_s=1.0, max_attempts=2))
    view = MissingView(EDGE, 10, [5])
    assert planner.plan(view, now=0.0) == [(5, 5)]
    assert planner.plan(view, now=1.0) == [(5, 5)]
    assert planner.plan(view, now=2.0) == []  # given up after max_attempts
    assert planner.plan(view, now=50.0) == []
    assert planner.given_up == 1
    planner.note_status(EDGE, online=False, last_seq=None)
    assert planner.plan(view, now=51.0) == []
    planner.note_status(EDGE, online=True, last_seq=12)  # back: worth asking again
    assert planner.plan(view, now=52.0) == [(5, 5)]
    assert planner.edge(EDGE).last_seq == 12
    planner.note_status(EDGE, online=False, last_seq=None)  # the Last Will has no last_seq
    assert planner.edge(EDGE).last_seq == 12


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="settle_s"):
        ResendSettings(retry_s=0)
    with pytest.raises(ValueError, match="max_span"):
        ResendSettings(max_span=0)


# --------------------------------------------------------------------------- against the database


def _ingest(db: Database, messages: list[tuple[str, bytes]]) -> None:
    with db.write_session() as session, session.begin():
        ingest_batch(session, messages, received_by="test")


def test_requester_asks_for_stored_holes_and_the_tail_from_the_database(db: Database) -> None:
    events = incident_stream(12)
    _ingest(db, [(topic_of(e), wire(e)) for e in events if e.seq not in (6, 7)])
    _ingest(db, [(Topics(SITE, EDGE).status, wire(_status(last_seq=15)))])
    sent: list[tuple[str, ReplayRequest]] = []

    def publish(topic: str, payload: bytes) -> bool:
        sent.append((topic, ReplayRequest.model_validate_json(payload)))
        return True

    # A fresh process: it saw nothing itself, yet the database tells it the holes and, through the
    # stored edge status, the tail.
    requester = ResendRequester(
        db, publish, requested_by="hub-t", settings=ResendSettings(settle_s=2.0, merge_gap=0)
    )
    with db.session() as s:
        assert load_missing(s, EDGE, 15) == MissingView(EDGE, 12, [6, 7, 13, 14, 15])
        assert load_missing(s, "edge-unknown", 15) is None  # no baseline: nothing asked
    assert requester.check(now=50.0) == []
    requests = requester.check(now=52.0)
    assert [(r.from_seq, r.to_seq, r.requested_by, r.edge_id) for r in requests] == [
        (6, 7, "hub-t", EDGE),
        (13, 15, "hub-t", EDGE),
    ]
    assert [t for t, _ in sent] == [REPLAY_TOPIC] * 2

    # The edge replays: everything is stored, and the requester stops asking and forgets the edge.
    more = incident_stream(15)
    _ingest(db, [(topic_of(e), wire(e)) for e in more if e.seq in (6, 7, 13, 14, 15)])
    assert requester.check(now=60.0) == [] and requester.check(now=200.0) == []
    assert requester.planner.done(EDGE)

    # A gap noted by the writer thread makes the edge a suspect again without waiting for a sweep.
    _ingest(db, [(topic_of(e), wire(e)) for e in incident_stream(20)[17:]])  # 18..20: 16, 17 missing
    requester.observe([StatusNote(EDGE, topic_of(more[0]), gap=True)])
    assert requester.check(now=201.0) == []
    assert [(r.from_seq, r.to_seq) for r in requester.check(now=203.0)] == [(16, 17)]


# --------------------------------------------------------------------------- over a real broker


class ReplayWatcher:
    """A plain client subscribed to every edge's replay topic, standing in for the edges."""

    def __init__(self, port: int) -> None:
        self.requests: list[tuple[str, ReplayRequest]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe("gridwarden/v1/+/+/replay", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.requests.append((msg.topic, ReplayRequest.model_validate_json(msg.payload)))

    def spans(self) -> list[tuple[int, int]]:
        with self._lock:
            return [(r.from_seq, r.to_seq) for _, r in self.requests]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(mosquitto_broker) -> Iterator[ReplayWatcher]:  # type: ignore[no-untyped-def]
    w = ReplayWatcher(mosquitto_broker.port)
    yield w
    w.close()


def test_consumer_requests_a_gap_and_a_tail_over_mqtt_and_stops_once_filled(
    db: Database, mosquitto_broker, watcher: ReplayWatcher
) -> None:
    settings = ResendSettings(settle_s=0.5, retry_s=1.0, max_retry_s=1.0, check_interval_s=0.1)
    ing = HubIngestor(
        db=db, mqtt_host="127.0.0.1", mqtt_port=mosquitto_broker.port, client_id="hub-replay", resend=settings
    )
    pub = Publisher(mosquitto_broker.port)
    ing.start()
    try:
        assert ing.wait_ready(15)
        events = incident_stream(25)
        pairs = [(topic_of(e), wire(e)) for e in events]
        pub.publish_all(pairs[:10] + pairs[13:20])  # 11..13 lost
        wait_until(lambda: watcher.spans(), 15, what="a replay request for the gap")
        assert watcher.spans()[0] == (11, 13)
        topic, request = watcher.requests[0]
        assert topic == REPLAY_TOPIC and request.requested_by == "hub-replay" and request.edge_id == EDGE
        pub.publish_all(pairs[10:13])  # the edge answers

        # The tail: the edge's status says 25, the hub has 20.
        pub.publish_all([(Topics(SITE, EDGE).status, wire(_status(last_seq=25)))], retain=True)
        wait_until(lambda: (21, 25) in watcher.spans(), 15, what="a replay request for the tail")
        pub.publish_all(pairs[20:])
        wait_until(lambda: ing.stats()["stored"] == 25, 15, what="all 25 stored")
        settled = len(watcher.spans())
        time.sleep(3.0)  # three retry periods: a requester that did not notice the fill asks again
        assert len(watcher.spans()) == settled, watcher.spans()
    finally:
        ing.stop()
        pub.close()
    stats = ing.stats()
    assert stats["resend_requests"] == settled
    assert set(watcher.spans()) == {(11, 13), (21, 25)}  # nothing but the two holes, ever


@pytest.mark.slow
def test_two_hub_processes_do_not_request_each_others_seqs_but_do_request_a_real_hole(
    db_url: str, db: Database, mosquitto_broker, watcher: ReplayWatcher, tmp_path: Path
) -> None:
    """Each process sees about half of every edge's seqs: every other seq is a "gap" to it.
    Deciding from the database (after a settle delay) means no request for those; a seq that
    nobody stored is still asked for, and asking stops once it arrives."""
    pub = Publisher(mosquitto_broker.port)
    hubs = [HubProcess(db_url, mosquitto_broker.port, f"hub-{n}", tmp_path) for n in (1, 2)]
    try:
        for hub in hubs:
            hub.start()
        streams = [incident_stream(300, edge_id=f"edge-{n:02d}") for n in (1, 2)]
        pub.publish_all(
            [
                (Topics(SITE, f"edge-{n:02d}").status, wire(_status(240, edge_id=f"edge-{n:02d}")))
                for n in (1, 2)
            ],
            retain=True,
        )
        interleaved = [e for pair in zip(*(s[:240] for s in streams), strict=True) for e in pair]
        pub.publish_all([(topic_of(e), wire(e)) for e in interleaved], rate_per_s=200)
        wait_until(lambda: _stored(db) >= 480, 60, what="all 480 stored")
        time.sleep(4.0)  # past the settle delay and a check: any spurious request would be out now
        assert watcher.spans() == [], watcher.requests

        # A real hole on edge-01: 241..250 never published, 251..260 are.
        edge1 = streams[0]
        pub.publish_all([(topic_of(e), wire(e)) for e in edge1[250:260]])
        wait_until(lambda: watcher.spans(), 20, what="a request for the real hole")
        time.sleep(1.0)
        first_wave = watcher.spans()
        assert set(first_wave) == {(241, 250)} and 1 <= len(first_wave) <= 2, first_wave  # ≤ one per hub
        pub.publish_all([(topic_of(e), wire(e)) for e in edge1[240:250]])
        wait_until(lambda: _stored(db) >= 500, 30, what="the hole filled")
        settled = len(watcher.spans())
        time.sleep(6.0)  # longer than retry_s (5 s): nobody asks again for what is stored
        assert len(watcher.spans()) == settled
        stats = [hub.terminate() for hub in hubs]
    finally:
        for hub in hubs:
            hub.stop_quietly()
        pub.close()
    assert min(s["stored"] for s in stats) > 0  # both processes took part of the stream
    assert sum(s["resend_requests"] for s in stats) == settled
    assert all(r.edge_id == "edge-01" and t == REPLAY_TOPIC for t, r in watcher.requests)


def _stored(db: Database) -> int:
    from sqlalchemy import func, select

    from gridwarden.hub.db.models import ReceivedEvent

    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0)
