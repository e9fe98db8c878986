"""Dependencies shared by the routers: the hub's services and who is calling.

Authentication is a dependency, not middleware, so each route states the permission it needs
(``Depends(require(Permission.READ_CASES))``) and OpenAPI shows which routes take a bearer token.
Failures follow RFC 6750: no or unknown token is 401 with ``WWW-Authenticate: Bearer``; a valid
token whose role lacks the permission is 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gridwarden.hub.auth import Permission, Principal, UserStore
from gridwarden.hub.cases import CaseService
from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.db.engine import Database
from gridwarden.hub.dry_run import DryRunService
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.fleet import FleetService

if TYPE_CHECKING:  # these import their own code, which needs no web layer
    from gridwarden.hub.dispatch.wiring import FieldServices
    from gridwarden.hub.reports.wiring import CityServices


class Waker(Protocol):
    """Anything that can be told "there may be work now" (the webhook forwarder)."""

    def wake(self) -> None: ...


@dataclass
class HubServices:
    """What the routers work with; one instance per app, on ``app.state.services``, built by
    :func:`gridwarden.hub.app.build_hub`. Routes never read ``app.state`` themselves: they ask for
    a service by type (``services: Services``, ``store: Evidence``, ``publisher: Publisher``...).

    ``evidence``/``dry_runs`` are ``None`` only in apps built for one router's tests; the
    dependencies below answer 404/503 then instead of failing with an AttributeError.
    ``config_publisher`` ``None``: configurations are stored and validated but not pushed."""

    db: Database
    cases: CaseService
    users: UserStore
    fleet: FleetService
    webhook_waker: Waker | None = None
    evidence: EvidenceStore | None = None
    dry_runs: DryRunService | None = None
    config_publisher: ConfigPublisher | None = None
    # Officers, dispatch and the officer app (gridwarden.hub.dispatch.wiring).
    field: FieldServices | None = None
    # QR reports, Open311, statistics and the map (gridwarden.hub.reports.wiring).
    city: CityServices | None = None


def get_services(request: Request) -> HubServices:
    services: HubServices = request.app.state.services
    return services


Services = Annotated[HubServices, Depends(get_services)]


def get_evidence_store(services: Services) -> EvidenceStore:
    if services.evidence is None:
        raise error(status.HTTP_404_NOT_FOUND, "no_evidence_store", "this hub stores no evidence")
    return services.evidence


def get_config_publisher(services: Services) -> ConfigPublisher | None:
    return services.config_publisher


def get_dry_runs(services: Services) -> DryRunService:
    if services.dry_runs is None:
        raise error(status.HTTP_503_SERVICE_UNAVAILABLE, "no_dry_runs", "this hub runs no dry runs")
    return services.dry_runs


Evidence = Annotated[EvidenceStore, Depends(get_evidence_store)]
Publisher = Annotated[ConfigPublisher | None, Depends(get_config_publisher)]
DryRuns = Annotated[DryRunService, Depends(get_dry_runs)]

_bearer = HTTPBearer(auto_error=False, description="A token from `gridwarden users create NAME --role ROLE`.")


# The largest value a database integer column (SQLite INTEGER, PostgreSQL BIGINT) holds: every id,
# version and offset from a request is bounded by it, so an oversized number is a 422 naming the
# field instead of a driver OverflowError (SQLite) or "integer out of range" (PostgreSQL) -> 500.
MAX_DB_INT = 2**63 - 1


class ErrorDetail(BaseModel):
    """What :func:`error` puts in ``detail``: a code for programs, a sentence for people, and
    whatever else helps (``problems``, ``languages``, ``role``/``needs``...)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Machine-readable code, e.g. `invalid_token`, `not_found`.")
    message: str = Field(description="What went wrong, for a person.")


class ErrorBody(BaseModel):
    """Every 4xx body of the hub: ``detail`` is the hub's :class:`ErrorDetail`, FastAPI's list of
    field problems (a request that does not fit the declared parameters), or a plain sentence
    (Starlette's own refusals: an unparsable body, an unknown route)."""

    detail: ErrorDetail | list[dict[str, Any]] | str


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The error answers every API router documents (create_app applies them per router), so the
# OpenAPI document lists what the routes really answer; a route's own ``responses=`` entry for the
# same code (a more precise description) wins.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("The request could not be read (bad form, multipart or JSON)"),
    401: _documented("No token, or an unknown or revoked one (`WWW-Authenticate: Bearer`)"),
    403: _documented("The token's role lacks the permission this operation needs"),
    404: _documented("The case, edge, camera, user or other resource does not exist"),
    409: _documented("The request conflicts with the current state (a version, a duplicate)"),
    413: _documented("The body is larger than this operation accepts"),
    415: _documented("The body's content type is not one this operation accepts"),
    422: _documented("The request is well-formed but not valid; `detail` names the field or problem"),
}


# A date and a time, ISO 8601 ("2026-11-30T08:00:00+08:00"). Pydantic on its own also reads a
# number ("0.5") as seconds since 1970, which no caller means: such a query parameter is a 422.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_datetime_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("give an ISO 8601 date and time, e.g. 2026-11-30T08:00:00+08:00")
    if isinstance(value, int | float):
        raise ValueError("give an ISO 8601 date and time, not a number")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_datetime_only)]


def error(status_code: int, code: str, message: str, **extra: Any) -> HTTPException:
    """An HTTP error whose ``detail`` is a machine-readable code plus a sentence for humans."""
    return HTTPException(status_code, detail={"error": code, "message": message, **extra})


def _unauthorized(code: str, message: str) -> HTTPException:
    # RFC 6750 section 3: no credentials -> bare challenge; bad credentials -> error="invalid_token".
    challenge = "Bearer" if code == "missing_token" else f'Bearer error="{code}"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail={"error": code, "message": message},
        headers={"WWW-Authenticate": challenge},
    )


def current_principal(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing_token", "this endpoint needs 'Authorization: Bearer <token>'")
    principal = services.users.authenticate(credentials.credentials)
    if principal is None:
        raise _unauthorized("invalid_token", "the token is unknown or has been revoked")
    return principal


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that lets the request through only for roles holding ``permission``."""

    def _check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise error(
                status.HTTP_403_FORBIDDEN,
                "forbidden",
                f"role {principal.role.value!r} may not do this (needs {permission.value!r})",
                role=principal.role.value,
                needs=permission.value,
            )
        return principal

    _check.__name__ = f"require_{permission.name.lower()}"
    return _check
