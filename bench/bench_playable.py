"""What it costs the hub to make an H.265 evidence clip playable in Chromium (H.264 transcode).

    GRIDWARDEN_SHARED=/work/shared .venv/bin/python bench/bench_playable.py [--seconds 10]

Builds H.265 clips from the car clip (scaled to 1280x720 and 1920x1080, ``--seconds`` long,
libx265 as a camera would send), then times :class:`gridwarden.hub.playable.PlayableClips` on
each: the first view (transcode) and a second view (cache hit). The baseline, in the same
process, is decoding the same clip alone: the part of the cost no transcode can avoid.
Figures: wall and CPU seconds per second of video, and the ratio to the decode baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import av

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.hub.playable import PlayableClips  # noqa: E402
from tests.support.main_streams import build_main_stream  # noqa: E402
from tests.support.paths import CAR_CLIP  # noqa: E402

FPS = 12.5


def decode_only(path: Path) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            pass
    return time.perf_counter() - wall0, time.process_time() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    frames = int(args.seconds * FPS)
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((1280, 720), (1920, 1080)):
            clip = build_main_stream(
                CAR_CLIP, Path(tmp) / f"{size[1]}p.mp4", size, "libx265", max_frames=frames
            )
            media_s = frames / FPS
            base_wall, base_cpu = decode_only(clip)
            playable = PlayableClips(Path(tmp) / f"cache-{size[1]}")
            stored = SimpleNamespace(
                sha256=f"{size[1]:064d}", path=clip, size=clip.stat().st_size, content_type="video/mp4"
            )
            wall0, cpu0 = time.perf_counter(), time.process_time()
            _, transcoded = playable.path_for(stored)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            assert transcoded
            hit0 = time.perf_counter()
            playable.path_for(stored)
            hit_ms = (time.perf_counter() - hit0) * 1000
            out = playable.cached_path(stored.sha256).stat().st_size
            print(
                f"{size[0]}x{size[1]} H.265, {media_s:.0f} s ({stored.size / 1e6:.1f} MB -> {out / 1e6:.1f} MB H.264): "
                f"transcode {wall / media_s:.2f} s wall, {cpu / media_s:.2f} s CPU per video second "
                f"(x{cpu / base_cpu:.1f} the decode-only baseline of {base_cpu / media_s:.2f} s CPU/s); "
                f"cached view {hit_ms:.1f} ms"
            )


if __name__ == "__main__":
    main()
