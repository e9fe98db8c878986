"""An edge with a hub section registers the configuration it runs: the hub stores it as version 1
(relative paths resolved, as the edge runs them) and the console's editor has something to edit.
Real hub (uvicorn), real HTTP, the edge's own loader."""

from __future__ import annotations

from pathlib import Path

import yaml

from gridwarden.edge.config import load_edge_config, load_edge_config_text
from gridwarden.edge.transport.config_register import RunningConfigRegistrar
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.config_store import ConfigStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.settings import HubSettings
from tests.config_sync.conftest import EDGE
from tests.console.conftest import serve
from tests.support.ports import free_port


def test_edge_registers_its_running_config_as_version_1(db: Database, tmp_path: Path) -> None:
    hub = build_hub(HubSettings(database_url=db.url, evidence_root=str(tmp_path / "evidence")), db=db)
    port = free_port()
    server, thread = serve(hub.app, port)
    try:
        _, edge_token = UserStore(db).create("edge-07-box", Role.EDGE)
        (tmp_path / "token").write_text(edge_token)
        (tmp_path / "scene.mp4").write_bytes(b"")
        (tmp_path / "edge.yaml").write_text(
            f"edge_id: {EDGE}\nsite: north\n"
            f"hub: {{url: 'http://127.0.0.1:{port}', token_file: token}}\n"
            "cameras:\n  - id: street-01\n    url: scene.mp4\n    zones:\n"
            "      - id: pavement\n        polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]\n"
            "        rules: [{type: static_object, dwell_s: 20}]\n"
        )
        config = load_edge_config(tmp_path / "edge.yaml")
        registrar = RunningConfigRegistrar(config, edge_token)
        assert registrar.register_once()
        assert registrar.result == {"edge_id": EDGE, "registered": True, "version": 1, "published": False}
        stored = ConfigStore(db).current(EDGE)
        assert stored.version == 1 and stored.author == "edge-07-box"
        again = load_edge_config_text(stored.yaml)
        assert again.cameras[0].url == str(tmp_path / "scene.mp4")  # resolved, as the edge runs it
        assert again.cameras[0].zones[0].rules[0].type == "static_object"
        # Defaults stay implicit: the stored text holds what the file said.
        assert "tracker" not in yaml.safe_load(stored.yaml)
        # A second start finds the hub's version and leaves it.
        assert registrar.register_once() and registrar.result["registered"] is False
        assert len(ConfigStore(db).history(EDGE)) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        hub.stop()
