"""ingest_payload / ingest_batch on a real database (each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gridwarden.contract import MAX_PAYLOAD_BYTES, Topics
from gridwarden.hub.db import Database
from gridwarden.hub.db.models import (
    Camera,
    Case,
    Edge,
    EdgeSequence,
    Incident,
    ReceivedEvent,
    RejectedMessage,
)
from gridwarden.hub.ingest import Outcome, RejectReason, ingest_batch, ingest_payload
from tests.hub.factories import EDGE, SITE, T0, camera_status, edge_status, incident_event, topic_of, wire

NOW = T0 + timedelta(minutes=5)


def _ingest(db: Database, *events_or_pairs, now=NOW):
    pairs = [(topic_of(e), wire(e)) if not isinstance(e, tuple) else e for e in events_or_pairs]
    with db.write_session() as s, s.begin():
        return ingest_batch(s, pairs, now=now)


def _count(db: Database, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_redelivered_message_changes_nothing(db: Database) -> None:
    started = incident_event(seq=1)
    updated = incident_event(seq=2, event="updated", at_s=30, box=(0.12, 0.1, 0.32, 0.3))
    first = _ingest(db, started, updated)
    assert [r.outcome for r in first] == [Outcome.STORED, Outcome.STORED]
    with db.session() as s:
        before = s.get(Incident, "inc-1")
        before_state = (before.event_count, before.last_seq, before.objects, before.updated_at)

    again = _ingest(db, updated, started, now=NOW + timedelta(minutes=1))

    assert [r.outcome for r in again] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert _count(db, ReceivedEvent) == 2
    assert _count(db, Case) == 1
    with db.session() as s:
        after = s.get(Incident, "inc-1")
        assert (after.event_count, after.last_seq, after.objects, after.updated_at) == before_state
        assert s.get(EdgeSequence, EDGE).duplicates == 2


def test_duplicate_within_one_batch_is_stored_once(db: Database) -> None:
    e = incident_event(seq=1)
    results = _ingest(db, e, e)
    assert [r.outcome for r in results] == [Outcome.STORED, Outcome.DUPLICATE]
    assert _count(db, ReceivedEvent) == 1


def test_single_message_api_returns_the_case(db: Database) -> None:
    e = incident_event(seq=1)
    with db.write_session() as s, s.begin():
        result = ingest_payload(s, topic_of(e), wire(e), now=NOW)
    assert result.outcome is Outcome.STORED and result.case_how == "opened"
    with db.session() as s:
        assert s.get(Case, result.case_id).camera == "cam-1"


def test_updated_after_ended_does_not_reopen(db: Database) -> None:
    _ingest(db, incident_event(seq=1), incident_event(seq=3, event="ended", at_s=90))
    # The update (seq 2) was sent before the end but arrives after it, e.g. as a redelivery.
    late = _ingest(db, incident_event(seq=2, event="updated", at_s=45, box=(0.5, 0.5, 0.6, 0.6)))
    assert late[0].outcome is Outcome.STORED and late[0].late
    with db.session() as s:
        inc = s.get(Incident, "inc-1")
        assert inc.state == "ended"
        assert inc.ended_at == T0 + timedelta(seconds=90)
        assert inc.last_seq == 3
        assert inc.objects[0]["box"]["x1"] == pytest.approx(0.1)  # the older update did not overwrite
        assert inc.event_count == 3


def test_ended_first_then_started_creates_an_ended_incident(db: Database) -> None:
    _ingest(db, incident_event(seq=5, event="ended", at_s=90))
    _ingest(db, incident_event(seq=4, event="started"))
    with db.session() as s:
        inc = s.get(Incident, "inc-1")
        assert inc.state == "ended"
        assert inc.started_at == T0


def test_started_time_is_estimated_when_the_started_event_is_missing(db: Database) -> None:
    _ingest(db, incident_event(seq=1, event="updated", at_s=40))
    with db.session() as s:
        assert s.get(Incident, "inc-1").started_at == T0


def test_gap_detected_and_filled(db: Database) -> None:
    r = _ingest(db, *(incident_event(seq=n, incident_id=f"i{n}") for n in (10, 11, 14)))
    assert [x.gap for x in r] == [(), (), ((12, 13),)]  # one span, however long
    with db.session() as s:
        seq = s.get(EdgeSequence, EDGE)
        assert (seq.highest_seen_seq, seq.highest_contiguous_seq, seq.missing, seq.gaps_seen) == (
            14,
            11,
            [[12, 13]],
            1,
        )

    filled = _ingest(db, incident_event(seq=12, incident_id="i12"))
    assert filled[0].late and not filled[0].gap
    with db.session() as s:
        seq = s.get(EdgeSequence, EDGE)
        assert (seq.highest_contiguous_seq, seq.missing) == (12, [[13, 13]])

    _ingest(db, incident_event(seq=13, incident_id="i13"), incident_event(seq=15, incident_id="i15"))
    with db.session() as s:
        seq = s.get(EdgeSequence, EDGE)
        assert (seq.highest_contiguous_seq, seq.highest_seen_seq, seq.missing, seq.late_filled) == (
            15,
            15,
            [],
            2,
        )


def test_sequences_are_tracked_per_edge(db: Database) -> None:
    r = _ingest(
        db,
        incident_event(seq=1, incident_id="a1"),
        incident_event(seq=1, incident_id="b1", edge_id="edge-02"),
        incident_event(seq=3, incident_id="b3", edge_id="edge-02"),
    )
    assert [x.outcome for x in r] == [Outcome.STORED] * 3
    assert r[2].gap == ((2, 2),)


MALFORMED = [
    (
        "oversized",
        Topics(SITE, EDGE).incidents,
        b"{" + b" " * MAX_PAYLOAD_BYTES + b"}",
        RejectReason.OVERSIZED,
    ),
    ("not json", Topics(SITE, EDGE).incidents, b"\x00\xffnot json", RejectReason.NOT_JSON),
    ("truncated json", Topics(SITE, EDGE).incidents, wire(incident_event(seq=1))[:-5], RejectReason.NOT_JSON),
    (
        "missing field",
        Topics(SITE, EDGE).incidents,
        json.dumps({"type": "incident", "seq": 1}).encode(),
        RejectReason.SCHEMA,
    ),
    ("json array", Topics(SITE, EDGE).incidents, b"[1, 2]", RejectReason.SCHEMA),
    (
        "negative seq",
        Topics(SITE, EDGE).incidents,
        wire(incident_event(seq=1)).replace(b'"seq":1', b'"seq":-1'),
        RejectReason.SCHEMA,
    ),
    (
        "unknown topic",
        "gridwarden/v1/north/edge-01/somethingelse",
        wire(incident_event(seq=1)),
        RejectReason.WRONG_TOPIC,
    ),
    ("foreign topic", "other/app/topic", wire(incident_event(seq=1)), RejectReason.WRONG_TOPIC),
    (
        "incident on status topic",
        Topics(SITE, EDGE).status,
        wire(incident_event(seq=1)),
        RejectReason.WRONG_TOPIC,
    ),
    (
        "edge mismatch",
        Topics(SITE, "edge-99").incidents,
        wire(incident_event(seq=1)),
        RejectReason.EDGE_MISMATCH,
    ),
    (
        "site mismatch",
        Topics("south", EDGE).incidents,
        wire(incident_event(seq=1)),
        RejectReason.EDGE_MISMATCH,
    ),
    (
        "camera mismatch",
        Topics(SITE, EDGE).camera_status("cam-9"),
        wire(camera_status()),
        RejectReason.CAMERA_MISMATCH,
    ),
]


@pytest.mark.parametrize(("name", "topic", "payload", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_message_is_rejected_and_counted(db: Database, name, topic, payload, reason) -> None:
    good = incident_event(seq=2, incident_id="good")
    results = _ingest(db, (topic, payload), (topic, payload), good)
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.REJECTED, Outcome.STORED]
    assert results[0].reason is reason and results[0].detail
    with db.session() as s:
        row = s.get(RejectedMessage, str(reason))
        assert row.count == 2 and row.last_topic == topic[:1000]
        assert s.scalar(select(func.count()).select_from(ReceivedEvent)) == 1  # only the good one


def test_incident_id_reused_by_another_camera_is_rejected(db: Database) -> None:
    _ingest(db, incident_event(seq=1, camera="cam-1"))
    r = _ingest(db, incident_event(seq=2, camera="cam-2", event="updated"))
    assert r[0].reason is RejectReason.INCIDENT_CONFLICT
    with db.session() as s:
        assert s.get(Incident, "inc-1").event_count == 1


def test_status_messages_keep_the_newest(db: Database) -> None:
    topics = Topics(SITE, EDGE)
    newer = edge_status(online=False, wall_time=T0 + timedelta(seconds=10), version="2.0")
    older = edge_status(online=True, wall_time=T0, version="1.0")
    r = _ingest(
        db,
        (topics.status, wire(newer)),
        (topics.status, wire(older)),
        (topics.camera_status("cam-1"), wire(camera_status(state="offline"))),
        (topics.camera_status("cam-1"), b""),  # a cleared retained topic
    )
    assert [x.outcome for x in r] == [Outcome.STATUS, Outcome.STATUS, Outcome.STATUS, Outcome.IGNORED]
    with db.session() as s:
        edge = s.get(Edge, EDGE)
        assert (edge.online, edge.status["version"], edge.site) == (False, "2.0", SITE)
        assert s.get(Camera, (EDGE, "cam-1")).state == "offline"


def test_stored_payload_is_what_the_edge_sent(db: Database) -> None:
    e = incident_event(seq=1).model_copy(update={"config_version": "v" * 500})
    _ingest(db, e)
    with db.session() as s:
        row = s.scalars(select(ReceivedEvent)).one()
        assert row.payload == json.loads(wire(e))
        assert s.get(Incident, "inc-1").config_version == "v" * 500


def test_a_huge_jump_costs_one_span_not_one_entry_per_missing_number(db: Database) -> None:
    """A jump of 10 million once cost 755 MB: gap tracking is O(holes), and late arrivals split
    spans (issue 12 item 2)."""
    import tracemalloc

    _ingest(db, incident_event(seq=1, incident_id="j1"))
    tracemalloc.start()
    try:
        r = _ingest(db, incident_event(seq=10_000_002, incident_id="j2"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r[0].gap == ((2, 10_000_001),)
    assert peak < 20 * 1024 * 1024, f"{peak / 1e6:.0f} MB for one jump"
    _ingest(db, incident_event(seq=5_000_000, incident_id="j3"))
    with db.session() as s:
        seq = s.get(EdgeSequence, EDGE)
        assert seq.missing == [[2, 4_999_999], [5_000_001, 10_000_001]]
        assert (seq.highest_contiguous_seq, seq.missing_total, seq.late_filled) == (1, 10_000_000, 1)


def test_the_older_missing_format_is_still_read(db: Database) -> None:
    _ingest(db, incident_event(seq=1, incident_id="k1"), incident_event(seq=5, incident_id="k5"))
    with db.write_session() as s, s.begin():
        s.get(EdgeSequence, EDGE).missing = [2, 3, 4]  # as hubs before the span format stored it
    _ingest(db, incident_event(seq=3, incident_id="k3"))
    with db.session() as s:
        assert s.get(EdgeSequence, EDGE).missing == [[2, 2], [4, 4]]
