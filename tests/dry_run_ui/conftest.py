"""Fixtures for the dry-run view: a real hub (uvicorn, SQLite) with the console, the
configuration-document routes and the dry-run router on a real worker thread, the parked-car
configuration in force, an integrator with a password, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.config_store import ConfigStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.settings import HubSettings
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, serve, stop
from tests.dry_run.conftest import EDGE, parked_car, parking_yaml  # noqa: F401 - fixture
from tests.support.ports import free_port
from tests.zone_editor.conftest import ingest_edge_status, shots  # noqa: F401 - fixture

INTEGRATOR = "ivy"
INTEGRATOR_PASSWORD = "try it before it goes live"


@dataclass
class DryRunHub:
    url: str
    db: Database
    integrator_token: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.url + path, headers={"Authorization": f"Bearer {self.integrator_token}"}, timeout=10
        )


@pytest.fixture
def dry_run_hub(tmp_path: Path) -> Iterator[DryRunHub]:
    """The parked-car configuration (zone ``no-parking``, dwell 10 s) is version 1 in force."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    built = build_hub(
        HubSettings(
            database_url=url, evidence_root=str(tmp_path / "evidence"), model_dir=str(tmp_path / "models")
        )
    )
    database = built.db
    users = UserStore(database)
    _, token = users.create(INTEGRATOR, Role.INTEGRATOR)
    users.set_password(INTEGRATOR, INTEGRATOR_PASSWORD)
    ingest_edge_status(database, EDGE)  # the fleet knows the edge from its status topic
    ConfigStore(database).put(EDGE, parking_yaml(), author="test", comment="in force")
    port = free_port()
    server, thread = serve(built.app, port)
    try:
        yield DryRunHub(f"http://127.0.0.1:{port}", database, token)
    finally:
        stop(server, thread, built)


@pytest.fixture
def browser(dry_run_hub: DryRunHub) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
