"""Clips the review console's browser can play: H.265 evidence transcoded to H.264 on demand.

Street cameras often send H.265, and the edge cuts clips by remuxing the camera's own packets
(bit-exact, no CPU). But Chromium, as Debian ships it and as most command-centre PCs run it, does
not decode HEVC (``canPlayType('video/mp4; codecs="hvc1..."')`` is empty; only some builds with
a platform hardware decoder do). So when the console asks for a clip whose video is not H.264,
the hub transcodes it once to H.264 and keeps the result in a cache next to the evidence store;
every later view is a plain file response (with ranges) of the cached copy.

Why on demand and not on upload: most clips are never opened (cases closed from snapshots), and
a transcode costs real CPU (``bench/bench_playable.py`` on the 2-core dev box, under load:
0.14 s of CPU per second of 720p video and 0.35 s at 1080p, ten times a plain decode; a cached
view costs nothing). Why on the hub and not on the edge: the edge's CPU
is the scarce resource that sets how many cameras a box serves. The original stays the evidence:
the API (``/api/v1/evidence/{sha256}``) always serves the stored bytes, whose hash is the one in
the incident; only the console's viewing route gets the playable copy.

Bounded: sources larger than ``max_source_bytes`` or longer than ``max_frames`` are not
transcoded (served as they are), one transcode runs at a time (a burst of requests for many
HEVC clips queues instead of taking every core), and the cache is trimmed, oldest first, to
``max_cache_bytes``.

Example::

    playable = playable_clips_for(store.root)        # one per evidence store, cache in root/playable
    path, transcoded = playable.path_for(store.stat(sha256))   # the original, or its H.264 copy
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)

#: Video codecs every browser the console supports plays in MP4.
BROWSER_CODECS = frozenset({"h264"})
_CODEC_MEMO = 4096


@dataclass
class TranscodeStats:
    transcodes: int = 0
    seconds: float = 0.0  # wall time spent transcoding, in total
    cpu_seconds: float = 0.0
    media_seconds: float = 0.0  # video transcoded, in total
    cache_hits: int = 0
    refused: int = 0  # too large or too long


class PlayableClips:
    """Maps a stored clip to a file a browser can play (see the module docstring)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_cache_bytes: int = 2_000_000_000,
        max_source_bytes: int = 200_000_000,
        max_frames: int = 25 * 600,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.max_cache_bytes = max_cache_bytes
        self.max_source_bytes = max_source_bytes
        self.max_frames = max_frames
        self.stats = TranscodeStats()
        self._codecs: dict[str, str | None] = {}
        self._one_at_a_time = threading.Lock()

    def cached_path(self, sha256: str) -> Path:
        return self.cache_dir / f"{sha256}.h264.mp4"

    def path_for(self, stored: Any) -> tuple[Path, bool]:
        """(file to serve, whether it is a transcoded copy) for a ``StoredEvidence``."""
        if stored.content_type != "video/mp4":
            return stored.path, False
        codec = self._codec(stored.sha256, stored.path)
        if codec is None or codec in BROWSER_CODECS:
            return stored.path, False
        cached = self.cached_path(stored.sha256)
        if cached.is_file():
            self.stats.cache_hits += 1
            os.utime(cached)  # recently viewed: trimmed last
            return cached, True
        if stored.size > self.max_source_bytes:
            self.stats.refused += 1
            log.warning(
                "clip %s (%d bytes, %s) too large to transcode", stored.sha256[:12], stored.size, codec
            )
            return stored.path, False
        with self._one_at_a_time:
            if cached.is_file():  # another request made it while this one waited
                self.stats.cache_hits += 1
                return cached, True
            if not self._transcode(stored.path, cached, stored.sha256, codec):
                return stored.path, False
            self._trim()
        return cached, True

    def _codec(self, sha256: str, path: Path) -> str | None:
        if sha256 not in self._codecs:
            if len(self._codecs) >= _CODEC_MEMO:
                self._codecs.pop(next(iter(self._codecs)))
            try:
                with av.open(str(path)) as container:
                    streams = container.streams.video
                    self._codecs[sha256] = streams[0].codec_context.name if streams else None
            except (av.error.FFmpegError, OSError) as exc:
                log.warning("clip %s cannot be probed: %s", sha256[:12], exc)
                self._codecs[sha256] = None
        return self._codecs[sha256]

    def _transcode(self, source: Path, target: Path, sha256: str, codec: str) -> bool:
        tmp = target.with_suffix(".part")
        wall0, cpu0 = time.perf_counter(), time.process_time()
        frames = 0
        try:
            with av.open(str(source)) as src, av.open(str(tmp), mode="w", format="mp4",
                                                       options={"movflags": "+faststart"}) as dst:  # fmt: skip
                in_stream = src.streams.video[0]
                rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
                out = dst.add_stream("libx264", rate=rate)
                out.width, out.height = in_stream.codec_context.width, in_stream.codec_context.height
                out.pix_fmt = "yuv420p"
                out.time_base = in_stream.time_base
                out.options = {"preset": "veryfast", "crf": "23"}
                for frame in src.decode(in_stream):
                    frames += 1
                    if frames > self.max_frames:
                        raise ValueError(f"longer than {self.max_frames} frames")
                    frame.pict_type = av.video.frame.PictureType.NONE
                    for packet in out.encode(frame):
                        dst.mux(packet)
                for packet in out.encode():
                    dst.mux(packet)
                tb = in_stream.time_base
                media_s = (
                    float(in_stream.duration * tb) if in_stream.duration and tb else frames / float(rate)
                )
            os.replace(tmp, target)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            tmp.unlink(missing_ok=True)
            self.stats.refused += 1
            log.warning("clip %s (%s) not transcoded: %s", sha256[:12], codec, exc)
            return False
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        self.stats.transcodes += 1
        self.stats.seconds += wall
        self.stats.cpu_seconds += cpu
        self.stats.media_seconds += media_s
        log.info(
            "clip %s: %s -> h264 for the browser, %d frames (%.1f s of video) in %.2f s (%.2f s CPU)",
            sha256[:12], codec, frames, media_s, wall, cpu,
        )  # fmt: skip
        return True

    def _trim(self) -> None:
        files = sorted(self.cache_dir.glob("*.h264.mp4"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        while files and total > self.max_cache_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)


_BY_ROOT: dict[Path, PlayableClips] = {}
_BY_ROOT_LOCK = threading.Lock()


def playable_clips_for(evidence_root: Path) -> PlayableClips:
    """The one :class:`PlayableClips` of an evidence store (its cache in ``<root>/playable``);
    one per root so its one-at-a-time lock and statistics cover every request."""
    root = Path(evidence_root)
    with _BY_ROOT_LOCK:
        if root not in _BY_ROOT:
            _BY_ROOT[root] = PlayableClips(root / "playable")
        return _BY_ROOT[root]
