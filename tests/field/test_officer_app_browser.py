"""The officer app in a real Chromium at 390x844 with emulated geolocation, against a real hub:
sign in, go on duty, an offer arrives, then with the network cut: accept, arrive, resolve with
a note and a photo; the network comes back, one answer is lost on the way, and the hub still has
every action exactly once. The service worker serves the app shell without a network.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright
from sqlalchemy import func, select

from gridwarden.contract import CameraLocation, CameraStatus, utcnow
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.cases import CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import FieldAction
from gridwarden.hub.dispatch.wiring import FieldServices
from gridwarden.hub.ingest import ingest_payload
from gridwarden.hub.officers.roster import OfficerSpec
from gridwarden.hub.settings import HubSettings
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, first_frame_jpeg, serve
from tests.field.world import CAMERA_AT
from tests.hub.factories import EDGE, SITE, incident_event, topic_of, wire
from tests.support.paths import CAR_CLIP

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PHONE = {"width": 390, "height": 844}
OFFICER, PASSWORD = "li", "street patrol 2026"
STAFF = "dispatcher"
WAIT_MS = 20_000
SHOTS = Path(os.environ.get("GRIDWARDEN_FIELD_SCREENSHOTS", tempfile.gettempdir()))


@dataclass
class FieldHub:
    url: str
    db: Database
    field: FieldServices
    cases: CaseService
    snapshot: bytes
    snapshot_sha: str


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FieldHub]:
    root = tmp_path_factory.mktemp("field-hub")
    url = f"sqlite:///{root / 'hub.db'}"
    database = Database.open(url)
    built = build_hub(HubSettings(database_url=url, evidence_root=str(root / "evidence")), db=database)
    app = built.app
    users = UserStore(database)
    users.create(STAFF, Role.STAFF)
    users.set_password(STAFF, PASSWORD)
    users.create(OFFICER, Role.OFFICER)
    users.set_password(OFFICER, PASSWORD)
    _, uploader = users.create(EDGE, Role.EDGE)  # edges upload their evidence
    field = built.services.field
    assert field is not None
    field.roster.upsert(OfficerSpec(username=OFFICER, name="李明", areas=["beat-east"], transport="ebike"))
    server: uvicorn.Server
    port_server = serve(app, port := __import__("tests.support.ports", fromlist=["free_port"]).free_port())
    server, thread = port_server
    base = f"http://127.0.0.1:{port}"
    import hashlib

    import httpx

    jpeg = first_frame_jpeg(CAR_CLIP)
    sha = hashlib.sha256(jpeg).hexdigest()
    r = httpx.put(f"{base}/api/v1/evidence/{sha}", content=jpeg,
                  headers={"Authorization": f"Bearer {uploader}", "Content-Type": "image/jpeg"})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    try:
        yield FieldHub(base, database, field, CaseService(database), jpeg, sha)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        built.stop()
        database.dispose()


@pytest.fixture(scope="module")
def browser(hub: FieldHub) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def phone(browser: Browser, hub: FieldHub, *, service_workers: str) -> tuple[BrowserContext, Page, list[str]]:
    context = browser.new_context(
        viewport=PHONE,
        geolocation={"latitude": CAMERA_AT[0] + 0.003, "longitude": CAMERA_AT[1]},
        permissions=["geolocation"],
        service_workers=service_workers,  # type: ignore[arg-type]
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(f"{hub.url}/field/")
    return context, page, errors


def sign_in(page: Page) -> None:
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login h1")).to_have_text("登录")  # zh-CN by default
    page.fill("input[name=username]", OFFICER)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#home")).to_be_visible()


def new_confirmed_case(hub: FieldHub, seq: int) -> int:
    camera = CameraStatus(
        edge_id=EDGE, camera="cam-1", state="online", location=CameraLocation(lat=CAMERA_AT[0], lon=CAMERA_AT[1]),
        wall_time=utcnow(),
    )  # fmt: skip
    from gridwarden.contract import EvidenceRef, Topics

    event = incident_event(
        seq=seq, incident_id=f"app-{seq}", started=utcnow() - timedelta(seconds=60), track_id=seq
    )
    event = event.model_copy(
        update={
            "evidence": [
                EvidenceRef(
                    kind="snapshot",
                    sha256=hub.snapshot_sha,
                    size=len(hub.snapshot),
                    content_type="image/jpeg",
                )
            ]
        }
    )
    with hub.db.write_session() as session, session.begin():
        ingest_payload(session, Topics(SITE, EDGE).camera_status("cam-1"), wire(camera), now=utcnow())
        case_id = ingest_payload(session, topic_of(event), wire(event), now=utcnow()).case_id
    assert case_id is not None
    hub.cases.transition(case_id, "in_review", actor="op")
    hub.cases.transition(case_id, "confirmed", actor="op")
    return case_id


def wait_until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_accept_arrive_resolve_offline_then_sent_once(
    browser: Browser, hub: FieldHub, tmp_path: Path
) -> None:
    context, page, errors = phone(browser, hub, service_workers="block")
    sign_in(page)
    page.click("#duty")
    expect(page.locator("[data-testid=state]")).to_have_text("空闲")
    # The app reports the phone's position; the hub now knows where the officer is.
    wait_until(lambda: hub.field.roster.by_username(OFFICER).fix_at is not None)
    assert abs(hub.field.roster.by_username(OFFICER).lat - (CAMERA_AT[0] + 0.003)) < 1e-6  # type: ignore[operator]

    case_id = new_confirmed_case(hub, 1)
    hub.field.dispatch.tick()
    offer = page.locator("[data-testid=offer]")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(offer.locator(".countdown")).to_contain_text("剩余")
    expect(offer.locator(".dist")).to_contain_text("m")

    # The street has no signal: every action is queued on the phone.
    context.set_offline(True)
    expect(page.locator("[data-testid=net]")).to_have_text("离线")
    offer.locator(".accept").click()
    task = page.locator("[data-testid=task]")
    expect(task).to_be_visible()
    expect(task.locator(".nav")).to_have_attribute(
        "href", f"geo:{CAMERA_AT[0]},{CAMERA_AT[1]}?q={CAMERA_AT[0]},{CAMERA_AT[1]}"
    )
    task.locator(".arrive").click()
    expect(task.locator(".arrive")).to_be_hidden()
    photo = tmp_path / "scene.jpg"
    photo.write_bytes(hub.snapshot[::-1][::-1])
    task.locator("textarea[name=note]").fill("车主已挪车")
    task.locator("input[name=photo]").set_input_files(str(photo))
    task.locator("form.resolve button[type=submit]").click()
    expect(page.locator("[data-testid=queued]")).to_contain_text("3")
    assert [t.state for t in hub.field.dispatch.tasks_of_case(case_id)] == ["offered"]

    # The network comes back; the hub stores "arrive" but its answer is lost on the way back,
    # so the phone sends it again with the same idempotency key.
    lost = {"n": 0}

    def lose_first_answer(route: Route) -> None:
        if lost["n"] == 0:
            lost["n"] += 1
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/field/tasks/*/arrive", lose_first_answer)
    context.set_offline(False)
    expect(page.locator("[data-testid=queued]")).to_be_hidden(timeout=WAIT_MS)
    assert lost["n"] == 1

    (done,) = hub.field.dispatch.tasks_of_case(case_id)
    assert done.state == "resolved" and done.note == "车主已挪车" and done.photo
    stored = hub.field.photos.path(done.photo)
    assert stored is not None and stored.read_bytes() == hub.snapshot
    events = [h.event for h in hub.cases.get_case(case_id).history if h.event]
    assert events == ["queued", "offered", "accepted", "arrived", "resolved"]
    with hub.db.session() as session:
        assert session.scalar(select(func.count()).select_from(FieldAction)) == 3
    expect(page.locator("[data-testid=task] .status")).to_have_text("已处置，等待摄像头核查", timeout=WAIT_MS)
    # The incident photo on the card came from the hub's evidence store.
    assert page.evaluate("() => document.querySelector('.snap').naturalWidth") > 0
    # One column on a 390 px phone: nothing sticks out sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("#lang")
    expect(page.locator("[data-testid=state]")).to_have_text("available")
    page.screenshot(path=str(SHOTS / "officer-app.png"), full_page=True)
    assert [e for e in errors if "dialog" in e] == []
    assert errors == []
    context.close()


def test_service_worker_opens_the_app_without_network(browser: Browser, hub: FieldHub) -> None:
    context, page, errors = phone(browser, hub, service_workers="allow")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # controlled by the worker now; it cached the shell on install
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.reload()
    expect(page.locator("#login h1")).to_have_text("登录")
    assert errors == []
    context.close()


def test_dispatcher_sees_the_alarm_and_reassigns_by_hand(browser: Browser, hub: FieldHub) -> None:
    hub.field.roster.set_duty(OFFICER, False)
    case_id = new_confirmed_case(hub, 2)
    hub.field.dispatch.tick()  # nobody on duty: escalated
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{hub.url}/field/dispatch.html")
    page.fill("input[name=username]", STAFF)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("[data-testid=alarm]")).to_have_text("1 件无人接单", timeout=WAIT_MS)
    row = page.locator(f"tr[data-case='{case_id}']")
    expect(row).to_have_class("escalated")
    hub.field.roster.set_duty(OFFICER, True)
    page.reload()
    row.locator("select").select_option(label="李明 (available)")
    row.locator("button").click()
    expect(row.locator("li")).to_have_text("李明: 待接受", timeout=WAIT_MS)
    (task,) = hub.field.dispatch.tasks_of_case(case_id)
    assert task.manual and task.offered_by == STAFF and task.state == "offered"
    assert errors == []
    page.close()
