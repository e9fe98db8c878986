"""A clip cut from a real RTSP camera (GStreamer serving the car-park footage at real-time rate).

Over RTSP, H.264 arrives in Annex B framing (start codes) with SPS/PPS from the SDP; the MP4
muxer stores the same NAL units length-prefixed with an avcC header. So "no re-encode" here means:
the same NAL units, byte for byte, in a different container framing.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import pytest

from gridwarden.edge.capture.evidence import (
    BufferedPacket,
    ClipRecorder,
    PacketClock,
    PacketRingBuffer,
    StreamInfo,
)
from tests.support.paths import CAR_CLIP
from tests.support.rtsp_server import RtspServer


def annexb_nals(data: bytes) -> list[bytes]:
    return [nal for nal in re.split(rb"\x00\x00\x00\x01|\x00\x00\x01", data) if nal]


def avcc_nals(data: bytes) -> list[bytes]:
    nals, pos = [], 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        nals.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return nals


@pytest.mark.slow
def test_clip_from_rtsp_keeps_the_cameras_nal_units(tmp_path: Path) -> None:
    server = RtspServer({"car": CAR_CLIP}, loop=1, log_dir=tmp_path)
    server.start()
    try:
        with av.open(server.url("car"), options={"rtsp_transport": "tcp"}, timeout=(10, 10)) as container:
            stream = container.streams.video[0]
            info = StreamInfo(stream)
            recorder = ClipRecorder(PacketRingBuffer(2.0), info, tmp_path, pre_roll_s=2.0, post_roll_s=1.0)
            clock = PacketClock()
            source: list[BufferedPacket] = []
            finished = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                buffered = BufferedPacket.from_av(packet, clock.media_time(packet))
                source.append(buffered)
                finished += recorder.on_packet(buffered)
                if buffered.media_time >= 7.0 and not recorder.pending() and not finished:
                    recorder.start_clip("rtsp-1", 7.0)
                if finished:
                    break
    finally:
        server.stop()
    (clip,) = finished
    assert info.time_base == Fraction(1, 90000) and info.width == 768
    # Keyframes come every 4.8 s: the newest at or before 7 - 2 s is at 4.8 s; post-roll ends at 8 s.
    assert 4.7 <= clip.file.media_start <= 4.9 and 7.9 <= clip.file.media_end <= 8.2
    with av.open(str(clip.file.path)) as output:
        out_stream = output.streams.video[0]
        ctx = out_stream.codec_context
        assert (ctx.name, ctx.profile, ctx.width, ctx.height) == ("h264", "Baseline", 768, 432)
        # avcC carries the camera's own SPS and PPS.
        for nal in annexb_nals(info.extradata):
            assert nal in bytes(ctx.extradata)
        out_packets = [bytes(p) for p in output.demux(out_stream) if p.size]
    first = next(i for i, p in enumerate(source) if p.media_time == clip.file.media_start)
    for written, original in zip(out_packets, source[first:], strict=False):
        assert avcc_nals(written) == annexb_nals(original.data)
    with av.open(str(clip.file.path)) as output:
        assert sum(1 for _ in output.decode(video=0)) == len(out_packets) > 0
