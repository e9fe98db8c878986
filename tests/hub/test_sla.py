"""The SLA clock: pure computation, and as the case service reports it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridwarden.hub.cases import CaseService
from gridwarden.hub.db import Database
from gridwarden.hub.ingest import ingest_batch
from gridwarden.hub.sla import MILESTONES, SlaPolicy, compute_sla
from tests.hub.factories import T0, incident_event, topic_of, wire


def _at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def test_reached_milestones_are_measured_from_detection() -> None:
    r = compute_sla(
        T0,
        {"confirmed": _at(2), "dispatched": _at(9.5), "resolved": _at(25)},
        reachable=set(),
        policy=SlaPolicy.uniform(600),
        now=_at(60),
    )
    assert r.time_to_confirm_s == 120 and r.time_to_dispatch_s == 570 and r.time_to_resolve_s == 1500
    assert [r.milestones[m].breached for m in MILESTONES] == [False, False, True]
    assert r.breached and not any(m.running for m in r.milestones.values())


def test_pending_milestone_breaches_once_the_target_passes() -> None:
    def report(now_min: float):
        return compute_sla(T0, {}, reachable=set(MILESTONES), policy=SlaPolicy.uniform(600), now=_at(now_min))

    early, late = report(9), report(11)
    assert early.milestones["confirmed"].running and early.milestones["confirmed"].elapsed_s == 540
    assert not early.breached
    assert late.breached and late.milestones["confirmed"].breached
    assert late.time_to_confirm_s is None  # not reached yet


def test_unreachable_milestones_stop_the_clock() -> None:
    r = compute_sla(T0, {}, reachable=set(), policy=SlaPolicy.uniform(600), now=_at(120))
    assert not r.breached
    assert all(m.elapsed_s is None and not m.running for m in r.milestones.values())


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SlaPolicy.uniform(0)


def test_case_service_reports_sla_with_configured_target(db: Database) -> None:
    e = incident_event(seq=1, started=T0)
    with db.write_session() as s, s.begin():
        case_id = ingest_batch(s, [(topic_of(e), wire(e))], now=_at(0.1))[0].case_id
    clock = {"now": _at(3)}
    svc = CaseService(db, sla_target_s=300, clock=lambda: clock["now"])
    svc.transition(case_id, "in_review", actor="op")
    confirmed = svc.transition(case_id, "confirmed", actor="op")
    assert confirmed.sla.time_to_confirm_s == 180 and not confirmed.sla.breached
    assert confirmed.sla.milestones["dispatched"].target_s == 300

    clock["now"] = _at(6)  # dispatched six minutes after detection: over the five-minute target
    dispatched = svc.transition(case_id, "dispatched", actor="op")
    assert dispatched.sla.time_to_dispatch_s == 360
    assert dispatched.sla.milestones["dispatched"].breached and dispatched.sla.breached
    dumped = dispatched.model_dump(mode="json")
    assert dumped["sla"]["time_to_dispatch_s"] == 360 and dumped["sla"]["breached"] is True


def test_rejected_case_clock_stops(db: Database) -> None:
    e = incident_event(seq=1, started=T0)
    with db.write_session() as s, s.begin():
        case_id = ingest_batch(s, [(topic_of(e), wire(e))], now=_at(0.1))[0].case_id
    clock = {"now": _at(2)}
    svc = CaseService(db, clock=lambda: clock["now"])
    svc.transition(case_id, "in_review", actor="op")
    svc.transition(case_id, "rejected", actor="op", reason="false alarm")
    clock["now"] = _at(60)
    sla = svc.get_case(case_id).sla
    assert not sla.breached and not any(m.running for m in sla.milestones.values())
