"""Configuration of evidence on both sides: the edge's ``evidence``/``hub`` sections, the hub's
evidence settings, and the hub's retention thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gridwarden.edge.config import load_edge_config
from gridwarden.edge.service import build_evidence_uploader
from gridwarden.hub.app import build_evidence_store
from gridwarden.hub.evidence_retention import EvidencePruner
from gridwarden.hub.settings import HubSettings
from gridwarden.yamlconfig import ConfigError

BASE = """\
edge_id: edge-01
data_dir: {data_dir}
cameras:
  - id: cam-01
    url: rtsp://192.0.2.10/stream
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "conf" / "edge.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(BASE.format(data_dir=tmp_path / "data") + extra)
    return path


def test_sections_are_optional_and_evidence_is_off_by_default(tmp_path: Path) -> None:
    cfg = load_edge_config(write(tmp_path, ""))
    assert cfg.evidence is None and cfg.hub is None and not cfg.evidence_enabled
    assert build_evidence_uploader(cfg) is None


def test_evidence_and_hub_sections_with_defaults_and_a_token_file_beside_the_config(tmp_path: Path) -> None:
    path = write(
        tmp_path, "evidence: {enabled: true}\nhub: {url: 'http://127.0.0.1:9', token_file: edge-token}\n"
    )
    (path.parent / "edge-token").write_text("gw_secret\n")
    cfg = load_edge_config(path)
    assert cfg.evidence_enabled and (cfg.evidence.pre_roll_s, cfg.evidence.post_roll_s) == (10.0, 10.0)  # type: ignore[union-attr]
    assert cfg.evidence_dir() == tmp_path / "data" / "evidence"
    assert cfg.hub is not None and cfg.hub.token_file == str(path.parent / "edge-token")
    assert cfg.hub.read_token() == "gw_secret"
    uploader = build_evidence_uploader(cfg)
    assert uploader is not None
    try:
        assert uploader.spool_dir == tmp_path / "data" / "evidence-spool"
        assert uploader.max_spool_bytes == 2_000_000_000
    finally:
        uploader.close()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("hub: {url: 'ftp://hub', token_file: t}\n", "hub.url"),
        ("hub: {url: 'http://hub', token: gw_inline}\n", "hub.token"),  # never inline
        ("evidence: {enabled: true, pre_roll_s: -1}\n", "evidence.pre_roll_s"),
        ("evidence: {enabled: true, colour: red}\n", "evidence.colour"),
    ],
)
def test_bad_sections_are_refused_naming_the_field(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_edge_config(write(tmp_path, extra))
    assert problem in str(caught.value)


def test_a_missing_or_empty_token_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "evidence: {enabled: true}\nhub: {url: 'http://hub', token_file: nope}\n")
    cfg = load_edge_config(path)
    with pytest.raises(ValueError, match=r"hub.token_file .*nope: cannot read it"):
        build_evidence_uploader(cfg)
    (path.parent / "nope").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        build_evidence_uploader(cfg)


def test_hub_evidence_root_defaults_beside_a_sqlite_database() -> None:
    assert HubSettings(database_url="sqlite:////srv/hub/hub.db").resolved_evidence_root() == Path(
        "/srv/hub/evidence"
    )
    assert HubSettings(database_url="postgresql+psycopg://x@h/db").resolved_evidence_root() == Path(
        "var/hub/evidence"
    )
    explicit = HubSettings(database_url="sqlite:////srv/hub/hub.db", evidence_root="/data/ev")
    assert explicit.resolved_evidence_root() == Path("/data/ev")
    env = HubSettings.from_env(
        {"GRIDWARDEN_HUB_EVIDENCE_RETENTION_DAYS": "", "GRIDWARDEN_HUB_EVIDENCE_MAX_TOTAL_BYTES": "5000"}
    )
    assert env.evidence_retention_days is None and env.evidence_max_total_bytes == 5000


def test_pruner_applies_retention_at_start(tmp_path: Path) -> None:
    settings = HubSettings(database_url=f"sqlite:///{tmp_path / 'hub.db'}", evidence_retention_days=1)
    store = build_evidence_store(settings)
    assert store.root == (tmp_path / "evidence").resolve()
    old, new = "a" * 64, "b" * 64
    for sha in (old, new):
        path = store.path_for(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff" + sha.encode())
    two_days_ago = time.time() - 2 * 86400
    os.utime(store.path_for(old), (two_days_ago, two_days_ago))
    pruner = EvidencePruner(store, interval_s=3600)
    pruner.start()
    try:
        deadline = time.monotonic() + 10
        while pruner.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pruner.stop()
    assert pruner.runs == 1
    assert not store.exists(old) and store.exists(new)
