"""``/api/v1/dispatch``: the queue, who was offered what, reassignment by hand, alarms, SLA figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from gridwarden.hub.api.deps import MAX_DB_INT, IsoDatetime, Services, error, require
from gridwarden.hub.api.snapshots import SNAPSHOT_DIR
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.dispatch.figures import SlaFigures, sla_figures
from gridwarden.hub.dispatch.service import CaseNotDispatchable, DispatchError, QueueEntry, TaskView
from gridwarden.hub.dispatch.wiring import FieldServices, get_field

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])
FieldDep = Annotated[FieldServices, Depends(get_field)]
Dispatcher = Annotated[Principal, Depends(require(Permission.DISPATCH))]
CaseId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


class ReassignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    officer_id: int = Field(ge=1, le=MAX_DB_INT)
    reason: str | None = Field(default=None, max_length=500)


@router.get(
    "/queue", response_model=list[QueueEntry], summary="Open dispatch work, most urgent first, with offers"
)
def queue(field: FieldDep, _: Dispatcher) -> list[QueueEntry]:
    return field.dispatch.queue()


@router.get("/alarms", response_model=list[QueueEntry], summary="Escalated cases: nobody took them")
def alarms(field: FieldDep, _: Dispatcher) -> list[QueueEntry]:
    return field.dispatch.queue(("escalated",))


@router.get(
    "/cases/{case_id}/tasks",
    response_model=list[TaskView],
    summary="Who was offered a case and what they did",
)
def case_tasks(case_id: CaseId, field: FieldDep, _: Dispatcher) -> list[TaskView]:
    return field.dispatch.tasks_of_case(case_id)


@router.post(
    "/cases/{case_id}/reassign", response_model=TaskView, summary="Offer a case to an officer by hand"
)
def reassign(case_id: CaseId, body: ReassignRequest, field: FieldDep, principal: Dispatcher) -> TaskView:
    try:
        return field.dispatch.reassign(case_id, body.officer_id, actor=principal.username, reason=body.reason)
    except CaseNotDispatchable as exc:
        raise error(status.HTTP_409_CONFLICT, "not_dispatchable", str(exc)) from exc
    except DispatchError as exc:
        raise error(status.HTTP_404_NOT_FOUND, "officer_not_found", str(exc)) from exc


@router.post(
    "/cases/{case_id}/requeue", status_code=status.HTTP_204_NO_CONTENT, summary="Retry an escalated case"
)
def requeue(case_id: CaseId, field: FieldDep, principal: Dispatcher) -> None:
    try:
        field.dispatch.requeue(case_id, actor=principal.username)
    except CaseNotDispatchable as exc:
        raise error(status.HTTP_409_CONFLICT, "not_escalated", str(exc)) from exc


@router.get(
    "/sla", response_model=SlaFigures, summary="SLA figures: on-time share, rework rate, stage medians"
)
def sla(
    field: FieldDep,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
) -> SlaFigures:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise error(status.HTTP_422_UNPROCESSABLE_CONTENT, "naive_time", f"{name} must carry a time zone")
    return sla_figures(field.db, field.settings, now=field.dispatch.clock(), since=since, until=until)


@router.get("/photos/{name}", summary="A photo an officer sent with 'resolved'")
def photo(
    name: Annotated[str, Path(pattern=r"^[0-9a-f]{64}\.(jpg|png|webp)$")], field: FieldDep, _: Dispatcher
) -> FileResponse:
    path = field.photos.path(name)
    if path is None:
        raise error(status.HTTP_404_NOT_FOUND, "no_photo", f"no photo {name}")
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})


@router.get(
    "/cases/{case_id}/after",
    summary="The camera's picture taken after the officer resolved the case (the 'after' of before/after)",
    responses={404: {"description": "No picture newer than the resolution yet"}},
)
def after_snapshot(case_id: CaseId, field: FieldDep, services: Services, _: Dispatcher) -> FileResponse:
    tasks = [t for t in field.dispatch.tasks_of_case(case_id) if t.resolved_at is not None]
    if not tasks or tasks[-1].case is None or not tasks[-1].case.camera or services.evidence is None:
        raise error(status.HTTP_404_NOT_FOUND, "no_after_snapshot", "the case has no resolved camera task")
    resolved_at, case = tasks[-1].resolved_at, tasks[-1].case
    path = services.evidence.root / SNAPSHOT_DIR / case.edge_id / f"{case.camera}.jpg"
    try:
        taken_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (FileNotFoundError, ValueError):
        taken_at = None
    if taken_at is None or resolved_at is None or taken_at < resolved_at:
        raise error(
            status.HTTP_404_NOT_FOUND, "no_after_snapshot", "no camera picture since the resolution yet"
        )
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={"Last-Modified": taken_at.strftime("%a, %d %b %Y %H:%M:%S GMT")},
    )
