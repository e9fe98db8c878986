"""The roster: officers (one per ``officer`` user), their duty, areas and derived state."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import DispatchTask, Officer
from gridwarden.hub.officers.states import OPEN_TASK_STATES, TEAMS, TRANSPORTS, officer_state

AREA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TRACKER_ID = re.compile(r"^[A-Za-z0-9_.:-]{16,128}$")


class RosterError(ValueError):
    """A roster change that cannot be made (unknown officer, duplicate, bad field)."""


class OfficerNotFound(RosterError, LookupError):
    pass


class OfficerSpec(BaseModel):
    """What a dispatcher or admin sets about an officer."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
    name: str = Field(min_length=1, max_length=200)
    team: str = Field(default="patrol", description=f"One of {', '.join(TEAMS)}.")
    areas: list[str] = Field(default_factory=list, max_length=100)
    transport: str = Field(default="foot", description=f"One of {', '.join(TRANSPORTS)}.")
    shifts: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Shift windows 'HH:MM-HH:MM' (local time); duty switches on and off at their edges.",
    )
    tracker_id: str | None = Field(
        default=None,
        description="Device id of an OsmAnd/Traccar tracker app (16-128 characters; keep it secret).",
    )

    @field_validator("team")
    @classmethod
    def _team(cls, v: str) -> str:
        if v not in TEAMS:
            raise ValueError(f"team must be one of {', '.join(TEAMS)}")
        return v

    @field_validator("transport")
    @classmethod
    def _transport(cls, v: str) -> str:
        if v not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        return v

    @field_validator("areas")
    @classmethod
    def _areas(cls, v: list[str]) -> list[str]:
        for a in v:
            if not AREA_ID.match(a):
                raise ValueError(f"area id {a!r}: letters, digits, '_', '.', '-'")
        return sorted(set(v))

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, v: list[str]) -> list[str]:
        for window in v:
            parse_shift(window)
        return v

    @field_validator("tracker_id")
    @classmethod
    def _tracker(cls, v: str | None) -> str | None:
        if v is not None and not TRACKER_ID.match(v):
            raise ValueError("tracker_id: 16-128 letters, digits or _ . : -")
        return v


SHIFT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_shift(window: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' -> (start, end) in minutes of the day; a shift may run past midnight.

    >>> parse_shift("22:00-06:00")
    (1320, 360)
    """
    m = SHIFT.match(window)
    if m is None:
        raise ValueError(f"shift {window!r}: expected HH:MM-HH:MM")
    a, b, c, d = (int(x) for x in m.groups())
    if (a, b) == (c, d):
        raise ValueError(f"shift {window!r}: start and end are the same")
    return a * 60 + b, c * 60 + d


def in_shift(windows: list[str], minute_of_day: int) -> bool:
    """Whether the local minute of the day falls in one of the windows (end exclusive)."""
    for window in windows:
        start, end = parse_shift(window)
        if (start <= minute_of_day < end) if start < end else (minute_of_day >= start or minute_of_day < end):
            return True
    return False


class OfficerView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    name: str
    team: str
    areas: list[str]
    transport: str
    on_duty: bool
    state: str
    shifts: list[str] = []
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    fix_at: datetime | None
    open_tasks: int = 0


def refresh_officer_state(session: Session, officer: Officer, now: datetime) -> str:
    """Recompute and store ``officer.state`` from duty and open tasks (call after any change)."""
    states = session.scalars(
        select(DispatchTask.state).where(
            DispatchTask.officer_id == officer.id, DispatchTask.state.in_(OPEN_TASK_STATES)
        )
    ).all()
    state = officer_state(officer.on_duty, states)
    if state != officer.state:
        officer.state = state
        officer.updated_at = now
    return state


class Roster:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, spec: OfficerSpec, *, now: datetime | None = None) -> OfficerView:
        now = now or utcnow()
        with self.db.write_session() as session, session.begin():
            officer = session.scalar(select(Officer).where(Officer.username == spec.username))
            if spec.tracker_id is not None:
                other = session.scalar(select(Officer).where(Officer.tracker_id == spec.tracker_id))
                if other is not None and other.username != spec.username:
                    raise RosterError("tracker_id is already used by another officer")
            if officer is None:
                officer = Officer(
                    username=spec.username,
                    on_duty=False,
                    state="off_duty",
                    shifts=[],
                    created_at=now,
                    updated_at=now,
                )
                session.add(officer)
            officer.name, officer.team, officer.areas = spec.name, spec.team, spec.areas
            officer.transport, officer.tracker_id = spec.transport, spec.tracker_id
            if officer.shifts != spec.shifts:
                officer.shifts, officer.in_shift = spec.shifts, None
            officer.updated_at = now
            session.flush()
            return self._view(session, officer)

    def _view(self, session: Session, officer: Officer) -> OfficerView:
        n = session.scalar(
            select(func.count())
            .select_from(DispatchTask)
            .where(DispatchTask.officer_id == officer.id, DispatchTask.state.in_(OPEN_TASK_STATES))
        )
        return OfficerView.model_validate(officer).model_copy(update={"open_tasks": n or 0})

    def list(self) -> list[OfficerView]:
        with self.db.session() as session:
            counts = dict(
                session.execute(
                    select(DispatchTask.officer_id, func.count())
                    .where(DispatchTask.state.in_(OPEN_TASK_STATES))
                    .group_by(DispatchTask.officer_id)
                ).all()
            )
            return [
                OfficerView.model_validate(o).model_copy(update={"open_tasks": counts.get(o.id, 0)})
                for o in session.scalars(select(Officer).order_by(Officer.username))
            ]

    def by_username(self, username: str) -> OfficerView:
        with self.db.session() as session:
            officer = session.scalar(select(Officer).where(Officer.username == username))
            if officer is None:
                raise OfficerNotFound(f"{username!r} is not on the roster")
            return self._view(session, officer)

    def set_duty(self, username: str, on_duty: bool, *, now: datetime | None = None) -> OfficerView:
        """Go on or off duty. Going off duty keeps accepted tasks (they still have to be done) but
        no new offers come."""
        now = now or utcnow()
        with self.db.write_session() as session, session.begin():
            officer = session.scalar(select(Officer).where(Officer.username == username).with_for_update())
            if officer is None:
                raise OfficerNotFound(f"{username!r} is not on the roster")
            officer.on_duty = on_duty
            officer.updated_at = now
            refresh_officer_state(session, officer, now)
            return self._view(session, officer)
