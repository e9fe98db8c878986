"""The one map and the statistics page in real Chromium (Debian's, via Playwright): the demo-like
hub's cameras, QR points and open cases are drawn (cases coloured by SLA), a case opens from the
map, and the statistics page draws its chart and figures. No inline scripts; no CDN."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from gridwarden.contract import utcnow
from gridwarden.hub.api.city import LEAFLET_DIR
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Camera
from gridwarden.hub.reports.photos import normalise_photo
from gridwarden.hub.reports.points import DEMO_OUTLINE, seed_demo_points
from gridwarden.hub.reports.resident import NewReport, ReportService, store_photo
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.hub.factories import incident_event
from tests.hub_api.conftest import ingest
from tests.residents.helpers import photo_jpeg, resident_app
from tests.support.ports import free_port, wait_for_port

TOKEN_KEY = "gridwarden.console.token"


def _camera(db: Database, camera_id: str, state: str, lat: float, lon: float) -> None:
    now = utcnow()
    with db.write_session() as s, s.begin():
        s.add(
            Camera(
                edge_id="edge-01", camera_id=camera_id, state=state, status_wall_time=now, updated_at=now,
                status={"location": {"lat": lat, "lon": lon}},
            )
        )  # fmt: skip


@pytest.fixture
def city_hub(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, int]]]:
    if not (LEAFLET_DIR / "leaflet.js").is_file():
        pytest.fail("Leaflet is not installed: run scripts/web-vendor.sh (bootstrap does)", pytrace=False)
    db = Database.open(f"sqlite:///{tmp_path}/hub.db")
    token = UserStore(db).create("staff-user", Role.STAFF)[1]
    assert seed_demo_points(db) == 4  # the demo's QR points
    assert seed_demo_points(db) == 0  # a hub with points keeps its own
    _camera(db, "cam-1", "online", 31.2300, 121.4730)
    _camera(db, "cam-2", "offline", 31.2320, 121.4760)
    now = utcnow()
    camera_case = ingest(db, incident_event(seq=1, camera="cam-1", started=now - timedelta(minutes=30)))[0]
    fresh_case = ingest(
        db, incident_event(seq=2, incident_id="inc-2", camera="cam-2", zone="z2", started=now)
    )[0]
    app = resident_app(db, tmp_path / "ev", map_outline=str(DEMO_OUTLINE))  # as the demo runs it
    jpeg, sha = normalise_photo(photo_jpeg())
    store_photo(app.state.services.evidence, jpeg, sha)
    resident = ReportService(db).submit(
        NewReport(source="resident", category="0506", point_id="DEMO-002", photo_sha256=sha, note="单车")
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield (
            f"http://127.0.0.1:{port}",
            token,
            {"breached": camera_case, "ok": fresh_case, "resident": resident.case_id},
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        db.dispose()


@pytest.fixture
def page(city_hub) -> Iterator[Page]:
    base, token, _ = city_hub
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context()
        # Signed in as the console would be (its token in sessionStorage).
        context.add_init_script(f"sessionStorage.setItem('{TOKEN_KEY}', '{token}')")
        outside: list[str] = []
        context.route(
            "**/*",
            lambda route: (
                (outside.append(route.request.url), route.abort())
                if not route.request.url.startswith(base)
                else route.continue_()
            ),
        )
        pg = context.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        browser.close()
    assert errors == [] and outside == []


def test_map_draws_cameras_points_and_cases_and_opens_a_case(city_hub, page: Page) -> None:
    base, _, ids = city_hub
    page.goto(f"{base}/city/map.html")
    expect(page.locator("path.camera")).to_have_count(2)
    expect(page.locator("path.camera-offline")).to_have_count(1)
    expect(page.locator("path.qr-point")).to_have_count(4)
    expect(page.locator("path.case")).to_have_count(3)
    expect(page.locator(f"path.case-{ids['breached']}")).to_have_class(
        f"case case-{ids['breached']} sla-breached leaflet-interactive"
    )
    expect(page.locator(f"path.case-{ids['ok']}")).to_have_class(
        f"case case-{ids['ok']} sla-ok leaflet-interactive"
    )
    expect(page.locator(".leaflet-control-scale")).to_be_visible()
    expect(page.locator("path.outline")).to_have_count(4)  # the demo district: boundary and streets
    expect(page.locator(".leaflet-tile")).to_have_count(0)  # no basemap configured: nothing fetched
    expect(page.locator("#page")).to_contain_text("未结案件")

    page.locator(f"path.case-{ids['resident']}").click(force=True)
    page.locator(f"a.open-case[data-case-id='{ids['resident']}']").click()
    expect(page.locator("#case-title")).to_have_attribute("data-case-id", str(ids["resident"]))
    expect(page.locator("#case-facts")).to_contain_text("0506")
    photo = page.locator("#case-reports img.photo")
    expect(photo).to_be_visible()
    page.wait_for_function("document.querySelector('#case-reports img.photo').naturalWidth > 0")


def test_statistics_page_draws_chart_and_figures_in_both_languages(city_hub, page: Page) -> None:
    base, _, _ = city_hub
    page.goto(f"{base}/city/stats.html")
    expect(page.locator("#total-cases")).to_have_text("3")
    expect(page.locator("#chart rect")).to_have_count(2)  # today: camera and resident
    expect(page.locator("#chart rect[data-key='camera']")).to_have_attribute("data-count", "2")
    expect(page.locator("#ontime-sub")).to_contain_text("应结")
    expect(page.locator("#legend")).to_contain_text("群众上报")
    page.locator("#lang").click()
    expect(page.locator("#ontime-sub")).to_contain_text("due")
    expect(page.locator("h1")).to_have_text("Case statistics")
