"""The dry-run view in a real browser against a real hub: an integrator draws a second zone in
the zone editor, sends the unsaved document to a dry run on the parked-car clip, watches it
finish, and sees both lanes of the timeline, the diff the hub computed and the annotated videos.

Screenshots (1366x768) go to ``$GRIDWARDEN_CONSOLE_SCREENSHOTS`` when set, else to tmp_path.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from gridwarden.contract import EvidenceRef, utcnow
from gridwarden.hub.config_store import ConfigStore
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.ingest import ingest_payload
from tests.dry_run.conftest import CAMERA, DWELL_S, EDGE
from tests.dry_run_ui.conftest import INTEGRATOR, INTEGRATOR_PASSWORD, DryRunHub
from tests.hub.factories import incident_event, topic_of, wire
from tests.support.paths import CAR_CLIP
from tests.support.scenarios import ParkedCarScenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LAPTOP = {"width": 1366, "height": 768}
# Over the kerb where the car stops (PARKING_ZONE is x 0.25-0.70, y 0.62-0.99).
KERB_WEST = [(0.26, 0.63), (0.69, 0.63), (0.69, 0.98), (0.26, 0.98)]
CANDIDATE_DWELL_S = 5


def test_dry_run_of_the_zone_editors_candidate_on_an_uploaded_clip(
    browser: Browser, dry_run_hub: DryRunHub, parked_car: ParkedCarScenario, shots: Path
) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport=LAPTOP)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{dry_run_hub.url}/console/")
    page.fill("#login-username", INTEGRATOR)
    page.fill("#login-password", INTEGRATOR_PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#views-nav")).to_be_visible()

    # Zone editor: a second zone on the kerb, illegal parking of overhead vehicles after 5 s.
    page.click('#views-nav [data-view="zones"]')
    expect(page.locator('#zones-list li[data-zone="no-parking"]')).to_be_visible()
    page.click("#zones-new")
    box = page.locator("#zones-svg").bounding_box()
    assert box is not None
    for x, y in [*KERB_WEST, KERB_WEST[0]]:
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
    expect(page.locator("#zones-list li")).to_have_count(2)
    page.fill("#zone-id", "kerb-west")
    page.locator("#zone-id").press("Tab")
    rule = page.locator('#zone-rules fieldset[data-rule="0"]')
    rule.locator('input[name="dwell_s"]').fill(str(CANDIDATE_DWELL_S))
    rule.locator('input[name="dwell_s"]').press("Tab")
    rule = page.locator('#zone-rules fieldset[data-rule="0"]')
    rule.locator('input[type="checkbox"][value="overhead_vehicle"]').check()
    rule = page.locator('#zone-rules fieldset[data-rule="0"]')
    if rule.locator('input[type="checkbox"][value="vehicle"]').is_checked():
        rule.locator('input[type="checkbox"][value="vehicle"]').uncheck()

    # "Dry run" takes the unsaved document to the dry-run view as the candidate.
    page.click("#zones-dryrun")
    expect(page.locator("#dryrun")).to_be_visible()
    expect(page.locator("#zones")).to_be_hidden()
    expect(page.locator("#dryrun-candidate")).to_contain_text(EDGE)
    expect(page.locator("#dryrun-camera")).to_have_value(CAMERA)
    page.set_input_files("#dryrun-file", str(parked_car.path))
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/dry-runs")) as posted:
        page.click("#dryrun-start")
    assert posted.value.status == 202, posted.value.text()
    expect(page.locator("#dryrun-progress")).to_be_visible()
    expect(page.locator("#dryrun-status")).to_have_attribute("data-kind", "ok", timeout=120_000)
    expect(page.locator(".dryrun-clip")).to_have_count(1)

    # The hub's own result for this run: the page must show exactly that.
    result = dry_run_hub.get(posted.value.json()["url"]).json()
    assert result["status"] == "done", result
    (clip,) = result["result"]["clips"]
    diff = clip["diff"]
    # The candidate keeps no-parking and adds kerb-west, which fires 5 s earlier than dwell 10.
    assert [i["zone"] for i in clip["current"]["incidents"]] == ["no-parking"]
    assert {i["zone"] for i in clip["candidate"]["incidents"]} == {"no-parking", "kerb-west"}
    assert [i["zone"] for i in diff["only_candidate"]] == ["kerb-west"]
    assert diff["only_current"] == []
    assert [p["candidate"]["zone"] for p in diff["both"]] == ["no-parking"]
    assert abs(diff["both"][0]["current"]["start"] - parked_car.expected_start(DWELL_S)) <= 2.0

    # Timeline: one bar per incident in each lane, labelled with its zone.
    for lane in ("candidate", "current"):
        bars = page.locator(f'.incident-bar[data-lane="{lane}"]')
        zones = sorted(i["zone"] for i in clip[lane]["incidents"])
        expect(bars).to_have_count(len(zones))
        assert sorted(bars.evaluate_all("bs => bs.map(b => b.dataset.zone)")) == zones
    only = page.locator('.diff-group[data-diff="only_candidate"] li')
    expect(only).to_have_count(1)
    expect(only).to_have_attribute("data-zone", "kerb-west")
    expect(page.locator('.diff-group[data-diff="only_current"] li')).to_have_count(0)
    expect(page.locator('.diff-group[data-diff="both"] li')).to_have_attribute("data-zone", "no-parking")

    # Both annotated videos load through signed URLs (no header) and report their duration.
    for lane in ("candidate", "current"):
        video = page.locator(f'video.dryrun-video[data-lane="{lane}"]')
        page.wait_for_function("v => v.duration > 0", arg=video.element_handle(), timeout=20_000)
        src = video.get_attribute("src")
        assert src and "ticket=" in src
        ranged = httpx.get(dry_run_hub.url + src, headers={"Range": "bytes=0-99"}, timeout=10)
        assert ranged.status_code == 206 and len(ranged.content) == 100  # seeking works
        assert httpx.get(dry_run_hub.url + src.split("?")[0], timeout=10).status_code == 401
        assert httpx.get(dry_run_hub.url + src + "x", timeout=10).status_code == 401
    # Clicking the candidate-only bar seeks both videos to that incident's start.
    start = diff["only_candidate"][0]["start"]
    page.locator('.incident-bar[data-lane="candidate"][data-zone="kerb-west"]').click()
    times = page.locator("video.dryrun-video").evaluate_all("vs => vs.map(v => v.currentTime)")
    assert all(abs(t - start) < 0.6 for t in times), (times, start)
    page.screenshot(path=str(shots / "dry-run-1366x768.png"))
    assert not errors, errors


def test_recent_evidence_clips_are_labelled_and_silence_is_explained(
    browser: Browser, dry_run_hub: DryRunHub, tmp_path: Path
) -> None:
    """Two recent clips asked for, one stored: the page says so; the clip is labelled with camera,
    time and case; both lanes silent on an edge without a detector: the page says why."""
    no_model = (
        f"edge_id: {EDGE}\nsite: test\ncameras:\n  - id: {CAMERA}\n    url: rtsp://10.0.0.9/stream\n"
        "    zones:\n      - id: pavement\n        polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]]\n"
        "        rules: [{type: static_object, dwell_s: 600}]\n"
    )
    ConfigStore(dry_run_hub.db).put(EDGE, no_model, author="test", comment="no detector")
    data = CAR_CLIP.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with EvidenceStore(tmp_path / "evidence").begin_upload(sha, "video/mp4", len(data)) as up:
        up.write(data)
        up.finish()
    event = incident_event(
        seq=1, incident_id="dry-ui-1", edge_id=EDGE, site="test", camera=CAMERA, zone="pavement",
        started=utcnow() - timedelta(minutes=3),
    ).model_copy(update={"evidence": [EvidenceRef(kind="clip", sha256=sha, size=len(data), content_type="video/mp4")]})  # fmt: skip
    with dry_run_hub.db.write_session() as session, session.begin():
        case_id = ingest_payload(session, topic_of(event), wire(event), now=utcnow()).case_id
    errors: list[str] = []
    page = browser.new_page(viewport=LAPTOP)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{dry_run_hub.url}/console/")
    page.click('[data-set-lang="en"]')
    page.fill("#login-username", INTEGRATOR)
    page.fill("#login-password", INTEGRATOR_PASSWORD)
    page.click("#login-submit")
    page.click('#views-nav [data-view="dryrun"]')
    expect(page.locator("#dryrun-camera")).to_have_value(CAMERA)
    page.check("#dryrun-source-recent")
    page.fill("#dryrun-recent-n", "2")
    page.click("#dryrun-start")
    expect(page.locator("#dryrun-status")).to_have_attribute("data-kind", "ok", timeout=120_000)
    title = page.locator(".dryrun-clip h3")
    expect(title).to_contain_text(CAMERA)
    expect(title).to_contain_text(f"case #{case_id}")
    expect(page.locator('[data-notice="fewer_clips"]')).to_contain_text("2 clip(s) asked for, but only 1")
    expect(page.locator('[data-notice="no_detector"]')).to_be_visible()
    assert not errors, errors
    page.close()
