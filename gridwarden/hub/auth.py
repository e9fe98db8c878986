"""Who may call the hub's API: users, roles, bearer tokens.

Every user has one role and at most one active token. Roles map to permissions in one table
(:data:`ROLE_PERMISSIONS`), so "may a staff member see the edges?" is answered by reading it:

* ``staff`` reads cases and moves them through their life cycle;
* ``integrator`` reads cases and the fleet (edges, cameras) and, later, changes configuration;
* ``admin`` may do everything, including managing users;
* ``edge`` is an edge box: it may only upload evidence (its incidents come over MQTT).

Tokens are ``secrets.token_urlsafe(32)`` (256 random bits) with a ``gw_`` prefix, so secret
scanners and humans can tell a Gridwarden token when one leaks into a log. The hub stores only
the token's SHA-256, never the token, and shows the token exactly once, when it is issued.

Why a plain SHA-256 and not bcrypt/scrypt/argon2: slow, salted hashes exist to make guessing
*low-entropy* secrets (human passwords) expensive. A 256-bit random token cannot be guessed at
any hash speed, so a slow hash would buy no security, while a fast unsalted hash lets each
request find its user with one indexed equality lookup (``token_hash`` is unique) instead of
trying a slow hash against every user. A stolen database therefore reveals no usable token.

>>> role = Role.parse("staff")
>>> Permission.TRANSITION_CASES in ROLE_PERMISSIONS[role], Permission.READ_FLEET in ROLE_PERMISSIONS[role]
(True, False)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import User

TOKEN_PREFIX = "gw_"
TOKEN_BYTES = 32
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class Role(StrEnum):
    STAFF = "staff"
    INTEGRATOR = "integrator"
    ADMIN = "admin"
    EDGE = "edge"

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {value!r}; roles are {choices}") from None


class Permission(StrEnum):
    READ_CASES = "cases:read"
    TRANSITION_CASES = "cases:transition"
    READ_FLEET = "fleet:read"
    CONFIGURE = "config:write"
    MANAGE_USERS = "users:manage"
    UPLOAD_EVIDENCE = "evidence:upload"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.STAFF: frozenset({Permission.READ_CASES, Permission.TRANSITION_CASES}),
    # An integrator installs and tunes the fleet; it reads cases to check detections but does
    # not decide them.
    Role.INTEGRATOR: frozenset({Permission.READ_CASES, Permission.READ_FLEET, Permission.CONFIGURE}),
    Role.ADMIN: frozenset(Permission),
    # An edge box holds a token only to upload evidence files; it can read nothing.
    Role.EDGE: frozenset({Permission.UPLOAD_EVIDENCE}),
}


class UserError(ValueError):
    """A user-management request that cannot be carried out."""


class InvalidUsername(UserError):
    pass


class UserExists(UserError):
    pass


class UnknownUser(UserError, LookupError):
    pass


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    username: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


@dataclass(frozen=True)
class UserInfo:
    """What may be shown about a user: never the token or its hash."""

    username: str
    role: Role
    active: bool  # has a token that authenticates
    created_at: datetime


def generate_token() -> str:
    """A fresh bearer token: ``gw_`` + 43 URL-safe characters (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256; see the module docstring for why that is enough)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def validate_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUsername(
            f"invalid user name {username!r}: 1-128 characters, letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    return username


def _info(user: User) -> UserInfo:
    return UserInfo(
        username=user.username,
        role=Role(user.role),
        active=user.token_hash is not None,
        created_at=user.created_at,
    )


class UserStore:
    """Creates users, issues and revokes their tokens, and authenticates requests.

    >>> store = UserStore(Database("sqlite:///var/hub.db"))  # doctest: +SKIP
    >>> info, token = store.create("alice", Role.STAFF)      # doctest: +SKIP
    >>> store.authenticate(token).username                    # doctest: +SKIP
    'alice'
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, username: str, role: Role | str) -> tuple[UserInfo, str]:
        """Add a user with a new token; returns the user and the token (shown only this once)."""
        validate_username(username)
        role = Role.parse(role) if isinstance(role, str) else role
        token = generate_token()
        try:
            with self.db.write_session() as session, session.begin():
                if session.scalar(select(User.id).where(User.username == username)) is not None:
                    raise UserExists(f"user {username!r} already exists; use 'rotate' to issue a new token")
                user = User(
                    username=username, role=role.value, token_hash=hash_token(token), created_at=utcnow()
                )
                session.add(user)
                session.flush()
                info = _info(user)
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise UserExists(f"user {username!r} already exists") from exc
        return info, token

    def rotate(self, username: str) -> tuple[UserInfo, str]:
        """Issue a new token for an existing user; the old one stops working at once."""
        token = generate_token()
        with self.db.write_session() as session, session.begin():
            user = self._get(session, username)
            user.token_hash = hash_token(token)
            session.flush()
            return _info(user), token

    def revoke(self, username: str) -> UserInfo:
        """Make the user's token stop working (the user and its history stay)."""
        with self.db.write_session() as session, session.begin():
            user = self._get(session, username)
            user.token_hash = None
            session.flush()
            return _info(user)

    def list(self) -> list[UserInfo]:
        with self.db.session() as session:
            return [_info(u) for u in session.scalars(select(User).order_by(User.username))]

    def authenticate(self, token: str) -> Principal | None:
        """The user whose active token this is, or ``None``.

        The lookup is by the token's hash: comparing hashes of a 256-bit secret leaks nothing
        useful through timing, so no constant-time comparison is needed here.
        """
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
            if user is None:
                return None
            return Principal(user_id=user.id, username=user.username, role=Role(user.role))

    @staticmethod
    def _get(session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username).with_for_update())
        if user is None:
            raise UnknownUser(f"no user named {username!r}")
        return user
