"""Read frames from a camera (RTSP) or a video file with PyAV, sampled to the analysis rate.

Why this module looks the way it does:

* **Decode cost.** A camera sends 10-25 fps; the rules need ~2. H.264 frames depend on each
  other, so every packet of a GOP must still be decoded, but the expensive part that *can* be
  skipped is the YUV->BGR conversion and the copy into numpy: :class:`AnalysisSampler` picks
  frames by pts *before* ``to_ndarray`` is called. ``keyframes_only`` goes further and asks the
  decoder to skip everything but keyframes (``skip_frame = "NONKEY"``); see
  ``bench/bench_decode.py`` for what each saves.
* **Media time, not wall time.** ``Frame.media_time`` is seconds from the first pts this
  connection saw, so replaying a file at 10x and watching the live camera give the rules the
  same clock. A looping file keeps counting up across the loop.
* **One clock for packets and frames.** The clock starts at the first demuxed packet with a
  timestamp, not at the first decoded frame, and each decoded frame takes the media time its
  packet was given (looked up by pts). So the encoded packets handed to ``on_packet`` (the
  evidence ring buffer) and the frames the rules see agree exactly: "10 s before the rule fired"
  cuts the clip at the right place, across B-frame reordering, clock resets and file loops.
* **Nothing blocks forever.** RTSP is opened with FFmpeg's ``timeout`` socket option
  (microseconds; since FFmpeg 5 the old ``stimeout`` is silently ignored) plus PyAV's
  ``timeout=(open, read)`` interrupt callback, so a camera that accepts the connection and goes
  silent makes the read fail within ``read_timeout_s``. :meth:`StreamReader.abort` lets another
  thread (the camera worker's watchdog) end the read loop at the next packet; see
  :mod:`gridwarden.edge.capture.camera_worker` for why the watchdog does not free the container under a
  running read.

Example::

    >>> opts = SourceOptions(url="clip.mp4", analysis_fps=2.0)      # doctest: +SKIP
    >>> for frame in open_frames("cam-01", opts):                   # doctest: +SKIP
    ...     print(frame.media_time, frame.image.shape)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import av
import av.error

from gridwarden.edge.types import Frame

log = logging.getLogger(__name__)

LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp"})

# A backwards jump in pts larger than this is a stream clock reset (camera reboot, RTP
# timestamp wrap), not B-frame reordering; media time is re-based so it keeps counting up.
_BACKWARDS_JUMP_S = 1.0


class SourceError(Exception):
    """A source could not be opened or stopped delivering (error, timeout, end of a live stream)."""


@dataclass
class SourceOptions:
    """How to read one camera or file.

    ``analysis_fps`` is the rate frames are handed on for analysis; the rest are decoded (H.264
    needs them) but never colour-converted. ``realtime`` paces a *file* to its media clock (replay
    ``--realtime``, tests that emulate a camera); live sources are paced by the camera anyway.
    ``loop`` restarts a file at its end with media time still counting up.
    """

    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    analysis_fps: float = 2.0
    keyframes_only: bool = False
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    realtime: bool = False
    loop: bool = False
    #: False for a record-only stream: packets go to ``on_packet`` and are never decoded
    #: (a camera's 1080p main stream costs no decode at all); each counts as a frame read.
    decode: bool = True

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("source url must not be empty")
        if self.transport not in ("tcp", "udp"):
            raise ValueError(f"transport must be 'tcp' or 'udp', got {self.transport!r}")
        for name in ("analysis_fps", "open_timeout_s", "read_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    @property
    def is_live(self) -> bool:
        return is_live_url(self.url)


def is_live_url(url: str) -> bool:
    """True for network streams (rtsp://...), False for local files and file:// URLs."""
    return urlsplit(url).scheme.lower() in LIVE_SCHEMES


def redact_url(url: str) -> str:
    """The URL with any password replaced, so errors and logs never leak camera credentials."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _local_path(url: str) -> Path:
    parts = urlsplit(url)
    return Path(parts.path) if parts.scheme.lower() == "file" else Path(url)


def _describe(exc: BaseException) -> str:
    """The error without the URL FFmpeg appends to it (which may carry a password)."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else type(exc).__name__


def _open_container(options: SourceOptions) -> av.container.InputContainer:
    """Open the source with bounded waits; every failure becomes a :class:`SourceError`."""
    name = redact_url(options.url)
    if options.is_live:
        ffmpeg_options = {
            "rtsp_transport": options.transport,
            # Socket I/O timeout in microseconds (FFmpeg >= 5; 'stimeout' is ignored there).
            "timeout": str(int(options.read_timeout_s * 1_000_000)),
        }
        target = options.url
    else:
        path = _local_path(options.url)
        if not path.is_file():
            raise SourceError(f"video file not found: {path}")
        ffmpeg_options = {}
        target = str(path)
    started = time.monotonic()
    try:
        container = av.open(
            target,
            mode="r",
            options=ffmpeg_options,
            timeout=(options.open_timeout_s, options.read_timeout_s),
        )
    except (av.error.FFmpegError, OSError) as exc:
        # The interrupt callback surfaces as ExitError, or as whatever the RTSP demuxer makes of
        # the aborted read (often InvalidDataError): judge a timeout by the clock instead.
        if isinstance(exc, av.error.ExitError) or time.monotonic() - started >= options.open_timeout_s:
            raise SourceError(
                f"{name}: open timed out after {options.open_timeout_s:g}s ({_describe(exc)})"
            ) from exc
        raise SourceError(f"{name}: cannot open: {_describe(exc)}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"{name}: no video stream")
    return container


def probe(url: str, open_timeout_s: float = 10.0) -> dict[str, Any]:
    """Length and shape of a source, for progress bars: duration_s, fps, width, height, codec, frames.

    ``duration_s`` and ``frames`` are None for live streams (or files whose header lacks them
    and whose frame count cannot be estimated).
    """
    options = SourceOptions(url=url, open_timeout_s=open_timeout_s)
    container = _open_container(options)
    try:
        stream = container.streams.video[0]
        fps_q = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(fps_q) if fps_q else None
        duration_s: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        frames: int | None = int(stream.frames) if stream.frames else None
        if frames is None and duration_s is not None and fps:
            frames = round(duration_s * fps)
        if options.is_live:
            duration_s, frames = None, None
        return {
            "duration_s": duration_s,
            "fps": fps,
            "width": int(stream.codec_context.width),
            "height": int(stream.codec_context.height),
            "codec": stream.codec_context.name,
            "frames": frames,
        }
    finally:
        container.close()


class AnalysisSampler:
    """Keeps the first frame of each analysis interval, judged by media time.

    Bucketing by ``floor(t * fps)`` (rather than "t >= last kept + interval") keeps the kept
    frames on a fixed grid, so jitter in a live stream's pts never drifts the rate down.

    >>> s = AnalysisSampler(2.0)
    >>> [s.keep(t) for t in (0.0, 0.2, 0.5, 0.9, 1.0)]
    [True, False, True, False, True]
    """

    def __init__(self, analysis_fps: float) -> None:
        self.analysis_fps = analysis_fps
        self._last_bucket: int | None = None

    def keep(self, media_time: float) -> bool:
        bucket = math.floor(media_time * self.analysis_fps + 1e-6)
        if self._last_bucket is not None and bucket <= self._last_bucket:
            return False
        self._last_bucket = bucket
        return True


DecodedCallback = Callable[[float], None]
StreamCallback = Callable[[Any], None]
PacketCallback = Callable[[av.Packet, float], None]

# Packets whose frame has not been decoded yet, remembered by pts; more than the deepest decoder
# delay. Bounded because packets that never become frames (keyframes_only, corrupt) stay behind.
_PENDING_PACKET_TIMES = 512


class StreamReader:
    """One connection to one source; :meth:`frames` yields the sampled BGR frames.

    Counters (``decoded_frames``, ``last_decoded_monotonic``) are read by the camera worker's
    watchdog from another thread; single attribute writes are atomic under the GIL.
    ``on_decoded(media_time)`` is called for every decoded frame, kept or not, so the worker can
    measure input fps and lag without this class knowing about either.

    Evidence hooks, called on the reading thread (keep them short: they delay the next read):
    ``on_stream(stream)`` once per connection (and per file loop) when the video stream is found,
    before its first packet; ``on_packet(packet, media_time)`` for every demuxed video packet that
    carries data (size > 0), BEFORE it is decoded, with the media time its frame will have.
    An exception in a hook is logged and counted (``hook_errors``); it never stops the camera.
    """

    def __init__(
        self,
        camera_id: str,
        options: SourceOptions,
        stop: threading.Event | None = None,
        on_decoded: DecodedCallback | None = None,
        *,
        on_stream: StreamCallback | None = None,
        on_packet: PacketCallback | None = None,
        keyframes_policy: Callable[[], bool] | None = None,
    ) -> None:
        self.camera_id = camera_id
        # Asked at each keyframe (see decode_budget.py); overrides options.keyframes_only.
        self._keyframes_policy = keyframes_policy
        self.skipping_nonkey = False
        self.options = options
        self._stop = stop or threading.Event()
        self._abort = threading.Event()
        self._abort_reason = ""
        self._on_decoded = on_decoded
        self._on_stream = on_stream
        self._on_packet = on_packet
        self.hook_errors = 0
        self._sampler = AnalysisSampler(options.analysis_fps)
        self.opened = False
        self.decoded_frames = 0
        self.kept_frames = 0
        self.corrupt_packets = 0
        self.last_decoded_monotonic: float | None = None
        # Media clock state, carried across loops of a file.
        self._media_offset = 0.0
        self._last_media_time: float | None = None
        self._newest_media_time: float | None = None  # max over packets (decode order is not pts order)
        self._frame_interval = 0.04
        self._loop_length: float | None = None  # a file's stream duration, for looping
        self._pace_origin: tuple[float, float] | None = None  # (monotonic, media_time)

    # -- control from other threads -------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Ask the read loop to end at the next packet and raise ``SourceError(reason)``."""
        self._abort_reason = reason
        self._abort.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def _should_end(self) -> bool:
        return self._stop.is_set() or self._abort.is_set()

    # -- reading ---------------------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        """Yield sampled frames until stopped, end of file, or failure (``SourceError``)."""
        name = redact_url(self.options.url)
        while True:
            container = _open_container(self.options)
            self.opened = True
            try:
                yield from self._read(container)
            finally:
                container.close()
            if self._abort.is_set():
                raise SourceError(self._abort_reason or "aborted")
            if self._stop.is_set():
                return
            if self.options.is_live:
                raise SourceError(f"{name}: stream ended")
            if not self.options.loop:
                return
            if self.decoded_frames == 0:
                raise SourceError(f"{name}: file has no decodable frames")
            # The next loop continues the media clock where this one's stream ended.
            assert self._newest_media_time is not None
            end = self._media_offset + self._loop_length if self._loop_length else 0.0
            self._media_offset = max(end, self._newest_media_time + self._frame_interval)

    def _read(self, container: av.container.InputContainer) -> Iterator[Frame]:
        name = redact_url(self.options.url)
        stream = container.streams.video[0]
        codec = stream.codec_context
        self.skipping_nonkey = self.options.keyframes_only
        if self.skipping_nonkey:
            codec.skip_frame = "NONKEY"
        time_base = stream.time_base
        if time_base is None:
            raise SourceError(f"{name}: video stream has no time base, so no media clock")
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            self._frame_interval = 1.0 / float(rate)
        if stream.duration:
            self._loop_length = float(stream.duration * time_base)
        first_pts: int | None = None
        # Media time given to each packet, by pts, until its frame comes out of the decoder.
        packet_times: dict[int, float] = {}
        if self._on_stream is not None:
            self._call_hook(self._on_stream, stream)
        packets = container.demux(stream)
        while True:
            if self._should_end():
                return
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.ExitError as exc:
                if self._should_end():
                    return
                raise SourceError(
                    f"{name}: no data for {self.options.read_timeout_s:g}s (read timeout)"
                ) from exc
            except (av.error.FFmpegError, OSError) as exc:
                if self._should_end():
                    return
                raise SourceError(f"{name}: read failed: {_describe(exc)}") from exc
            if packet.size > 0:  # size 0: the demuxer's end-of-stream flush packet, no data
                timestamp = packet.pts if packet.pts is not None else packet.dts
                if timestamp is not None and first_pts is None:
                    first_pts = timestamp  # the clock starts at the first packet, not frame
                packet_time = self._media_time(timestamp, first_pts, time_base)
                if packet_time is not None:
                    if packet.pts is not None:
                        packet_times[packet.pts] = packet_time
                        if len(packet_times) > _PENDING_PACKET_TIMES:
                            del packet_times[next(iter(packet_times))]  # oldest (insertion order)
                    if self._on_packet is not None:
                        self._call_hook(self._on_packet, packet, packet_time)
                    if not self.options.decode:
                        self._packet_read(packet_time)
            if not self.options.decode:
                if self._should_end():
                    return
                continue
            if self._keyframes_policy is not None and packet.is_keyframe:
                # Switched at a keyframe only: from there on either mode decodes cleanly.
                wanted = self._keyframes_policy()
                if wanted != self.skipping_nonkey:
                    codec.skip_frame = "NONKEY" if wanted else "DEFAULT"
                    self.skipping_nonkey = wanted
            try:
                decoded = codec.decode(packet)
            except av.error.InvalidDataError:
                # Lost or damaged packets are routine on live streams; the next keyframe heals it.
                self.corrupt_packets += 1
                continue
            for frame in decoded:
                media_time = packet_times.pop(frame.pts, None) if frame.pts is not None else None
                if media_time is None:  # a frame whose packet had no pts: place it on the clock
                    if frame.pts is not None and first_pts is None:
                        first_pts = frame.pts
                    media_time = self._media_time(frame.pts, first_pts, time_base)
                if media_time is None:
                    continue
                self.decoded_frames += 1
                self.last_decoded_monotonic = time.monotonic()
                if self._on_decoded is not None:
                    self._on_decoded(media_time)
                if self.options.realtime and not self.options.is_live:
                    self._pace(media_time)
                    if self._should_end():
                        return
                if not self._sampler.keep(media_time):
                    continue  # dropped before any colour conversion: the point of sampling
                image = frame.to_ndarray(format="bgr24")
                self.kept_frames += 1
                yield Frame(
                    camera_id=self.camera_id,
                    image=image,
                    media_time=media_time,
                    wall_time=time.time(),
                    index=self.decoded_frames - 1,
                )

    def _packet_read(self, packet_time: float) -> None:
        """A record-only stream's progress: one packet is one frame for fps, watchdog, pacing."""
        self.decoded_frames += 1
        self.last_decoded_monotonic = time.monotonic()
        if self._on_decoded is not None:
            self._on_decoded(packet_time)
        if self.options.realtime and not self.options.is_live:
            self._pace(packet_time)

    def _media_time(self, pts: int | None, first_pts: int | None, time_base: Any) -> float | None:
        """Seconds since the first pts of this source, monotonic across loops and clock resets."""
        if pts is None or first_pts is None:
            if self._last_media_time is None:
                return None  # no clock yet: cannot place this frame in time
            media_time = self._last_media_time + self._frame_interval
        else:
            media_time = self._media_offset + float((pts - first_pts) * time_base)
        last = self._last_media_time
        if last is not None and media_time < last - _BACKWARDS_JUMP_S:
            log.warning(
                "%s: stream clock jumped back %.2fs; continuing media time", self.camera_id, last - media_time
            )
            self._media_offset += last - media_time + self._frame_interval
            media_time = last + self._frame_interval
        self._last_media_time = media_time
        if self._newest_media_time is None or media_time > self._newest_media_time:
            self._newest_media_time = media_time
        return media_time

    def _call_hook(self, hook: Callable[..., object], *args: Any) -> None:
        """Run an evidence hook; its failure is logged (first, then every 100th) and counted."""
        try:
            hook(*args)
        except Exception:
            self.hook_errors += 1
            if self.hook_errors % 100 == 1:
                log.exception("%s: a stream/packet hook failed (%d so far)", self.camera_id, self.hook_errors)

    def _pace(self, media_time: float) -> None:
        """Sleep until ``media_time`` is due on the wall clock, waking early when stopped."""
        now = time.monotonic()
        if self._pace_origin is None:
            self._pace_origin = (now, media_time)
            return
        due = self._pace_origin[0] + (media_time - self._pace_origin[1])
        while not self._should_end():
            remaining = due - time.monotonic()
            if remaining <= 0:
                return
            self._abort.wait(min(remaining, 0.1))


def open_frames(
    camera_id: str, options: SourceOptions, stop: threading.Event | None = None
) -> Iterator[Frame]:
    """One connection to ``options.url``, yielding sampled BGR frames.

    Ends normally at the end of a file (unless ``loop``) or when ``stop`` is set; raises
    :class:`SourceError` when the source cannot be opened, fails, times out, or a live stream
    ends. No reconnection here: that is :class:`gridwarden.edge.capture.camera_worker.CameraWorker`'s job.
    """
    return StreamReader(camera_id, options, stop).frames()
