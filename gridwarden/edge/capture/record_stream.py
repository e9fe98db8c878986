"""A camera's record stream: its main stream's packets, read without decoding, on the detect clock.

A street camera is analysed on its 640x360 sub-stream (``inputs`` role ``detect``) while its
evidence clips are cut from the 1920x1080 main stream (role ``record``). The main stream is read
by a second :class:`~gridwarden.edge.capture.camera_worker.CameraWorker` in packet-only mode
(``SourceOptions.decode=False``): its packets go straight into the camera's evidence ring, so
the box never decodes a 1080p frame.

The two streams have unrelated clocks: each connection's media time starts at its own first
pts, and the camera (or the network) may deliver one later than the other. A rule fires at a
*detect* media time and the recorder cuts "pre-roll before, post-roll after" it, so every record
packet is put on the detect clock first. Both streams are live pictures of the same instant, so
their clocks are aligned by arrival: for each stream the smallest ``arrival - media_time`` seen
(the arrival with the least network/buffer delay) gives the monotonic instant its media time 0
stands for, and the difference of the two is the offset between the clocks. The error is the
difference of the two streams' best-case delivery delays (tens of milliseconds on a LAN), far
below a GOP. A reconnect on either side starts that side's estimate afresh (its media clock was
re-based). Packets that arrive before the detect stream has delivered anything cannot be placed
and are dropped (they would be older than any incident anyway).

Example::

    clock = StreamClockAligner()
    detect = CameraWorker("cam", detect_opts, on_packet=lambda p, t: clock.note_detect(t),
                          on_stream=lambda s: clock.detect_reconnected())
    record = RecordStream("cam", record_opts, clock, evidence)   # evidence: CameraEvidence
"""

from __future__ import annotations

import threading
import time
from typing import Any

import av

from gridwarden.edge.capture.camera_worker import CameraStatusSnapshot, CameraWorker
from gridwarden.edge.capture.sources import SourceOptions


class StreamClockAligner:
    """Maps the record stream's media time onto the detect stream's (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._detect_origin: float | None = None  # monotonic instant of detect media time 0
        self._record_origin: float | None = None
        self._detect_fresh = False  # True: the next detect sample replaces the estimate
        self._record_fresh = False
        self.dropped_packets = 0

    def detect_reconnected(self, _stream: Any = None) -> None:
        with self._lock:
            self._detect_fresh = True

    def record_reconnected(self, _stream: Any = None) -> None:
        with self._lock:
            self._record_fresh = True

    def note_detect(self, media_time: float, now: float | None = None) -> None:
        """A detect packet (or frame) with its media time, arriving ``now`` (monotonic)."""
        origin = (time.monotonic() if now is None else now) - media_time
        with self._lock:
            if self._detect_origin is None or self._detect_fresh or origin < self._detect_origin:
                self._detect_origin = origin
            self._detect_fresh = False

    def to_detect_clock(self, record_media_time: float, now: float | None = None) -> float | None:
        """The detect media time of a record packet arriving ``now``; None before the detect
        stream has a clock."""
        origin = (time.monotonic() if now is None else now) - record_media_time
        with self._lock:
            if self._record_origin is None or self._record_fresh or origin < self._record_origin:
                self._record_origin = origin
            self._record_fresh = False
            if self._detect_origin is None:
                self.dropped_packets += 1
                return None
            return record_media_time + (self._record_origin - self._detect_origin)

    @property
    def offset_s(self) -> float | None:
        """Detect media time minus record media time for the same instant (for status/tests)."""
        with self._lock:
            if self._detect_origin is None or self._record_origin is None:
                return None
            return self._record_origin - self._detect_origin


class RecordStream:
    """The record stream of one camera: a packet-only worker feeding the evidence on the detect
    clock. ``evidence`` is the camera's :class:`~gridwarden.edge.capture.evidence.CameraEvidence` (or
    anything with ``on_stream(stream)`` and ``on_packet(packet, media_time)``)."""

    def __init__(
        self,
        camera_id: str,
        options: SourceOptions,
        clock: StreamClockAligner,
        evidence: Any,
        *,
        stall_timeout_s: float = 10.0,
    ) -> None:
        if options.decode:
            raise ValueError("a record stream is read without decoding (SourceOptions.decode=False)")
        self.clock = clock
        self._evidence = evidence
        self.worker = CameraWorker(
            camera_id,
            options,
            stall_timeout_s=stall_timeout_s,
            on_frame=lambda _frame: None,  # no frames: packet-only
            on_stream=self._stream_found,
            on_packet=self._packet_read,
        )

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    def status(self) -> CameraStatusSnapshot:
        return self.worker.status()

    def _stream_found(self, stream: Any) -> None:
        self.clock.record_reconnected()
        self._evidence.on_stream(stream)

    def _packet_read(self, packet: av.Packet, media_time: float) -> None:
        aligned = self.clock.to_detect_clock(media_time)
        if aligned is not None:
            self._evidence.on_packet(packet, aligned)
