"""Hostile uploads on the real hub app: an edge's token is bound to its edge id, what is kept is
checked by content (not by three magic bytes), each edge has a storage quota, and a file the hub
already holds is answered before its body is read."""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.settings import HubSettings
from gridwarden.observability import HubMetrics
from tests.evidence.conftest import LiveHub, bearer
from tests.evidence.test_evidence_api import jpeg_bytes
from tests.hub.conftest import sqlite_template  # noqa: F401 - fixture
from tests.support.paths import CAR_CLIP

QUOTA = 30_000


@dataclass
class UploadHub:
    app: FastAPI
    store: EvidenceStore
    tokens: dict[str, str]  # user name -> token


@pytest.fixture
def uhub(tmp_path: Path, sqlite_template: Path) -> Iterator[UploadHub]:  # noqa: F811
    shutil.copyfile(sqlite_template, tmp_path / "hub.db")
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    users = UserStore(db)
    tokens = {name: users.create(name, Role.EDGE)[1] for name in ("edge-01", "edge-02")}
    tokens["admin"] = users.create("admin", Role.ADMIN)[1]
    settings = HubSettings(
        database_url=db.url, evidence_root=str(tmp_path / "evidence"), evidence_quota_bytes_per_edge=QUOTA
    )
    hub = build_hub(settings, db=db)
    try:
        yield UploadHub(app=hub.app, store=hub.evidence, tokens=tokens)
    finally:
        hub.stop()
        db.dispose()


def put_evidence(client: TestClient, token: str, data: bytes, content_type: str = "image/jpeg"):  # type: ignore[no-untyped-def]
    return client.put(
        f"/api/v1/evidence/{hashlib.sha256(data).hexdigest()}",
        content=data,
        headers={**bearer(token), "Content-Type": content_type},
    )


def put_snapshot(client: TestClient, token: str, edge: str, data: bytes):  # type: ignore[no-untyped-def]
    return client.put(
        f"/api/v1/cameras/{edge}/cam-1/snapshot",
        content=data,
        headers={**bearer(token), "Content-Type": "image/jpeg"},
    )


def refused(reason: str) -> float:
    text = generate_latest(HubMetrics().registry).decode()
    line = f'gridwarden_hub_uploads_refused_total{{reason="{reason}"}}'
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(line))


# ---- item 4: an edge's token acts for its own edge only


def test_an_edge_replaces_only_its_own_snapshots(uhub: UploadHub) -> None:
    picture = jpeg_bytes(seed=1)
    with TestClient(uhub.app) as client:
        assert put_snapshot(client, uhub.tokens["edge-02"], "edge-02", picture).status_code == 200
        before = refused("wrong_edge")
        for target in ("edge-02", "made-up-edge"):
            forged = put_snapshot(client, uhub.tokens["edge-01"], target, jpeg_bytes(seed=2))
            assert forged.status_code == 403, forged.text
            assert forged.json()["detail"]["error"] == "wrong_edge"
        assert refused("wrong_edge") == before + 2
        assert (uhub.store.root / "camera-snapshots" / "edge-02" / "cam-1.jpg").read_bytes() == picture
        assert not (uhub.store.root / "camera-snapshots" / "made-up-edge").exists()
        assert put_snapshot(client, uhub.tokens["edge-01"], "edge-01", picture).status_code == 200
        # An admin may act for any edge (e.g. to restore a picture by hand).
        assert put_snapshot(client, uhub.tokens["admin"], "edge-02", picture).status_code == 200


# ---- item 5: content, size, quota, already-stored ids

FAKE_JPEGS = {
    "magic_and_zeros": b"\xff\xd8\xff" + b"\x00" * 200_000,
    "html_behind_soi": b"\xff\xd8<html>alert(1)</html>",
    "bomb_header": b"\xff\xd8\xff\xc0\x00\x0b\x08\xff\xff\xff\xff\x01\x01\x11\x00\xff\xd9",
    "truncated": jpeg_bytes(5000, seed=3)[:-700],
}


@pytest.mark.parametrize("name", sorted(FAKE_JPEGS))
def test_evidence_that_only_looks_like_a_jpeg_is_refused(uhub: UploadHub, name: str) -> None:
    data = FAKE_JPEGS[name]
    with TestClient(uhub.app) as client:
        response = put_evidence(client, uhub.tokens["admin"], data)  # no quota in the way
        assert response.status_code in (415, 422), response.text
        assert not uhub.store.exists(hashlib.sha256(data).hexdigest())
        snap = put_snapshot(client, uhub.tokens["edge-01"], "edge-01", data)
        assert snap.status_code == 422, snap.text
        assert not (uhub.store.root / "camera-snapshots" / "edge-01" / "cam-1.jpg").exists()


def test_evidence_that_only_looks_like_an_mp4_is_refused(uhub: UploadHub) -> None:
    fake = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 4000
    with TestClient(uhub.app) as client:
        response = put_evidence(client, uhub.tokens["admin"], fake, "video/mp4")
        assert response.status_code == 422 and response.json()["detail"]["error"] == "invalid_media"
        real = CAR_CLIP.read_bytes()[: 1024 * 1024]
        assert put_evidence(client, uhub.tokens["admin"], real, "video/mp4").status_code == 201


def test_snapshot_size_is_capped_from_the_header(uhub: UploadHub) -> None:
    with TestClient(uhub.app) as client:
        response = put_snapshot(client, uhub.tokens["edge-01"], "edge-01", jpeg_bytes(8 * 1024 * 1024 + 10))
        assert response.status_code == 413
        # A JPEG is capped at 8 MiB as evidence too, well below the clip limit.
        big = put_evidence(client, uhub.tokens["edge-01"], jpeg_bytes(8 * 1024 * 1024 + 10))
        assert big.status_code == 413 and big.json()["detail"]["limit"] == 8 * 1024 * 1024


def test_each_edge_has_a_storage_quota(uhub: UploadHub) -> None:
    before = refused("quota_exceeded")
    with TestClient(uhub.app) as client:
        for seed in range(3):
            assert (
                put_evidence(client, uhub.tokens["edge-01"], jpeg_bytes(10_000, seed=seed)).status_code == 201
            )
        over = put_evidence(client, uhub.tokens["edge-01"], jpeg_bytes(10_000, seed=99))
        assert over.status_code == 507, over.text
        assert over.json()["detail"]["error"] == "quota_exceeded"
        # Another edge is not affected, and a file already stored costs nothing.
        assert put_evidence(client, uhub.tokens["edge-02"], jpeg_bytes(10_000, seed=50)).status_code == 201
        assert put_evidence(client, uhub.tokens["edge-01"], jpeg_bytes(10_000, seed=0)).status_code == 200
    assert uhub.store.usage("edge-01") == 30_000
    assert refused("quota_exceeded") == before + 1
    # Retention frees quota: pruning the files gives the edge its room back.
    uhub.store.retention = type(uhub.store.retention)(max_age_days=None, max_total_bytes=1)
    uhub.store.prune()
    assert uhub.store.usage("edge-01") == 0


def test_an_already_stored_id_is_answered_before_the_body_is_sent(uhub: UploadHub) -> None:
    """Headers announcing 50 MB and no body at all: the 200 must come anyway (the hub does not wait
    for, read or hash a body it does not need)."""
    data = jpeg_bytes(seed=7)
    digest = hashlib.sha256(data).hexdigest()
    server = LiveHub(uhub.app)
    server.start()
    try:
        with TestClient(uhub.app) as client:
            assert put_evidence(client, uhub.tokens["edge-01"], data).status_code == 201
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                (
                    f"PUT /api/v1/evidence/{digest} HTTP/1.1\r\nHost: hub\r\n"
                    f"Authorization: Bearer {uhub.tokens['edge-01']}\r\nContent-Type: image/jpeg\r\n"
                    "Content-Length: 50000000\r\n\r\n"
                ).encode()
            )
            started = time.monotonic()
            head = sock.recv(4096).decode(errors="replace")
            while '"created"' not in head:
                head += sock.recv(4096).decode(errors="replace")
        assert head.startswith("HTTP/1.1 200"), head
        assert time.monotonic() - started < 5
        assert '"created":false' in head
    finally:
        server.stop()
