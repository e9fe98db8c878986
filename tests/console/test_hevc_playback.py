"""H.265 evidence plays in the console's Chromium: the hub transcodes it once, on demand.

Chromium as Debian ships it cannot decode HEVC (checked below, so the test shows why the
transcode exists). The API still serves the stored bytes (their hash is the evidence); the
console's signed URL serves a cached H.264 copy with the same frames, which Chromium plays.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, Hub
from tests.support.main_streams import build_main_stream, read_frame_code
from tests.support.paths import CAR_CLIP

FRAMES = 125  # 10 s at 12.5 fps


@pytest.fixture(scope="module")
def hevc_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = build_main_stream(
        CAR_CLIP, tmp_path_factory.mktemp("hevc") / "clip.mp4", (640, 360), "libx265", max_frames=FRAMES
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def browser(sqlite_hub: Hub) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def signed_url(hub: Hub, sha: str) -> str:
    response = httpx.post(
        f"{hub.url}/api/v1/console/evidence-urls",
        json={"sha256": [sha]},
        headers={"Authorization": f"Bearer {hub.staff_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return hub.url + response.json()["urls"][sha]


def codes_and_codec(data: bytes, tmp: Path) -> tuple[list[int], str]:
    tmp.write_bytes(data)
    with av.open(str(tmp)) as container:
        stream = container.streams.video[0]
        return [
            read_frame_code(f.to_ndarray(format="bgr24")) for f in container.decode(stream)
        ], stream.codec_context.name


def test_hevc_clip_is_served_to_the_console_as_h264_and_plays(
    sqlite_hub: Hub, hevc_clip: bytes, browser: Browser, tmp_path: Path
) -> None:
    sha = sqlite_hub.upload(hevc_clip, "video/mp4")
    # The API serves the evidence itself, byte for byte.
    original = httpx.get(
        f"{sqlite_hub.url}/api/v1/evidence/{sha}",
        headers={"Authorization": f"Bearer {sqlite_hub.staff_token}"},
        timeout=30,
    )
    assert original.status_code == 200 and hashlib.sha256(original.content).hexdigest() == sha

    url = signed_url(sqlite_hub, sha)
    started = time.perf_counter()
    first = httpx.get(url, timeout=120)
    first_s = time.perf_counter() - started
    assert first.status_code == 200 and first.headers["x-gridwarden-transcoded"] == "h264"
    assert first.headers["etag"] == f'"{sha}-h264"'
    codes, codec = codes_and_codec(first.content, tmp_path / "served.mp4")
    assert codec == "h264" and codes == list(range(FRAMES))  # every frame, same order, same picture
    # Cached: the second view is a file response, with ranges for seeking.
    started = time.perf_counter()
    ranged = httpx.get(signed_url(sqlite_hub, sha), headers={"Range": "bytes=0-999"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == first.content[:1000]
    assert time.perf_counter() - started < first_s
    assert (sqlite_hub.evidence.root / "playable" / f"{sha}.h264.mp4").is_file()

    page = browser.new_page()
    try:
        assert (
            page.evaluate(
                "() => document.createElement('video').canPlayType('video/mp4; codecs=\"hvc1.1.6.L93.B0\"')"
            )
            == ""
        )
        page.set_content(f'<video id="v" muted preload="auto" src="{url}"></video>')
        page.wait_for_function("() => document.getElementById('v').readyState >= 2", timeout=30_000)
        assert page.evaluate("() => document.getElementById('v').videoWidth") == 640
        assert 9.5 < page.evaluate("() => document.getElementById('v').duration") < 10.5
        page.evaluate("() => document.getElementById('v').play()")
        page.wait_for_function("() => document.getElementById('v').currentTime > 0.5", timeout=30_000)
    finally:
        page.close()


def test_h264_clips_are_served_as_stored(sqlite_hub: Hub) -> None:
    data = CAR_CLIP.read_bytes()
    sha = sqlite_hub.upload(data, "video/mp4")
    served = httpx.get(signed_url(sqlite_hub, sha), timeout=30)
    assert served.status_code == 200 and "x-gridwarden-transcoded" not in served.headers
    assert hashlib.sha256(served.content).hexdigest() == sha
    assert not (sqlite_hub.evidence.root / "playable" / f"{sha}.h264.mp4").exists()
