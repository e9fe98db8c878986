"""The review console in a real browser (Debian's Chromium via Playwright) against a real hub:
log in, a case arriving live, its clip playing, keyboard review, rejection with a reason, the
language switch, and both screen sizes.

Screenshots go to ``$GRIDWARDEN_CONSOLE_SCREENSHOTS`` when set (to look at them), else to the
test's temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gridwarden.contract import utcnow
from tests.console.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STAFF,
    STAFF_PASSWORD,
    Evidence,
    Hub,
    incident_with_evidence,
    upload_evidence,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LAPTOP = {"width": 1366, "height": 768}
WALL = {"width": 2560, "height": 1440}
LIVE_TIMEOUT_MS = 15_000
JS_ERRORS: list[
    str
] = []  # uncaught errors of every page; checked after each test  # generous: two shared cores, and the stream polls every 0.3 s


@pytest.fixture(scope="module")
def browser(sqlite_hub: Hub) -> Iterator[Browser]:
    """Depends on the hub so that it closes first: open streams would hold the server's shutdown."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def no_javascript_errors() -> Iterator[None]:
    JS_ERRORS.clear()
    yield
    assert not JS_ERRORS, f"uncaught JavaScript errors in the console: {JS_ERRORS}"


@pytest.fixture(scope="module")
def evidence(sqlite_hub: Hub) -> Evidence:
    return upload_evidence(sqlite_hub)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("GRIDWARDEN_CONSOLE_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Seq:
    """Per-edge sequence numbers for the incidents the tests ingest (one edge, one module)."""

    value = 0

    @classmethod
    def next(cls) -> int:
        cls.value += 1
        return cls.value


def new_case(hub: Hub, evidence: Evidence, camera: str, zone: str) -> int:
    seq = Seq.next()
    return hub.ingest(
        incident_with_evidence(
            seq=seq,
            incident_id=f"console-{seq}",
            camera=camera,
            zone=zone,
            started=utcnow() - timedelta(seconds=90),
            evidence=evidence,
            track_id=seq,
        )  # fmt: skip
    )


def open_console(browser: Browser, hub: Hub, viewport: dict[str, int]) -> Page:
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The hub's Content-Security-Policy allows no inline script or style: a violation is an error.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("close", lambda _page: JS_ERRORS.extend(errors))
    page.goto(f"{hub.url}/console/")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#login-username", STAFF)
    page.fill("#login-password", STAFF_PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#live")).to_have_attribute("data-state", "on", timeout=LIVE_TIMEOUT_MS)
    return page


def no_horizontal_overflow(page: Page) -> None:
    widths = page.evaluate(
        """() => ({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
                   view: window.innerWidth,
                   widest: Math.max(...[...document.querySelectorAll('#app *')]
                       .filter(e => e.offsetParent !== null)
                       .map(e => e.getBoundingClientRect().right))})"""
    )
    assert widths["doc"] <= widths["view"] and widths["body"] <= widths["view"], widths
    assert widths["widest"] <= widths["view"] + 0.5, widths


def case_history(hub: Hub, case_id: int) -> list[tuple[str | None, str, str, str | None]]:
    detail = hub_case(hub, case_id)
    return [(h.from_state, h.to_state, h.actor, h.reason) for h in detail.history]


def hub_case(hub: Hub, case_id: int):  # noqa: ANN201 - CaseDetail
    from gridwarden.hub.cases import CaseService

    return CaseService(hub.db).get_case(case_id)


def test_review_a_live_case_with_the_keyboard(
    browser: Browser, sqlite_hub: Hub, evidence: Evidence, shots: Path
) -> None:
    page = open_console(browser, sqlite_hub, LAPTOP)
    # Simplified Chinese by default.
    expect(page.locator("#logout")).to_have_text("退出")

    # A case arrives while the page is open: it appears without a reload and is opened.
    first = new_case(sqlite_hub, evidence, "cam-north-1", "kerb-a")
    item = page.locator(f'.queue-item[data-case-id="{first}"]')
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#case-view")).to_have_attribute("data-case-id", str(first))
    expect(page.locator("#case-state")).to_have_attribute("data-state", "new")
    expect(page.locator("#case-camera")).to_contain_text("cam-north-1")
    expect(page.locator("#case-zone")).to_have_text("kerb-a")
    expect(page.locator("#sla-clock")).to_contain_text("/ 10:00")
    expect(page.locator("#timeline li")).not_to_have_count(0)

    # The clip plays in the browser (signed URL, range requests) and the snapshot loads.
    page.wait_for_function(
        "() => document.getElementById('case-video').duration > 0", timeout=LIVE_TIMEOUT_MS
    )
    duration = page.evaluate("() => document.getElementById('case-video').duration")
    assert 25 < duration < 35, duration
    page.evaluate("() => document.getElementById('case-video').play()")
    start = page.evaluate("() => document.getElementById('case-video').currentTime")
    page.wait_for_function(
        f"() => document.getElementById('case-video').currentTime > {start} + 0.5", timeout=LIVE_TIMEOUT_MS
    )
    page.wait_for_function("() => document.getElementById('case-snapshot').naturalWidth > 0")
    assert page.evaluate("() => document.getElementById('case-snapshot').naturalWidth") == 768

    # ? shows the help; Escape closes it.
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()

    # c confirms: through in_review, both steps in the history, by the logged-in user.
    page.locator("body").click(position={"x": 5, "y": 700})  # focus the page, not the video
    page.keyboard.press("c")
    expect(page.locator("#case-state")).to_have_attribute("data-state", "confirmed")
    expect(page.locator('#history li[data-to="confirmed"]')).to_have_attribute("data-actor", STAFF)
    assert case_history(sqlite_hub, first)[1:] == [
        ("new", "in_review", STAFF, None),
        ("in_review", "confirmed", STAFF, None),
    ]
    page.screenshot(path=shots / "laptop-1366x768-confirmed.png")
    no_horizontal_overflow(page)

    # A second case arrives; j moves to it; r rejects with reason 2 (not in zone).
    second = new_case(sqlite_hub, evidence, "cam-south-2", "square")
    expect(page.locator(f'.queue-item[data-case-id="{second}"]')).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    page.keyboard.press("j")
    expect(page.locator("#case-view")).to_have_attribute("data-case-id", str(second))
    page.keyboard.press("r")
    expect(page.locator("#reject-dialog")).to_be_visible()
    page.keyboard.press("2")
    page.screenshot(path=shots / "laptop-1366x768-reject-dialog.png")
    page.keyboard.press("Enter")
    expect(page.locator("#case-state")).to_have_attribute("data-state", "rejected")
    expect(page.locator('#history li[data-to="rejected"] .reason')).to_have_attribute(
        "data-reason", "not_in_zone"
    )
    assert case_history(sqlite_hub, second)[-1] == ("in_review", "rejected", STAFF, "not_in_zone")

    # Decided cases leave the review queue once the reviewer moves on.
    page.keyboard.press("k")
    expect(page.locator(".queue-item")).to_have_count(1)
    expect(page.locator(f'.queue-item[data-case-id="{second}"]')).to_have_class(re.compile(r"\bstale\b"))

    # The confirmed cases, oldest first; j opens the first, d dispatches it.
    page.select_option("#filter-state", "confirmed")
    expect(page.locator(".queue-item")).to_have_count(1)
    page.locator("body").click(position={"x": 5, "y": 700})
    page.keyboard.press("j")
    expect(page.locator("#case-view")).to_have_attribute("data-case-id", str(first))
    page.keyboard.press("d")
    expect(page.locator("#case-state")).to_have_attribute("data-state", "dispatched")
    assert case_history(sqlite_hub, first)[-1][:3] == ("confirmed", "dispatched", STAFF)
    page.close()


def test_language_switch_persists_per_user(browser: Browser, sqlite_hub: Hub, evidence: Evidence) -> None:
    page = open_console(browser, sqlite_hub, LAPTOP)
    expect(page.locator("#logout")).to_have_text("退出")
    page.click("#lang-toggle")
    expect(page.locator("#logout")).to_have_text("Sign out")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    # Persisted on the server, not just in this browser: clear the local hint, then reload.
    page.evaluate("() => localStorage.clear()")
    page.reload()
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#logout")).to_have_text("Sign out")
    assert sqlite_hub.users.language(sqlite_hub.users.authenticate(sqlite_hub.staff_token).user_id) == "en"
    page.click("#lang-toggle")
    expect(page.locator("#logout")).to_have_text("退出")
    page.evaluate("() => localStorage.clear()")
    page.reload()
    expect(page.locator("#logout")).to_have_text("退出")
    expect(page.locator("#filter-state option").first).to_have_text("待审核")
    page.close()


def test_wall_display_layout(browser: Browser, sqlite_hub: Hub, evidence: Evidence, shots: Path) -> None:
    case_id = new_case(sqlite_hub, evidence, "cam-east-3", "bus-lane")
    page = open_console(browser, sqlite_hub, WALL)
    page.select_option("#filter-state", "")  # all states: earlier tests moved cases on
    page.locator(f'.queue-item[data-case-id="{case_id}"]').click()
    expect(page.locator("#case-view")).to_have_attribute("data-case-id", str(case_id))
    page.wait_for_function(
        "() => document.getElementById('case-video').readyState >= 2", timeout=LIVE_TIMEOUT_MS
    )
    page.wait_for_function("() => document.getElementById('case-snapshot').naturalWidth > 0")
    page.screenshot(path=shots / "wall-2560x1440.png")
    no_horizontal_overflow(page)
    # The text scales up for reading from a distance.
    wall_font = page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
    page.set_viewport_size(LAPTOP)
    laptop_font = page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert wall_font > laptop_font * 1.3, (wall_font, laptop_font)
    page.screenshot(path=shots / "laptop-1366x768-all-states.png")
    no_horizontal_overflow(page)
    page.close()


def test_filter_menus_learn_new_cameras_live(browser: Browser, sqlite_hub: Hub, evidence: Evidence) -> None:
    other = new_case(sqlite_hub, evidence, "cam-west-8", "market")
    page = open_console(browser, sqlite_hub, LAPTOP)
    expect(page.locator(f'.queue-item[data-case-id="{other}"]')).to_be_visible()
    expect(page.locator('#filter-camera option[value="cam-west-9"]')).to_have_count(0)
    case_id = new_case(sqlite_hub, evidence, "cam-west-9", "market")
    expect(page.locator(f'.queue-item[data-case-id="{case_id}"]')).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator('#filter-camera option[value="cam-west-9"]')).to_have_count(1)
    # Filtering by another camera hides it; by its own camera shows only it.
    page.select_option("#filter-camera", "cam-west-8")
    expect(page.locator(f'.queue-item[data-case-id="{case_id}"]')).to_have_count(0)
    expect(page.locator(f'.queue-item[data-case-id="{other}"]')).to_be_visible()
    page.select_option("#filter-camera", "cam-west-9")
    expect(page.locator(".queue-item")).to_have_count(1)
    expect(page.locator(f'.queue-item[data-case-id="{case_id}"]')).to_be_visible()
    page.close()
