"""Who may call the hub's API: users, roles, bearer tokens.

Every user has one role and at most one active token. Roles map to permissions in one table
(:data:`ROLE_PERMISSIONS`), so "may a staff member see the edges?" is answered by reading it:

* ``staff`` reads cases and moves them through their life cycle;
* ``integrator`` reads cases and the fleet (edges, cameras) and, later, changes configuration;
* ``admin`` may do everything, including managing users;
* ``officer`` is a field officer: the officer app's own tasks, duty and position, nothing else;
* ``edge`` is an edge box: it may only upload evidence (its incidents come over MQTT). An edge
  user is named exactly like its ``edge_id`` (as on the broker): its token acts for that edge only.

Tokens are ``secrets.token_urlsafe(32)`` (256 random bits) with a ``gw_`` prefix, so secret
scanners and humans can tell a Gridwarden token when one leaks into a log. The hub stores only
the token's SHA-256, never the token, and shows the token exactly once, when it is issued.

Why a plain SHA-256 and not bcrypt/scrypt/argon2: slow, salted hashes exist to make guessing
*low-entropy* secrets (human passwords) expensive. A 256-bit random token cannot be guessed at
any hash speed, so a slow hash would buy no security, while a fast unsalted hash lets each
request find its user with one indexed equality lookup (``token_hash`` is unique) instead of
trying a slow hash against every user. A stolen database therefore reveals no usable token.

Passwords (for the review console) are the opposite case: low-entropy and chosen by people, so
they are stored as salted ``hashlib.scrypt`` hashes (per-user random salt, N=2**14, r=8, p=1).
A successful log-in returns a *session token* (``gws_...``), not the API token: several browsers
may be logged in at once and no API client is disturbed. Session tokens and the console's
short-lived signed URLs (``gwt_...``, for ``<video src>`` and ``EventSource``, which cannot send
an ``Authorization`` header) are signed: ``user id . expiry [. session id] . HMAC-SHA256`` under
the user's ``session_key``. Verifying one costs a primary-key lookup or two, works on every hub
process sharing the database, and replacing the key (new password, new API token, ``revoke``)
ends all of them at once. Signing out ends one session on the server: its random session id goes
into ``revoked_sessions`` until the token would have expired anyway.
:meth:`UserStore.authenticate` accepts both API tokens and session tokens, so the API's bearer
authentication is unchanged for API clients.

>>> role = Role.parse("staff")
>>> Permission.TRANSITION_CASES in ROLE_PERMISSIONS[role], Permission.READ_FLEET in ROLE_PERMISSIONS[role]
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import RevokedSession, User

TOKEN_PREFIX = "gw_"
TOKEN_BYTES = 32
SESSION_PREFIX = "gws_"
TICKET_PREFIX = "gwt_"
SESSION_SCOPE = "session"
SESSION_TTL_S = 12 * 3600  # one shift
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
# scrypt cost: 16 MiB and ~50 ms per hash on one core; the parameters are stored with each hash.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2**14, 8, 1, 32
SCOPE_PATTERN = re.compile(r"^[a-z]+(:[0-9a-f]{64})?$")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class Role(StrEnum):
    STAFF = "staff"
    INTEGRATOR = "integrator"
    ADMIN = "admin"
    EDGE = "edge"
    OFFICER = "officer"

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
    # Dispatch: see the roster and the queue, reassign by hand (the command centre).
    DISPATCH = "dispatch:manage"
    # The officer app: one's own offers and tasks, duty and position.
    FIELD_WORK = "field:work"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.STAFF: frozenset({Permission.READ_CASES, Permission.TRANSITION_CASES, Permission.DISPATCH}),
    # An integrator installs and tunes the fleet; it reads cases to check detections but does
    # not decide them.
    Role.INTEGRATOR: frozenset({Permission.READ_CASES, Permission.READ_FLEET, Permission.CONFIGURE}),
    Role.ADMIN: frozenset(Permission),
    # An edge box holds a token only to upload evidence files; it can read nothing.
    Role.EDGE: frozenset({Permission.UPLOAD_EVIDENCE}),
    # An officer sees only what the officer app shows: its own offers and tasks.
    Role.OFFICER: frozenset({Permission.FIELD_WORK}),
}


class UserError(ValueError):
    """A user-management request that cannot be carried out."""


class InvalidUsername(UserError):
    pass


class UserExists(UserError):
    pass


class UnknownUser(UserError, LookupError):
    pass


class WeakPassword(UserError):
    pass


class InvalidCredentials(UserError):
    """Wrong user name or password (deliberately not saying which)."""


class UnknownLanguage(UserError):
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
    has_password: bool = False
    language: str = DEFAULT_LANGUAGE


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
        has_password=user.password_hash is not None,
        language=user.language or DEFAULT_LANGUAGE,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (salt and hash URL-safe base64): self-describing, so the cost
    can be raised later without invalidating stored hashes."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_DKLEN
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=128 * int(n) * int(r) * (int(p) + 1) + 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Hashed once so that a log-in with an unknown name costs as much as one with a wrong password
# (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def validate_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    if password != password.strip():
        raise WeakPassword("a password may not start or end with white space (a copy-paste accident?)")
    return password


def validate_language(language: str) -> str:
    if language not in LANGUAGES:
        raise UnknownLanguage(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return language


SESSION_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_MAX_SIGNED_ID_DIGITS = 18  # user ids and expiry times far below 2**63


def _signature(key: str, scope: str, user_id: int, expires: int, sid: str = "") -> str:
    message = f"{scope}|{user_id}|{expires}" + (f"|{sid}" if sid else "")
    return _b64(hmac.new(bytes.fromhex(key), message.encode(), hashlib.sha256).digest())


def _parse_signed(token: str, prefix: str, *, with_sid: bool) -> tuple[int, int, str, str] | None:
    """``prefix + user_id.expires[.sid].signature`` -> (user_id, expires, sid, signature), or None
    when malformed (also numbers too long for the database, and a session id that is not ours)."""
    if not token.startswith(prefix):
        return None
    parts = token[len(prefix) :].split(".")
    if len(parts) != (4 if with_sid else 3):
        return None
    if not all(p.isascii() and p.isdigit() and len(p) <= _MAX_SIGNED_ID_DIGITS for p in parts[:2]):
        return None
    sid = parts[2] if with_sid else ""
    if with_sid and not SESSION_ID_PATTERN.fullmatch(sid):
        return None
    return int(parts[0]), int(parts[1]), sid, parts[-1]


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
        """Issue a new token for an existing user; the old one stops working at once, and so do
        the user's console sessions and signed URLs (a rotation answers a suspected leak)."""
        token = generate_token()
        with self.db.write_session() as session, session.begin():
            user = self._get(session, username)
            user.token_hash = hash_token(token)
            if user.session_key is not None:
                user.session_key = secrets.token_hex(32)
            session.flush()
            return _info(user), token

    def revoke(self, username: str) -> UserInfo:
        """Make the user's token, password and console sessions stop working (the user and its
        history stay; ``rotate`` and ``set_password`` let it back in)."""
        with self.db.write_session() as session, session.begin():
            user = self._get(session, username)
            user.token_hash = None
            # Revoked means no way in at all: console sessions, signed URLs and the password too.
            user.session_key = None
            user.password_hash = None
            session.flush()
            return _info(user)

    def list(self) -> list[UserInfo]:
        with self.db.session() as session:
            return [_info(u) for u in session.scalars(select(User).order_by(User.username))]

    def authenticate(self, token: str) -> Principal | None:
        """The user whose active API token or console session token this is, or ``None``.

        The lookup is by the token's hash: comparing hashes of a 256-bit secret leaks nothing
        useful through timing, so no constant-time comparison is needed here.
        """
        if token.startswith(SESSION_PREFIX):
            return self._verify_signed(token, SESSION_PREFIX, SESSION_SCOPE)
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
            if user is None:
                return None
            return Principal(user_id=user.id, username=user.username, role=Role(user.role))

    # ---- console: passwords, sessions, signed URLs, language

    def set_password(self, username: str, password: str) -> UserInfo:
        """Set (or replace) the user's console password. Also replaces the session key, so every
        console session and signed URL issued before stops working."""
        validate_password(password)
        stored = hash_password(password)  # slow: outside the write transaction
        with self.db.write_session() as session, session.begin():
            user = self._get(session, username)
            user.password_hash = stored
            user.session_key = secrets.token_hex(32)
            session.flush()
            return _info(user)

    def authenticate_password(
        self, username: str, password: str, *, ttl_s: int = SESSION_TTL_S
    ) -> tuple[Principal, str]:
        """Check a console log-in; returns the user and a new session token valid ``ttl_s``
        seconds. Raises :class:`InvalidCredentials` for an unknown user or a wrong password."""
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user is not None else None
            key = user.session_key if user is not None else None
            principal = (
                Principal(user_id=user.id, username=user.username, role=Role(user.role))
                if user is not None
                else None
            )
        ok = verify_password(password, stored or _DUMMY_HASH) and stored is not None
        if not ok or principal is None or key is None:
            raise InvalidCredentials("wrong user name or password")
        token = self._sign(
            principal.user_id, key, SESSION_PREFIX, SESSION_SCOPE, ttl_s, sid=secrets.token_hex(16)
        )
        return principal, token

    def end_session(self, token: str) -> bool:
        """Sign out: the session token stops working on every hub process at once. Returns False
        for a token that was not a valid session (nothing to end)."""
        parts = _parse_signed(token, SESSION_PREFIX, with_sid=True)
        principal = self._verify_signed(token, SESSION_PREFIX, SESSION_SCOPE)
        if parts is None or principal is None:
            return False
        _, expires, sid, _ = parts
        now = utcnow()
        with self.db.write_session() as session, session.begin():
            session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))
            if session.get(RevokedSession, sid) is None:
                session.add(
                    RevokedSession(
                        sid=sid, user_id=principal.user_id, expires_at=datetime.fromtimestamp(expires, UTC)
                    )
                )
        return True

    def issue_ticket(self, principal: Principal, scope: str, *, ttl_s: int) -> tuple[str, int]:
        """A short-lived signed token for one ``scope`` (``"stream"``, ``"evidence:<sha256>"``),
        for URLs that cannot carry an ``Authorization`` header. Returns (ticket, expires epoch s)."""
        if not SCOPE_PATTERN.fullmatch(scope) or scope == SESSION_SCOPE:
            raise ValueError(f"invalid ticket scope {scope!r}")
        key = self._session_key(principal.user_id)
        ticket = self._sign(principal.user_id, key, TICKET_PREFIX, scope, ttl_s)
        return ticket, int(ticket.split(".")[1])

    def verify_ticket(self, ticket: str, scope: str) -> Principal | None:
        """The user a :meth:`issue_ticket` ticket for ``scope`` was issued to, if it is still valid."""
        return self._verify_signed(ticket, TICKET_PREFIX, scope)

    def language(self, user_id: int) -> str:
        with self.db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise UnknownUser(f"no user with id {user_id}")
            return user.language or DEFAULT_LANGUAGE

    def set_language(self, user_id: int, language: str) -> str:
        validate_language(language)
        with self.db.write_session() as session, session.begin():
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise UnknownUser(f"no user with id {user_id}")
            user.language = language
        return language

    @staticmethod
    def _sign(user_id: int, key: str, prefix: str, scope: str, ttl_s: int, *, sid: str = "") -> str:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        expires = int(time.time()) + int(ttl_s)
        middle = f"{user_id}.{expires}" + (f".{sid}" if sid else "")
        return f"{prefix}{middle}.{_signature(key, scope, user_id, expires, sid)}"

    def _session_key(self, user_id: int) -> str:
        """The user's signing key, created on first use (API-token users have none until then)."""
        with self.db.session() as session:
            user = session.get(User, user_id)
            if user is not None and user.session_key:
                return user.session_key
        with self.db.write_session() as session, session.begin():
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise UnknownUser(f"no user with id {user_id}")
            if not user.session_key:
                user.session_key = secrets.token_hex(32)
            return user.session_key

    def _verify_signed(self, token: str, prefix: str, scope: str) -> Principal | None:
        parts = _parse_signed(token, prefix, with_sid=prefix == SESSION_PREFIX)
        if parts is None:
            return None
        user_id, expires, sid, signature = parts
        if expires < time.time():
            return None
        with self.db.session() as session:
            user = session.get(User, user_id)
            if user is None or not user.session_key:
                return None
            expected = _signature(user.session_key, scope, user_id, expires, sid)
            # The whole signature, in constant time: an empty or truncated one never matches.
            if not signature.isascii() or not hmac.compare_digest(expected, signature):
                return None
            if sid and session.get(RevokedSession, sid) is not None:
                return None
            return Principal(user_id=user.id, username=user.username, role=Role(user.role))

    @staticmethod
    def _get(session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username).with_for_update())
        if user is None:
            raise UnknownUser(f"no user named {username!r}")
        return user
