"""``/api/v1/field``: the officer app's API (role ``officer``): me, duty, position, tasks, photos.

Actions (accept, decline, arrive, resolve) take an ``Idempotency-Key`` header: the app's offline
queue may send an action twice (it cannot know whether the first reached the hub); the second
gets the first's answer and changes nothing. Photos are stored by content hash, so a re-sent
photo is the same file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from gridwarden.contract import utcnow
from gridwarden.hub.api.deps import MAX_DB_INT, Services, error, require
from gridwarden.hub.auth import SESSION_TTL_S, InvalidCredentials, Permission, Principal
from gridwarden.hub.db.models import CaseIncident, DispatchTask, Incident, Officer
from gridwarden.hub.dispatch.photos import MAX_PHOTO_BYTES, PhotoError
from gridwarden.hub.dispatch.service import DispatchError, TaskConflict, TaskNotFound, TaskView
from gridwarden.hub.dispatch.wiring import FieldServices, get_field
from gridwarden.hub.evidence_store import check_id
from gridwarden.hub.officers.positions import PositionError, app_fix, record_fixes
from gridwarden.hub.officers.roster import OfficerNotFound, OfficerView

router = APIRouter(prefix="/api/v1/field", tags=["officer app"])
FieldDep = Annotated[FieldServices, Depends(get_field)]
Officer_ = Annotated[Principal, Depends(require(Permission.FIELD_WORK))]
TaskId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", pattern=r"^[A-Za-z0-9_.:-]{8,64}$", description="Unique per action."),
]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    token: str
    expires_in: int
    username: str


class Me(BaseModel):
    officer: OfficerView
    tasks: list[TaskView]
    accept_timeout_s: float


class DutyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool


class PositionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    at: datetime | None = None


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=2000)
    photo: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}\.(jpg|png|webp)$")


class PhotoStored(BaseModel):
    photo: str


def _me(field: FieldServices, username: str) -> Me:
    try:
        officer = field.roster.by_username(username)
    except OfficerNotFound as exc:
        raise error(status.HTTP_404_NOT_FOUND, "not_on_roster", str(exc)) from exc
    return Me(
        officer=officer,
        tasks=field.dispatch.tasks_of_officer(username),
        accept_timeout_s=field.settings.accept_timeout_s,
    )


@router.post(
    "/login",
    response_model=LoginResponse,
    summary="Officer app log-in: user name + password -> a session token for this API",
    responses={401: {"description": "Wrong user name or password"}, 403: {"description": "Not an officer"}},
)
def login(body: LoginRequest, services: Services) -> LoginResponse:
    try:
        principal, token = services.users.authenticate_password(body.username, body.password)
    except InvalidCredentials as exc:
        raise error(status.HTTP_401_UNAUTHORIZED, "invalid_credentials", str(exc)) from exc
    if not principal.can(Permission.FIELD_WORK):
        raise error(
            status.HTTP_403_FORBIDDEN, "forbidden", f"role {principal.role.value!r} is not an officer"
        )
    return LoginResponse(token=token, expires_in=SESSION_TTL_S, username=principal.username)


@router.get("/me", response_model=Me, summary="The signed-in officer, state and open tasks and offers")
def me(field: FieldDep, principal: Officer_) -> Me:
    return _me(field, principal.username)


@router.put("/me/duty", response_model=Me, summary="Go on or off duty")
def duty(body: DutyRequest, field: FieldDep, principal: Officer_) -> Me:
    try:
        field.roster.set_duty(principal.username, body.on_duty)
    except OfficerNotFound as exc:
        raise error(status.HTTP_404_NOT_FOUND, "not_on_roster", str(exc)) from exc
    return _me(field, principal.username)


@router.post("/me/position", status_code=status.HTTP_204_NO_CONTENT, summary="The app's own geolocation")
def position(body: PositionRequest, field: FieldDep, principal: Officer_) -> None:
    now = utcnow()
    if body.at is not None and body.at.tzinfo is None:
        raise error(status.HTTP_422_UNPROCESSABLE_CONTENT, "naive_time", "at must carry a time zone")
    try:
        fix = app_fix(principal.username, body.lat, body.lon, body.at or now, now, body.accuracy_m)
    except PositionError as exc:
        raise error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_position", str(exc)) from exc
    with field.db.write_session() as session, session.begin():
        if record_fixes(session, [fix], now)[0] is None:
            raise error(
                status.HTTP_404_NOT_FOUND, "not_on_roster", f"{principal.username!r} is not on the roster"
            )


@router.post(
    "/tasks/{task_id}/{action}",
    response_model=TaskView,
    summary="Accept, decline, arrive or resolve (idempotent with Idempotency-Key)",
    responses={
        404: {"description": "Not your task"},
        409: {"description": "Not possible in the task's state"},
    },
)
def act(
    task_id: TaskId,
    action: Literal["accept", "decline", "arrive", "resolve"],
    field: FieldDep,
    principal: Officer_,
    idempotency_key: IdempotencyKey = None,
    body: ActionRequest | None = None,
) -> TaskView:
    body = body or ActionRequest()
    if body.photo is not None and field.photos.path(body.photo) is None:
        raise error(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown_photo", "upload the photo first")
    try:
        return field.dispatch.act(
            principal.username, task_id, action, key=idempotency_key,
            reason=body.reason, note=body.note, photo=body.photo,
        )  # fmt: skip
    except TaskNotFound as exc:
        raise error(status.HTTP_404_NOT_FOUND, "task_not_found", str(exc)) from exc
    except TaskConflict as exc:
        raise error(status.HTTP_409_CONFLICT, "task_conflict", str(exc)) from exc
    except DispatchError as exc:
        raise error(status.HTTP_404_NOT_FOUND, "not_on_roster", str(exc)) from exc


@router.post("/photos", response_model=PhotoStored, summary="Upload a photo (JPEG, PNG or WebP body)")
async def upload_photo(request: Request, field: FieldDep, _: Officer_) -> PhotoStored:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_PHOTO_BYTES:
        raise error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"at most {MAX_PHOTO_BYTES} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_PHOTO_BYTES:
            raise error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"at most {MAX_PHOTO_BYTES} bytes")
    try:
        name = await run_in_threadpool(field.photos.put, bytes(data))
    except PhotoError as exc:
        raise error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_photo", str(exc)) from exc
    return PhotoStored(photo=name)


@router.get("/tasks/{task_id}/snapshot", summary="The incident's snapshot for the task card")
def snapshot(task_id: TaskId, field: FieldDep, principal: Officer_) -> FileResponse:
    with field.db.session() as session:
        task = session.get(DispatchTask, task_id)
        officer = session.scalar(select(Officer).where(Officer.username == principal.username))
        if task is None or officer is None or task.officer_id != officer.id:
            raise error(status.HTTP_404_NOT_FOUND, "task_not_found", f"task {task_id} is not yours")
        evidence = session.scalars(
            select(Incident.evidence)
            .join(CaseIncident, CaseIncident.incident_id == Incident.incident_id)
            .where(CaseIncident.case_id == task.case_id)
        ).all()
    for refs in evidence:
        for ref in refs or []:
            if ref.get("kind") in ("snapshot", "snapshot_annotated"):
                stored = field.evidence.stat(check_id(str(ref.get("sha256"))))
                if stored is not None:
                    return FileResponse(
                        stored.path,
                        media_type=stored.content_type,
                        headers={"X-Content-Type-Options": "nosniff"},
                    )
    raise error(status.HTTP_404_NOT_FOUND, "no_snapshot", "no snapshot of this incident has reached the hub")
