"""What evidence costs at the edge: cutting a clip by remux vs re-encoding it, and the ring's memory.

* ``remux``: :func:`gridwarden.edge.capture.evidence.write_clip` on the packets of a 20 s window (what
  :class:`ClipRecorder` does when an incident's post-roll completes).
* ``re-encode``: decode the same 20 s and encode it again with libx264 (``--preset``, default
  ``veryfast``, a typical choice for an edge), what cutting evidence from decoded frames would cost.
* ring memory: a 10 s :class:`PacketRingBuffer` fed the whole clip; the figure is the mean and
  the maximum of :meth:`memory_bytes` once the ring is full, beside the size of the same 10 s held
  as decoded BGR frames.

CPU time is ``time.process_time()`` (all threads), the median of ``--repeat`` runs.
Run: ``.venv/bin/python bench/bench_evidence.py [--clip PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridwarden.edge.capture.evidence import (  # noqa: E402
    BufferedPacket,
    PacketClock,
    PacketRingBuffer,
    StreamInfo,
    write_clip,
)

DEFAULT_CLIP = REPO_ROOT.parent / "shared" / "media" / "car-detection.mp4"


def demux(path: Path) -> tuple[StreamInfo, list[BufferedPacket]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = StreamInfo(stream)
        clock = PacketClock()
        packets = [BufferedPacket.from_av(p, clock.media_time(p)) for p in container.demux(stream) if p.size]
    return info, packets


def window(packets: list[BufferedPacket], start: float, seconds: float) -> list[BufferedPacket]:
    """From the keyframe at or before ``start`` for ``seconds`` of media time."""
    first = max(i for i, p in enumerate(packets) if p.is_keyframe and p.media_time <= start)
    end = packets[first].media_time + seconds
    return [p for p in packets[first:] if p.media_time < end]


def reencode(packets: list[BufferedPacket], info: StreamInfo, out: Path, preset: str) -> None:
    decoder = av.CodecContext.create(info.codec_name, "r")
    decoder.extradata = info.extradata
    rate = info.average_rate or 25
    frame_tb = 1 / Fraction(rate)
    with av.open(str(out), "w") as output:
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
        stream.options = {"preset": preset}
        index = 0
        for buffered in packets:
            packet = av.Packet(buffered.data)
            packet.pts, packet.dts, packet.time_base = buffered.pts, buffered.dts, buffered.time_base
            for frame in decoder.decode(packet):
                frame.pts, frame.time_base = index, frame_tb
                index += 1
                for encoded in stream.encode(frame):
                    output.mux(encoded)
        for frame in decoder.decode(None):
            frame.pts, frame.time_base = index, frame_tb
            index += 1
            for encoded in stream.encode(frame):
                output.mux(encoded)
        for encoded in stream.encode():
            output.mux(encoded)


def cpu_time(fn: Callable[[], None], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def ring_memory(packets: list[BufferedPacket], seconds: float) -> tuple[float, int, float]:
    """(mean bytes once full, max bytes, mean seconds held) of a ``seconds`` ring fed ``packets``."""
    ring = PacketRingBuffer(seconds)
    sizes: list[int] = []
    spans: list[float] = []
    for packet in packets:
        ring.push(packet)
        if packet.media_time >= seconds:
            sizes.append(ring.memory_bytes())
            spans.append(ring.span_s())
    return statistics.mean(sizes), max(sizes), statistics.mean(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length to cut")
    parser.add_argument("--ring-seconds", type=float, default=10.0)
    parser.add_argument("--preset", default="veryfast", help="libx264 preset for the re-encode")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    info, packets = demux(args.clip)
    cut = window(packets, start=packets[-1].media_time - args.seconds - 5.0, seconds=args.seconds)
    span = cut[-1].media_time - cut[0].media_time + float(cut[-1].duration * cut[-1].time_base)
    print(f"clip: {args.clip.name}  {info}  fps={float(info.average_rate or 0):g}")
    print(f"window: {len(cut)} packets, {span:.2f} s of media, {sum(len(p.data) for p in cut)} bytes")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        remux_s = cpu_time(lambda: write_clip(cut, info, out / "remux.mp4"), args.repeat)
        encode_s = cpu_time(
            lambda: reencode(cut, info, out / "encode.mp4", args.preset), max(1, args.repeat // 2)
        )
    print(f"remux     : {remux_s * 1000:8.1f} ms CPU for {span:.1f} s")
    print(f"re-encode : {encode_s * 1000:8.1f} ms CPU for {span:.1f} s (libx264 {args.preset})")
    print(f"ratio     : re-encode costs {encode_s / remux_s:,.0f}x the remux")

    mean_b, max_b, mean_span = ring_memory(packets, args.ring_seconds)
    frames = (info.average_rate or 25) * args.ring_seconds
    decoded = float(frames) * info.width * info.height * 3
    print(
        f"ring {args.ring_seconds:g} s: mean {mean_b / 1024:.0f} KiB, max {max_b / 1024:.0f} KiB per camera "
        f"(holds {mean_span:.1f} s on average: whole GOPs); "
        f"as decoded BGR frames it would be {decoded / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
