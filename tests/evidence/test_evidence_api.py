"""The hub's evidence API on the real app: uploads checked, files served with range requests."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gridwarden.hub.evidence_store import EvidenceStore, HashMismatch, RetentionPolicy
from tests.evidence.conftest import Hub, bearer
from tests.support.paths import CAR_CLIP

URL = "/api/v1/evidence/"


def jpeg_bytes(size: int = 5000, seed: int = 0) -> bytes:
    """A real JPEG (OpenCV-encoded noise, distinct per seed) padded with comment segments to
    exactly ``size`` bytes, so size-dependent tests stay exact while the hub's decode check passes."""
    image = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert ok
    encoded = buffer.tobytes()
    pad = size - len(encoded)
    assert pad == 0 or pad >= 4, f"cannot make a {size}-byte JPEG"
    segments = []
    while pad:
        chunk = min(pad, 65537)
        if 0 < pad - chunk < 4:
            chunk -= 4
        segments.append(b"\xff\xfe" + (chunk - 2).to_bytes(2, "big") + b"\x00" * (chunk - 4))
        pad -= chunk
    return encoded[:2] + b"".join(segments) + encoded[2:]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(client: TestClient, hub: Hub, data: bytes, content_type: str = "image/jpeg", **kw):  # type: ignore[no-untyped-def]
    sha256 = kw.pop("sha256", sha(data))
    headers = {**bearer(hub.tokens[kw.pop("role", "edge")]), "Content-Type": content_type}
    return client.put(URL + sha256, content=data, headers=headers)


@pytest.fixture
def clip_bytes() -> bytes:
    return CAR_CLIP.read_bytes()[: 1024 * 1024 + 123]  # an MP4 prefix: ftyp first, 1 MiB+


def test_upload_is_idempotent_and_content_addressed(client: TestClient, hub: Hub, clip_bytes: bytes) -> None:
    first = put(client, hub, clip_bytes, "video/mp4")
    assert first.status_code == 201, first.text
    assert first.json() == {
        "sha256": sha(clip_bytes),
        "size": len(clip_bytes),
        "content_type": "video/mp4",
        "created": True,
    }
    again = put(client, hub, clip_bytes, "video/mp4")
    assert again.status_code == 200 and again.json()["created"] is False
    digest = sha(clip_bytes)
    stored = hub.store.root / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == clip_bytes
    assert list((hub.store.root / "tmp").iterdir()) == []


def test_get_and_range_requests(client: TestClient, hub: Hub, clip_bytes: bytes) -> None:
    assert put(client, hub, clip_bytes, "video/mp4").status_code == 201
    url, auth = URL + sha(clip_bytes), bearer(hub.tokens["staff"])
    full = client.get(url, headers=auth)
    assert full.status_code == 200 and full.content == clip_bytes
    assert full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["etag"] == f'"{sha(clip_bytes)}"'

    part = client.get(url, headers={**auth, "Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == clip_bytes[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(clip_bytes)}"
    assert part.headers["content-length"] == "1000"

    tail_from = len(clip_bytes) - 10
    open_ended = client.get(url, headers={**auth, "Range": f"bytes={tail_from}-"})
    assert open_ended.status_code == 206 and open_ended.content == clip_bytes[tail_from:]
    assert open_ended.headers["content-range"] == f"bytes {tail_from}-{len(clip_bytes) - 1}/{len(clip_bytes)}"

    suffix = client.get(url, headers={**auth, "Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.content == clip_bytes[-500:]

    beyond = client.get(url, headers={**auth, "Range": f"bytes={len(clip_bytes)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(clip_bytes)}"

    head = client.head(url, headers=auth)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(clip_bytes))
    assert head.content == b""


def test_auth(client: TestClient, hub: Hub) -> None:
    data = jpeg_bytes()
    assert (
        client.put(URL + sha(data), content=data, headers={"Content-Type": "image/jpeg"}).status_code == 401
    )
    assert put(client, hub, data, role="staff").status_code == 403  # staff cannot upload
    assert put(client, hub, data, role="integrator").status_code == 403  # nor can integrators
    assert put(client, hub, data, role="edge").status_code == 201
    assert client.get(URL + sha(data)).status_code == 401
    for role in ("staff", "integrator", "admin"):
        assert client.get(URL + sha(data), headers=bearer(hub.tokens[role])).status_code == 200


def test_unknown_evidence_is_404(client: TestClient, hub: Hub) -> None:
    response = client.get(URL + "0" * 64, headers=bearer(hub.tokens["staff"]))
    assert response.status_code == 404 and response.json()["detail"]["error"] == "not_found"


def test_too_big_is_413(client: TestClient, hub: Hub) -> None:
    data = jpeg_bytes(hub.store.max_upload_bytes + 1)
    response = put(client, hub, data)
    assert response.status_code == 413 and response.json()["detail"]["error"] == "too_large"

    # Without a Content-Length (chunked), the limit is enforced while reading.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    headers = {**bearer(hub.tokens["edge"]), "Content-Type": "image/jpeg"}
    streamed = client.put(URL + sha(data), content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert not hub.store.exists(sha(data))
    assert list((hub.store.root / "tmp").iterdir()) == []


def test_wrong_hash_is_400(client: TestClient, hub: Hub) -> None:
    data = jpeg_bytes()
    response = put(client, hub, data, sha256=sha(data + b"x"))
    assert response.status_code == 400 and response.json()["detail"]["error"] == "hash_mismatch"
    assert not hub.store.exists(sha(data + b"x")) and not hub.store.exists(sha(data))
    assert list((hub.store.root / "tmp").iterdir()) == []


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream", ""])
def test_content_type_not_allowed_is_415(client: TestClient, hub: Hub, content_type: str) -> None:
    assert put(client, hub, jpeg_bytes(), content_type).status_code == 415


def test_content_that_is_not_the_declared_type_is_415(client: TestClient, hub: Hub) -> None:
    html = b"<html><script>alert(1)</script></html>"
    response = put(client, hub, html, "image/jpeg")
    assert response.status_code == 415 and not hub.store.exists(sha(html))
    assert put(client, hub, jpeg_bytes(), "video/mp4").status_code == 415


@pytest.mark.parametrize(
    "evidence_id",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "..",
        "A" * 64,  # upper case hex is not the canonical form
        "0" * 63,
        "0" * 64 + ".jpg",
        "0" * 62 + "%2F" + "0",
    ],
)
def test_path_tricks_in_the_id_are_refused(client: TestClient, hub: Hub, evidence_id: str) -> None:
    data = jpeg_bytes()
    headers = {**bearer(hub.tokens["edge"]), "Content-Type": "image/jpeg"}
    assert client.put(URL + evidence_id, content=data, headers=headers).status_code in (404, 405, 422)
    assert client.get(URL + evidence_id, headers=bearer(hub.tokens["staff"])).status_code in (404, 405, 422)
    stored = [p for p in hub.store.root.rglob("*") if p.is_file()]
    assert stored == []


def test_store_rejects_ids_directly(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    for bad in ("../../x", "/etc/passwd", "0" * 63 + "/"):
        with pytest.raises(ValueError):
            store.path_for(bad)


def test_store_leaves_nothing_after_a_mismatch(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    with store.begin_upload("1" * 64, "image/jpeg") as upload:
        upload.write(jpeg_bytes())
        with pytest.raises(HashMismatch):
            upload.finish()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def _store_file(store: EvidenceStore, data: bytes, age_days: float, now: float) -> str:
    digest = sha(data)
    with store.begin_upload(digest, "image/jpeg", len(data)) as upload:
        upload.write(data)
        assert upload.finish()
    stamp = now - age_days * 86400
    os.utime(store.path_for(digest), (stamp, stamp))
    return digest


def test_prune_by_age_then_by_total_size(tmp_path: Path) -> None:
    now = time.time()
    store = EvidenceStore(tmp_path, retention=RetentionPolicy(max_age_days=30, max_total_bytes=25_000))
    ancient = _store_file(store, jpeg_bytes(10_000, seed=1), age_days=40, now=now)
    old = _store_file(store, jpeg_bytes(10_000, seed=2), age_days=20, now=now)
    middle = _store_file(store, jpeg_bytes(10_000, seed=3), age_days=10, now=now)
    new = _store_file(store, jpeg_bytes(10_000, seed=4), age_days=1, now=now)
    leftover = store.tmp_dir / "interrupted.part"
    leftover.write_bytes(b"x")
    os.utime(leftover, (now - 7200, now - 7200))

    report = store.prune(now=now)
    assert (report.removed_files, report.removed_bytes) == (2, 20_000)
    assert (report.kept_files, report.kept_bytes) == (2, 20_000)
    assert not store.exists(ancient) and not store.exists(old)
    assert store.exists(middle) and store.exists(new)
    assert not leftover.exists()
    assert store.total_bytes() == 20_000
    assert store.prune(now=now).removed_files == 0
