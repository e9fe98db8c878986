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

from gridwarden.hub.api.config_documents import build_config_documents_router
from gridwarden.hub.api.console import install_console
from gridwarden.hub.api.dry_run import build_dry_run_router
from gridwarden.hub.app import create_app
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.config_store import ConfigStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.dry_run import DryRunService
from gridwarden.hub.evidence_store import EvidenceStore
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
    database = Database.open(url)
    evidence = EvidenceStore(tmp_path / "evidence")
    app = create_app(HubSettings(database_url=url), db=database)
    install_console(app, evidence=evidence)
    app.include_router(build_config_documents_router())
    service = DryRunService(tmp_path / "dry-runs", model_dir=tmp_path / "models")
    app.include_router(build_dry_run_router(service, evidence))
    users = UserStore(database)
    _, token = users.create(INTEGRATOR, Role.INTEGRATOR)
    users.set_password(INTEGRATOR, INTEGRATOR_PASSWORD)
    ingest_edge_status(database, EDGE)  # the fleet knows the edge from its status topic
    ConfigStore(database).put(EDGE, parking_yaml(), author="test", comment="in force")
    port = free_port()
    server, thread = serve(app, port)
    try:
        yield DryRunHub(f"http://127.0.0.1:{port}", database, token)
    finally:
        stop(server, thread, database)
        service.close()


@pytest.fixture
def browser(dry_run_hub: DryRunHub) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
