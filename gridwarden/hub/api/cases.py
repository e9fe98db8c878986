"""``/api/v1/cases``: the case queue, one case with its incidents and history, state changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from gridwarden.hub.api.deps import MAX_DB_INT, IsoDatetime, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.cases import MAX_PAGE, SORT_COLUMNS, STATES, CaseNotFound, IllegalTransition
from gridwarden.hub.reports.categories import active_table
from gridwarden.hub.schemas import CaseDetail, CaseView

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

CaseState = Literal[STATES]  # type: ignore[valid-type]
SORT_KEYS = tuple(SORT_COLUMNS) + tuple(f"-{c}" for c in SORT_COLUMNS)
SortKey = Literal[SORT_KEYS]  # type: ignore[valid-type]
CaseId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="The case's id.")]


class CasePage(BaseModel):
    """One page of cases: ``items`` in the requested order and ``total`` matching the filters."""

    items: list[CaseView]
    total: int
    offset: int
    limit: int


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: CaseState = Field(description="The state to move the case to.")
    reason: str | None = Field(default=None, max_length=2000, description="Why, for the audit trail.")


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise error(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "naive_time",
            f"{name} must carry a time zone, e.g. 2025-03-01T08:00:00Z",
        )
    return value


CaseSource = Literal["camera", "resident", "open311"]


def category_codes(values: list[str] | None) -> list[str]:
    """``?category=0505&category=0506`` and ``?category=0505,0506``; unknown codes are a 422."""
    codes = [c for v in values or [] for c in v.split(",") if c]
    known = active_table().codes
    unknown = sorted(set(codes) - set(known))
    if unknown:
        raise error(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "unknown_category",
            f"unknown category code(s) {', '.join(unknown)[:200]}; codes are {', '.join(known)}",
            categories=list(known),
        )
    return codes


def _states(values: list[str] | None) -> list[str]:
    """``?state=new&state=in_review`` and ``?state=new,in_review`` mean the same."""
    states = [s for v in values or [] for s in v.split(",") if s]
    unknown = sorted(set(states) - set(STATES))
    if unknown:
        raise error(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "unknown_state",
            f"unknown case state(s) {', '.join(unknown)}; states are {', '.join(STATES)}",
            states=list(STATES),
        )
    return states


@router.get("", response_model=CasePage, summary="List cases with filters, sorting and paging")
def list_cases(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    state: Annotated[list[str] | None, Query(description=f"One or more of {', '.join(STATES)}.")] = None,
    camera: str | None = None,
    zone: str | None = None,
    rule: str | None = None,
    since: Annotated[IsoDatetime | None, Query(description="Detected at or after (with time zone).")] = None,
    until: Annotated[IsoDatetime | None, Query(description="Detected before (with time zone).")] = None,
    category: Annotated[
        list[str] | None,
        Query(description="City event code(s), e.g. 0505 or 0505,0506 (GET /api/v1/categories)."),
    ] = None,
    source: Annotated[CaseSource | None, Query(description="camera, resident or open311.")] = None,
    sort: Annotated[
        SortKey, Query(description="Column to sort by; a leading '-' sorts descending.")
    ] = "created_at",
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> CasePage:
    descending = sort.startswith("-")
    items, total = services.cases.list_cases(
        state=_states(state),
        camera=camera,
        zone=zone,
        rule=rule,
        since=_aware("since", since),
        until=_aware("until", until),
        category=category_codes(category),
        source=source,
        sort=sort.lstrip("-"),
        descending=descending,
        offset=offset,
        limit=limit,
    )
    return CasePage(items=items, total=total, offset=offset, limit=limit)


def _not_found(exc: CaseNotFound) -> Exception:
    return error(status.HTTP_404_NOT_FOUND, "case_not_found", str(exc), case_id=exc.case_id)


@router.get(
    "/{case_id}",
    response_model=CaseDetail,
    summary="One case with its incidents, history and SLA clock",
    responses={404: {"description": "No such case"}},
)
def get_case(
    case_id: CaseId, services: Services, _: Annotated[Principal, Depends(require(Permission.READ_CASES))]
) -> CaseDetail:
    try:
        return services.cases.get_case(case_id)
    except CaseNotFound as exc:
        raise _not_found(exc) from exc


@router.post(
    "/{case_id}/transitions",
    response_model=CaseDetail,
    summary="Move a case to another state of its life cycle",
    responses={
        404: {"description": "No such case"},
        409: {"description": "The life cycle does not allow this move; the error names the allowed targets"},
    },
)
def transition_case(
    case_id: CaseId,
    body: TransitionRequest,
    services: Services,
    principal: Annotated[Principal, Depends(require(Permission.TRANSITION_CASES))],
) -> CaseDetail:
    try:
        detail = services.cases.transition(case_id, body.to, actor=principal.username, reason=body.reason)
    except CaseNotFound as exc:
        raise _not_found(exc) from exc
    except IllegalTransition as exc:
        raise error(
            status.HTTP_409_CONFLICT,
            "illegal_transition",
            str(exc),
            **{"from": exc.from_state, "to": exc.to_state, "allowed": list(exc.allowed)},
        ) from exc
    if services.webhook_waker is not None and body.to in services.cases.webhook_on:
        services.webhook_waker.wake()
    return detail
