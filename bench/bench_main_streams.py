"""Streams per box with street-camera streams: 1080p25 record + 640x360 detect, over real RTSP.

For N cameras, one GStreamer RTSP server on loopback serves N copies of car-detection.mp4
re-encoded as a street camera sends it: a 1920x1080 25 fps main stream (about 4 Mbit/s) and
a 640x360 25 fps sub-stream (about 0.5 Mbit/s), H.264, a keyframe every 2 s. One
:class:`EdgeRunner` reads them with the yolox_nano detector at 2 analysis fps, evidence on, each
camera with an illegal-parking zone and a static-object zone (dwell 60 s, so the decode budget
may decode keyframes only).

Three set-ups, same N, same process:

* ``split`` (what this issue adds): ``inputs`` detect = sub-stream, record = main stream (its
  packets go to the evidence ring, never decoded); decode budget ``auto``;
* ``split-all``: the same with ``keyframes_only: false`` (every sub-stream frame decoded, 2 fps
  analysed), to separate the two savings;
* ``baseline``: one URL, the 1080p main stream, every frame decoded (``keyframes_only: false``),
  as an edge without sub-streams would run.

A run keeps up when each camera is analysed at >= 90 % of the rate it should get (2 fps, or one
frame per GOP when the decode budget chose keyframes) and lag does not grow (mean lag of the
last third minus the first third below 0.5 s). Printed: analysed fps per camera, decode mode,
p50/p95 lag and its growth, CPU cores used by the edge and by the RTSP server apart, and the
machine's load average (the dev box is shared: other processes' load makes every figure worse).

    GRIDWARDEN_SHARED=/work/shared .venv/bin/python bench/bench_main_streams.py --counts 48 --seconds 30

The encoded streams are cached in ``--media-dir`` (default: a folder in the system temp).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.model_loader import build_detector  # noqa: E402
from gridwarden.edge.config import load_edge_config_text  # noqa: E402
from gridwarden.edge.runner import EdgeRunner  # noqa: E402
from tests.support.paths import CAR_CLIP, YOLOX_NANO  # noqa: E402
from tests.support.rtsp_server import RtspServer  # noqa: E402

ZONES = """    zones:
      - id: kerb
        polygon: [[0.25, 0.62], [0.70, 0.62], [0.70, 0.99], [0.25, 0.99]]
        rules: [{type: illegal_parking, classes: [vehicle], dwell_s: 60}]
      - id: pavement
        polygon: [[0.02, 0.05], [0.24, 0.05], [0.24, 0.60], [0.02, 0.60]]
        rules: [{type: static_object, dwell_s: 60}]"""


def encode(out: Path, size: tuple[int, int], bit_rate: int) -> Path:
    """car-detection.mp4 scaled to ``size`` at 25 fps (each 12.5 fps frame twice), GOP 2 s."""
    if out.exists():
        return out
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(CAR_CLIP)) as src, av.open(str(tmp), mode="w") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.bit_rate = bit_rate
        stream.options = {"preset": "ultrafast", "g": "50", "keyint_min": "50", "sc_threshold": "0"}
        pts = 0
        for frame in src.decode(video=0):
            image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_LINEAR)
            for _ in range(2):
                out_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                out_frame.pts, out_frame.time_base = pts, Fraction(1, 25)
                pts += 1
                for packet in stream.encode(out_frame):
                    dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.rename(out)
    return out


SETUPS = ("split", "split-all", "baseline")


def config_for(cams: list[tuple[str, str]], setup: str, data_dir: Path) -> str:
    entries = []
    for i, (sub, main) in enumerate(cams):
        if setup.startswith("split"):
            source = f"    inputs:\n      - {{url: {sub}, roles: [detect]}}\n      - {{url: {main}, roles: [record]}}"
            if setup == "split-all":
                source += "\n    keyframes_only: false"
        else:
            source = f"    url: {main}\n    keyframes_only: false"
        entries.append(f"  - id: cam-{i:02d}\n{source}\n    analysis_fps: 2\n{ZONES}")
    return (
        f"edge_id: bench\ndata_dir: {data_dir}\nmodel: {{path: {YOLOX_NANO}, input_size: 416, backend: auto}}\n"
        f"evidence: {{enabled: true, pre_roll_s: 10, post_roll_s: 10}}\ncameras:\n"
        + "\n".join(entries)
        + "\n"
    )


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid: int) -> float:
    """CPU seconds of another process (utime + stime from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(n: int, setup: str, media: tuple[Path, Path], seconds: float, warmup: float) -> dict[str, object]:
    sub, main = media
    mounts = {f"sub{i}": sub for i in range(n)} | {f"main{i}": main for i in range(n)}
    server = RtspServer(mounts, loop=4)  # 2 min of stream
    server.start()
    assert server.proc is not None
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            cams = [(server.url(f"sub{i}"), server.url(f"main{i}")) for i in range(n)]
            cfg = load_edge_config_text(config_for(cams, setup, Path(data_dir)))
            runner = EdgeRunner(cfg, detector=build_detector(cfg), sink=lambda e: None)
            runner.start()
            time.sleep(warmup)
            start_counts = {k: c.analysed for k, c in runner.counters.items()}
            c0, s0, t0 = self_cpu(), proc_cpu(server.proc.pid), time.monotonic()
            samples: list[list[float]] = []
            statuses = []
            while time.monotonic() - t0 < seconds:
                time.sleep(1.0)
                statuses = runner.camera_statuses()
                samples.append([s.lag_s for s in statuses if s.lag_s is not None])
            elapsed = time.monotonic() - t0
            edge_cores = (self_cpu() - c0) / elapsed
            server_cores = (proc_cpu(server.proc.pid) - s0) / elapsed
            analysed = [runner.counters[k].analysed - start_counts[k] for k in runner.counters]
            intervals = [b.keyframe_interval_s for b in runner.decode_budgets.values()]
            modes = [b.mode for b in runner.decode_budgets.values()]
            record_kbps = [s.bitrate_kbps for st in statuses for s in st.streams if "record" in s.roles]
            runner.stop()
        finally:
            server.stop()
    # The rate each camera should get: 2 fps, or one frame per GOP on keyframes.
    expected = [
        min(2.0, 1.0 / gop) if mode == "keyframes_only" and gop else 2.0
        for mode, gop in zip(modes, intervals, strict=True)
    ]
    flat = np.array([x for s in samples for x in s] or [np.nan])
    third = max(1, len(samples) // 3)
    first = np.mean([x for s in samples[:third] for x in s] or [np.nan])
    last = np.mean([x for s in samples[-third:] for x in s] or [np.nan])
    fps = np.array(analysed) / elapsed
    growth = float(last - first)
    keeps_up = bool(np.all(fps >= 0.9 * np.array(expected)) and growth < 0.5)
    return {
        "fps": float(fps.mean()),
        "fps_min_ratio": float((fps / np.array(expected)).min()),
        "keyframes": sum(m == "keyframes_only" for m in modes),
        "lag_p50": float(np.nanpercentile(flat, 50)),
        "lag_p95": float(np.nanpercentile(flat, 95)),
        "growth": growth,
        "edge": edge_cores,
        "server": server_cores,
        "record_kbps": float(np.mean(record_kbps)) if record_kbps else 0.0,
        "keeps_up": keeps_up,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[48])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--media-dir", type=Path, default=Path(tempfile.gettempdir()) / "gw-bench-streams")
    ap.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    args = ap.parse_args()
    args.media_dir.mkdir(parents=True, exist_ok=True)
    media = (
        encode(args.media_dir / "sub-640x360-25.mp4", (640, 360), 500_000),
        encode(args.media_dir / "main-1080p-25.mp4", (1920, 1080), 4_000_000),
    )
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"{'N':>3} {'set-up':>9} {'fps/cam':>7} {'min%':>5} {'keyfr':>5} {'lag p50':>7} {'lag p95':>7} "
        f"{'growth':>6} {'edge':>5} {'server':>6} {'rec kb/s':>8} {'load':>5} keeps up"
    )
    for n in args.counts:
        for setup in args.setups:
            r = run_one(n, setup, media, args.seconds, args.warmup)
            print(
                f"{n:3d} {setup:>9} {r['fps']:7.2f} {100 * r['fps_min_ratio']:5.0f} "  # type: ignore[operator]
                f"{r['keyframes']:5d} {r['lag_p50']:7.2f} {r['lag_p95']:7.2f} {r['growth']:6.2f} "
                f"{r['edge']:5.2f} {r['server']:6.2f} {r['record_kbps']:8.0f} {os.getloadavg()[0]:5.1f} "
                f"{'yes' if r['keeps_up'] else 'NO'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
