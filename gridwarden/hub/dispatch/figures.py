"""The SLA figures the district reports, per stage, per officer and per area.

Stages of a dispatched case and where each is measured from and to::

    confirm   detected (the rule fired on the edge)  -> confirmed
    dispatch  confirmed                              -> first offer
    accept    first offer                            -> accepted (by whoever took it)
    arrive    accepted                               -> arrived on scene
    resolve   arrived                                -> resolved by the officer
    verify    resolved (last time)                   -> closed (camera or reviewer)
    total     detected                               -> closed

A case is **solved within its limit** (按期结案) when it closed no later than detection + its
category's limit (the district's ten minutes unless ``sla_limits_s`` says otherwise). The share
counts every case that was due in the period: closed ones, and open ones whose limit has passed
(an open overdue case is a failure already; one still within its limit is not counted yet).
**Rework rate**: cases sent back at least once / cases resolved at least once.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select

from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Case, CaseDispatch, DispatchTask, Officer
from gridwarden.hub.dispatch.settings import DispatchSettings

STAGES = ("confirm", "dispatch", "accept", "arrive", "resolve", "verify", "total")


class StageFigures(BaseModel):
    count: int
    median_s: float | None
    p90_s: float | None


class GroupFigures(BaseModel):
    cases: int
    due: int
    within_limit: int
    within_limit_share: float | None
    resolved: int
    reworked: int
    rework_rate: float | None
    stages: dict[str, StageFigures]


class SlaFigures(BaseModel):
    since: datetime | None
    until: datetime | None
    as_of: datetime
    target_s: float
    limits_s: dict[str, float]
    overall: GroupFigures
    escalated: int
    by_officer: dict[str, GroupFigures]
    by_area: dict[str, GroupFigures]
    by_category: dict[str, GroupFigures]


class _CaseFacts:
    def __init__(self, case: Case, queue: CaseDispatch, tasks: list[DispatchTask], limit_s: float) -> None:
        self.case = case
        self.queue = queue
        self.limit_s = limit_s
        offers = sorted(t.offered_at for t in tasks)
        accepted = [t for t in tasks if t.responded_at is not None and t.state not in ("declined", "expired")]
        taken = max(accepted, key=lambda t: t.id) if accepted else None
        self.officer = taken.officer_id if taken is not None else None
        first_accept = min((t.responded_at for t in accepted if t.responded_at), default=None)
        arrived = taken.arrived_at if taken is not None else None
        resolved = taken.resolved_at if taken is not None else None
        self.stages: dict[str, float] = {}
        self._span("confirm", case.detected_at, case.confirmed_at)
        self._span("dispatch", case.confirmed_at, offers[0] if offers else None)
        self._span("accept", offers[0] if offers else None, first_accept)
        self._span("arrive", taken.responded_at if taken else None, arrived)
        self._span("resolve", arrived, resolved)
        self._span("verify", resolved or case.resolved_at, case.closed_at)
        self._span("total", case.detected_at, case.closed_at)
        self.resolved_once = case.resolved_at is not None
        self.reworked = queue.rework_count > 0

    def _span(self, name: str, start: datetime | None, end: datetime | None) -> None:
        if start is not None and end is not None:
            self.stages[name] = max(0.0, (end - start).total_seconds())

    def due(self, now: datetime) -> bool:
        return self.case.closed_at is not None or now > self.case.detected_at + timedelta(
            seconds=self.limit_s
        )

    def within_limit(self) -> bool:
        closed = self.case.closed_at
        return closed is not None and (closed - self.case.detected_at).total_seconds() <= self.limit_s


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _group(facts: Iterable[_CaseFacts], now: datetime) -> GroupFigures:
    items = list(facts)
    due = [f for f in items if f.due(now)]
    within = sum(1 for f in due if f.within_limit())
    resolved = [f for f in items if f.resolved_once]
    reworked = sum(1 for f in resolved if f.reworked)
    stages = {}
    for stage in STAGES:
        values = [f.stages[stage] for f in items if stage in f.stages]
        stages[stage] = StageFigures(
            count=len(values),
            median_s=statistics.median(values) if values else None,
            p90_s=_percentile(values, 0.9),
        )
    return GroupFigures(
        cases=len(items),
        due=len(due),
        within_limit=within,
        within_limit_share=within / len(due) if due else None,
        resolved=len(resolved),
        reworked=reworked,
        rework_rate=reworked / len(resolved) if resolved else None,
        stages=stages,
    )


def sla_figures(
    db: Database,
    settings: DispatchSettings,
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SlaFigures:
    """Figures over dispatched cases detected in [since, until)."""
    with db.session() as session:
        stmt = select(Case, CaseDispatch).join(CaseDispatch, CaseDispatch.case_id == Case.id)
        if since is not None:
            stmt = stmt.where(Case.detected_at >= since)
        if until is not None:
            stmt = stmt.where(Case.detected_at < until)
        rows = session.execute(stmt.order_by(Case.id)).all()
        ids = [c.id for c, _ in rows]
        tasks: dict[int, list[DispatchTask]] = defaultdict(list)
        for chunk in range(0, len(ids), 500):
            for t in session.scalars(
                select(DispatchTask).where(DispatchTask.case_id.in_(ids[chunk : chunk + 500]))
            ):
                tasks[t.case_id].append(t)
        names = {o.id: o.username for o in session.scalars(select(Officer))}
        facts = [_CaseFacts(c, q, tasks[c.id], settings.limit_s(c.rule)) for c, q in rows]

    def grouped(key: Callable[[_CaseFacts], str | None]) -> dict[str, GroupFigures]:
        groups: dict[str, list[_CaseFacts]] = defaultdict(list)
        for f in facts:
            k = key(f)
            if k is not None:
                groups[k].append(f)
        return {k: _group(v, now) for k, v in sorted(groups.items())}

    return SlaFigures(
        since=since,
        until=until,
        as_of=now,
        target_s=settings.sla_target_s,
        limits_s=dict(settings.sla_limits_s),
        overall=_group(facts, now),
        escalated=sum(1 for f in facts if f.queue.escalated_at is not None),
        by_officer=grouped(lambda f: names.get(f.officer) if f.officer is not None else None),
        by_area=grouped(lambda f: f.case.area_id),
        by_category=grouped(lambda f: f.case.rule),
    )
