"""The uploader against the real hub app on a real uvicorn: outages, restarts, caps, refusals."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from gridwarden.edge.capture.evidence import ClipRecorder, EvidenceFile, EvidenceUploader, PacketRingBuffer
from tests.evidence.conftest import DemuxedClip, Hub, LiveHub
from tests.evidence.test_evidence_api import jpeg_bytes


class CountPuts:
    """ASGI middleware counting the hub's answers to evidence PUTs, per (sha256, status)."""

    def __init__(self, app: ASGIApp, counts: Counter[tuple[str, int]]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PUT":
            return await self.app(scope, receive, send)

        async def counting_send(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                self.counts[(scope["path"].rsplit("/", 1)[-1], message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


@pytest.fixture
def put_counts(hub: Hub) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    hub.app.add_middleware(CountPuts, counts=counts)
    return counts


def make_jpeg(folder: Path, seed: int, size: int = 5000) -> EvidenceFile:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"snap-{seed}.jpg"
    path.write_bytes(jpeg_bytes(size, seed=seed))
    return EvidenceFile.from_path(path, "snapshot", media_start=float(seed), media_end=float(seed))


def make_clip(car: DemuxedClip, folder: Path) -> EvidenceFile:
    recorder = ClipRecorder(PacketRingBuffer(10.0), car.info, folder, pre_roll_s=4.0, post_roll_s=4.0)
    for packet in car.packets:
        if packet.media_time == 8.0:
            recorder.start_clip("clip-1", 8.0)
        for finished in recorder.on_packet(packet):
            return finished.file
    raise AssertionError("no clip")


def wait_for(condition, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def uploader(spool: Path, hub_url: str, token: str, **kw: object) -> EvidenceUploader:
    return EvidenceUploader(
        spool_dir=spool, hub_url=hub_url, token=token, backoff_initial_s=0.05, backoff_max_s=0.4, **kw
    )


@pytest.mark.timeout(60)
def test_files_wait_out_a_hub_outage_and_a_restart_and_arrive_once(
    hub: Hub, put_counts: Counter[tuple[str, int]], live_hub: LiveHub, car: DemuxedClip, tmp_path: Path
) -> None:
    live_hub.stop()  # the hub is down
    spool = tmp_path / "spool"
    files = [make_jpeg(tmp_path / "out", seed) for seed in range(3)] + [make_clip(car, tmp_path / "out")]
    expected = {f.sha256: f.path.read_bytes() for f in files}

    first = uploader(spool, live_hub.url, hub.tokens["edge"])
    first.start()
    spooled = [first.enqueue(f) for f in files]
    assert all(not f.path.exists() for f in files), "the spool takes the files over"
    assert all(s.path.parent == spool / "files" for s in spooled)
    assert wait_for(lambda: first.last_error is not None)  # attempts fail while the hub is down
    time.sleep(0.5)  # and keep failing, with backoff
    assert first.pending() == 4
    first.close()  # the edge restarts while the hub is still down

    second = uploader(spool, live_hub.url, hub.tokens["edge"])
    assert second.pending() == 4
    second.start()
    time.sleep(0.3)
    live_hub.start()  # the hub comes back
    assert second.wait_until_empty(timeout=30), f"still pending: {second.pending()} ({second.last_error})"
    assert second.dropped() == 0 and second.rejected() == 0
    second.close()

    for digest, data in expected.items():
        stored = hub.store.stat(digest)
        assert stored is not None and stored.path.read_bytes() == data
        assert put_counts[(digest, 201)] == 1  # arrived exactly once
    assert stored is not None and stored.content_type == "video/mp4"
    assert sum(put_counts.values()) == 4
    assert list((spool / "files").iterdir()) == []


def test_spool_cap_drops_the_oldest_and_counts(hub: Hub, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    up = uploader(spool, "http://127.0.0.1:9", hub.tokens["edge"], max_spool_bytes=12_000)
    files = [make_jpeg(tmp_path / "out", seed) for seed in range(5)]  # 5000 bytes each
    for f in files:
        up.enqueue(f)
    assert up.pending() == 2 and up.dropped() == 3
    assert up.pending_bytes() == 10_000
    on_disk = sorted(p.name for p in (spool / "files").iterdir())
    assert on_disk == sorted(f"{f.sha256}.jpg" for f in files[3:])  # the newest two
    up.close()
    again = uploader(spool, "http://127.0.0.1:9", hub.tokens["edge"], max_spool_bytes=12_000)
    assert again.dropped() == 3 and again.pending() == 2  # counters and queue survive a restart
    again.close()


def test_same_content_is_queued_once(hub: Hub, tmp_path: Path) -> None:
    up = uploader(tmp_path / "spool", "http://127.0.0.1:9", hub.tokens["edge"])
    up.enqueue(make_jpeg(tmp_path / "a", seed=1))
    duplicate = make_jpeg(tmp_path / "b", seed=1)
    up.enqueue(duplicate)
    assert up.pending() == 1 and not duplicate.path.exists()
    up.close()


def test_a_spooled_file_missing_from_the_index_is_recovered(hub: Hub, tmp_path: Path) -> None:
    """A crash after the file was moved in but before the index was written loses nothing."""
    spool = tmp_path / "spool"
    data = jpeg_bytes(seed=9)
    (spool / "files").mkdir(parents=True)
    orphan = spool / "files" / f"{hashlib.sha256(data).hexdigest()}.jpg"
    orphan.write_bytes(data)
    (spool / "files" / ".half-copied.jpg.part").write_bytes(b"partial")
    up = uploader(spool, "http://127.0.0.1:9", hub.tokens["edge"])
    assert up.pending() == 1
    assert sorted(p.name for p in (spool / "files").iterdir()) == [orphan.name]
    up.close()


@pytest.mark.timeout(60)
def test_permanent_refusals_are_dropped_not_retried_forever(
    hub: Hub, put_counts: Counter[tuple[str, int]], live_hub: LiveHub, tmp_path: Path
) -> None:
    corrupted = make_jpeg(tmp_path / "out", seed=1)
    corrupted.path.write_bytes(jpeg_bytes(seed=2))  # bit rot after hashing: hub says 400
    too_big = make_jpeg(tmp_path / "out", seed=3, size=hub.store.max_upload_bytes + 10)  # 413
    good = make_jpeg(tmp_path / "out", seed=4)
    up = uploader(tmp_path / "spool", live_hub.url, hub.tokens["edge"])
    for f in (corrupted, too_big, good):
        up.enqueue(f)
    up.start()
    assert up.wait_until_empty(timeout=30)
    assert up.rejected() == 2
    up.close()
    assert put_counts[(corrupted.sha256, 400)] == 1 and put_counts[(too_big.sha256, 413)] == 1
    assert hub.store.exists(good.sha256) and not hub.store.exists(corrupted.sha256)


@pytest.mark.timeout(60)
def test_a_wrong_token_is_retried_not_dropped(hub: Hub, live_hub: LiveHub, tmp_path: Path) -> None:
    up = uploader(tmp_path / "spool", live_hub.url, "gw_not-a-real-token")
    up.enqueue(make_jpeg(tmp_path / "out", seed=5))
    up.start()
    assert wait_for(lambda: up.last_error is not None)
    time.sleep(0.3)  # retried, still not dropped
    up.stop()
    assert up.pending() == 1 and up.rejected() == 0
    assert up.last_error is not None and "401" in up.last_error
    up.close()


def test_refuses_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EvidenceUploader(spool_dir=tmp_path, hub_url="ftp://hub", token="gw_x")
    with pytest.raises(ValueError):
        EvidenceUploader(spool_dir=tmp_path, hub_url="http://hub", token="gw_x", max_spool_bytes=0)
