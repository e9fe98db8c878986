"""The capture hooks the evidence is fed from: ``on_stream``/``on_packet`` on StreamReader and
CameraWorker, and the one media clock that packets and frames must share.

Why it matters: a clip is cut as "pre-roll before the media time the rule fired at"; the rule's
time is a FRAME's media time and the clip is cut from PACKETS. If the two clocks differ (e.g. one
starts at the first packet and the other at the first decoded frame, or a reconnect shifts one
and not the other), clips start and end in the wrong place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from gridwarden.edge.capture.camera_worker import CameraWorker
from gridwarden.edge.capture.sources import SourceOptions, StreamReader
from tests.support.paths import CAR_CLIP
from tests.support.rtsp_server import RtspServer


class HookLog:
    """Everything the hooks and the decoder report, in the order it happened (one thread)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def stream(self, stream: object) -> None:
        with self.lock:
            self.events.append(("stream", stream.codec_context.name))  # type: ignore[attr-defined]

    def packet(self, packet: av.Packet, media_time: float) -> None:
        assert packet.size > 0
        with self.lock:
            self.events.append(("packet", (media_time, bool(packet.is_keyframe), packet.pts)))

    def decoded(self, media_time: float) -> None:
        with self.lock:
            self.events.append(("decoded", media_time))

    def times(self, kind: str) -> list[float]:
        with self.lock:
            values = [v for k, v in self.events if k == kind]
        return [v[0] if isinstance(v, tuple) else v for v in values]  # type: ignore[misc]


def bframe_clip(path: Path, frames: int = 40) -> Path:
    """The first ``frames`` of the car clip re-encoded WITH B-frames (decode order != pts order)."""
    with av.open(str(CAR_CLIP)) as src, av.open(str(path), mode="w") as dst:
        stream = dst.add_stream("libx264", rate=Fraction(25, 2))
        stream.width, stream.height, stream.pix_fmt = 384, 216, "yuv420p"
        stream.options = {"preset": "veryfast", "g": "12"}  # veryfast: 3 B-frames
        for index, frame in enumerate(src.decode(video=0)):
            if index == frames:
                break
            image = frame.to_ndarray(format="bgr24")[::2, ::2].copy()
            out = av.VideoFrame.from_ndarray(image, format="bgr24")
            out.pts = index
            out.time_base = Fraction(2, 25)
            for packet in stream.encode(out):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return path


def read_all(url: str, log: HookLog, **options: object) -> list[float]:
    reader = StreamReader(
        "cam-a",
        SourceOptions(url=url, analysis_fps=2.0, **options),  # type: ignore[arg-type]
        on_decoded=log.decoded,
        on_stream=log.stream,
        on_packet=log.packet,
    )
    return [frame.media_time for frame in reader.frames()]


def test_every_frame_has_the_media_time_of_its_packet_which_came_first() -> None:
    log = HookLog()
    kept = read_all(str(CAR_CLIP), log)
    assert log.events[0] == ("stream", "h264")
    assert [k for k, _ in log.events].count("stream") == 1
    packets = log.times("packet")
    assert len(packets) == 377 and packets[0] == 0.0
    # Each decoded frame's time was handed out with a packet BEFORE the frame was decoded.
    seen: set[float] = set()
    for kind, value in log.events:
        if kind == "packet":
            seen.add(value[0])  # type: ignore[index]
        elif kind == "decoded":
            assert value in seen
    assert sorted(log.times("decoded")) == sorted(packets)
    assert set(kept) <= set(packets) and len(kept) == 61  # 30.16 s at 2 fps


def test_packets_and_frames_agree_with_b_frame_reordering(tmp_path: Path) -> None:
    log = HookLog()
    read_all(str(bframe_clip(tmp_path / "bframes.mp4")), log)
    events = [v for k, v in log.events if k == "packet"]
    pts_in_decode_order = [pts for _, _, pts in events]  # type: ignore[misc]
    assert pts_in_decode_order != sorted(pts_in_decode_order), "the clip should have B-frames"
    decoded = log.times("decoded")
    assert decoded == sorted(decoded) and decoded[0] == 0.0  # presentation order, from zero
    assert sorted(decoded) == sorted(log.times("packet"))
    np.testing.assert_allclose(np.diff(decoded), 0.08, atol=1e-9)


def test_a_looping_file_keeps_one_clock_for_packets_and_frames() -> None:
    log = HookLog()
    stop = threading.Event()
    options = SourceOptions(url=str(CAR_CLIP), keyframes_only=True, loop=True)
    reader = StreamReader(
        "cam-a", options, stop, on_decoded=log.decoded, on_stream=log.stream, on_packet=log.packet
    )
    for frame in reader.frames():
        if frame.media_time > 35.0:
            stop.set()
    assert [k for k, _ in log.events].count("stream") == 2  # once per pass over the file
    packets = log.times("packet")
    second_pass = packets[377:]
    assert second_pass[0] == pytest.approx(30.16)  # continues one clip length later
    assert set(log.times("decoded")) <= set(packets)  # keyframes_only: every packet still handed on
    keyframes = [t for k, v in log.events if k == "packet" and v[1] for t in [v[0]]]  # type: ignore[index]
    assert keyframes[:9] == pytest.approx([*(np.arange(7) * 4.8), 30.16, 34.96])


def test_a_failing_hook_is_counted_and_does_not_stop_the_camera() -> None:
    calls = 0

    def broken(_packet: av.Packet, _media_time: float) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("disk full")

    reader = StreamReader("cam-a", SourceOptions(url=str(CAR_CLIP), keyframes_only=True), on_packet=broken)
    frames = list(reader.frames())
    assert len(frames) == 7 and calls == 377 and reader.hook_errors == 377


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.slow
def test_worker_keeps_packets_and_frames_on_one_clock_across_a_reconnect(tmp_path: Path) -> None:
    server = RtspServer({"car": CAR_CLIP}, loop=10, log_dir=tmp_path)
    server.start()
    log = HookLog()
    frames: list[float] = []
    worker = CameraWorker(
        "cam-rtsp",
        SourceOptions(url=server.url("car"), open_timeout_s=5, read_timeout_s=3, analysis_fps=25),
        stall_timeout_s=3,
        backoff_initial_s=0.2,
        backoff_max_s=0.5,
        on_frame=lambda frame: frames.append(frame.media_time),
        on_stream=log.stream,
        on_packet=log.packet,
    )
    worker.start()
    try:
        assert wait_until(lambda: len(frames) >= 15, 20), worker.status()
        server.stop()
        assert wait_until(lambda: worker.status().state != "online", 10), worker.status()
        with log.lock:
            first_connection = len(log.events)
        cut = len(frames)
        time.sleep(1.0)
        server.start()
        assert wait_until(lambda: len(frames) >= cut + 15, 20), worker.status()
    finally:
        worker.stop()
        server.stop()
    before = [v[0] for k, v in log.events[:first_connection] if k == "packet"]  # type: ignore[index]
    after_events = log.events[first_connection:]
    after = [v[0] for k, v in after_events if k == "packet"]  # type: ignore[index]
    assert [k for k, _ in log.events].count("stream") == 2
    assert after_events[0][0] == "stream"  # the new connection's stream comes before its packets
    # The second connection's pts restart at 0; its packets continue after the first's, with
    # the outage (>= 1 s) in between, and its frames are exactly on its packets' clock.
    assert after[0] >= max(before) + 1.0
    assert set(frames[cut:]) <= set(after)
    assert set(frames[:cut]) <= set(before)
    assert all(b > a for a, b in zip(frames, frames[1:], strict=False))
