"""The dispatch queue: offers to the nearest officer, timeouts, escalation, verification by camera.

Everything time-based happens in :meth:`DispatchService.tick`, driven by an injectable clock: the
hub runs it every ``interval_s`` (:mod:`.loop`), tests call it with the time they want. One tick,
in one transaction:

1. **queue** new work: confirmed cases (and, for rules the policy marks auto-dispatch, new ones,
   confirmed by the system on the spot) get a place in the queue, due at detection + their
   category's SLA limit;
2. **expire** offers not answered within ``accept_timeout_s``: the officer is marked as tried;
3. **offer** waiting cases, most urgent (earliest due) first, each to the best free officer:
   on duty, a position fresher than ``position_fresh_s``, no offer pending, fewer than
   ``max_tasks_per_officer`` open tasks, not tried for this case; ranked by (responsible for
   the case's area first, then without tasks first, then shortest estimated travel time). When
   nobody is left the case **escalates** to the command centre (console alarm, metric);
4. **verify** resolved camera cases: once the camera's incidents have all ended, the case closes
   "verified by camera"; if the object is still seen ``verify_grace_s`` after "resolved", the
   case goes back to the officer (**rework**, counted). Cases without a camera wait for a
   reviewer to close them.

Every offer, accept, decline, timeout, withdrawal, escalation, arrival, resolution, verification
and rework is a ``case_history`` row (``event`` says which), written in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridwarden.contract import utcnow
from gridwarden.hub.cases import STATE_TIMESTAMP, TRANSITIONS, IllegalTransition
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import (
    Case,
    CaseDispatch,
    CaseHistory,
    CaseIncident,
    DispatchTask,
    FieldAction,
    Incident,
    Officer,
)
from gridwarden.hub.dispatch.estimator import Candidate, Place, TravelTimeEstimator, load_estimator
from gridwarden.hub.dispatch.settings import DispatchSettings
from gridwarden.hub.officers.positions import prune_positions
from gridwarden.hub.officers.roster import in_shift, refresh_officer_state
from gridwarden.hub.officers.states import OPEN_TASK_STATES, TASK_TRANSITIONS

log = logging.getLogger(__name__)
ACTOR = "dispatch"
QUEUE_STATUSES = ("waiting", "offered", "assigned", "resolved", "escalated", "done")
ACTIONS = ("accept", "decline", "arrive", "resolve")
PRUNE_EVERY = timedelta(hours=1)


class DispatchError(ValueError):
    """A dispatch request that cannot be carried out."""


class TaskNotFound(DispatchError, LookupError):
    pass


class TaskConflict(DispatchError):
    """The task is not in a state that allows this (e.g. accepting an expired offer)."""


class CaseNotDispatchable(DispatchError):
    pass


class CaseBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    state: str
    site: str
    edge_id: str
    camera: str
    zone: str
    rule: str
    lat: float | None
    lon: float | None
    area_id: str | None
    detected_at: datetime


class TaskView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    officer_id: int
    state: str
    manual: bool
    offered_by: str
    eta_s: float | None
    distance_m: float | None
    offered_at: datetime
    expires_at: datetime
    responded_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None
    ended_at: datetime | None
    rework_count: int
    reason: str | None
    note: str | None
    photo: str | None
    case: CaseBrief | None = None
    officer_name: str | None = None


class QueueEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    case_id: int
    status: str
    due_at: datetime
    tried: list[int]
    offers: int
    escalated_at: datetime | None
    escalation_reason: str | None
    rework_count: int
    verify_due_at: datetime | None
    verified_by: str | None
    case: CaseBrief | None = None
    tasks: list[TaskView] = []


@dataclass
class TickReport:
    queued: int = 0
    offered: int = 0
    expired: int = 0
    escalated: int = 0
    verified: int = 0
    reworked: int = 0


@dataclass
class _Free:
    officer: Officer
    open_tasks: int
    pending_offer: bool


@dataclass
class DispatchCounters:
    """Process-wide counts for metrics; decision times for the bench (seconds each)."""

    offers: int = 0
    escalations: int = 0
    expired: int = 0
    declined: int = 0
    verified: int = 0
    reworks: int = 0
    decision_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


def _history(
    session: Session,
    case: Case,
    now: datetime,
    actor: str,
    event: str,
    reason: str,
    to_state: str | None = None,
) -> None:
    session.add(
        CaseHistory(
            case_id=case.id, at=now, actor=actor, from_state=case.state,
            to_state=to_state or case.state, reason=reason, event=event,
        )
    )  # fmt: skip


def _move(
    session: Session, case: Case, to_state: str, now: datetime, actor: str, event: str, reason: str
) -> None:
    """A case state change inside this transaction, with the same rules and stamps as CaseService."""
    allowed = TRANSITIONS[case.state]
    if to_state not in allowed:
        raise IllegalTransition(case.state, to_state, allowed)
    _history(session, case, now, actor, event, reason, to_state=to_state)
    case.state = to_state
    case.updated_at = now
    stamp = STATE_TIMESTAMP[to_state]
    if getattr(case, stamp) is None:
        setattr(case, stamp, now)


def _task_step(task: DispatchTask, to_state: str) -> None:
    if to_state not in TASK_TRANSITIONS[task.state]:
        raise TaskConflict(f"task {task.id} is {task.state}; cannot become {to_state}")
    task.state = to_state


class DispatchService:
    def __init__(
        self,
        db: Database,
        settings: DispatchSettings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        estimator: TravelTimeEstimator | None = None,
        on_escalation: Callable[[int, str], None] | None = None,
        on_resolved: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings or DispatchSettings()
        self.clock = clock
        self.estimator = estimator or load_estimator(self.settings.estimator, self.settings)
        self.on_escalation = on_escalation
        # Told (site, edge_id, camera) when an officer resolves a camera case: the hub asks the
        # edge for a fresh picture, the "after" beside the incident's "before".
        self.on_resolved = on_resolved
        self.counters = DispatchCounters()
        self._last_prune: datetime | None = None
        self._shift_minute: int | None = None

    # ------------------------------------------------------------------ the tick

    def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.clock()
        report = TickReport()
        escalated: list[tuple[int, str]] = []
        with self.db.write_session() as session, session.begin():
            self._follow_shifts(session, now)
            self._enqueue_new(session, now, report)
            self._expire_offers(session, now, report)
            self._offer_waiting(session, now, report, escalated)
            self._verify_resolved(session, now, report)
            self._finish_closed(session, now)
            if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
                prune_positions(session, now - timedelta(days=self.settings.position_retention_days))
                self._last_prune = now
        for case_id, reason in escalated:
            log.warning("case %d escalated to the command centre: %s", case_id, reason)
            if self.on_escalation is not None:
                self.on_escalation(case_id, reason)
        return report

    def _follow_shifts(self, session: Session, now: datetime) -> None:
        """At a shift's start an officer goes on duty, at its end off duty (and at once when the
        shifts are set); in between the officer's own toggle stands: an edge is acted on once,
        by the first tick that sees it."""
        local = now.astimezone(ZoneInfo(self.settings.timezone))
        minute = local.hour * 60 + local.minute
        if minute == self._shift_minute:
            return  # boundaries are whole minutes: look once a minute
        self._shift_minute = minute
        for officer in session.scalars(select(Officer).order_by(Officer.id)):
            if not officer.shifts:
                continue
            inside = in_shift(officer.shifts, minute)
            if officer.in_shift is None or officer.in_shift != inside:
                officer.on_duty = inside  # shifts just set, or an edge crossed
                officer.in_shift = inside
                officer.updated_at = now
                refresh_officer_state(session, officer, now)

    def _enqueue_new(self, session: Session, now: datetime, report: TickReport) -> None:
        auto = self.settings.auto_dispatch_rules
        wanted = Case.state == "confirmed"
        if auto:
            wanted = or_(wanted, and_(Case.state.in_(("new", "in_review")), Case.rule.in_(auto)))
        not_queued = ~exists().where(CaseDispatch.case_id == Case.id)
        for case in session.scalars(
            select(Case).where(wanted, not_queued).order_by(Case.id).with_for_update()
        ):
            if case.state != "confirmed":
                if case.state == "new":
                    _move(
                        session,
                        case,
                        "in_review",
                        now,
                        ACTOR,
                        "auto_dispatch",
                        f"rule {case.rule} is auto-dispatched",
                    )
                _move(
                    session,
                    case,
                    "confirmed",
                    now,
                    ACTOR,
                    "auto_dispatch",
                    f"rule {case.rule} is auto-dispatched",
                )
            limit = self.settings.limit_s(case.rule)
            session.add(
                CaseDispatch(
                    case_id=case.id, status="waiting", due_at=case.detected_at + timedelta(seconds=limit),
                    tried=[], offers=0, rework_count=0, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            _history(session, case, now, ACTOR, "queued", f"in the dispatch queue; SLA limit {limit:.0f} s")
            report.queued += 1
        session.flush()

    def _expire_offers(self, session: Session, now: datetime, report: TickReport) -> None:
        stale = session.scalars(
            select(DispatchTask)
            .where(DispatchTask.state == "offered", DispatchTask.expires_at <= now)
            .order_by(DispatchTask.id)
            .with_for_update()
        ).all()
        for task in stale:
            self._let_go(
                session, task, now, "expired", f"no answer within {self.settings.accept_timeout_s:.0f} s"
            )
            report.expired += 1
            self.counters.expired += 1

    def _let_go(self, session: Session, task: DispatchTask, now: datetime, how: str, reason: str) -> None:
        """An offer that ended without acceptance (expired or declined): try the next officer."""
        _task_step(task, how)
        task.ended_at = now
        task.reason = reason
        officer = session.get(Officer, task.officer_id)
        assert officer is not None
        case = session.get(Case, task.case_id)
        queue = session.get(CaseDispatch, task.case_id)
        assert case is not None and queue is not None
        queue.tried = sorted({*queue.tried, officer.id})
        queue.status = "waiting"
        queue.updated_at = now
        event = "offer_expired" if how == "expired" else "declined"
        _history(session, case, now, officer.username, event, f"{officer.name}: {reason}")
        refresh_officer_state(session, officer, now)

    def _free_officers(self, session: Session, now: datetime) -> list[_Free]:
        fresh = now - timedelta(seconds=self.settings.position_fresh_s)
        officers = session.scalars(
            select(Officer).where(Officer.on_duty.is_(True), Officer.fix_at >= fresh).order_by(Officer.id)
        ).all()
        if not officers:
            return []
        rows = session.execute(
            select(DispatchTask.officer_id, DispatchTask.state, func.count())
            .where(
                DispatchTask.state.in_(OPEN_TASK_STATES),
                DispatchTask.officer_id.in_([o.id for o in officers]),
            )
            .group_by(DispatchTask.officer_id, DispatchTask.state)
        ).all()
        open_tasks: dict[int, int] = {}
        pending: set[int] = set()
        for officer_id, state, n in rows:
            open_tasks[officer_id] = open_tasks.get(officer_id, 0) + n
            if state == "offered":
                pending.add(officer_id)
        return [_Free(o, open_tasks.get(o.id, 0), o.id in pending) for o in officers]

    def rank(self, case: Case, pool: list[_Free], tried: set[int]) -> list[tuple[_Free, float, float]]:
        """Free officers for ``case``, best first, with (distance_m, seconds)."""
        eligible = [
            f for f in pool
            if f.officer.id not in tried and not f.pending_offer
            and f.open_tasks < self.settings.max_tasks_per_officer
        ]  # fmt: skip
        if not eligible or case.lat is None or case.lon is None:
            return []
        estimates = self.estimator.estimate(
            Place(case.lat, case.lon),
            [
                Candidate(f.officer.id, f.officer.lat or 0.0, f.officer.lon or 0.0, f.officer.transport)
                for f in eligible
            ],
        )
        scored = []
        for f, est in zip(eligible, estimates, strict=True):
            if est is None:
                continue
            in_area = bool(case.area_id) and case.area_id in (f.officer.areas or [])
            scored.append(
                ((0 if in_area else 1, 0 if f.open_tasks == 0 else 1, est.seconds, f.officer.id), f, est)
            )
        scored.sort(key=lambda s: s[0])
        return [(f, est.distance_m, est.seconds) for _, f, est in scored]

    def _offer_waiting(
        self, session: Session, now: datetime, report: TickReport, escalated: list[tuple[int, str]]
    ) -> None:
        waiting = session.execute(
            select(CaseDispatch, Case)
            .join(Case, Case.id == CaseDispatch.case_id)
            .where(CaseDispatch.status == "waiting")
            .order_by(CaseDispatch.due_at, CaseDispatch.case_id)
            .with_for_update(of=CaseDispatch)
        ).all()
        if not waiting:
            return
        pool = self._free_officers(session, now)
        for queue, case in waiting:
            started = time.perf_counter()
            tried = set(queue.tried)
            ranked = self.rank(case, pool, tried)
            if ranked:
                free, distance, seconds = ranked[0]
                self._offer(
                    session,
                    case,
                    queue,
                    free.officer,
                    now,
                    ACTOR,
                    manual=False,
                    distance=distance,
                    seconds=seconds,
                )
                free.pending_offer = True
                free.open_tasks += 1
                report.offered += 1
            else:
                # Wait while someone not yet tried is only busy with another offer; else escalate.
                if case.lat is None or case.lon is None:
                    reason = "the case has no location (its camera reports none)"
                elif any(f.officer.id not in tried and f.pending_offer for f in pool):
                    self.counters.decision_s.append(time.perf_counter() - started)
                    continue
                elif tried:
                    reason = f"no officer accepted ({len(tried)} offered)"
                else:
                    reason = "no officer on duty with a fresh position is free"
                queue.status = "escalated"
                queue.escalated_at = now
                queue.escalation_reason = reason
                queue.updated_at = now
                _history(session, case, now, ACTOR, "escalated", f"escalated to the command centre: {reason}")
                escalated.append((case.id, reason))
                report.escalated += 1
                self.counters.escalations += 1
            self.counters.decision_s.append(time.perf_counter() - started)

    def _offer(
        self, session: Session, case: Case, queue: CaseDispatch, officer: Officer, now: datetime, actor: str,
        *, manual: bool, distance: float | None, seconds: float | None,
    ) -> DispatchTask:  # fmt: skip
        task = DispatchTask(
            case_id=case.id, officer_id=officer.id, state="offered", manual=manual, offered_by=actor,
            eta_s=seconds, distance_m=distance, offered_at=now,
            expires_at=now + timedelta(seconds=self.settings.accept_timeout_s), rework_count=0,
        )  # fmt: skip
        session.add(task)
        queue.status = "offered"
        queue.offers += 1
        queue.updated_at = now
        where = ""
        if distance is not None and seconds is not None:
            where = f", {distance:.0f} m, about {seconds / 60:.1f} min by {officer.transport}"
        if case.area_id and case.area_id in (officer.areas or []):
            where += f", responsible for area {case.area_id}"
        how = "offered by hand" if manual else "offered"
        _history(session, case, now, actor, "offered", f"{how} to {officer.name} ({officer.username}){where}")
        session.flush()
        refresh_officer_state(session, officer, now)
        self.counters.offers += 1
        return task

    def _verify_resolved(self, session: Session, now: datetime, report: TickReport) -> None:
        # Only camera cases (those with incidents); a reviewer closes the others.
        resolved = session.execute(
            select(CaseDispatch, Case)
            .join(Case, Case.id == CaseDispatch.case_id)
            .where(CaseDispatch.status == "resolved", Case.state == "resolved")
            .where(exists().where(CaseIncident.case_id == Case.id))
            .with_for_update(of=CaseDispatch)
        ).all()
        if not resolved:
            return
        by_case: dict[int, list[tuple[str, str, datetime | None]]] = {}
        for case_id, incident_id, state, ended_at in session.execute(
            select(CaseIncident.case_id, Incident.incident_id, Incident.state, Incident.ended_at)
            .join(Incident, Incident.incident_id == CaseIncident.incident_id)
            .where(CaseIncident.case_id.in_([case.id for _, case in resolved]))
        ):
            by_case.setdefault(case_id, []).append((incident_id, state, ended_at))
        for queue, case in resolved:
            incidents = by_case.get(case.id, [])
            if not incidents:
                continue
            task = session.scalar(
                select(DispatchTask)
                .where(DispatchTask.case_id == case.id, DispatchTask.state == "resolved")
                .order_by(DispatchTask.id.desc())
            )
            if all(state == "ended" for _, state, _ in incidents):
                ended = ", ".join(
                    f"{i} ended {e.isoformat(timespec='seconds')}" for i, _, e in incidents if e
                )
                _move(session, case, "closed", now, ACTOR, "verified", f"verified by camera: {ended}")
                queue.status, queue.verified_by, queue.updated_at = "done", "camera", now
                if task is not None:
                    _task_step(task, "verified")
                    task.ended_at = now
                report.verified += 1
                self.counters.verified += 1
            elif queue.verify_due_at is not None and now >= queue.verify_due_at:
                open_ids = ", ".join(i for i, state, _ in incidents if state != "ended")
                reason = f"object still seen by the camera {self.settings.verify_grace_s:.0f} s after resolved ({open_ids})"
                _move(session, case, "dispatched", now, ACTOR, "rework", reason)
                queue.status, queue.verify_due_at, queue.updated_at = "assigned", None, now
                queue.rework_count += 1
                if task is not None:
                    _task_step(task, "accepted")
                    task.rework_count += 1
                    task.resolved_at = None
                    task.arrived_at = None
                    officer = session.get(Officer, task.officer_id)
                    if officer is not None:
                        refresh_officer_state(session, officer, now)
                report.reworked += 1
                self.counters.reworks += 1

    def _finish_closed(self, session: Session, now: datetime) -> None:
        """Cases closed or rejected by hand leave the queue; their open tasks are withdrawn."""
        rows = session.execute(
            select(CaseDispatch, Case)
            .join(Case, Case.id == CaseDispatch.case_id)
            .where(CaseDispatch.status != "done", Case.state.in_(("closed", "rejected")))
            .with_for_update(of=CaseDispatch)
        ).all()
        for queue, case in rows:
            queue.status, queue.updated_at = "done", now
            if queue.verified_by is None and case.state == "closed":
                queue.verified_by = "reviewer"
            for task in session.scalars(
                select(DispatchTask).where(
                    DispatchTask.case_id == case.id, DispatchTask.state.in_((*OPEN_TASK_STATES, "resolved"))
                )
            ):
                task.state = "verified" if task.state == "resolved" else "withdrawn"
                task.ended_at = now
                officer = session.get(Officer, task.officer_id)
                if officer is not None:
                    refresh_officer_state(session, officer, now)

    # ------------------------------------------------------------------ the officer's actions

    def act(
        self, username: str, task_id: int, action: str, *, key: str | None = None,
        reason: str | None = None, note: str | None = None, photo: str | None = None,
        now: datetime | None = None,
    ) -> TaskView:  # fmt: skip
        """Accept, decline, arrive or resolve, once per idempotency ``key``: the same key again
        returns the first answer and changes nothing (the app's offline queue may send twice)."""
        view = self._act(username, task_id, action, key=key, reason=reason, note=note, photo=photo, now=now)
        brief = view.case
        if action == "resolve" and self.on_resolved is not None and brief is not None and brief.camera:
            try:
                self.on_resolved(brief.site, brief.edge_id, brief.camera)
            except Exception:  # the picture is a nicety; the resolution is stored
                log.exception("asking %s for a snapshot of %s failed", brief.edge_id, brief.camera)
        return view

    def _act(
        self, username: str, task_id: int, action: str, *, key: str | None, reason: str | None,
        note: str | None, photo: str | None, now: datetime | None,
    ) -> TaskView:  # fmt: skip
        if action not in ACTIONS:
            raise DispatchError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        now = now or self.clock()
        try:
            with self.db.write_session() as session, session.begin():
                officer = session.scalar(select(Officer).where(Officer.username == username))
                if officer is None:
                    raise DispatchError(f"{username!r} is not on the roster")
                if key is not None:
                    done = session.scalar(
                        select(FieldAction).where(
                            FieldAction.officer_id == officer.id, FieldAction.key == key
                        )
                    )
                    if done is not None:
                        return TaskView.model_validate(done.response)
                task = session.scalar(
                    select(DispatchTask).where(DispatchTask.id == task_id).with_for_update()
                )
                if task is None or task.officer_id != officer.id:
                    raise TaskNotFound(f"task {task_id} is not yours")
                case = session.get(Case, task.case_id)
                queue = session.get(CaseDispatch, task.case_id)
                assert case is not None and queue is not None
                getattr(self, f"_{action}")(
                    session, officer, task, case, queue, now, reason=reason, note=note, photo=photo
                )
                refresh_officer_state(session, officer, now)
                session.flush()
                view = self._task_view(session, task)
                if key is not None:
                    session.add(
                        FieldAction(
                            officer_id=officer.id,
                            key=key,
                            action=action,
                            response=view.model_dump(mode="json"),
                            at=now,
                        )
                    )
                return view
        except IntegrityError:
            # The same key raced in from a second request: answer with what the first stored.
            with self.db.session() as session:
                done = session.scalar(
                    select(FieldAction).join(Officer, Officer.id == FieldAction.officer_id)
                    .where(Officer.username == username, FieldAction.key == key)
                )  # fmt: skip
                if done is None:
                    raise
                return TaskView.model_validate(done.response)

    def _accept(self, session: Session, officer: Officer, task: DispatchTask, case: Case, queue: CaseDispatch,
                now: datetime, **_: Any) -> None:  # fmt: skip
        if task.state == "offered" and now >= task.expires_at:
            self._let_go(
                session, task, now, "expired", f"no answer within {self.settings.accept_timeout_s:.0f} s"
            )
            raise TaskConflict(f"the offer of task {task.id} expired at {task.expires_at.isoformat()}")
        _task_step(task, "accepted")
        task.responded_at = now
        queue.status, queue.updated_at = "assigned", now
        reason = f"{officer.name} accepted after {(now - task.offered_at).total_seconds():.0f} s"
        if case.state == "confirmed":
            _move(session, case, "dispatched", now, officer.username, "accepted", reason)
        else:
            _history(session, case, now, officer.username, "accepted", reason)

    def _decline(self, session: Session, officer: Officer, task: DispatchTask, case: Case, queue: CaseDispatch,
                 now: datetime, *, reason: str | None = None, **_: Any) -> None:  # fmt: skip
        if task.state != "offered":
            raise TaskConflict(f"task {task.id} is {task.state}; only an offer can be declined")
        self._let_go(session, task, now, "declined", f"declined: {reason or 'no reason given'}")

    def _arrive(self, session: Session, officer: Officer, task: DispatchTask, case: Case, queue: CaseDispatch,
                now: datetime, **_: Any) -> None:  # fmt: skip
        _task_step(task, "arrived")
        task.arrived_at = now
        _history(session, case, now, officer.username, "arrived", f"{officer.name} arrived on scene")

    def _resolve(self, session: Session, officer: Officer, task: DispatchTask, case: Case, queue: CaseDispatch,
                 now: datetime, *, note: str | None = None, photo: str | None = None, **_: Any) -> None:  # fmt: skip
        _task_step(task, "resolved")
        task.resolved_at, task.note, task.photo = now, note, photo
        if task.arrived_at is None:
            task.arrived_at = now
        queue.status = "resolved"
        queue.verify_due_at = now + timedelta(seconds=self.settings.verify_grace_s)
        queue.updated_at = now
        text = (
            f"{officer.name} resolved it"
            + (f": {note}" if note else "")
            + (f" (photo {photo})" if photo else "")
        )
        _move(session, case, "resolved", now, officer.username, "resolved", text)

    # ------------------------------------------------------------------ the dispatcher's actions

    def reassign(self, case_id: int, officer_id: int, *, actor: str, reason: str | None = None) -> TaskView:
        """Withdraw the case's open offer or task and offer it to ``officer_id`` by hand."""
        now = self.clock()
        with self.db.write_session() as session, session.begin():
            case = session.scalar(select(Case).where(Case.id == case_id).with_for_update())
            if case is None:
                raise CaseNotDispatchable(f"case {case_id} does not exist")
            if case.state not in ("confirmed", "dispatched"):
                raise CaseNotDispatchable(
                    f"case {case_id} is {case.state}; only confirmed or dispatched cases are assigned"
                )
            officer = session.get(Officer, officer_id)
            if officer is None:
                raise DispatchError(f"officer {officer_id} is not on the roster")
            queue = session.get(CaseDispatch, case_id)
            if queue is None:
                queue = CaseDispatch(
                    case_id=case.id, status="waiting",
                    due_at=case.detected_at + timedelta(seconds=self.settings.limit_s(case.rule)),
                    tried=[], offers=0, rework_count=0, created_at=now, updated_at=now,
                )  # fmt: skip
                session.add(queue)
            for task in session.scalars(
                select(DispatchTask).where(
                    DispatchTask.case_id == case_id, DispatchTask.state.in_(OPEN_TASK_STATES)
                )
            ):
                task.state, task.ended_at, task.reason = "withdrawn", now, f"reassigned by {actor}"
                _history(
                    session,
                    case,
                    now,
                    actor,
                    "withdrawn",
                    f"task {task.id} withdrawn: {reason or 'reassigned'}",
                )
                previous = session.get(Officer, task.officer_id)
                if previous is not None:
                    session.flush()
                    refresh_officer_state(session, previous, now)
            distance = seconds = None
            if (
                case.lat is not None
                and case.lon is not None
                and officer.lat is not None
                and officer.lon is not None
            ):
                est = self.estimator.estimate(
                    Place(case.lat, case.lon),
                    [Candidate(officer.id, officer.lat, officer.lon, officer.transport)],
                )[0]
                if est is not None:
                    distance, seconds = est.distance_m, est.seconds
            queue.escalated_at = queue.escalated_at  # kept for the figures
            task = self._offer(
                session, case, queue, officer, now, actor, manual=True, distance=distance, seconds=seconds
            )
            return self._task_view(session, task)

    def requeue(self, case_id: int, *, actor: str) -> None:
        """Put an escalated case back in the queue with nobody tried (e.g. after a shift change)."""
        now = self.clock()
        with self.db.write_session() as session, session.begin():
            queue = session.get(CaseDispatch, case_id)
            case = session.get(Case, case_id)
            if queue is None or case is None or queue.status != "escalated":
                raise CaseNotDispatchable(f"case {case_id} is not escalated")
            queue.status, queue.tried, queue.updated_at = "waiting", [], now
            _history(session, case, now, actor, "requeued", "back in the dispatch queue")

    # ------------------------------------------------------------------ views

    def _task_view(self, session: Session, task: DispatchTask) -> TaskView:
        case = session.get(Case, task.case_id)
        officer = session.get(Officer, task.officer_id)
        return TaskView.model_validate(task).model_copy(
            update={
                "case": CaseBrief.model_validate(case) if case is not None else None,
                "officer_name": officer.name if officer is not None else None,
            }
        )

    def tasks_of_officer(self, username: str, *, open_only: bool = True) -> list[TaskView]:
        with self.db.session() as session:
            officer = session.scalar(select(Officer).where(Officer.username == username))
            if officer is None:
                raise DispatchError(f"{username!r} is not on the roster")
            stmt = select(DispatchTask).where(DispatchTask.officer_id == officer.id)
            if open_only:
                stmt = stmt.where(DispatchTask.state.in_((*OPEN_TASK_STATES, "resolved")))
            return [self._task_view(session, t) for t in session.scalars(stmt.order_by(DispatchTask.id))]

    def tasks_of_case(self, case_id: int) -> list[TaskView]:
        with self.db.session() as session:
            stmt = select(DispatchTask).where(DispatchTask.case_id == case_id).order_by(DispatchTask.id)
            return [self._task_view(session, t) for t in session.scalars(stmt)]

    def queue(
        self, statuses: tuple[str, ...] = ("waiting", "offered", "assigned", "resolved", "escalated")
    ) -> list[QueueEntry]:
        with self.db.session() as session:
            rows = session.execute(
                select(CaseDispatch, Case)
                .join(Case, Case.id == CaseDispatch.case_id)
                .where(CaseDispatch.status.in_(statuses))
                .order_by(CaseDispatch.due_at, CaseDispatch.case_id)
            ).all()
            out = []
            for queue, case in rows:
                tasks = session.scalars(
                    select(DispatchTask).where(DispatchTask.case_id == case.id).order_by(DispatchTask.id)
                )
                out.append(
                    QueueEntry.model_validate(queue).model_copy(
                        update={
                            "case": CaseBrief.model_validate(case),
                            "tasks": [self._task_view(session, t) for t in tasks],
                        }
                    )
                )
            return out
