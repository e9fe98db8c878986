"""Fixtures for the evidence tests: real footage demuxed into buffered packets, and the real hub
app (SQLite, real users and tokens) with the evidence router, in-process or on a real uvicorn."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gridwarden.edge.capture.evidence import BufferedPacket, PacketClock, StreamInfo
from gridwarden.hub.app import build_hub
from gridwarden.hub.auth import Role, UserStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.settings import HubSettings
from tests.hub.conftest import sqlite_template  # noqa: F401 - fixture
from tests.support.paths import CAR_CLIP
from tests.support.ports import free_port, wait_for_port


@dataclass(frozen=True)
class DemuxedClip:
    path: Path
    info: StreamInfo
    packets: list[BufferedPacket]

    @property
    def keyframe_times(self) -> list[float]:
        return [p.media_time for p in self.packets if p.is_keyframe]

    @property
    def gop_s(self) -> float:
        times = self.keyframe_times
        return max(b - a for a, b in zip(times, times[1:], strict=False))


def demux(path: Path) -> DemuxedClip:
    """Every video packet of ``path`` as the camera hook would buffer it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = StreamInfo(stream)
        clock = PacketClock()
        packets = [
            BufferedPacket.from_av(p, clock.media_time(p)) for p in container.demux(stream) if p.size > 0
        ]
    return DemuxedClip(path=path, info=info, packets=packets)


@pytest.fixture(scope="session")
def car() -> DemuxedClip:
    return demux(CAR_CLIP)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Hub:
    app: FastAPI
    store: EvidenceStore
    tokens: dict[str, str]  # role -> token


@pytest.fixture
def hub(tmp_path: Path, sqlite_template: Path) -> Iterator[Hub]:  # noqa: F811
    """The real hub app on a fresh SQLite copy with the evidence router, a store and a user per role."""
    db_path = tmp_path / "hub.db"
    shutil.copyfile(sqlite_template, db_path)
    db = Database(f"sqlite:///{db_path}")
    users = UserStore(db)
    tokens = {role.value: users.create(f"{role.value}-user", role)[1] for role in Role}
    settings = HubSettings(
        database_url=db.url,
        evidence_root=str(tmp_path / "evidence"),
        evidence_max_upload_bytes=2 * 1024 * 1024,
    )
    built = build_hub(settings, db=db)
    try:
        yield Hub(app=built.app, store=built.evidence, tokens=tokens)
    finally:
        built.stop()
        db.dispose()


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with TestClient(hub.app) as c:
        yield c


class LiveHub:
    """The hub app on a real uvicorn server on a fixed free port; stop() and start() again."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_port(self.port, timeout=10)
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive(), "uvicorn did not stop"
        self._server = self._thread = None


@pytest.fixture
def live_hub(hub: Hub) -> Iterator[LiveHub]:
    server = LiveHub(hub.app)
    server.start()
    try:
        yield server
    finally:
        server.stop()
