"""Case merging, the life cycle and the case queries (each test on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gridwarden.hub.cases import TRANSITIONS, CaseNotFound, CaseService, IllegalTransition
from gridwarden.hub.db import Database
from gridwarden.hub.db.models import CaseHistory, WebhookOutbox
from gridwarden.hub.fleet import FleetService
from gridwarden.hub.ingest import ingest_batch
from tests.hub.factories import T0, incident_event, topic_of, wire

NOW = T0 + timedelta(minutes=30)


def _ingest(db: Database, *events, merge_window_s: float = 120.0):
    with db.write_session() as s, s.begin():
        return ingest_batch(
            s, [(topic_of(e), wire(e)) for e in events], now=NOW, merge_window_s=merge_window_s
        )


def _service(db: Database, **kw) -> CaseService:
    return CaseService(db, clock=lambda: NOW, **kw)


def _parked_car(seq: int, incident_id: str, start_s: float, **kw):
    """A started and an ended event of one incident that lasts 60 s from ``start_s``."""
    started = T0 + timedelta(seconds=start_s)
    return [
        incident_event(seq=seq, incident_id=incident_id, started=started, **kw),
        incident_event(seq=seq + 1, incident_id=incident_id, event="ended", started=started, at_s=60, **kw),
    ]


def test_same_object_within_window_joins_the_open_case(db: Database) -> None:
    # The first incident ends at 60 s; the second starts 100 s later with a slightly moved box.
    _ingest(db, *_parked_car(1, "a", 0))
    r = _ingest(db, *_parked_car(3, "b", 160, box=(0.11, 0.1, 0.31, 0.31), track_id=99))
    assert r[0].case_how == "merged"
    cases, total = _service(db).list_cases()
    assert total == 1
    detail = _service(db).get_case(cases[0].id)
    assert [i.incident_id for i in detail.incidents] == ["a", "b"]
    assert detail.incident_count == 2
    assert detail.detected_at == T0
    assert detail.last_activity_at == T0 + timedelta(seconds=220)


def test_same_track_id_joins_even_when_boxes_differ(db: Database) -> None:
    _ingest(db, *_parked_car(1, "a", 0, track_id=5))
    r = _ingest(db, *_parked_car(3, "b", 100, track_id=5, box=(0.6, 0.6, 0.7, 0.7)))
    assert r[0].case_how == "merged"


def test_merge_within_one_batch(db: Database) -> None:
    r = _ingest(db, *_parked_car(1, "a", 0), *_parked_car(3, "b", 100))
    assert (r[0].case_how, r[2].case_how) == ("opened", "merged")
    assert r[0].case_id == r[2].case_id


@pytest.mark.parametrize(
    ("why", "second"),
    [
        ("outside the window", dict(start_s=60 + 121)),
        ("another object", dict(start_s=100, box=(0.6, 0.6, 0.7, 0.7), track_id=99)),
        ("another zone", dict(start_s=100, zone="kerb-b")),
        ("another camera", dict(start_s=100, camera="cam-2")),
    ],
)
def test_incident_opens_a_new_case(db: Database, why, second) -> None:
    _ingest(db, *_parked_car(1, "a", 0))
    extra = {k: v for k, v in second.items() if k != "start_s"}
    r = _ingest(db, *_parked_car(3, "b", second["start_s"], **extra))
    assert r[0].case_how == "opened", why
    assert _service(db).list_cases()[1] == 2


def test_merge_window_is_configurable(db: Database) -> None:
    _ingest(db, *_parked_car(1, "a", 0), merge_window_s=300)
    r = _ingest(db, *_parked_car(3, "b", 60 + 250), merge_window_s=300)
    assert r[0].case_how == "merged"


def test_a_resolved_case_is_not_joined(db: Database) -> None:
    r = _ingest(db, *_parked_car(1, "a", 0))
    svc = _service(db)
    for state in ("in_review", "confirmed", "dispatched", "resolved"):
        svc.transition(r[0].case_id, state, actor="op")
    r2 = _ingest(db, *_parked_car(3, "b", 100))
    assert r2[0].case_how == "opened" and r2[0].case_id != r[0].case_id


def test_full_life_cycle_is_audited(db: Database) -> None:
    case_id = _ingest(db, *_parked_car(1, "a", 0))[0].case_id
    svc = _service(db)
    steps = [
        ("in_review", "alice", None),
        ("confirmed", "alice", "car on the kerb in the snapshot"),
        ("dispatched", "bob", "unit 12"),
        ("resolved", "carol", "ticket issued"),
        ("closed", "alice", None),
    ]
    for to_state, actor, reason in steps:
        detail = svc.transition(case_id, to_state, actor=actor, reason=reason)
        assert detail.state == to_state
        assert detail.allowed_transitions == list(TRANSITIONS[to_state])
    history = svc.get_case(case_id).history
    assert [(h.from_state, h.to_state, h.actor, h.reason) for h in history] == [
        (None, "new", "system", "opened by incident a"),
        *[
            (prev, to, actor, reason)
            for prev, (to, actor, reason) in zip(["new", *[s[0] for s in steps]], steps, strict=False)
        ],
    ]
    assert all(h.at == NOW for h in history)


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "confirmed"),  # must be reviewed first
        ([], "closed"),
        (["in_review"], "dispatched"),
        (["in_review", "rejected"], "confirmed"),
        (["in_review", "rejected", "closed"], "new"),
        (["in_review", "confirmed"], "resolved"),
        ([], "no_such_state"),
    ],
)
def test_illegal_transition_is_refused_and_changes_nothing(db: Database, path, illegal) -> None:
    case_id = _ingest(db, *_parked_car(1, "a", 0))[0].case_id
    svc = _service(db)
    for state in path:
        svc.transition(case_id, state, actor="op")
    before = svc.get_case(case_id)
    with pytest.raises(IllegalTransition) as err:
        svc.transition(case_id, illegal, actor="op")
    assert err.value.from_state == before.state and err.value.to_state == illegal
    assert err.value.allowed == TRANSITIONS[before.state]
    assert repr(illegal) in str(err.value) and repr(before.state) in str(err.value)
    after = svc.get_case(case_id)
    assert (after.state, len(after.history)) == (before.state, len(before.history))


def test_rejected_case_can_be_closed(db: Database) -> None:
    case_id = _ingest(db, *_parked_car(1, "a", 0))[0].case_id
    svc = _service(db)
    svc.transition(case_id, "in_review", actor="op")
    svc.transition(case_id, "rejected", actor="op", reason="shadow, not a car")
    assert svc.transition(case_id, "closed", actor="op").state == "closed"


def test_unknown_case_and_missing_actor(db: Database) -> None:
    svc = _service(db)
    with pytest.raises(CaseNotFound):
        svc.get_case(12345)
    with pytest.raises(CaseNotFound):
        svc.transition(12345, "in_review", actor="op")
    case_id = _ingest(db, *_parked_car(1, "a", 0))[0].case_id
    with pytest.raises(ValueError, match="actor"):
        svc.transition(case_id, "in_review", actor=" ")


def test_transitions_enqueue_webhooks_in_the_same_transaction(db: Database) -> None:
    case_id = _ingest(db, *_parked_car(1, "a", 0))[0].case_id
    svc = _service(db, webhook_on={"confirmed"})
    svc.transition(case_id, "in_review", actor="op")
    svc.transition(case_id, "confirmed", actor="op", reason="seen")
    with db.session() as s:
        rows = s.scalars(select(WebhookOutbox)).all()
        assert [(r.case_id, r.payload["to_state"], r.attempts, r.delivered_at) for r in rows] == [
            (case_id, "confirmed", 0, None)
        ]
        assert s.scalar(select(func.count()).select_from(CaseHistory)) == 3


def test_list_cases_filters_sorts_and_pages(db: Database) -> None:
    # Five cases on two cameras, detected one minute apart.
    for i in range(5):
        _ingest(db, *_parked_car(10 * i + 1, f"c{i}", 60 * i * 10, camera=f"cam-{i % 2}", track_id=i))
    svc = _service(db)
    cases, total = svc.list_cases()
    assert total == 5 and [c.camera for c in cases] == ["cam-0", "cam-1", "cam-0", "cam-1", "cam-0"]
    svc.transition(cases[1].id, "in_review", actor="op")

    assert svc.list_cases(camera="cam-1")[1] == 2
    assert [c.id for c in svc.list_cases(state="in_review")[0]] == [cases[1].id]
    assert svc.list_cases(state=["new", "in_review"])[1] == 5
    assert svc.list_cases(rule="occupied_space")[1] == 0
    assert svc.list_cases(zone="kerb-a")[1] == 5
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=30)
    assert [c.detected_at for c in svc.list_cases(since=since, until=until)[0]] == [
        since,
        T0 + timedelta(minutes=20),
    ]
    page, total = svc.list_cases(sort="detected_at", descending=True, offset=1, limit=2)
    assert total == 5 and [c.detected_at for c in page] == [
        T0 + timedelta(minutes=30),
        T0 + timedelta(minutes=20),
    ]
    with pytest.raises(ValueError, match="sort"):
        svc.list_cases(sort="camera; DROP TABLE cases")
    with pytest.raises(ValueError, match="state"):
        svc.list_cases(state="open")
    with pytest.raises(ValueError):
        svc.list_cases(limit=0)


def test_edges_and_cameras_views(db: Database) -> None:
    from gridwarden.contract import Topics
    from tests.hub.factories import EDGE, SITE, camera_status, edge_status

    topics = Topics(SITE, EDGE)
    with db.write_session() as s, s.begin():
        ingest_batch(
            s,
            [
                (topics.status, wire(edge_status())),
                (topics.camera_status("cam-1"), wire(camera_status())),
                (topics.camera_status("cam-2"), wire(camera_status(camera="cam-2", state="offline"))),
                (topic_of(e := incident_event(seq=4)), wire(e)),
                (topic_of(e := incident_event(seq=6, incident_id="x")), wire(e)),
            ],
            now=NOW,
        )
    svc = FleetService(db)
    [edge] = svc.list_edges()
    assert (edge.edge_id, edge.online, edge.version, edge.outbox_depth) == (EDGE, True, "1.0", 3)
    assert (edge.highest_seen_seq, edge.highest_contiguous_seq, edge.missing_seqs, edge.gaps_seen) == (
        6,
        4,
        [5],
        1,
    )
    cams = svc.list_cameras()
    assert [(c.camera_id, c.state, c.input_fps) for c in cams] == [
        ("cam-1", "online", 12.5),
        ("cam-2", "offline", 12.5),
    ]
    assert [r.reason for r in svc.rejected_messages()] == []
