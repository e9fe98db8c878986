"""The console in real Chromium at a laptop (1366x768), a desktop (1920x1080) and a phone (390x844),
in zh-CN and en: every page fails on horizontal overflow, on a control covered by another element,
on tofu (Chinese drawn as empty boxes), and on any console error or uncaught exception. Then the
command-centre flows: bulk reject with one reason, search, the live view, the zone editor with
masks, opt-in notifications, and the log-in page's language kept at sign-in.

Screenshots go to ``$GRIDWARDEN_CONSOLE_SCREENSHOTS`` when set, else to a temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response, expect, sync_playwright

from gridwarden.contract import utcnow
from gridwarden.hub.api.console_review import SNAPSHOTS_FOLDER
from gridwarden.hub.auth import Role
from gridwarden.hub.cases import CaseService
from gridwarden.hub.config_store import ConfigStore
from tests.console.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STAFF,
    STAFF_PASSWORD,
    Evidence,
    Hub,
    first_frame_jpeg,
    incident_with_evidence,
    start_hub,
    stop,
    upload_evidence,
)
from tests.hub.factories import incident_event
from tests.support.paths import CAR_CLIP, PERSON_CLIP
from tests.zone_editor.conftest import ingest_edge_status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

VIEWPORTS = {"laptop": (1366, 768), "desktop": (1920, 1080), "phone": (390, 844)}
LANGUAGES = ("zh-CN", "en")
INTEGRATOR = "ivy"
INTEGRATOR_PASSWORD = "draw the kerb lines"
EDGE = "edge-01"
WAIT_MS = 15_000
# Answers the console expects and explains on the page; any other 4xx/5xx fails a test.
EXPECTED_REFUSALS = [
    (r"/api/v1/cameras/[^/]+/[^/]+/snapshot/url", 404),  # no picture of this camera yet
    (r"/api/v1/cameras/[^/]+/[^/]+/snapshot/request", 503),  # this test hub has no broker
]

EDGE_YAML = f"""edge_id: {EDGE}
site: north
cameras:
  - id: cam-north-1
    url: rtsp://10.0.0.9/one
    zones:
      - id: pavement
        polygon: [[0.05, 0.55], [0.6, 0.55], [0.6, 0.95], [0.05, 0.95]]
        masks: [[[0.1, 0.6], [0.2, 0.6], [0.2, 0.7], [0.1, 0.7]]]
        rules:
          - {{type: static_object, dwell_s: 20, min_static_s: 10}}
      - id: kerb-a
        polygon: [[0.65, 0.5], [0.95, 0.5], [0.95, 0.95], [0.65, 0.95]]
        rules:
          - {{type: illegal_parking, classes: [vehicle], dwell_s: 60}}
  - id: cam-south-2
    url: rtsp://10.0.0.9/two
"""

# Runs in the page: every visible control in view must be the topmost element at its centre
# (ignoring controls scrolled out of a clipping container), and no element may stick out to the
# right of the viewport.
LAYOUT_PROBLEMS_JS = """() => {
  const problems = [];
  const vw = window.innerWidth, vh = window.innerHeight;
  if (document.documentElement.scrollWidth > vw) problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${vw}`);
  const visible = (e) => { const s = getComputedStyle(e); return e.getClientRects().length && s.visibility !== 'hidden' && s.display !== 'none'; };
  const clippedAway = (e, x, y) => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (/(auto|scroll|hidden|clip)/.test(s.overflow + s.overflowX + s.overflowY)) {
        const r = p.getBoundingClientRect();
        if (x < r.left || x > r.right || y < r.top || y > r.bottom) return true;
      }
    }
    return false;
  };
  // What sticks out to the right is fine inside a container that clips it within the viewport
  // (a wide table scrolling sideways inside itself); the page itself must not scroll sideways.
  const scrollsInside = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (/(auto|scroll|hidden|clip)/.test(s.overflowX) && p.getBoundingClientRect().right <= vw + 0.5) return true;
    }
    return false;
  };
  const root = document.querySelector('dialog[open]') || document.getElementById(document.getElementById('app').hidden ? 'login' : 'app');
  for (const e of root.querySelectorAll('*')) {
    if (!visible(e) || e.closest('svg') || e.closest('[hidden]')) continue;
    const r = e.getBoundingClientRect();
    if (r.width && r.right > vw + 0.5 && !scrollsInside(e)) {
      problems.push(`${e.tagName}#${e.id}.${e.className} sticks out: right ${r.right} > ${vw}`);
    }
  }
  for (const e of root.querySelectorAll('button, input, select, a[href], [role=tab], video')) {
    if (!visible(e) || e.closest('[hidden]')) continue;
    const r = e.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) continue;
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (x < 0 || y < 0 || x >= vw || y >= vh || clippedAway(e, x, y)) continue;
    const top = document.elementFromPoint(x, y);
    // A control scrolled under a sticky bar of its own scrolling panel is reachable by scrolling.
    let sticky = null;
    for (let p = top; p && !sticky; p = p.parentElement) if (getComputedStyle(p).position === 'sticky') sticky = p;
    if (sticky && sticky.parentElement && sticky.parentElement.contains(e) && !sticky.contains(e)) continue;
    if (top && top !== e && !e.contains(top) && !(e.labels && [...e.labels].some((l) => l.contains(top)))) {
      problems.push(`${e.tagName}#${e.id}[${(e.textContent || e.name || '').trim().slice(0, 30)}] is covered by ${top.tagName}#${top.id}.${top.className}`);
    }
  }
  // The toast lets clicks through, so elementFromPoint cannot see it: it must not sit on a control.
  const toast = document.getElementById('toast');
  if (toast && !toast.hidden) {
    const t = toast.getBoundingClientRect();
    for (const e of document.querySelectorAll('#app button, #app input, #app select')) {
      if (!visible(e) || e.closest('[hidden]')) continue;
      const r = e.getBoundingClientRect();
      if (r.width && r.left < t.right && r.right > t.left && r.top < t.bottom && r.bottom > t.top && !clippedAway(e, r.left + r.width / 2, r.top + r.height / 2)) {
        problems.push(`the toast covers ${e.tagName}#${e.id}[${(e.textContent || e.name || '').trim().slice(0, 30)}]`);
      }
    }
  }
  return problems;
}"""

# Tofu: a CJK string drawn in the page's font is as wide as the same number of characters that no
# font has (private-use code points, drawn as the missing-glyph box).
TOFU_JS = """(selector) => {
  const probes = [...document.querySelectorAll(selector)].filter((e) => /[\\u4e00-\\u9fff]/.test(e.textContent) && e.getClientRects().length);
  const canvas = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const e of probes.slice(0, 40)) {
    const s = getComputedStyle(e);
    canvas.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    const text = [...e.textContent.trim()].filter((c) => /[\\u4e00-\\u9fff]/.test(c)).slice(0, 6).join('');
    const cjk = canvas.measureText(text).width;
    const boxes = canvas.measureText('\\ue000'.repeat(text.length)).width;
    if (Math.abs(cjk - boxes) < 0.5) out.push(`${text} (${cjk.toFixed(1)}px, as wide as ${text.length} missing-glyph boxes)`);
  }
  return {checked: probes.length, tofu: out};
}"""


@dataclass
class Seeded:
    hub: Hub
    evidence: Evidence
    cases: list[int]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("matrix-hub")
    hub, server, thread = start_hub(f"sqlite:///{root / 'hub.db'}", root)
    try:
        hub.users.create(INTEGRATOR, Role.INTEGRATOR)
        hub.users.set_password(INTEGRATOR, INTEGRATOR_PASSWORD)
        ingest_edge_status(hub.db, EDGE)  # the fleet and the editor know the edge from its status
        evidence = upload_evidence(hub)
        cases = []
        for seq, (camera, zone) in enumerate(
            [
                ("cam-north-1", "kerb-a"),
                ("cam-north-1", "pavement"),
                ("cam-south-2", "square"),
                ("cam-south-2", "market"),
            ],
            start=1,
        ):
            event = incident_with_evidence(
                seq=seq,
                incident_id=f"matrix-{seq}",
                camera=camera,
                zone=zone,
                started=utcnow() - timedelta(minutes=30 - seq),
                evidence=evidence,
                track_id=seq,
            )
            cases.append(hub.ingest(event))
        ConfigStore(hub.db).put(EDGE, EDGE_YAML, author="test", comment="matrix")
        picture = hub.evidence.root / SNAPSHOTS_FOLDER / EDGE / "cam-north-1.jpg"
        picture.parent.mkdir(parents=True, exist_ok=True)
        picture.write_bytes(first_frame_jpeg(CAR_CLIP))
        yield Seeded(hub, evidence, cases)
    finally:
        stop(server, thread, hub.built)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """One Playwright per module: the sync API cannot be started twice in one thread."""
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright, seeded: Seeded) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("GRIDWARDEN_CONSOLE_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("matrix-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Console:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, browser: Browser, hub: Hub, viewport: tuple[int, int], *, lang: str) -> None:
        self.context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            locale=lang,
            device_scale_factor=1,
            is_mobile=viewport[0] < 500,
            has_touch=viewport[0] < 500,
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.hub = hub
        self.lang = lang

    def _console(self, msg: ConsoleMessage) -> None:
        # A failed request is logged by Chromium as a console error without its URL; requests
        # are judged by _response (which knows the URL), everything else here is a script error.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(f"console.error: {msg.text}")

    def _response(self, response: Response) -> None:
        if response.status < 400:
            return
        path = response.url.split("?")[0].removeprefix(self.hub.url)
        if any(
            re.fullmatch(pattern, path) and response.status == code for pattern, code in EXPECTED_REFUSALS
        ):
            return
        self.errors.append(f"HTTP {response.status} {path}")

    def login(self, username: str = STAFF, password: str = STAFF_PASSWORD) -> Page:
        page = self.page
        page.goto(f"{self.hub.url}/console/")
        expect(page.locator("#login")).to_be_visible()
        # The language chosen on the log-in page is the one the console opens in.
        page.click(f'[data-set-lang="{self.lang}"]')
        expect(page.locator("html")).to_have_attribute("lang", self.lang)
        page.fill("#login-username", username)
        page.fill("#login-password", password)
        page.click("#login-submit")
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", self.lang)
        expect(page.locator("#live")).to_have_attribute("data-state", "on", timeout=WAIT_MS)
        return page

    def check(self, name: str, shots: Path) -> None:
        page = self.page
        page.wait_for_timeout(300)  # let images lay out
        page.screenshot(path=shots / f"{name}.png")
        problems = page.evaluate(LAYOUT_PROBLEMS_JS)
        assert not problems, f"{name}: {problems}"
        if self.lang == "zh-CN":
            result = page.evaluate(
                TOFU_JS, "button, h1, h2, h3, label span, dt, th, .state-badge, [data-i18n]"
            )
            assert result["checked"] > 3, result
            assert not result["tofu"], f"{name}: {result['tofu']}"
        assert not self.errors, f"{name}: {self.errors}"

    def close(self) -> None:
        self.context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_every_view_lays_out_at_each_size_and_language(
    browser: Browser, seeded: Seeded, shots: Path, size: str, lang: str
) -> None:
    console = Console(browser, seeded.hub, VIEWPORTS[size], lang=lang)
    try:
        console.page.goto(f"{seeded.hub.url}/console/")
        console.page.click(f'[data-set-lang="{lang}"]')
        expect(console.page.locator("#login-submit")).to_have_text("登录" if lang == "zh-CN" else "Sign in")
        console.check(f"{size}-{lang}-login", shots)
        page = console.login(INTEGRATOR, INTEGRATOR_PASSWORD)
        expect(page.locator(".queue-item").first).to_be_visible()
        # An integrator only looks: no checkboxes for bulk decisions it may not make.
        expect(page.locator(".queue-item .qi-check").first).to_be_hidden()
        page.locator(".queue-item").first.click()
        expect(page.locator("#case-view")).to_be_visible()
        page.wait_for_function("() => document.getElementById('case-snapshot').naturalWidth > 0")
        console.check(f"{size}-{lang}-review", shots)
        if size == "phone":
            # The filters fold away: the queue starts in the first third of the screen.
            expect(page.locator("#filters")).to_be_hidden()
            assert page.locator("#queue-list").bounding_box()["y"] < 844 / 3
            page.click("#filters-toggle")
            expect(page.locator("#filter-q")).to_be_visible()
            console.check(f"{size}-{lang}-filters", shots)
            page.click("#filters-toggle")
        page.click('#views-nav [data-view="wall"]')
        expect(page.locator(".wall-tile").first).to_be_visible()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.wall-stage img')].some((i) => i.naturalWidth > 0)"
        )
        console.check(f"{size}-{lang}-wall", shots)
        page.click('#views-nav [data-view="zones"]')
        expect(page.locator("#zones-list li").first).to_be_visible()
        console.check(f"{size}-{lang}-zones", shots)
        page.click('#views-nav [data-view="fleet"]')
        console.check(f"{size}-{lang}-fleet", shots)
        page.click('#views-nav [data-view="dryrun"]')
        console.check(f"{size}-{lang}-dryrun", shots)
        page.click('#views-nav [data-view="review"]')
        page.click("#help-button")
        expect(page.locator("#help-dialog")).to_be_visible()
        console.check(f"{size}-{lang}-help", shots)
        page.keyboard.press("Escape")
        page.keyboard.press("r")
        expect(page.locator("#reject-dialog")).to_be_visible()
        console.check(f"{size}-{lang}-reject-dialog", shots)
        page.keyboard.press("Escape")
        # A reviewer ticks two cases: the bulk bar appears and fits.
        page.click("#logout")
        page = console.login()
        for item in page.locator(".queue-item .qi-check").all()[:2]:
            item.check()
        expect(page.locator("#bulk-bar")).to_be_visible()
        console.check(f"{size}-{lang}-bulk-bar", shots)
    finally:
        console.close()


def test_login_language_is_kept_at_sign_in(browser: Browser, seeded: Seeded) -> None:
    users = seeded.hub.users
    user_id = users.authenticate(seeded.hub.staff_token).user_id
    users.set_language(user_id, "zh-CN")
    console = Console(browser, seeded.hub, VIEWPORTS["laptop"], lang="en")
    try:
        page = console.login()
        expect(page.locator("#logout")).to_have_text("Sign out")
        assert users.language(user_id) == "en"  # saved for the account
    finally:
        console.close()
        users.set_language(user_id, "zh-CN")


def test_bulk_reject_with_one_reason_and_search(browser: Browser, seeded: Seeded, shots: Path) -> None:
    hub = seeded.hub
    a, b = seeded.cases[2], seeded.cases[3]  # cam-south-2
    console = Console(browser, hub, VIEWPORTS["laptop"], lang="en")
    try:
        page = console.login()
        for case_id in (a, b):
            page.locator(f'.queue-item[data-case-id="{case_id}"] .qi-check').check()
        expect(page.locator("#bulk-bar")).to_be_visible()
        expect(page.locator("#bulk-count")).to_have_text("2 cases selected")
        console.check("laptop-en-bulk-bar", shots)
        page.click("#bulk-reject")
        expect(page.locator("#reject-dialog")).to_be_visible()
        page.keyboard.press("4")  # permitted
        page.fill("#reject-note", "market day licence")
        console.check("laptop-en-bulk-reject", shots)
        page.click("#reject-submit")
        expect(page.locator(f'.queue-item[data-case-id="{a}"]')).to_have_count(0)
        for case_id in (a, b):
            history = CaseService(hub.db).get_case(case_id).history
            assert [(h.to_state, h.actor, h.reason) for h in history[-2:]] == [
                ("in_review", STAFF, None),
                ("rejected", STAFF, "permitted: market day licence"),
            ]
        # They are detections now, not decisions; free text finds them by the note.
        page.click("#tab-detections")
        expect(page.locator(f'.queue-item[data-case-id="{a}"]')).to_be_visible()
        page.locator("body").click(position={"x": 700, "y": 5})
        page.keyboard.press("/")  # the search box, from the keyboard
        expect(page.locator("#filter-q")).to_be_focused()
        page.keyboard.type("licence")
        expect(page.locator(".queue-item")).to_have_count(2)
        page.fill("#filter-q", f"#{seeded.cases[0]}")
        page.click("#tab-decision")
        expect(page.locator(".queue-item")).to_have_count(1)
        expect(page.locator(f'.queue-item[data-case-id="{seeded.cases[0]}"]')).to_be_visible()
        # A wrong date says so, in the page's language, instead of being ignored.
        page.fill("#filter-q", "")
        page.fill("#filter-since", "30/11/2026")
        page.locator("#filter-since").dispatch_event("change")
        expect(page.locator("#filter-error")).to_contain_text("2026-11-30")
        page.fill("#filter-since", "")
        page.locator("#filter-since").dispatch_event("change")
        # Hovering a thumbnail plays the clip's preview.
        thumb = page.locator(f'.queue-item[data-case-id="{seeded.cases[0]}"] .qi-thumb')
        thumb.hover()
        page.wait_for_function(
            f"() => {{ const v = document.querySelector('.queue-item[data-case-id=\"{seeded.cases[0]}\"] video'); return v && v.readyState >= 2; }}",
            timeout=WAIT_MS,
        )
        assert not console.errors, console.errors
    finally:
        console.close()


def test_live_view_opens_the_cameras_cases_and_marks_them_reviewed(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    console = Console(browser, seeded.hub, VIEWPORTS["desktop"], lang="zh-CN")
    try:
        page = console.login()
        page.click('#views-nav [data-view="wall"]')
        tile = page.locator('.wall-tile[data-camera-id="cam-north-1"]')
        expect(tile).to_be_visible()
        expect(tile.locator("polygon.wall-zone")).to_have_count(2)
        expect(tile.locator("polygon.wall-mask")).to_have_count(1)
        page.select_option("#wall-site", "north")  # the area: its edges' cameras only
        expect(page.locator("#wall-edge option")).to_have_count(2)  # any + edge-01
        page.select_option("#wall-edge", EDGE)
        console.check("desktop-zh-wall-filtered", shots)
        tile.click()
        expect(page.locator("#review")).to_be_visible()
        expect(page.locator("#filter-camera")).to_have_value("cam-north-1")
        expect(page.locator(".queue-item")).to_have_count(2)
        page.click("#mark-reviewed")
        expect(page.locator(".queue-item.reviewed")).to_have_count(2)
        views = CaseService(seeded.hub.db).list_cases(camera="cam-north-1")[0]
        assert all(v.reviewed_by == STAFF for v in views)
        assert not console.errors, console.errors
    finally:
        console.close()


def test_zone_editor_static_object_fields_and_masks(browser: Browser, seeded: Seeded, shots: Path) -> None:
    console = Console(browser, seeded.hub, VIEWPORTS["laptop"], lang="en")
    try:
        page = console.login(INTEGRATOR, INTEGRATOR_PASSWORD)
        page.click('#views-nav [data-view="zones"]')
        page.locator('#zones-list li[data-zone="pavement"] button').click()
        rule = page.locator('#zone-rules fieldset[data-rule="0"]')
        for field in ("min_static_s", "min_size", "cooldown_s", "end_grace_s", "dwell_s"):
            expect(rule.locator(f'input[name="{field}"]')).to_be_visible()
        expect(rule.locator(".warning")).to_have_count(0)  # static objects need no detector
        # Fields the file leaves out show the edge's default.
        expect(rule.locator('input[name="coverage"]')).to_have_attribute("placeholder", "0.05")
        expect(rule.locator('input[name="end_grace_s"]')).to_have_attribute("placeholder", "5")
        # One mask listed; it can be deleted, and a new one drawn.
        expect(page.locator("#zone-masks .mask-item")).to_have_count(1)
        page.locator("#zone-masks .mask-item button.danger-link").click()
        expect(page.locator("#zone-masks .mask-item")).to_have_count(0)
        page.click("#zones-new-mask")
        svg = page.locator("#zones-svg")
        box = svg.bounding_box()
        for fx, fy in ((0.3, 0.7), (0.4, 0.7), (0.4, 0.8)):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.keyboard.press("Enter")
        expect(page.locator("#zone-masks .mask-item")).to_have_count(1)
        # Its first vertex dragged from (0.3, 0.7) to (0.35, 0.65).
        vertex = page.locator('#zones-svg circle.vertex.mask[data-ring="0"][data-index="0"]')
        vbox = vertex.bounding_box()
        page.mouse.move(vbox["x"] + vbox["width"] / 2, vbox["y"] + vbox["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.65 * box["height"], steps=5)
        page.mouse.up()
        rule.locator('input[name="cooldown_s"]').fill("45")
        rule.locator('input[name="cooldown_s"]').dispatch_event("change")
        # The vehicle rule on an edge without a detector is flagged.
        page.locator('#zones-list li[data-zone="kerb-a"] button').click()
        expect(page.locator('#zone-rules fieldset[data-rule="0"] .warning')).to_be_visible()
        page.click("#zones-save")
        expect(page.locator("#zones-save")).to_have_attribute("data-saved-version", "2")
        # The toast never covers Save or Dry run.
        expect(page.locator("#toast")).to_be_visible()
        console.check("laptop-en-zones-saved", shots)
        saved = ConfigStore(seeded.hub.db).current(EDGE).yaml
        import yaml

        zones = {z["id"]: z for z in yaml.safe_load(saved)["cameras"][0]["zones"]}
        (mask,) = zones["pavement"]["masks"]
        assert len(mask) == 3 and abs(mask[0][0] - 0.35) < 0.01 and abs(mask[0][1] - 0.65) < 0.01, mask
        assert mask[1] == [0.4, 0.7]
        assert zones["pavement"]["rules"][0]["cooldown_s"] == 45
    finally:
        console.close()


def test_opt_in_notifications_for_new_cases_and_sla_breaches(browser: Browser, seeded: Seeded) -> None:
    console = Console(browser, seeded.hub, VIEWPORTS["laptop"], lang="en")
    console.context.grant_permissions(["notifications"], origin=seeded.hub.url)
    console.page.add_init_script(
        """window.__shown = [];
        const Real = window.Notification;
        window.Notification = class extends Real { constructor(title, options) { super(title, options); window.__shown.push(title); } };
        Object.defineProperty(window.Notification, 'permission', { get: () => Real.permission });
        window.Notification.requestPermission = (...a) => Real.requestPermission(...a);"""
    )
    console.page.clock.install()  # real time flows; the test jumps it forward for the SLA breach
    try:
        page = console.login()
        expect(page.locator("#notify-toggle")).to_have_attribute("aria-pressed", "false")
        page.click("#notify-toggle")
        expect(page.locator("#notify-toggle")).to_have_attribute("aria-pressed", "true")
        event = incident_with_evidence(
            seq=50, incident_id="matrix-50", camera="cam-east-5", zone="bus-stop", started=utcnow(),
            evidence=seeded.evidence, track_id=50,
        )  # fmt: skip
        case_id = seeded.hub.ingest(event)
        page.wait_for_function(f"() => window.__shown.includes('New case #{case_id}')", timeout=WAIT_MS)
        # Ten minutes later nobody has confirmed it: the SLA breach is announced, once.
        page.clock.fast_forward("11:00")
        page.wait_for_function(
            f"() => window.__shown.includes('SLA breached: case #{case_id}')", timeout=WAIT_MS
        )
        page.clock.fast_forward("00:05")
        # Off again: the next case is not announced.
        page.click("#notify-toggle")
        other = incident_with_evidence(
            seq=51, incident_id="matrix-51", camera="cam-east-6", zone="bus-stop", started=utcnow(),
            evidence=seeded.evidence, track_id=51,
        )  # fmt: skip
        second = seeded.hub.ingest(other)
        expect(page.locator(f'.queue-item[data-case-id="{second}"]')).to_be_visible(timeout=WAIT_MS)
        assert page.evaluate("() => window.__shown") == [
            f"New case #{case_id}",
            f"SLA breached: case #{case_id}",
        ]
        assert not console.errors, console.errors
    finally:
        console.close()


def test_the_tofu_check_sees_boxes_when_no_cjk_font_is_installed(
    playwright: Playwright, tmp_path: Path
) -> None:
    """The check above would pass on a machine that draws boxes if it could not see them: here
    Chromium is given a font folder without any CJK font (as on a fresh Debian) and must fail it."""
    listed = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=True)
    cjk = subprocess.run(
        ["fc-list", "--format", "%{file}\n", ":lang=zh"], capture_output=True, text=True, check=True
    )
    latin = sorted(set(listed.stdout.split()) - set(cjk.stdout.split()))
    assert latin, "no font without CJK glyphs on this machine"
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    shutil.copy(latin[0], fonts)
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        f'<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig><dir>{fonts}</dir>'
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    page_html = (
        '<html lang="zh-CN"><head><style>'
        + (Path(__file__).resolve().parents[2] / "gridwarden/hub/web/app.css").read_text()
        + "</style></head><body><button>审核案件</button><h1>驳回所选</h1></body></html>"
    )
    results = {}
    for name, env in (("system", {}), ("no-cjk", {"FONTCONFIG_FILE": str(conf)})):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env={**os.environ, **env}
        )
        try:
            page = browser.new_page()
            page.set_content(page_html)
            results[name] = page.evaluate(TOFU_JS, "button, h1")
        finally:
            browser.close()
    assert results["system"] == {"checked": 2, "tofu": []}, results
    assert results["no-cjk"]["checked"] == 2 and len(results["no-cjk"]["tofu"]) == 2, results


def test_each_incident_keeps_its_own_evidence_and_static_objects_read_well(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    """Two incidents of one static object in one case: each with its own clip and snapshot in the
    timeline; no "confidence 0.00" and no raw rule name as the object; an action that does not
    apply says why; the count reads "1 case"."""
    hub = seeded.hub
    first = seeded.evidence
    person_clip = PERSON_CLIP.read_bytes()
    person_jpeg = first_frame_jpeg(PERSON_CLIP)
    second = Evidence(
        clip=first.clip.model_copy(
            update={"sha256": hub.upload(person_clip, "video/mp4"), "size": len(person_clip)}
        ),
        snapshot=first.snapshot.model_copy(
            update={"sha256": hub.upload(person_jpeg, "image/jpeg"), "size": len(person_jpeg)}
        ),
    )
    started = utcnow() - timedelta(minutes=5)
    case_ids = set()
    for n, (evidence, offset) in enumerate(((first, 0), (second, 40)), start=60):
        event = incident_event(
            seq=n, incident_id=f"matrix-static-{n}", camera="cam-west-7", zone="pavement", rule="static_object",
            classes=("static_object",), started=started + timedelta(seconds=offset), track_id=n,
        ).model_copy(update={"evidence": [evidence.clip, evidence.snapshot], "confidence": 0.0})  # fmt: skip
        case_ids.add(hub.ingest(event))
    (case_id,) = case_ids  # the same object: one case with two incidents
    console = Console(browser, hub, VIEWPORTS["laptop"], lang="en")
    try:
        page = console.login()
        page.select_option("#filter-camera", "cam-west-7")
        expect(page.locator("#queue-count")).to_have_text("1 case")
        page.locator(f'.queue-item[data-case-id="{case_id}"]').click()
        expect(page.locator("#case-incidents")).to_have_text("2")
        expect(page.locator("#case-classes")).to_have_text("Unidentified object (class-agnostic rule)")
        started_items = page.locator("#timeline li.tl-started")
        expect(started_items).to_have_count(2)
        expect(page.locator("#timeline")).not_to_contain_text("confidence")
        expect(page.locator("#timeline")).not_to_contain_text("static_object")
        expect(page.locator("#timeline .tl-media img")).to_have_count(2)
        # The player shows the latest incident's clip; the first incident's button plays its own.
        video = page.locator("#case-video")
        expect(video).to_have_attribute("src", re.compile(second.clip.sha256))
        started_items.nth(0).locator("button[data-show-incident]").click()
        expect(video).to_have_attribute("src", re.compile(first.clip.sha256))
        expect(page.locator("#case-snapshot")).to_have_attribute("src", re.compile(first.snapshot.sha256))
        expect(page.locator("#case-clip-caption")).to_have_text("Clip of incident 1")
        console.check("laptop-en-two-incidents", shots)
        # d on a new case: it cannot be dispatched yet, and the reviewer is told why.
        page.locator("body").click(position={"x": 700, "y": 5})
        page.keyboard.press("d")
        expect(page.locator("#toast")).to_contain_text("Dispatch is not possible while the case is New")
        assert CaseService(hub.db).get_case(case_id).state == "new"
    finally:
        console.close()
