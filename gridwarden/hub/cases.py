"""The case queue: incidents become cases, and operators move cases through a fixed life cycle.

An incident opens a new case, or joins the open case of the same camera, zone and object when
it starts within the merge window (default 120 s) of that case's last activity: one parked car
that the edge lost behind a passing bus and found again is one case, not two. "Same object"
means a box of the new incident overlaps a box of the case's incidents (IoU at least
``merge_iou``) or they share a track id.

The life cycle, as data (:data:`TRANSITIONS`; anything not listed is an :class:`IllegalTransition`)::

    new         -> in_review
    in_review   -> confirmed | rejected
    confirmed   -> dispatched
    dispatched  -> resolved
    resolved    -> closed | dispatched (rework: the camera still sees the object)
    rejected    -> closed
    closed      -> (nothing: final)

Every change is written to ``case_history`` (who, when, from, to, why) in the same transaction as
the change itself; history rows are never updated or deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from gridwarden.contract import utcnow
from gridwarden.geometry import box_iou
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import (
    Case,
    CaseHistory,
    CaseIncident,
    Incident,
    WebhookOutbox,
)
from gridwarden.hub.places.case_location import locate_case
from gridwarden.hub.reports.categories import active_table
from gridwarden.hub.schemas import (
    CaseDetail,
    CaseHistoryEntry,
    CaseView,
    IncidentView,
)
from gridwarden.hub.sla import MILESTONES, SlaPolicy, SlaReport, compute_sla

STATES: tuple[str, ...] = ("new", "in_review", "confirmed", "rejected", "dispatched", "resolved", "closed")
INITIAL_STATE = "new"
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("in_review",),
    "in_review": ("confirmed", "rejected"),
    "confirmed": ("dispatched",),
    "dispatched": ("resolved",),
    "resolved": ("closed", "dispatched"),
    "rejected": ("closed",),
    "closed": (),
}
# A new incident may join a case only while someone may still act on it.
MERGEABLE_STATES: tuple[str, ...] = ("new", "in_review", "confirmed", "dispatched")
# The column on ``cases`` that remembers when a state was first reached (the SLA milestones).
STATE_TIMESTAMP = {
    "in_review": "in_review_at",
    "confirmed": "confirmed_at",
    "rejected": "rejected_at",
    "dispatched": "dispatched_at",
    "resolved": "resolved_at",
    "closed": "closed_at",
}
SORT_COLUMNS = ("id", "created_at", "updated_at", "detected_at", "last_activity_at", "state")
SYSTEM_ACTOR = "system"
DEFAULT_MERGE_WINDOW_S = 120.0
DEFAULT_MERGE_IOU = 0.3
MAX_PAGE = 500


class CaseError(Exception):
    """Base of the errors the case service raises for bad requests."""


class CaseNotFound(CaseError, LookupError):
    def __init__(self, case_id: int) -> None:
        super().__init__(f"case {case_id} does not exist")
        self.case_id = case_id


class IllegalTransition(CaseError, ValueError):
    """A state change the life cycle does not allow; names what would have been allowed."""

    def __init__(self, from_state: str, to_state: str, allowed: Sequence[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none (final state)"
        super().__init__(f"cannot move a case from {from_state!r} to {to_state!r}; allowed: {allowed_text}")
        self.from_state = from_state
        self.to_state = to_state
        self.allowed = tuple(allowed)


def _reachable_from(state: str) -> set[str]:
    seen: set[str] = set()
    todo = list(TRANSITIONS[state])
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(TRANSITIONS[s])
    return seen


REACHABLE: dict[str, frozenset[str]] = {s: frozenset(_reachable_from(s)) for s in STATES}


# --------------------------------------------------------------------------- merging incidents


def _boxes(objects: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array(
        [[o["box"]["x1"], o["box"]["y1"], o["box"]["x2"], o["box"]["y2"]] for o in objects], dtype=np.float64
    ).reshape(-1, 4)


def same_object(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *, min_iou: float) -> bool:
    """Whether two incidents' object lists share an object (a common track id or overlapping boxes)."""
    if not a or not b:
        return False
    if {o["track_id"] for o in a} & {o["track_id"] for o in b}:
        return True
    return bool((box_iou(_boxes(a), _boxes(b)) >= min_iou).any())


@dataclass
class _Candidate:
    """A mergeable case as the matcher sees it: its activity time and its incidents' objects
    (boxes stacked for one vectorised IoU per new incident, and track ids). ``case`` is the ORM
    row, loaded (and locked) only once an incident of the batch may join it."""

    case_id: int | None
    last_activity_at: datetime
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    track_ids: set[int] = field(default_factory=set)
    case: Case | None = None

    def add_objects(self, objects: Sequence[dict[str, Any]]) -> None:
        if objects:
            self.boxes = np.concatenate([self.boxes, _boxes(objects)])
            self.track_ids.update(o["track_id"] for o in objects)


CaseKey = tuple[str, str, str]  # edge_id, camera, zone


@dataclass
class CaseMatcher:
    """Finds or opens the case for new incidents, inside the ingest transaction.

    One matcher lives for one batch. :meth:`prime` fetches, in one light query, the mergeable
    cases of every camera and zone the batch opens incidents in (ids, times and object boxes, no
    ORM rows); the matcher then keeps that picture current in memory as the batch opens and joins
    cases. Only a case that an incident joins is loaded as a row. Callers hold the edge's sequence
    row lock, so no other hub process opens cases for the same camera meanwhile.
    """

    session: Session
    merge_window_s: float = DEFAULT_MERGE_WINDOW_S
    merge_iou: float = DEFAULT_MERGE_IOU
    _candidates: dict[CaseKey, list[_Candidate]] = field(default_factory=dict)

    def prime(self, not_before: dict[CaseKey, datetime]) -> None:
        """Load candidates for each key, for incidents starting at its ``not_before`` or later."""
        keys = [k for k in not_before if k not in self._candidates]
        if not keys:
            return
        window = timedelta(seconds=self.merge_window_s)
        for key in keys:
            self._candidates[key] = []
        for chunk_start in range(0, len(keys), 100):
            chunk = keys[chunk_start : chunk_start + 100]
            stmt = (
                select(Case.id, Case.edge_id, Case.camera, Case.zone, Case.last_activity_at, Incident.objects)
                .join(CaseIncident, CaseIncident.case_id == Case.id)
                .join(Incident, Incident.incident_id == CaseIncident.incident_id)
                .where(Case.state.in_(MERGEABLE_STATES))
                .where(
                    or_(
                        *(
                            and_(
                                Case.edge_id == e,
                                Case.camera == c,
                                Case.zone == z,
                                Case.last_activity_at >= not_before[(e, c, z)] - window,
                            )
                            for e, c, z in chunk
                        )
                    )
                )
                .order_by(Case.id)
            )
            by_id: dict[int, _Candidate] = {}
            for case_id, edge_id, camera, zone, last_activity_at, objects in self.session.execute(stmt):
                cand = by_id.get(case_id)
                if cand is None:
                    cand = by_id[case_id] = _Candidate(case_id, last_activity_at)
                    self._candidates[(edge_id, camera, zone)].append(cand)
                cand.add_objects(objects)

    def _load_rows(self, candidates: list[_Candidate]) -> None:
        """Load and lock the case rows of the given candidates in one query."""
        ids = [c.case_id for c in candidates if c.case is None and c.case_id is not None]
        if not ids:
            return
        stmt = select(Case).where(Case.id.in_(ids)).order_by(Case.id).with_for_update()
        by_id = {c.id: c for c in self.session.scalars(stmt.execution_options(populate_existing=True))}
        for cand in candidates:
            if cand.case is None and cand.case_id is not None:
                cand.case = by_id.get(cand.case_id)

    def _matching(self, incident: Incident, candidates: list[_Candidate]) -> list[_Candidate]:
        """Candidates within the window that share an object with ``incident``, newest first."""
        window = timedelta(seconds=self.merge_window_s)
        recent = [c for c in candidates if incident.started_at - c.last_activity_at <= window]
        if not recent or not incident.objects:
            return []
        tracks = {o["track_id"] for o in incident.objects}
        hit = np.array([bool(tracks & c.track_ids) for c in recent])
        counts = np.array([len(c.boxes) for c in recent])
        if counts.sum():
            overlaps = (
                box_iou(_boxes(incident.objects), np.concatenate([c.boxes for c in recent])) >= self.merge_iou
            ).any(axis=0)
            owner = np.repeat(np.arange(len(recent)), counts)
            hit |= np.bincount(owner, weights=overlaps, minlength=len(recent)) > 0
        return sorted(
            (c for c, h in zip(recent, hit, strict=True) if h), key=lambda c: c.last_activity_at, reverse=True
        )

    def assign(self, incident: Incident, *, now: datetime) -> tuple[Case, str]:
        """Join ``incident`` to a matching open case, or open a new one. Returns (case, how)."""
        key = (incident.edge_id, incident.camera, incident.zone)
        self.prime({key: incident.started_at})
        candidates = self._candidates[key]
        matches = self._matching(incident, candidates)
        self._load_rows(matches)
        for cand in matches:
            case = cand.case
            if case is None or case.state not in MERGEABLE_STATES:  # an operator moved it on meanwhile
                candidates.remove(cand)
                continue
            # SQLAlchemy 2 does not cascade along backrefs: add the link explicitly.
            self.session.add(CaseIncident(case=case, incident=incident, joined_at=now, how="merged"))
            case.incident_count += 1
            case.classes = sorted(set(case.classes) | set(incident.classes))
            case.category = active_table().classify(case.rule, case.classes)
            case.detected_at = min(case.detected_at, incident.started_at)
            case.last_activity_at = max(case.last_activity_at, incident.last_event_at)
            case.updated_at = now
            cand.add_objects(incident.objects)
            cand.last_activity_at = case.last_activity_at
            return case, "merged"
        case = Case(
            state=INITIAL_STATE,
            site=incident.site,
            edge_id=incident.edge_id,
            camera=incident.camera,
            zone=incident.zone,
            rule=incident.rule,
            classes=sorted(set(incident.classes)),
            source="camera",
            category=active_table().classify(incident.rule, incident.classes),
            incident_count=1,
            detected_at=incident.started_at,
            last_activity_at=incident.last_event_at,
            created_at=now,
            updated_at=now,
        )
        CaseIncident(case=case, incident=incident, joined_at=now, how="opened")
        CaseHistory(
            case=case, at=now, actor=SYSTEM_ACTOR, from_state=None, to_state=INITIAL_STATE,
            reason=f"opened by incident {incident.incident_id}",
        )  # fmt: skip
        locate_case(self.session, case)
        self.session.add(case)
        cand = _Candidate(None, case.last_activity_at, case=case)
        cand.add_objects(incident.objects)
        candidates.append(cand)
        return case, "opened"


def note_incident_activity(incident: Incident) -> None:
    """Keep the case's last-activity time current as its incident receives events."""
    link = incident.case_link
    if link is not None and incident.last_event_at > link.case.last_activity_at:
        link.case.last_activity_at = incident.last_event_at


# --------------------------------------------------------------------------- the service


def _case_columns(case: Case) -> dict[str, Any]:
    return {c.key: getattr(case, c.key) for c in Case.__table__.columns}


class CaseService:
    """Reads and changes cases for the API; each call is one short transaction.

    ``clock`` is injectable so SLA figures can be checked at a chosen instant.
    ``webhook_on`` names the states whose arrival is announced through the webhook outbox.
    """

    def __init__(
        self,
        db: Database,
        *,
        merge_window_s: float = DEFAULT_MERGE_WINDOW_S,
        sla_target_s: float = 600.0,
        merge_iou: float = DEFAULT_MERGE_IOU,
        webhook_on: Collection[str] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        unknown = set(webhook_on) - set(STATES)
        if unknown:
            raise ValueError(f"unknown case states for webhooks: {sorted(unknown)}")
        self.db = db
        self.merge_window_s = merge_window_s
        self.merge_iou = merge_iou
        self.sla_policy = SlaPolicy.uniform(sla_target_s)
        self.webhook_on = frozenset(webhook_on)
        self.clock = clock

    # ---- views

    def sla(self, case: Case, now: datetime | None = None) -> SlaReport:
        reached = {m: getattr(case, STATE_TIMESTAMP[m]) for m in MILESTONES}
        return compute_sla(
            case.detected_at,
            reached,
            reachable=REACHABLE[case.state],
            policy=self.sla_policy,
            now=now or self.clock(),
        )

    def _view(self, case: Case, now: datetime) -> CaseView:
        return CaseView.model_validate({**_case_columns(case), "sla": self.sla(case, now)})

    def _detail(self, case: Case, now: datetime) -> CaseDetail:
        return CaseDetail.model_validate(
            {
                **_case_columns(case),
                "sla": self.sla(case, now),
                "incidents": [IncidentView.model_validate(link.incident) for link in case.links],
                "history": [CaseHistoryEntry.model_validate(h) for h in case.history],
                "allowed_transitions": list(TRANSITIONS[case.state]),
            }
        )

    # ---- queries

    def list_cases(
        self,
        *,
        state: str | Sequence[str] | None = None,
        camera: str | None = None,
        zone: str | None = None,
        rule: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        category: str | Sequence[str] | None = None,
        source: str | None = None,
        sort: str = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[CaseView], int]:
        """One page of cases and the total that match. ``since``/``until`` bound ``detected_at``
        (``since`` inclusive, ``until`` exclusive)."""
        if sort not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {sort!r}; choose one of {', '.join(SORT_COLUMNS)}")
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"offset must be >= 0 and limit within 1..{MAX_PAGE}")
        states = [state] if isinstance(state, str) else list(state or [])
        unknown = set(states) - set(STATES)
        if unknown:
            raise ValueError(f"unknown case state(s) {sorted(unknown)}; states are {', '.join(STATES)}")
        stmt = select(Case)
        if states:
            stmt = stmt.where(Case.state.in_(states))
        categories = [category] if isinstance(category, str) else list(category or [])
        if categories:
            stmt = stmt.where(Case.category.in_(categories))
        for column, value in (
            (Case.camera, camera),
            (Case.zone, zone),
            (Case.rule, rule),
            (Case.source, source),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(Case.detected_at >= since)
        if until is not None:
            stmt = stmt.where(Case.detected_at < until)
        order = getattr(Case, sort)
        tiebreak = Case.id.desc() if descending else Case.id.asc()
        page = (
            stmt.order_by(order.desc() if descending else order.asc(), tiebreak).offset(offset).limit(limit)
        )
        now = self.clock()
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            return [self._view(c, now) for c in session.scalars(page).all()], total

    def _load_case(self, session: Session, case_id: int, *, for_update: bool = False) -> Case:
        stmt = select(Case).where(Case.id == case_id)
        if for_update:
            stmt = stmt.with_for_update()
        case = session.scalar(stmt)
        if case is None:
            raise CaseNotFound(case_id)
        return case

    def get_case(self, case_id: int) -> CaseDetail:
        """A case with its incidents, its full history and its SLA clock."""
        with self.db.session() as session:
            case = session.scalar(
                select(Case)
                .where(Case.id == case_id)
                .options(
                    selectinload(Case.links).selectinload(CaseIncident.incident), selectinload(Case.history)
                )
            )
            if case is None:
                raise CaseNotFound(case_id)
            return self._detail(case, self.clock())

    # ---- changes

    def transition(self, case_id: int, to_state: str, *, actor: str, reason: str | None = None) -> CaseDetail:
        """Move a case to ``to_state`` on behalf of ``actor``; raises :class:`IllegalTransition`
        when the life cycle forbids it and :class:`CaseNotFound` for an unknown case."""
        if not actor or not actor.strip():
            raise ValueError("a transition needs the actor who made it")
        now = self.clock()
        with self.db.write_session() as session, session.begin():
            case = self._load_case(session, case_id, for_update=True)
            allowed = TRANSITIONS[case.state]
            if to_state not in allowed:
                raise IllegalTransition(case.state, to_state, allowed)
            from_state = case.state
            case.state = to_state
            case.updated_at = now
            stamp = STATE_TIMESTAMP[to_state]
            if getattr(case, stamp) is None:
                setattr(case, stamp, now)
            session.add(
                CaseHistory(
                    case_id=case.id,
                    at=now,
                    actor=actor,
                    from_state=from_state,
                    to_state=to_state,
                    reason=reason,
                )
            )
            if to_state in self.webhook_on:
                session.add(
                    WebhookOutbox(
                        case_id=case.id,
                        payload={
                            "type": "case_transition",
                            "case_id": case.id,
                            "from_state": from_state,
                            "to_state": to_state,
                            "actor": actor,
                            "reason": reason,
                            "at": now.isoformat(),
                            "camera": case.camera,
                            "zone": case.zone,
                            "rule": case.rule,
                        },
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        return self.get_case(case_id)


__all__ = [
    "CaseError",
    "CaseMatcher",
    "CaseNotFound",
    "CaseService",
    "IllegalTransition",
    "MERGEABLE_STATES",
    "STATES",
    "TRANSITIONS",
    "box_iou",
    "note_incident_activity",
    "same_object",
]
