"""A per-camera ring of ENCODED packets: the pre-roll of every clip, at the cost of the bitstream.

Why encoded packets and not frames: a decoded 768x432 BGR frame is ~1 MB, so 10 s at 12.5 fps
would hold ~125 MB per camera; the same 10 s of H.264 is a few hundred kB (see
``bench/bench_evidence.py``). Keeping packets also means a clip is cut by remuxing (copying
bytes into a new container), never by re-encoding, so it costs almost no CPU and is
bit-identical to what the camera sent.

Why "always from a keyframe": packets after a keyframe only decode given that keyframe, so the
ring trims whole GOPs: it keeps the newest keyframe at or before ``newest - seconds`` and
everything after it. Memory is therefore ``seconds`` plus up to one GOP of video.

Media time on a packet is the camera's media clock (seconds, from the stream's pts, continuing
across reconnects and file loops), the same clock the rules use, so "10 s before the rule
fired" means the same thing to the recorder and the rule. Whoever reads the camera supplies it;
:class:`PacketClock` is the simple mapping for one connection to a file or stream.

Example::

    >>> ring = PacketRingBuffer(seconds=10.0)
    >>> clock = PacketClock()                                              # doctest: +SKIP
    >>> for packet in container.demux(stream):                             # doctest: +SKIP
    ...     ring.push(BufferedPacket.from_av(packet, clock.media_time(packet)))
    >>> pre_roll = ring.snapshot_from_keyframe(since_media_time=42.0)      # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BufferedPacket:
    """One encoded packet, detached from FFmpeg: its bytes plus the timing needed to remux it."""

    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    is_keyframe: bool
    time_base: Fraction
    media_time: float

    @classmethod
    def from_av(
        cls, packet: av.Packet, media_time: float, time_base: Fraction | None = None
    ) -> BufferedPacket:
        """Copy an ``av.Packet`` (its buffer is reused by the demuxer, so the bytes are copied)."""
        tb = time_base if time_base is not None else packet.time_base
        if tb is None:
            raise ValueError("packet has no time_base; pass the stream's time_base")
        return cls(
            data=bytes(packet),
            pts=packet.pts,
            dts=packet.dts,
            duration=int(packet.duration or 0),
            is_keyframe=bool(packet.is_keyframe),
            time_base=Fraction(tb),
            media_time=float(media_time),
        )

    @property
    def memory_bytes(self) -> int:
        """What holding this packet costs in Python objects (payload plus object headers)."""
        return sys.getsizeof(self.data) + sys.getsizeof(self)


class PacketClock:
    """Media time of packets from ONE connection: seconds since the first pts seen.

    A camera worker that keeps media time continuous across reconnects should hand its own
    media time to :meth:`BufferedPacket.from_av` instead; this is for files, benches and tests.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self._first_pts: int | None = None
        self._offset = offset
        self._last = offset

    def media_time(self, packet: av.Packet) -> float:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return self._last  # no timestamp: place it with the previous packet
        if self._first_pts is None:
            self._first_pts = ts
        self._last = self._offset + float((ts - self._first_pts) * packet.time_base)
        return self._last


class StreamInfo:
    """The codec parameters of a camera's video stream, kept independent of its connection.

    ``OutputContainer.add_stream_from_template`` copies codec parameters from a live
    ``av.Stream``, but the input container that owns the camera's stream is closed on every
    reconnect (and a stream used after its container is freed would crash). So the parameters
    are copied once, at connection time, into a stream of a private, never-written output
    container; clips are then made from that copy. Plain fields (codec, size, profile,
    extradata) are kept alongside for comparison and logging.
    """

    def __init__(self, stream: Any) -> None:
        if stream.type != "video":
            raise ValueError(f"evidence clips need a video stream, got {stream.type!r}")
        ctx = stream.codec_context
        if stream.time_base is None:
            raise ValueError("stream has no time_base")
        self.codec_name: str = ctx.name
        self.width: int = int(ctx.width)
        self.height: int = int(ctx.height)
        self.profile: str | None = ctx.profile
        self.extradata: bytes = bytes(ctx.extradata or b"")
        self.time_base: Fraction = Fraction(stream.time_base)
        rate = stream.average_rate or stream.guessed_rate
        self.average_rate: Fraction | None = Fraction(rate) if rate else None
        self._lock = threading.Lock()
        self._holder = av.open(io.BytesIO(), mode="w", format="mp4")
        self._template = self._holder.add_stream_from_template(stream)

    @classmethod
    def from_stream(cls, stream: Any) -> StreamInfo:
        return cls(stream)

    def same_codec_as(self, other: StreamInfo) -> bool:
        """Whether packets of ``other`` can go into the same clip as packets of this stream."""
        return (self.codec_name, self.width, self.height, self.extradata) == (
            other.codec_name,
            other.width,
            other.height,
            other.extradata,
        )

    def add_to(self, output: Any) -> Any:
        """Add a stream with these codec parameters to ``output`` (no encoder is opened)."""
        with self._lock:
            return output.add_stream_from_template(self._template)

    def close(self) -> None:
        with self._lock:
            self._holder.close()

    def __repr__(self) -> str:
        return (
            f"StreamInfo({self.codec_name} {self.width}x{self.height} profile={self.profile!r} "
            f"extradata={len(self.extradata)}B time_base={self.time_base})"
        )


class PacketRingBuffer:
    """The last ``seconds`` of one camera's packets, trimmed by whole GOPs.

    Thread-safe: the camera's reader pushes while the analysis thread takes snapshots.
    ``max_bytes`` guards against a camera whose keyframes are far apart: beyond it the oldest
    GOP is dropped even if that shortens the pre-roll.
    """

    def __init__(self, seconds: float = 10.0, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        if seconds <= 0:
            raise ValueError(f"ring buffer length must be positive, got {seconds}")
        self.seconds = float(seconds)
        self.max_bytes = max_bytes
        self._packets: deque[BufferedPacket] = deque()
        # Absolute positions of keyframes (position of _packets[0] is self._head).
        self._keyframes: deque[int] = deque()
        self._head = 0
        self._memory = 0
        self._newest = float("-inf")
        self._lock = threading.Lock()

    def push(self, packet: BufferedPacket) -> None:
        """Add the newest packet; packets before the first keyframe are dropped (undecodable)."""
        with self._lock:
            if not self._keyframes and not packet.is_keyframe:
                return
            if packet.is_keyframe:
                self._keyframes.append(self._head + len(self._packets))
            self._packets.append(packet)
            self._memory += packet.memory_bytes
            self._newest = max(self._newest, packet.media_time)
            self._trim()

    def _trim(self) -> None:
        horizon = self._newest - self.seconds
        while len(self._keyframes) >= 2:
            second = self._packets[self._keyframes[1] - self._head]
            if second.media_time > horizon and self._memory <= self.max_bytes:
                break
            self._drop_until(self._keyframes[1])

    def _drop_until(self, position: int) -> None:
        while self._head < position:
            self._memory -= self._packets.popleft().memory_bytes
            self._head += 1
        self._keyframes.popleft()

    def snapshot_from_keyframe(self, since_media_time: float) -> list[BufferedPacket]:
        """Packets from the newest keyframe at or before ``since_media_time`` (or the oldest
        keyframe held, if the ring does not reach back that far) up to the newest packet."""
        with self._lock:
            if not self._keyframes:
                return []
            start = self._keyframes[0]
            for position in reversed(self._keyframes):
                if self._packets[position - self._head].media_time <= since_media_time:
                    start = position
                    break
            return list(self._packets)[start - self._head :]

    def clear(self) -> None:
        with self._lock:
            self._packets.clear()
            self._keyframes.clear()
            self._head = 0
            self._memory = 0
            self._newest = float("-inf")

    def memory_bytes(self) -> int:
        """Bytes held for the buffered packets (payload plus Python object headers)."""
        return self._memory

    def __len__(self) -> int:
        return len(self._packets)

    def span_s(self) -> float:
        """Media seconds from the oldest packet held to the newest."""
        with self._lock:
            if not self._packets:
                return 0.0
            return self._newest - self._packets[0].media_time
