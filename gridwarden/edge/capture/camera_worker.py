"""One camera's capture loop: reconnects, a stall watchdog, a newest-frames queue and a status.

Each :class:`CameraWorker` owns its threads, so one bad stream cannot stall the others (the
Frigate lesson): a supervisor thread runs the reconnect loop and the watchdog, and each
connection reads in its own reader thread.

Why the watchdog does not simply ``container.close()`` from its thread: a PyAV read releases
the GIL inside ``av_read_frame``, and ``avformat_close_input`` on the same context from another
thread frees the socket that read is polling (a use-after-free in FFmpeg, i.e. a crash). So the
silent-camera hang of PyAV issue 584 is handled in two layers instead:

1. the read itself is bounded: FFmpeg's ``timeout`` socket option plus PyAV's interrupt
   callback make a read on a silent connection fail within ``read_timeout_s`` (see
   :mod:`gridwarden.edge.capture.sources`);
2. the watchdog notices *no decoded frame for* ``stall_timeout_s`` (which also catches a camera
   that keeps the socket busy without sending pictures), aborts the reader (it stops and closes
   its own container at the next packet), and if the reader is stuck in a native call that
   ignores the interrupt (e.g. DNS), abandons it after a short grace and reconnects on a fresh
   reader thread. The abandoned thread can no longer deliver frames and closes its container
   itself when the call returns.

Lag, as reported by :meth:`CameraWorker.status`: for each connection the worker keeps the
smallest ``arrival - media_time`` seen over its decoded frames (``arrival`` = monotonic time the
decoder produced the frame). That minimum is the best estimate of when a frame *should* arrive
with no backlog, so a frame's expected time is ``min_offset + media_time`` and its lag is
``handoff - expected``, measured when the consumer receives it (``get()`` returns it or
``on_frame`` is called). If decoding or the consumer falls behind the camera, handoffs drift
later than expected and the lag grows. For a file read as fast as possible there is no media
clock to compare with, so lag is ``None``; with ``realtime=True`` the file's pacing is the clock.

Media time delivered by a worker keeps counting up across reconnects: a new connection's pts
start again from zero, so its packets and frames are shifted to continue after the newest media
time seen (packet or frame) plus the outage's wall-clock length (live) or one analysis interval
(files). Without that, a reconnect would make every dwell timer downstream see time run
backwards. The shift is fixed at the connection's FIRST PACKET, before any frame is decoded, so
the packets handed to ``on_packet`` (the evidence pre-roll) and the frames handed on share one
clock on every connection.

Evidence hooks: ``on_stream(stream)`` and ``on_packet(packet, media_time)`` are passed through to
each connection's :class:`StreamReader` (called on the reader thread; see there), with
``media_time`` already on the worker's continuous clock.

Example::

    >>> w = CameraWorker("cam-01", SourceOptions("rtsp://10.0.0.7/stream"))  # doctest: +SKIP
    >>> w.start(); frame = w.get(timeout=5); print(w.status()); w.stop()     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import av

from gridwarden.backoff import Backoff  # re-exported for the camera tests
from gridwarden.edge.capture.dropping_queue import DroppingQueue
from gridwarden.edge.capture.sources import SourceError, SourceOptions, StreamReader, redact_url
from gridwarden.edge.types import Frame

log = logging.getLogger(__name__)

CameraState = Literal["connecting", "online", "offline"]

# How often the supervisor looks at its reader; stalls are detected to within this.
_TICK_S = 0.1
# How long an aborted reader gets to come back before it is abandoned.
_ABANDON_AFTER_S = 2.0
# How long stop() waits for a reader before leaving it to finish on its own (daemon thread).
_STOP_GRACE_S = 0.5
# Extra time an open may take beyond open_timeout_s before the watchdog gives up on it.
_OPEN_GRACE_S = 3.0


@dataclass(frozen=True)
class CameraStatusSnapshot:
    """What an operator needs to see about one camera, at one moment."""

    camera_id: str
    state: CameraState
    input_fps: float
    analysed_fps: float
    lag_s: float | None
    last_frame_wall_time: float | None
    reconnects: int
    last_error: str | None
    dropped_frames: int
    finished: bool = False  # a file source reached its end (no reconnect follows)
    abandoned_readers: int = 0  # readers stuck in a native call that the watchdog gave up on
    bitrate_bps: float = 0.0  # video bits a second read from the camera (5 s window)


class RateMeter:
    """Events per second over a sliding window; thread-safe; falls to 0 when events stop."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._amounts: deque[float] = deque()
        self._total = 0.0
        self._since: float | None = None
        self._lock = threading.Lock()

    def tick(self, now: float, amount: float = 1.0) -> None:
        """One event at ``now``; ``amount`` weighs it (bytes, for a bitrate)."""
        with self._lock:
            if self._since is None:
                self._since = now
            self._times.append(now)
            self._amounts.append(amount)
            self._total += amount
            self._trim(now)

    def rate(self, now: float) -> float:
        with self._lock:
            if self._since is None:
                return 0.0
            self._trim(now)
            span = max(1.0, min(self.window_s, now - self._since))
            return self._total / span

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
            self._total -= self._amounts.popleft()
        if not self._times:
            self._total = 0.0  # no float drift left over


@dataclass
class _Connection:
    """Book-keeping for one reader thread (one connection attempt)."""

    number: int
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    opened_at: float | None = None
    online_at: float | None = None
    last_progress: float | None = None
    min_arrival_offset: float | None = None  # min(arrival - media_time): the lag baseline
    media_offset: float | None = None  # shift that keeps media time monotonic across reconnects
    error: str | None = None
    finished: bool = False
    abandoned: bool = False


class CameraWorker:
    """Reads one camera forever: reconnects with backoff, watches for stalls, keeps newest frames.

    Frames go to ``on_frame`` if given (called on this camera's reader thread; a slow callback
    back-pressures only this camera, and its lag grows visibly), otherwise into a bounded
    newest-frames queue read with :meth:`get`. A file source without ``loop`` ends the worker
    (``status().finished``); every other ending is treated as a failure and reconnected.
    """

    def __init__(
        self,
        camera_id: str,
        options: SourceOptions,
        *,
        stall_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        queue_size: int = 2,
        on_frame: Callable[[Frame], None] | None = None,
        healthy_after_s: float = 30.0,
        rng: random.Random | None = None,
        on_stream: Callable[[Any], None] | None = None,
        on_packet: Callable[[av.Packet, float], None] | None = None,
        keyframes_policy: Callable[[], bool] | None = None,
    ) -> None:
        if stall_timeout_s <= 0:
            raise ValueError(f"stall_timeout_s must be positive, got {stall_timeout_s}")
        self.camera_id = camera_id
        self.options = options
        self.stall_timeout_s = stall_timeout_s
        self.healthy_after_s = healthy_after_s
        self._backoff = Backoff(backoff_initial_s, backoff_max_s, jitter=0.2, rng=rng)
        self._on_frame = on_frame
        self._on_stream = on_stream
        self._on_packet = on_packet
        self._keyframes_policy = keyframes_policy  # passed to each reader (decode_budget.py)
        # Keyed by this camera's id only: the newest ``queue_size`` frames, oldest dropped and counted.
        self._buffer: DroppingQueue[str, tuple[Frame, float | None]] = DroppingQueue(queue_size)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reader: StreamReader | None = None
        self._reader_thread: threading.Thread | None = None
        self._input_rate = RateMeter()
        self._analysed_rate = RateMeter()
        self._byte_rate = RateMeter()
        self._lag_measurable = options.is_live or options.realtime
        # Status fields, guarded by _lock.
        self._state: CameraState = "offline"
        self._lag_s: float | None = None
        self._last_frame_wall_time: float | None = None
        # Newest media time handed on (packet or frame) and when: where a reconnect continues.
        self._newest_media_time: float | None = None
        self._newest_monotonic: float | None = None
        self._reconnects = 0
        self._last_error: str | None = None
        self._finished = False
        self._abandoned = 0

    # -- public API --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"camera {self.camera_id} already started")
        self._set_state("connecting")
        self._thread = threading.Thread(target=self._supervise, name=f"gw-cam-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading; wakes a blocked :meth:`get`. Safe to call more than once."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        reader = self._reader
        if reader is not None:
            reader.abort("stopping")
        self._buffer.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        reader_thread = self._reader_thread
        if reader_thread is not None and reader_thread is not threading.current_thread():
            # A reader blocked in a native open cannot be interrupted; it can no longer deliver
            # frames and exits by itself when the call returns (bounded by the open timeout).
            reader_thread.join(max(0.0, min(_STOP_GRACE_S, deadline - time.monotonic())))
        self._set_state("offline")

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next of the newest frames; None on timeout, or at once once stopped/finished."""
        item = self._buffer.get(timeout)
        if item is None:
            return None
        frame, expected = item
        self._note_handoff(expected)
        return frame

    def status(self) -> CameraStatusSnapshot:
        now = time.monotonic()
        with self._lock:
            return CameraStatusSnapshot(
                camera_id=self.camera_id,
                state=self._state,
                input_fps=round(self._input_rate.rate(now), 3),
                analysed_fps=round(self._analysed_rate.rate(now), 3),
                lag_s=self._lag_s,
                last_frame_wall_time=self._last_frame_wall_time,
                reconnects=self._reconnects,
                last_error=self._last_error,
                dropped_frames=self._buffer.dropped(self.camera_id),
                finished=self._finished,
                abandoned_readers=self._abandoned,
                bitrate_bps=round(8.0 * self._byte_rate.rate(now), 1),
            )

    @property
    def finished(self) -> bool:
        return self._finished

    # -- supervisor thread ---------------------------------------------------------------------
    def _supervise(self) -> None:
        attempt = 0
        number = 0
        while not self._stop.is_set():
            number += 1
            self._set_state("connecting")
            conn = self._run_connection(number)
            if self._stop.is_set():
                break
            if conn.finished:
                with self._lock:
                    self._finished = True
                log.info("%s: end of file", self.camera_id)
                break
            if conn.online_at is not None and time.monotonic() - conn.online_at >= self.healthy_after_s:
                attempt = 0  # it was healthy for a while: this is a fresh outage, start small
            attempt += 1
            delay = self._backoff.delay(attempt)
            with self._lock:
                self._state = "offline"
                self._last_error = conn.error
                self._reconnects += 1
            log.warning("%s: %s; reconnecting in %.1fs", self.camera_id, conn.error, delay)
            self._stop.wait(delay)
        self._set_state("offline")
        self._buffer.close()

    def _run_connection(self, number: int) -> _Connection:
        conn = _Connection(number=number, started=time.monotonic())
        reader = StreamReader(
            self.camera_id,
            self.options,
            self._stop,
            on_decoded=lambda t: self._on_decoded(conn, t),
            on_stream=None if self._on_stream is None else lambda s: self._stream_found(conn, s),
            on_packet=lambda p, t: self._packet_read(conn, p, t),
            keyframes_policy=self._keyframes_policy,
        )
        thread = threading.Thread(
            target=self._read, args=(conn, reader), name=f"gw-read-{self.camera_id}-{number}", daemon=True
        )
        self._reader, self._reader_thread = reader, thread
        thread.start()
        while not conn.done.wait(_TICK_S):
            if self._stop.is_set():
                reader.abort("stopping")
                break
            if reader.opened and conn.opened_at is None:
                conn.opened_at = time.monotonic()
            stall = self._stall_reason(conn)
            if stall is not None:
                conn.error = stall
                reader.abort(stall)
                with self._lock:
                    self._state, self._last_error = "offline", stall
                log.warning("%s: %s", self.camera_id, stall)
                break
        # When stopping, do not hold stop() up for a reader stuck in a native open/read.
        if not conn.done.wait(_STOP_GRACE_S if self._stop.is_set() else _ABANDON_AFTER_S):
            conn.abandoned = True
            with self._lock:
                self._abandoned += 1
            log.error("%s: reader stuck in a blocking call; abandoned, reconnecting", self.camera_id)
        return conn

    def _stall_reason(self, conn: _Connection) -> str | None:
        now = time.monotonic()
        if conn.opened_at is None:
            limit = self.options.open_timeout_s + _OPEN_GRACE_S
            if now - conn.started > limit:
                return f"open did not return within {limit:g}s"
            return None
        last = max(conn.opened_at, conn.last_progress or conn.opened_at)
        if now - last > self.stall_timeout_s:
            return f"stalled: no frame for {self.stall_timeout_s:g}s"
        return None

    # -- reader thread -----------------------------------------------------------------------------
    def _read(self, conn: _Connection, reader: StreamReader) -> None:
        try:
            for frame in reader.frames():
                if conn.abandoned or self._stop.is_set():
                    break
                self._deliver(conn, frame)
            conn.finished = not (self._stop.is_set() or conn.abandoned or reader.aborted)
        except SourceError as exc:
            conn.error = conn.error or str(exc)
        except Exception as exc:  # a bug must not kill the camera silently: report and reconnect
            log.exception("%s: reader failed", self.camera_id)
            conn.error = conn.error or f"{type(exc).__name__}: {exc}"
        finally:
            conn.done.set()

    def _on_decoded(self, conn: _Connection, media_time: float) -> None:
        if conn.abandoned or conn.error is not None:  # aborted by the watchdog: no longer counts
            return
        now = time.monotonic()
        conn.last_progress = now
        self._input_rate.tick(now)
        offset = now - media_time
        if conn.min_arrival_offset is None or offset < conn.min_arrival_offset:
            conn.min_arrival_offset = offset
        if conn.online_at is None:
            conn.online_at = now
            self._set_state("online")

    def _stream_found(self, conn: _Connection, stream: Any) -> None:
        if conn.abandoned or conn.error is not None or self._on_stream is None:
            return
        self._on_stream(stream)

    def _packet_read(self, conn: _Connection, packet: av.Packet, raw_media_time: float) -> None:
        """Fix the connection's clock shift at its first packet, then hand the packet on."""
        if conn.abandoned or conn.error is not None:  # aborted by the watchdog: no longer counts
            return
        now = time.monotonic()
        if conn.media_offset is None:
            conn.media_offset = self._continuation_offset(now, raw_media_time)
        media_time = raw_media_time + conn.media_offset
        self._note_newest(media_time, now)
        self._byte_rate.tick(now, float(packet.size))
        if self._on_packet is not None:
            self._on_packet(packet, media_time)

    def _note_newest(self, media_time: float, now: float) -> None:
        with self._lock:
            if self._newest_media_time is None or media_time >= self._newest_media_time:
                self._newest_media_time = media_time
                self._newest_monotonic = now

    def _deliver(self, conn: _Connection, frame: Frame) -> None:
        now = time.monotonic()
        raw_media_time = frame.media_time
        expected: float | None = None
        if self._lag_measurable and conn.min_arrival_offset is not None:
            expected = conn.min_arrival_offset + raw_media_time
        if conn.media_offset is None:  # normally fixed at the first packet already
            conn.media_offset = self._continuation_offset(now, raw_media_time)
        frame.media_time = raw_media_time + conn.media_offset
        self._note_newest(frame.media_time, now)
        with self._lock:
            self._last_frame_wall_time = frame.wall_time
        self._analysed_rate.tick(now)
        if self._on_frame is None:
            self._buffer.put(self.camera_id, (frame, expected))
            return
        self._note_handoff(expected)
        self._on_frame(frame)
        conn.last_progress = time.monotonic()

    def _continuation_offset(self, now: float, first_media_time: float) -> float:
        """Shift for a new connection's media times so they continue after the newest one seen."""
        with self._lock:
            last_media, last_mono = self._newest_media_time, self._newest_monotonic
        if last_media is None or last_mono is None:
            return 0.0
        gap = now - last_mono if self.options.is_live else 0.0
        return last_media + max(gap, 1.0 / self.options.analysis_fps) - first_media_time

    def _note_handoff(self, expected: float | None) -> None:
        if expected is None:
            return
        lag = max(0.0, time.monotonic() - expected)
        with self._lock:
            self._lag_s = lag

    def _set_state(self, state: CameraState) -> None:
        with self._lock:
            self._state = state

    def __repr__(self) -> str:
        return f"CameraWorker({self.camera_id!r}, {redact_url(self.options.url)!r})"
