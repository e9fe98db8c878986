"""``/api/v1/officers``: the roster for the command centre (state, last position, open tasks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel
from sqlalchemy import select

from gridwarden.hub.api.deps import IsoDatetime, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.db.models import Officer, OfficerPosition
from gridwarden.hub.dispatch.wiring import FieldServices, get_field
from gridwarden.hub.officers.roster import OfficerNotFound, OfficerSpec, OfficerView, RosterError

router = APIRouter(prefix="/api/v1/officers", tags=["officers"])
Field = Annotated[FieldServices, Depends(get_field)]
Username = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")]


class PositionView(BaseModel):
    fix_at: datetime
    lat: float
    lon: float
    accuracy_m: float | None
    speed_mps: float | None
    battery: int | None
    source: str


class DutyRequest(BaseModel):
    on_duty: bool


@router.get("", response_model=list[OfficerView], summary="The roster with each officer's state and position")
def list_officers(
    field: Field, _: Annotated[Principal, Depends(require(Permission.DISPATCH))]
) -> list[OfficerView]:
    return field.roster.list()


@router.put(
    "/{username}",
    response_model=OfficerView,
    summary="Add an officer to the roster or change one (team, areas, transport, tracker id)",
)
def put_officer(
    username: Username,
    spec: OfficerSpec,
    field: Field,
    _: Annotated[Principal, Depends(require(Permission.MANAGE_USERS))],
) -> OfficerView:
    if spec.username != username:
        raise error(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "username_mismatch", "body username differs from the path"
        )
    try:
        return field.roster.upsert(spec)
    except RosterError as exc:
        raise error(status.HTTP_409_CONFLICT, "roster_conflict", str(exc)) from exc


@router.put(
    "/{username}/duty", response_model=OfficerView, summary="Put an officer on or off duty (shift change)"
)
def put_duty(
    username: Username,
    body: DutyRequest,
    field: Field,
    _: Annotated[Principal, Depends(require(Permission.DISPATCH))],
) -> OfficerView:
    try:
        return field.roster.set_duty(username, body.on_duty)
    except OfficerNotFound as exc:
        raise error(status.HTTP_404_NOT_FOUND, "officer_not_found", str(exc)) from exc


@router.get(
    "/{username}/positions", response_model=list[PositionView], summary="An officer's position history"
)
def positions(
    username: Username,
    field: Field,
    _: Annotated[Principal, Depends(require(Permission.DISPATCH))],
    since: IsoDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[PositionView]:
    with field.db.session() as session:
        officer = session.scalar(select(Officer).where(Officer.username == username))
        if officer is None:
            raise error(status.HTTP_404_NOT_FOUND, "officer_not_found", f"{username!r} is not on the roster")
        stmt = select(OfficerPosition).where(OfficerPosition.officer_id == officer.id)
        if since is not None:
            if since.tzinfo is None:
                raise error(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, "naive_time", "since must carry a time zone"
                )
            stmt = stmt.where(OfficerPosition.fix_at >= since)
        rows = session.scalars(stmt.order_by(OfficerPosition.fix_at.desc()).limit(limit)).all()
        return [
            PositionView(
                fix_at=p.fix_at,
                lat=p.lat,
                lon=p.lon,
                accuracy_m=p.accuracy_m,
                speed_mps=p.speed_mps,
                battery=p.battery,
                source=p.source,
            )  # fmt: skip
            for p in rows
        ]
