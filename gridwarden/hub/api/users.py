"""``/api/v1/users`` (admin only) and ``/api/v1/me`` (anyone authenticated).

Tokens appear in a response exactly once, when issued; afterwards only their hash exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict

from gridwarden.hub.api.deps import Services, current_principal, error, require
from gridwarden.hub.auth import (
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    UnknownUser,
    UserError,
    UserExists,
    UserInfo,
)

router = APIRouter(prefix="/api/v1", tags=["users"])
Admin = Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]


class UserOut(BaseModel):
    username: str
    role: Role
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, info: UserInfo) -> UserOut:
        return cls(username=info.username, role=info.role, active=info.active, created_at=info.created_at)


class IssuedToken(BaseModel):
    user: UserOut
    token: str


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    role: Role


class Me(BaseModel):
    username: str
    role: Role
    permissions: list[str]


def _user_error(exc: UserError) -> Exception:
    if isinstance(exc, UnknownUser):
        return error(status.HTTP_404_NOT_FOUND, "unknown_user", str(exc))
    if isinstance(exc, UserExists):
        return error(status.HTTP_409_CONFLICT, "user_exists", str(exc))
    return error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_user", str(exc))


@router.get("/me", response_model=Me, summary="Who the token belongs to and what it may do")
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    return Me(
        username=principal.username,
        role=principal.role,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[principal.role]),
    )


@router.get("/users", response_model=list[UserOut], summary="All users")
def list_users(services: Services, _: Admin) -> list[UserOut]:
    return [UserOut.of(u) for u in services.users.list()]


@router.post(
    "/users", response_model=IssuedToken, status_code=201, summary="Create a user and issue its token"
)
def create_user(body: CreateUser, services: Services, _: Admin) -> IssuedToken:
    try:
        info, token = services.users.create(body.username, body.role)
    except UserError as exc:
        raise _user_error(exc) from exc
    return IssuedToken(user=UserOut.of(info), token=token)


@router.post(
    "/users/{username}/token", response_model=IssuedToken, summary="Issue a new token (old one stops)"
)
def rotate_token(username: str, services: Services, _: Admin) -> IssuedToken:
    try:
        info, token = services.users.rotate(username)
    except UserError as exc:
        raise _user_error(exc) from exc
    return IssuedToken(user=UserOut.of(info), token=token)


@router.delete("/users/{username}/token", response_model=UserOut, summary="Revoke the user's token")
def revoke_token(username: str, services: Services, _: Admin) -> UserOut:
    try:
        return UserOut.of(services.users.revoke(username))
    except UserError as exc:
        raise _user_error(exc) from exc
