"""Console log-in throttling per account and per client address, audited in ``auth_events``.

Without it, 50 wrong passwords in 1.9 s were all answered and the right one then worked. The
rule is an exponential delay after a few free failures, counted separately

* per **account**: after :attr:`ThrottlePolicy.account_free` failures since the account's last
  successful log-in, the next attempt must wait ``base_s * 2**(n - free)`` seconds after the
  latest failure, at most ``account_max_s``. The cap is short on purpose: an attacker who
  fails on purpose can only slow a real user down, never lock them out for long;
* per **client address**: the same with a higher allowance (a control room may share one
  address) and a longer cap, so one machine cannot try many accounts.

A real user never notices: the first failures cost nothing, and a success resets the count.
A throttled attempt is answered 429 with ``Retry-After`` *without* checking the password (so it
costs no scrypt work and reveals nothing), written to the audit and counted in
``gridwarden_hub_login_throttled_total{scope}``.

The counts are read from the audit table itself (indexed by account and time, by address and
time), so every hub process sharing the database applies the same throttle, and a restart does
not forget it. Only the last :data:`WINDOW` is looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from gridwarden.contract import utcnow
from gridwarden.hub import security_counters
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import AuthEvent

WINDOW = timedelta(hours=24)
LOGIN_FAILED, LOGIN_OK, LOGIN_THROTTLED, LOGOUT = "login_failed", "login_ok", "login_throttled", "logout"
MAX_CLIENT_LENGTH = 64
MAX_USERNAME_LENGTH = 128


@dataclass(frozen=True)
class ThrottlePolicy:
    account_free: int = 5
    client_free: int = 20
    base_s: float = 1.0
    account_max_s: float = 300.0
    client_max_s: float = 900.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: float = 0.0
    scope: str = ""  # "account" or "client" when refused


def delay_after(failures: int, free: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after the latest of ``failures`` consecutive failures.

    >>> [delay_after(n, free=5, base_s=1.0, max_s=300.0) for n in (0, 4, 5, 6, 7, 20)]
    [0.0, 0.0, 1.0, 2.0, 4.0, 300.0]
    """
    if failures < free:
        return 0.0
    return float(min(max_s, base_s * 2 ** min(failures - free, 30)))


class LoginThrottle:
    """Decides whether a log-in attempt may be checked, and records its outcome."""

    def __init__(self, db: Database, policy: ThrottlePolicy | None = None) -> None:
        self.db = db
        self.policy = policy or ThrottlePolicy()

    def check(self, username: str, client: str | None, now: datetime | None = None) -> Verdict:
        now = now or utcnow()
        account, client = _clip(username, MAX_USERNAME_LENGTH), _clip(client, MAX_CLIENT_LENGTH)
        p = self.policy
        waits = [
            ("account", self._wait(AuthEvent.username, account, p.account_free, p.account_max_s, now)),
        ]
        if client:
            waits.append(("client", self._wait(AuthEvent.client, client, p.client_free, p.client_max_s, now)))
        scope, longest = max(waits, key=lambda item: item[1])
        if longest <= 0:
            return Verdict(allowed=True)
        self.record(LOGIN_THROTTLED, account, client, f"{scope} throttled for {longest:.1f}s", now=now)
        security_counters.count("gridwarden_hub_login_throttled_total", scope=scope)
        return Verdict(allowed=False, retry_after_s=longest, scope=scope)

    def record(
        self,
        event: str,
        username: str | None,
        client: str | None,
        detail: str = "",
        *,
        now: datetime | None = None,
    ) -> None:
        if event == LOGIN_FAILED:
            security_counters.count("gridwarden_hub_login_failures_total")
        with self.db.write_session() as session, session.begin():
            session.add(
                AuthEvent(
                    at=now or utcnow(),
                    event=event,
                    username=_clip(username, MAX_USERNAME_LENGTH),
                    client=_clip(client, MAX_CLIENT_LENGTH),
                    detail=detail,
                )
            )

    def _wait(self, column: Any, key: str | None, free: int, max_s: float, now: datetime) -> float:
        """Seconds this key must still wait: failures since its last success within the window."""
        if not key:
            return 0.0
        since = now - WINDOW
        with self.db.session() as session:
            last_ok = session.scalar(
                select(func.max(AuthEvent.at)).where(
                    column == key,
                    AuthEvent.event == LOGIN_OK,
                    AuthEvent.at >= since,
                )
            )
            start = max(since, last_ok) if last_ok is not None else since
            failures, latest = session.execute(
                select(func.count(), func.max(AuthEvent.at)).where(
                    column == key,
                    AuthEvent.event == LOGIN_FAILED,
                    AuthEvent.at > start,
                )
            ).one()
        if not failures or latest is None:
            return 0.0
        delay = delay_after(failures, free, self.policy.base_s, max_s)
        return max(0.0, (latest + timedelta(seconds=delay) - now).total_seconds())


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None
