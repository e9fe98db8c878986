"""Console sessions end on the server (sign-out, token or password rotation), signatures are
checked whole, and log-ins are throttled per account and per client address, audited and
counted -- on a real hub (uvicorn, both database backends)."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from gridwarden.hub.auth import Role
from gridwarden.hub.db.models import AuthEvent
from gridwarden.observability import HubMetrics
from tests.console.conftest import STAFF, STAFF_PASSWORD, Hub
from tests.console.test_console_api import bearer, login


def works(hub: Hub, token: str) -> bool:
    response = httpx.get(f"{hub.url}/api/v1/console/me", headers=bearer(token), timeout=10)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def session(hub: Hub, username: str = STAFF, password: str = STAFF_PASSWORD) -> str:
    response = login(hub, username, password)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


# ---- item 9: sessions end on the server


def test_sign_out_ends_that_session_only(live_hub: Hub) -> None:
    first, second = session(live_hub), session(live_hub)
    assert works(live_hub, first) and works(live_hub, second)
    out = httpx.post(f"{live_hub.url}/api/v1/console/logout", headers=bearer(first), timeout=10)
    assert out.status_code == 204, out.text
    assert not works(live_hub, first), "a signed-out session still works"
    assert works(live_hub, second), "signing out one browser ended another"
    # Signing out twice, or with nothing, is refused rather than pretending.
    again = httpx.post(f"{live_hub.url}/api/v1/console/logout", headers=bearer(first), timeout=10)
    assert again.status_code == 401


def test_rotating_the_token_or_the_password_ends_every_session(live_hub: Hub) -> None:
    token = session(live_hub)
    live_hub.users.rotate(STAFF)
    assert not works(live_hub, token), "a session survived the rotation of the user's API token"
    token = session(live_hub)
    live_hub.users.set_password(STAFF, STAFF_PASSWORD + "!")
    assert not works(live_hub, token), "a session survived a new password"


@pytest.mark.parametrize("cut", ["empty", "truncated", "one_char", "extended"])
def test_a_session_or_ticket_with_a_damaged_signature_is_refused(live_hub: Hub, cut: str) -> None:
    token = session(live_hub)
    ticket_response = httpx.post(
        f"{live_hub.url}/api/v1/console/stream-url", headers=bearer(token), timeout=10
    )
    assert ticket_response.status_code == 200, ticket_response.text
    ticket = ticket_response.json()["url"].split("ticket=")[1].split("&")[0]

    def damage(signed: str) -> str:
        head, signature = signed.rsplit(".", 1)
        return (
            head
            + "."
            + {
                "empty": "",
                "truncated": signature[:10],
                "one_char": signature[:1],
                "extended": signature + "A",
            }[cut]
        )

    assert not works(live_hub, damage(token))
    assert live_hub.users.verify_ticket(ticket, "stream") is not None
    assert live_hub.users.verify_ticket(damage(ticket), "stream") is None


# ---- item 8: throttling


def audit(hub: Hub, event: str) -> int:
    with hub.db.session() as s:
        return len(list(s.scalars(select(AuthEvent.id).where(AuthEvent.event == event))))


def throttled_count(scope: str) -> float:
    text = generate_latest(HubMetrics().registry).decode()
    line = f'gridwarden_hub_login_throttled_total{{scope="{scope}"}}'
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(line))


def test_a_user_who_mistypes_a_few_times_never_notices(live_hub: Hub) -> None:
    for _ in range(4):
        assert login(live_hub, STAFF, "typo").status_code == 401
    assert login(live_hub).status_code == 200
    # The success resets the count: four more typos are still free.
    for _ in range(4):
        assert login(live_hub, STAFF, "typo").status_code == 401
    assert login(live_hub).status_code == 200
    assert audit(live_hub, "login_throttled") == 0


def test_guessing_one_account_is_slowed_down_exponentially_and_audited(live_hub: Hub) -> None:
    before = throttled_count("account")
    answers = [login(live_hub, STAFF, f"guess-{i}").status_code for i in range(8)]
    assert answers[:5] == [401] * 5, answers
    assert 429 in answers[5:], f"50 guesses in 2 s were all answered: {answers}"
    refused = login(live_hub)  # even the right password waits: nothing is checked while throttled
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 300
    assert refused.json()["detail"]["error"] == "too_many_attempts"
    assert audit(live_hub, "login_failed") >= 5 and audit(live_hub, "login_throttled") >= 2
    assert throttled_count("account") >= before + 2
    time.sleep(retry_after + 0.2)
    assert login(live_hub).status_code == 200, "the real user got back in after the delay"


def test_one_client_trying_many_accounts_is_throttled(live_hub: Hub) -> None:
    for i in range(8):  # many accounts, so no single one reaches its own limit (3 guesses each)
        live_hub.users.create(f"victim-{i}", Role.STAFF)
        live_hub.users.set_password(f"victim-{i}", "victim password")
    answers = [login(live_hub, f"victim-{i % 8}", f"guess-{i}").status_code for i in range(22)]
    assert 429 in answers, answers
    blocked = login(live_hub, "victim-0", "victim password")
    assert blocked.status_code == 429 and blocked.json()["detail"]["error"] == "too_many_attempts"
    with live_hub.db.session() as s:
        scopes = set(s.scalars(select(AuthEvent.detail).where(AuthEvent.event == "login_throttled")))
    assert any(d.startswith("client") for d in scopes), scopes
