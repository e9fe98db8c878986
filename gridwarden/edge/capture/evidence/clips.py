"""Cut an incident's MP4 clip at the edge by REMUXING buffered packets: no decode, no re-encode.

A clip is the pre-roll held in the camera's :class:`PacketRingBuffer` (from a keyframe at or
before ``trigger - pre_roll_s``) followed by the packets that arrive until
``trigger + post_roll_s``. Its length is therefore ``pre_roll_s + post_roll_s`` plus at most one
GOP (the clip must start at a keyframe), or less when the camera was connected for less than the
pre-roll.

Why remux: re-encoding 20 s of 768x432 video costs seconds of CPU on an edge box that is busy
running a detector; copying packets costs milliseconds (``bench/bench_evidence.py``), and the
evidence stays bit-identical to what the camera sent, which matters when a fine is contested.

Timestamps are rebuilt from the packets' media time, so a clip starts at 0 and stays monotonic
even when it spans a reconnect or a file loop (where raw pts restart); each packet keeps its
pts-dts distance so B-frame reordering survives.

Example::

    >>> recorder = ClipRecorder(ring, StreamInfo(stream), Path("/var/lib/gridwarden/clips"))  # doctest: +SKIP
    >>> recorder.start_clip("01HX...", media_time=63.2)                        # doctest: +SKIP
    >>> for finished in recorder.on_packet(buffered):                          # doctest: +SKIP
    ...     uploader.enqueue(finished.file)
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from gridwarden.edge.capture.evidence.files import EvidenceFile, fsync_and_rename
from gridwarden.edge.capture.evidence.ring_buffer import BufferedPacket, PacketRingBuffer, StreamInfo

log = logging.getLogger(__name__)

# The contract's incident id alphabet; it becomes part of a file name, so nothing else passes.
_SAFE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def safe_incident_id(incident_id: str) -> str:
    if not _SAFE_ID.fullmatch(incident_id):
        raise ValueError(f"incident id {incident_id!r} must match {_SAFE_ID.pattern} (it names files)")
    return incident_id


@dataclass(frozen=True)
class FinishedClip:
    """A clip written to disk. ``truncated``: the post-roll was cut short (stream ended/changed)."""

    incident_id: str
    file: EvidenceFile
    truncated: bool = False


@dataclass
class _PendingClip:
    incident_id: str
    trigger: float
    end: float
    packets: list[BufferedPacket] = field(default_factory=list)

    @property
    def has_keyframe(self) -> bool:
        return bool(self.packets)


def write_clip(packets: Sequence[BufferedPacket], stream: StreamInfo, path: Path) -> tuple[float, float]:
    """Remux ``packets`` (starting at a keyframe) into an MP4 at ``path``; return its media span.

    The output stream is created from the camera stream's codec parameters, so codec, profile,
    size and extradata are the source's; packet payloads are written unchanged.
    """
    if not packets:
        raise ValueError("a clip needs at least one packet")
    if not packets[0].is_keyframe:
        raise ValueError("a clip must start at a keyframe, or its first frames cannot be decoded")
    time_base = stream.time_base
    origin = packets[0].media_time
    last_dts: int | None = None
    # +faststart puts the index first, so a browser can start playing and seek before the
    # whole file has arrived (with HTTP range requests against the hub).
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
        out_stream = stream.add_to(output)
        out_stream.time_base = time_base
        for buffered in packets:
            packet = av.Packet(buffered.data)
            pts = round((buffered.media_time - origin) / time_base)
            # Keep each packet's decode-order offset (B-frames) in the clip's own time base.
            if buffered.pts is not None and buffered.dts is not None:
                offset = Fraction(buffered.pts - buffered.dts) * buffered.time_base
                dts = pts - round(offset / time_base)
            else:
                dts = pts
            if last_dts is not None and dts <= last_dts:
                dts = last_dts + 1
            pts = max(pts, dts)
            last_dts = dts
            packet.pts = pts
            packet.dts = dts
            packet.duration = round(buffered.duration * buffered.time_base / time_base)
            packet.is_keyframe = buffered.is_keyframe
            packet.time_base = time_base
            packet.stream = out_stream
            output.mux(packet)
    last = packets[-1]
    end = max(p.media_time for p in packets) + float(last.duration * last.time_base)
    return origin, end


class ClipRecorder:
    """Per camera: turns "an incident started at media time T" into an MP4 of T-pre .. T+post.

    Feed EVERY packet of the camera through :meth:`on_packet` (it also pushes it into the ring),
    and call :meth:`start_clip` when a rule fires. :meth:`on_packet` returns the clips that the
    packet completed; it writes them synchronously (a remux of 20 s takes milliseconds).
    Call :meth:`set_stream` on every (re)connection and :meth:`flush` when the camera stops.
    """

    def __init__(
        self,
        ring: PacketRingBuffer,
        stream_template: StreamInfo,
        out_dir: Path,
        pre_roll_s: float = 10.0,
        post_roll_s: float = 10.0,
        *,
        max_clip_s: float = 120.0,
    ) -> None:
        if pre_roll_s < 0 or post_roll_s < 0:
            raise ValueError("pre_roll_s and post_roll_s must not be negative")
        if pre_roll_s > ring.seconds:
            log.warning("pre-roll %.1fs is longer than the ring buffer (%.1fs)", pre_roll_s, ring.seconds)
        self.ring = ring
        self.stream = stream_template
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.pre_roll_s = pre_roll_s
        self.post_roll_s = post_roll_s
        self.max_clip_s = max_clip_s
        self._pending: dict[str, _PendingClip] = {}
        self._lock = threading.Lock()

    def start_clip(self, incident_id: str, media_time: float) -> None:
        """Begin a clip for ``incident_id`` around ``media_time``; a repeat call is ignored."""
        safe_incident_id(incident_id)
        # The ring is read under the recorder's lock, and on_packet pushes into the ring under the
        # same lock: so a packet arriving meanwhile is either in the pre-roll or appended after
        # it, never lost between the two (the reader and the analysis are different threads).
        with self._lock:
            if incident_id in self._pending:
                return
            pre_roll = self.ring.snapshot_from_keyframe(media_time - self.pre_roll_s)
            self._pending[incident_id] = _PendingClip(
                incident_id=incident_id,
                trigger=media_time,
                end=media_time + self.post_roll_s,
                packets=pre_roll,
            )

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def on_packet(self, packet: BufferedPacket) -> list[FinishedClip]:
        """Buffer ``packet`` and extend the pending clips; return the clips it completed."""
        done: list[_PendingClip] = []
        with self._lock:
            self.ring.push(packet)
            for clip in self._pending.values():
                if clip.packets and packet.media_time >= clip.end:
                    done.append(clip)
                elif clip.packets or packet.is_keyframe:
                    clip.packets.append(packet)
                    if packet.media_time - clip.packets[0].media_time > self.max_clip_s:
                        done.append(clip)
            for clip in done:
                del self._pending[clip.incident_id]
        return [c for c in (self._finish(clip, truncated=False) for clip in done) if c is not None]

    def set_stream(self, stream: StreamInfo) -> list[FinishedClip]:
        """A (re)connection: if the codec parameters changed, finish pending clips as they are
        (packets of different parameters cannot share a file) and empty the ring."""
        if stream.same_codec_as(self.stream):
            self.stream = stream
            return []
        finished = self.flush()
        self.ring.clear()
        self.stream = stream
        return finished

    def flush(self) -> list[FinishedClip]:
        """Write every pending clip with what it has (the stream ended or the camera stops)."""
        with self._lock:
            clips = list(self._pending.values())
            self._pending.clear()
        return [c for c in (self._finish(clip, truncated=True) for clip in clips) if c is not None]

    def _finish(self, clip: _PendingClip, *, truncated: bool) -> FinishedClip | None:
        packets = _cut_at(clip.packets, clip.end)
        if not packets:
            log.warning("incident %s: no video buffered, no clip written", clip.incident_id)
            return None
        final = self.out_dir / f"{clip.incident_id}_clip.mp4"
        tmp = self.out_dir / f".{clip.incident_id}.{uuid.uuid4().hex}.part"
        try:
            media_start, media_end = write_clip(packets, self.stream, tmp)
            fsync_and_rename(tmp, final)
        except (av.error.FFmpegError, OSError, ValueError):
            log.exception("incident %s: writing the clip failed", clip.incident_id)
            tmp.unlink(missing_ok=True)
            return None
        evidence = EvidenceFile.from_path(
            final, "clip", media_start=media_start, media_end=media_end, incident_id=clip.incident_id
        )
        return FinishedClip(incident_id=clip.incident_id, file=evidence, truncated=truncated)


def _cut_at(packets: list[BufferedPacket], end: float) -> list[BufferedPacket]:
    """Packets up to (not including) the first one at or after ``end`` (keeping the first)."""
    for index, packet in enumerate(packets[1:], start=1):
        if packet.media_time >= end:
            return packets[:index]
    return packets
