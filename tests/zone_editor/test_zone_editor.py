"""The fleet view and the zone editor in a real browser against a real hub: an integrator sees
the offline camera highlighted, draws a zone on the camera's snapshot with the mouse, sets its
rule and saves; the hub stores the new version and publishes it, and an edge's ConfigSync
receives it. A self-intersecting polygon is refused with the hub's message beside the form.

Screenshots (1366x768) go to ``$GRIDWARDEN_CONSOLE_SCREENSHOTS`` when set, else to tmp_path.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from gridwarden.edge.config import EdgeConfig
from gridwarden.edge.transport.config_sync import ConfigSync
from gridwarden.edge.transport.publisher import MqttSettings
from gridwarden.hub.auth import Role, UserStore
from tests.zone_editor.conftest import (
    EDGE,
    INTEGRATOR,
    INTEGRATOR_PASSWORD,
    SITE,
    ZoneHub,
    ingest_edge_status,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

LAPTOP = {"width": 1366, "height": 768}
ARRIVAL_S = 5.0


def open_console(browser: Browser, hub: ZoneHub) -> tuple[Page, list[str]]:
    errors: list[str] = []
    page = browser.new_page(viewport=LAPTOP)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{hub.url}/console/")
    page.fill("#login-username", INTEGRATOR)
    page.fill("#login-password", INTEGRATOR_PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#views-nav")).to_be_visible()
    return page, errors


def click_at(page: Page, points: list[tuple[float, float]]) -> None:
    """Clicks on the drawing area at normalised image coordinates."""
    box = page.locator("#zones-svg").bounding_box()
    assert box is not None
    for x, y in points:
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def open_editor_for_cam1(page: Page) -> None:
    page.click('#views-nav [data-view="fleet"]')
    page.locator('tr.camera-row[data-camera-id="cam-1"] button').click()
    expect(page.locator("#zones")).to_be_visible()
    expect(page.locator("#zones-stage")).not_to_have_class("stage no-snapshot")
    expect(page.locator('#zones-list li[data-zone="kerb-a"]')).to_be_visible()


def test_fleet_view_and_drawing_a_zone_that_reaches_the_edge(
    browser: Browser, zone_hub: ZoneHub, shots: Path, tmp_path: Path
) -> None:
    received: list[tuple[EdgeConfig, int]] = []
    arrived = threading.Event()

    def on_config(config: EdgeConfig, version: int) -> None:
        received.append((config, version))
        if any(z.id == "kerb-new" for c in config.cameras for z in c.zones):
            arrived.set()

    sync = ConfigSync(
        SITE,
        EDGE,
        MqttSettings(host="127.0.0.1", port=zone_hub.broker.port, client_id="zone-editor-edge"),
        on_config,
        tmp_path / "edge-state",
    )
    assert sync.start(wait_s=5.0), "the edge's config subscriber did not subscribe"
    try:
        page, errors = open_console(browser, zone_hub)

        # Fleet view: the offline camera is first among its edge's cameras and marked.
        page.click('#views-nav [data-view="fleet"]')
        rows = page.locator("tr.camera-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_attribute("data-camera-id", "cam-2")
        expect(rows.nth(0)).to_have_class("camera-row offline")
        expect(rows.nth(1)).to_have_class("camera-row")
        expect(rows.nth(0)).to_contain_text("离线")  # the default interface language
        expect(rows.nth(1)).to_contain_text("12.5")
        page.screenshot(path=str(shots / "fleet-1366x768.png"))

        # Zone editor on the camera's snapshot: draw a quadrilateral, close it on its first vertex.
        open_editor_for_cam1(page)
        page.click("#zones-new")
        square = [(0.55, 0.55), (0.9, 0.55), (0.9, 0.95), (0.55, 0.95)]
        click_at(page, [*square, square[0]])
        expect(page.locator("#zones-list li")).to_have_count(2)
        page.fill("#zone-id", "kerb-new")
        page.locator("#zone-id").press("Tab")
        rule = page.locator('#zone-rules fieldset[data-rule="0"]')
        rule.locator('select[name="type"]').select_option("occupied_space")
        rule = page.locator('#zone-rules fieldset[data-rule="0"]')
        rule.locator('input[name="dwell_s"]').fill("45")
        rule.locator('input[name="dwell_s"]').press("Tab")
        rule = page.locator('#zone-rules fieldset[data-rule="0"]')
        rule.locator('input[type="checkbox"][value="two_wheeler"]').check()
        rule = page.locator('#zone-rules fieldset[data-rule="0"]')
        rule.locator('input[name="schedule"]').fill("07:00-20:00")
        rule.locator('input[name="schedule"]').press("Tab")
        page.fill("#zones-comment", "no parking by the gate")
        page.screenshot(path=str(shots / "zone-editor-1366x768.png"))
        page.click("#zones-save")
        expect(page.locator("#zones-save")).to_have_attribute("data-saved-version", "2")
        expect(page.locator("#zones-problems")).to_be_hidden()

        # Stored as version 2 with the new zone...
        current = zone_hub.get(f"/api/v1/edges/{EDGE}/config/document").json()
        assert current["version"] == 2
        zones = {z["id"]: z for z in current["document"]["cameras"][0]["zones"]}
        assert set(zones) == {"kerb-a", "kerb-new"}
        new = zones["kerb-new"]
        assert len(new["polygon"]) == 4
        for (x, y), (ex, ey) in zip(new["polygon"], square, strict=True):
            assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01, new["polygon"]
        assert new["rules"][0]["type"] == "occupied_space"
        assert new["rules"][0]["dwell_s"] == 45
        assert "two_wheeler" in new["rules"][0]["classes"]
        assert new["rules"][0]["schedule"] == ["07:00-20:00"]
        history = zone_hub.get(f"/api/v1/edges/{EDGE}/config/versions").json()
        assert history[0]["comment"] == "no parking by the gate" and history[0]["author"] == INTEGRATOR
        assert history[0]["published_at"] is not None

        # ...and published: the edge's subscriber has it within seconds.
        assert arrived.wait(ARRIVAL_S), f"the edge did not receive the new zone; got {received}"
        assert received[-1][1] == 2
        assert not errors, errors
    finally:
        sync.stop()


def test_self_intersecting_polygon_is_refused_in_the_editor(
    browser: Browser, zone_hub: ZoneHub, shots: Path
) -> None:
    page, errors = open_console(browser, zone_hub)
    open_editor_for_cam1(page)
    page.click("#zones-new")
    click_at(page, [(0.55, 0.1), (0.95, 0.45), (0.95, 0.1), (0.55, 0.45)])  # a bow tie
    page.keyboard.press("Enter")
    expect(page.locator("#zones-list li")).to_have_count(2)
    page.click("#zones-save")
    problems = page.locator("#zones-problems")
    expect(problems).to_be_visible()
    expect(problems).to_contain_text("中心拒绝了该配置")
    expect(problems).to_contain_text("self-intersecting")
    page.screenshot(path=str(shots / "zone-editor-refused-1366x768.png"))
    assert zone_hub.get(f"/api/v1/edges/{EDGE}/config").json()["version"] == 1
    assert not errors, errors


def test_staff_see_the_review_queue_and_live_view_only(browser: Browser, zone_hub: ZoneHub) -> None:
    users = UserStore(zone_hub.db)
    users.create("sam", Role.STAFF)
    users.set_password("sam", "reviewing all day")
    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{zone_hub.url}/console/")
    page.fill("#login-username", "sam")
    page.fill("#login-password", "reviewing all day")
    page.click("#login-submit")
    expect(page.locator("#review")).to_be_visible()
    # Staff get the review queue and the live view; the integrators' views are not offered.
    expect(page.locator('#views-nav [data-view="wall"]')).to_be_visible()
    for name in ("fleet", "zones", "dryrun"):
        expect(page.locator(f'#views-nav [data-view="{name}"]')).to_be_hidden()
    expect(page.locator("#fleet")).to_be_hidden()
    expect(page.locator("#zones")).to_be_hidden()


def test_dragging_and_deleting_vertices_then_saving(browser: Browser, zone_hub: ZoneHub) -> None:
    page, errors = open_console(browser, zone_hub)
    open_editor_for_cam1(page)
    page.locator('#zones-list li[data-zone="kerb-a"] button').click()
    # kerb-a is [[0, .6], [.5, .6], [.5, 1], [0, 1]]: drag vertex 2 to (0.7, 0.5), delete vertex 4.
    vertex = page.locator('#zones-svg circle.vertex[data-ring="-1"][data-index="1"]')
    box = page.locator("#zones-svg").bounding_box()
    assert box is not None
    start = vertex.bounding_box()
    assert start is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.55 * box["height"], steps=5)
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.5 * box["height"], steps=5)
    page.mouse.up()
    page.locator('#zones-svg circle.vertex[data-ring="-1"][data-index="3"]').dispatch_event(
        "pointerdown", {"pointerId": 1, "isPrimary": True}
    )
    expect(page.locator("#zones-svg circle.vertex.selected")).to_have_count(1)
    page.keyboard.press("Delete")
    expect(page.locator('#zones-svg circle.vertex[data-ring="-1"]')).to_have_count(3)
    page.click("#zones-save")
    expect(page.locator("#zones-save")).to_have_attribute("data-saved-version", "2")
    zones = zone_hub.get(f"/api/v1/edges/{EDGE}/config/document").json()["document"]["cameras"][0]["zones"]
    polygon = zones[0]["polygon"]
    assert len(polygon) == 3
    assert polygon[0] == [0.0, 0.6]
    assert abs(polygon[1][0] - 0.7) < 0.01 and abs(polygon[1][1] - 0.5) < 0.01
    assert polygon[2] == [0.5, 1.0]
    assert not errors, errors


def test_an_edge_without_configuration_says_so(browser: Browser, zone_hub: ZoneHub) -> None:
    ingest_edge_status(zone_hub.db, "edge-08")
    page, errors = open_console(browser, zone_hub)
    page.click('#views-nav [data-view="zones"]')
    page.select_option("#zones-edge", "edge-08")
    message = page.locator("#zones-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("edge-08")
    expect(message).to_contain_text("/api/v1/edges/edge-08/config")
    expect(message).to_contain_text("Content-Type: application/yaml")
    expect(page.locator("#zones-body")).to_be_hidden()
    assert not errors, errors
