"""The integrator's loop in real processes and a real browser: in the console's zone editor, on
the camera's own snapshot, draw a polygon around where a car stands and save; the running
`gridwarden edge run` picks the new configuration up within 5 s and its next incident carries
the new zone id (the only zone before the change is elsewhere, so no incident came before)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from gridwarden.hub.auth import UserStore
from gridwarden.hub.db.engine import Database
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT, YOLOX_NANO
from tests.support.ports import free_port
from tests.support.processes import is_healthy, terminate
from tests.support.rtsp_server import RtspServer
from tests.support.scenarios import PARKING_ZONE, build_parked_car_clip
from tests.support.waiting import wait_until

DECOY_ZONE = [[0.02, 0.02], [0.20, 0.02], [0.20, 0.20], [0.02, 0.20]]


def edge_yaml(tmp_path: Path, port: int, url: str, hub_url: str, token_file: Path) -> str:
    return f"""\
edge_id: edge-ui
site: test
data_dir: {tmp_path / "edge-data"}
model: {{path: {YOLOX_NANO}, input_size: 416}}
class_groups: {{overhead_vehicle: [car, bus, truck, cell phone]}}
mqtt: {{host: 127.0.0.1, port: {port}}}
hub: {{url: "{hub_url}", token_file: {token_file}}}
cameras:
  - id: cam-lot
    url: {url}
    zones:
      - id: decoy
        polygon: {DECOY_ZONE}
        rules:
          - {{type: illegal_parking, classes: [overhead_vehicle], dwell_s: 10, end_grace_s: 1}}
"""


@pytest.mark.slow
def test_zone_drawn_in_the_editor_names_the_running_edges_next_incident(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    # The car stands still from 6 s to 66 s of the clip: time enough to draw and save.
    scenario = build_parked_car_clip(tmp_path / "parked-60s.mp4", hold_s=60.0, last_frame=110)
    camera = RtspServer({"lot": scenario.path}, loop=1, log_dir=tmp_path)
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database.open(db_url)
    users = UserStore(db)
    _, api_token = users.create("ivan", "integrator")
    users.set_password("ivan", "tuning zones all day")
    _, edge_token = users.create("edge-ui", "edge")  # named like its edge_id
    db.dispose()
    token_file = tmp_path / "edge-token"
    token_file.write_text(edge_token + "\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {api_token}"}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    hub_log, edge_log = tmp_path / "hub.log", tmp_path / "edge.log"
    with open(hub_log, "wb") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url, "--mqtt-host", "127.0.0.1",
             "--mqtt-port", str(mosquitto_broker.port), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    edge = None
    try:
        wait_until(lambda: hub.poll() is None and is_healthy(base), 30, "hub health")
        camera.start()
        text = edge_yaml(tmp_path, mosquitto_broker.port, camera.url("lot"), base, token_file)
        registered = httpx.put(f"{base}/api/v1/edges/edge-ui/config", headers=headers, timeout=10,
                               json={"yaml": text, "comment": "register"})  # fmt: skip
        assert registered.status_code == 200, registered.text
        config = tmp_path / "edge.yaml"
        config.write_text(text)
        with open(edge_log, "wb") as out:
            edge = subprocess.Popen(
                [sys.executable, "-m", "gridwarden.cli", "edge", "run", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        snapshot_url = f"{base}/api/v1/cameras/edge-ui/cam-lot/snapshot"
        wait_until(
            lambda: httpx.get(snapshot_url, headers=headers, timeout=5).status_code == 200, 30, "snapshot"
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.goto(f"{base}/console/")
                page.fill("#login-username", "ivan")
                page.fill("#login-password", "tuning zones all day")
                page.click("#login-submit")
                page.click('#views-nav [data-view="fleet"]')
                page.locator('tr.camera-row[data-camera-id="cam-lot"] button').click()
                expect(page.locator("#zones-stage")).not_to_have_class("stage no-snapshot")
                expect(page.locator('#zones-list li[data-zone="decoy"]')).to_be_visible()
                page.click("#zones-new")
                box = page.locator("#zones-svg").bounding_box()
                assert box is not None
                for x, y in [*PARKING_ZONE, PARKING_ZONE[0]]:
                    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
                expect(page.locator("#zones-list li")).to_have_count(2)
                page.fill("#zone-id", "drawn-zone")
                page.locator("#zone-id").press("Tab")
                rule = page.locator('#zone-rules fieldset[data-rule="0"]')
                rule.locator('input[name="dwell_s"]').fill("10")
                rule.locator('input[name="dwell_s"]').press("Tab")
                rule = page.locator('#zone-rules fieldset[data-rule="0"]')
                rule.locator('input[type="checkbox"][value="overhead_vehicle"]').check()
                page.fill("#zones-comment", "no parking where cars stop")
                page.click("#zones-save")
                expect(page.locator("#zones-save")).to_have_attribute("data-saved-version", "2")
                saved_at = time.monotonic()
            finally:
                browser.close()

        def edge_runs_version_2() -> bool:
            assert edge is not None and edge.poll() is None, edge_log.read_text()[-3000:]
            edges = httpx.get(f"{base}/api/v1/edges", headers=headers, timeout=5).json()
            return any(e["edge_id"] == "edge-ui" and e.get("config_version") == "2" for e in edges)

        wait_until(edge_runs_version_2, 5, "the running edge to apply version 2")
        assert time.monotonic() - saved_at <= 5.0

        def first_case() -> dict | None:  # type: ignore[type-arg]
            items = httpx.get(f"{base}/api/v1/cases", headers=headers, timeout=5).json()["items"]
            return items[0] if items else None

        case = wait_until(first_case, 60, "the parked car's case")
        assert case["zone"] == "drawn-zone", case
    finally:
        terminate(edge, hub)
        camera.stop()
