"""What frame sampling and keyframes-only decoding save, in CPU time per second of video.

Modes, all on the same clip (default ``../shared/media/car-detection.mp4``, 12.5 fps, 30 s):

* ``decode-all + convert-all``: every frame decoded and converted to a BGR numpy array, what a
  naive ``for frame in container.decode(...)`` + ``to_ndarray`` loop costs.
* ``decode-all + convert-sampled``: every packet decoded (H.264 needs it) but only frames on
  the analysis grid (``--fps``, default 2) converted: what ``open_frames`` does by default.
* ``keyframes-only``: ``skip_frame = "NONKEY"``, only keyframes decoded and converted.
* ``open_frames (library)``: the real code path with default options, to check that it costs
  what the raw ``convert-sampled`` loop costs.

CPU time is ``time.process_time()`` (all threads, so FFmpeg's decoder threads count), the
median of ``--repeat`` runs. Run: ``.venv/bin/python bench/bench_decode.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridwarden.edge.capture.sources import AnalysisSampler, SourceOptions, open_frames, probe  # noqa: E402

DEFAULT_CLIP = REPO_ROOT.parent / "shared" / "media" / "car-detection.mp4"


def decode(path: Path, *, keep: Callable[[float], bool], keyframes_only: bool = False) -> int:
    """Decode ``path``; convert to BGR only the frames ``keep`` accepts. Returns frames converted."""
    converted = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            if keep(float(frame.time or 0.0)):
                frame.to_ndarray(format="bgr24")
                converted += 1
    return converted


def measure(run: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Median CPU seconds of ``repeat`` runs, and the frame count the run reported."""
    run()  # warm-up: page cache, codec initialisation
    samples = []
    count = 0
    for _ in range(repeat):
        started = time.process_time()
        count = run()
        samples.append(time.process_time() - started)
    return statistics.median(samples), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--fps", type=float, default=2.0, help="analysis rate for the sampled modes")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.clip.is_file():
        parser.error(f"clip not found: {args.clip}")

    info = probe(str(args.clip))
    clip_s = float(info["duration_s"])
    modes: dict[str, Callable[[], int]] = {
        "decode-all + convert-all": lambda: decode(args.clip, keep=lambda t: True),
        f"decode-all + convert-sampled ({args.fps:g} fps)": lambda: decode(
            args.clip, keep=AnalysisSampler(args.fps).keep
        ),
        "keyframes-only": lambda: decode(args.clip, keep=lambda t: True, keyframes_only=True),
        "open_frames (library, defaults)": lambda: sum(
            1 for _ in open_frames("bench", SourceOptions(url=str(args.clip), analysis_fps=args.fps))
        ),
    }

    print(
        f"clip: {args.clip.name}  {info['width']}x{info['height']} {info['codec']} "
        f"{info['fps']:g} fps, {info['frames']} frames, {clip_s:.2f} s; median of {args.repeat} runs"
    )
    print(f"{'mode':<42} {'frames out':>10} {'CPU ms / clip-s':>16} {'vs convert-all':>15}")
    baseline: float | None = None
    for name, run in modes.items():
        cpu_s, frames = measure(run, args.repeat)
        per_clip_s = 1000 * cpu_s / clip_s
        baseline = baseline or per_clip_s
        print(f"{name:<42} {frames:>10} {per_clip_s:>16.2f} {per_clip_s / baseline:>14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
