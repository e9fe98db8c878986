"""One camera's evidence, wired together: packets in; clips and snapshots out, to the uploader.

The capture code only has to call two hooks from its reader thread, and the analysis code one
when a rule fires::

    evidence = CameraEvidence("cam-01", Path("/var/lib/gridwarden/evidence/cam-01"),
                              uploader=uploader, on_clip=publish_clip_ref)
    evidence.on_stream(stream)                 # each (re)connection, before its first packet
    evidence.on_packet(packet, media_time)     # each demuxed video packet, same clock as Frame
    refs = evidence.incident_started(incident_id, frame.media_time, frame.image,
                                     zone_polygon=..., box=..., class_name="car", dwell_s=95.0)

Why the clip arrives later than the snapshots: the clip needs ``post_roll_s`` of video that has
not been filmed yet when the rule fires. So the ``started`` event carries the two snapshot refs
(returned at once) and ``on_clip(incident_id, file)`` is called when the clip is written, for an
``updated`` event carrying its ref (the hub merges evidence lists by hash).

``background=True`` keeps the camera's reader thread free of disk work: the hooks then only copy
the packet (its buffer is reused by the demuxer) and queue it; a per-camera writer thread feeds
the ring, writes finished clips (remux, fsync, hash) and hands them to the uploader and
``on_clip``. Why: an fsync on a busy SD card or disk can take hundreds of milliseconds, and a
reader that stops reading makes a live camera's socket back up. If the writer falls more than
``queue_packets`` behind, packets are dropped up to the next keyframe (so nothing undecodable
reaches a clip) and counted in ``dropped_packets``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from gridwarden.contract import EvidenceRef
from gridwarden.edge.capture.evidence.clips import ClipRecorder, FinishedClip
from gridwarden.edge.capture.evidence.files import EvidenceFile
from gridwarden.edge.capture.evidence.ring_buffer import BufferedPacket, PacketRingBuffer, StreamInfo
from gridwarden.edge.capture.evidence.snapshots import write_snapshots
from gridwarden.edge.transport.uploader import EvidenceUploader

log = logging.getLogger(__name__)

ClipCallback = Callable[[str, EvidenceFile], None]


class CameraEvidence:
    """Ring buffer + clip recorder + snapshots for one camera (see the module docstring)."""

    def __init__(
        self,
        camera_id: str,
        out_dir: Path,
        *,
        uploader: EvidenceUploader | None = None,
        on_clip: ClipCallback | None = None,
        pre_roll_s: float = 10.0,
        post_roll_s: float = 10.0,
        background: bool = False,
        queue_packets: int = 2000,
    ) -> None:
        self.camera_id = camera_id
        self.out_dir = Path(out_dir)
        self.uploader = uploader
        self.on_clip = on_clip
        self.pre_roll_s = pre_roll_s
        self.post_roll_s = post_roll_s
        self.ring = PacketRingBuffer(max(pre_roll_s, 1.0))
        self.recorder: ClipRecorder | None = None
        self._warned_no_stream = False
        self.dropped_packets = 0
        self._resync = False  # after a drop: skip packets until the next keyframe
        self._queue: queue.Queue[tuple[str, Any] | None] | None = None
        self._writer: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=queue_packets)
            self._writer = threading.Thread(
                target=self._write_loop, name=f"gw-evidence-{camera_id}", daemon=True
            )
            self._writer.start()

    def on_stream(self, stream: Any) -> None:
        """A new connection's video stream (its codec parameters are copied, not kept)."""
        info = StreamInfo(stream)  # here, on the caller's thread: the stream dies with its container
        if self.recorder is None:
            self.recorder = ClipRecorder(self.ring, info, self.out_dir, self.pre_roll_s, self.post_roll_s)
        elif self._queue is not None:
            self._queue.put(("stream", info))  # in order with the packets around it
        else:
            self._hand_over(self.recorder.set_stream(info))

    def on_packet(self, packet: av.Packet, media_time: float) -> None:
        if self.recorder is None:
            if not self._warned_no_stream:
                log.warning("%s: packets before on_stream(); evidence is not recorded", self.camera_id)
                self._warned_no_stream = True
            return
        if packet.size == 0:
            return  # a demuxer flush packet, no data
        buffered = BufferedPacket.from_av(packet, media_time)
        if self._queue is None:
            self._hand_over(self.recorder.on_packet(buffered))
            return
        if self._resync and not buffered.is_keyframe:
            self.dropped_packets += 1
            return
        try:
            self._queue.put_nowait(("packet", buffered))
            self._resync = False
        except queue.Full:
            self.dropped_packets += 1
            if not self._resync:
                log.warning(
                    "%s: evidence writer %d packets behind; dropping video until the next keyframe",
                    self.camera_id,
                    self._queue.maxsize,
                )
            self._resync = True

    def _write_loop(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            kind, value = item
            recorder = self.recorder
            assert recorder is not None  # created by the first on_stream, before any item
            try:
                if kind == "packet":
                    self._hand_over(recorder.on_packet(value))
                else:
                    self._hand_over(recorder.set_stream(value))
            except Exception:  # the writer must outlive one bad packet or a full disk
                log.exception("%s: evidence writer failed on a %s", self.camera_id, kind)

    def incident_started(
        self,
        incident_id: str,
        media_time: float,
        image_bgr: np.ndarray,
        *,
        zone_polygon: Sequence[Sequence[float]] | np.ndarray,
        box: Sequence[float] | np.ndarray,
        class_name: str,
        dwell_s: float,
    ) -> list[EvidenceRef]:
        """Write both snapshots, queue them, start the clip; return the snapshots' refs."""
        snapshots = write_snapshots(
            image_bgr,
            zone_polygon=zone_polygon,
            box=box,
            class_name=class_name,
            dwell_s=dwell_s,
            out_dir=self.out_dir,
            incident_id=incident_id,
            media_time=media_time,
        )
        if self.recorder is not None:
            self.recorder.start_clip(incident_id, media_time)
        else:
            log.warning("%s: incident %s before any video stream; no clip", self.camera_id, incident_id)
        refs = [f.ref() for f in snapshots]
        for file in snapshots:
            self._spool(file)
        return refs

    def close(self, timeout: float = 30.0) -> None:
        """Write the clips still waiting for post-roll with what they have (camera stopping).

        Call it after the camera's reader has stopped; with ``background`` the queued packets are
        written first (the writer is given ``timeout`` to catch up).
        """
        if self._queue is not None and self._writer is not None:
            with contextlib.suppress(queue.Full):  # then the join below times out and reports it
                self._queue.put(None, timeout=timeout)
            self._writer.join(timeout)
            if self._writer.is_alive():
                log.error("%s: evidence writer did not finish within %.0fs", self.camera_id, timeout)
                return
            self._writer = None
        recorder, self.recorder = self.recorder, None  # a second close() finds nothing to do
        if recorder is not None:
            self._hand_over(recorder.flush())
            recorder.stream.close()

    def _spool(self, file: EvidenceFile) -> EvidenceFile:
        return self.uploader.enqueue(file) if self.uploader is not None else file

    def _hand_over(self, finished: list[FinishedClip]) -> None:
        for clip in finished:
            try:
                file = self._spool(clip.file)
                if self.on_clip is not None:
                    self.on_clip(clip.incident_id, file)
            except Exception:  # the reader thread must survive a failing consumer
                log.exception("%s: handing over the clip of %s failed", self.camera_id, clip.incident_id)
