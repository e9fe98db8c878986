"""Streams per box: how many real-time RTSP cameras one edge keeps up with at 2 analysis fps.

For each N, a real RTSP server (GStreamer, on loopback) serves car-detection.mp4 (768x432,
12.5 fps, looping) on N mount points at real-time rate; one :class:`EdgeRunner` reads all N
with the yolox_nano detector, motion gate on, one illegal-parking zone per camera. After a
warm-up, every second we sample each camera's lag (source lag + wait + analysis). A run keeps
up when the analysed rate per camera is at least 90 % of the target and lag does not grow
(mean lag of the last third minus the first third below 0.5 s). Printed per N: analysed fps,
p50/p95 lag, lag growth, detector frames per second, CPU use; then the largest N that keeps up.

The RTSP server runs on the same 2 cores (a real box only receives), so the figures are
pessimistic. Run::

    .venv/bin/python bench/bench_streams.py --counts 4 8 12 16 20 --seconds 40
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.model_loader import build_detector  # noqa: E402
from gridwarden.edge.config import load_edge_config_text  # noqa: E402
from gridwarden.edge.runner import EdgeRunner  # noqa: E402
from tests.support.paths import CAR_CLIP, YOLOX_NANO  # noqa: E402
from tests.support.rtsp_server import RtspServer  # noqa: E402


def config_for(urls: list[str], analysis_fps: float) -> str:
    cams = "\n".join(
        f"""  - id: cam-{i:02d}
    url: {url}
    analysis_fps: {analysis_fps}
    zones:
      - id: z
        polygon: [[0.25, 0.62], [0.70, 0.62], [0.70, 0.99], [0.25, 0.99]]
        rules: [{{type: illegal_parking, classes: [vehicle], dwell_s: 60}}]"""
        for i, url in enumerate(urls)
    )
    return f"edge_id: bench\nmodel: {{path: {YOLOX_NANO}, input_size: 416}}\ncameras:\n{cams}\n"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(n: int, seconds: float, warmup: float, analysis_fps: float) -> dict[str, float]:
    server = RtspServer({f"cam{i}": CAR_CLIP for i in range(n)}, loop=8)  # 4 min of stream
    server.start()
    try:
        cfg = load_edge_config_text(config_for([server.url(f"cam{i}") for i in range(n)], analysis_fps))
        runner = EdgeRunner(cfg, detector=build_detector(cfg), sink=lambda e: None)
        runner.start()
        time.sleep(warmup)
        start_counts = {k: c.analysed for k, c in runner.counters.items()}
        start_det = sum(c.detector_frames for c in runner.counters.values())
        c0, t0 = cpu_seconds(), time.monotonic()
        samples: list[list[float]] = []
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            lags = [s.lag_s for s in runner.camera_statuses() if s.lag_s is not None]
            samples.append(lags)
        elapsed, cpu = time.monotonic() - t0, cpu_seconds() - c0
        analysed = [runner.counters[k].analysed - start_counts[k] for k in runner.counters]
        det = sum(c.detector_frames for c in runner.counters.values()) - start_det
        runner.stop()
    finally:
        server.stop()
    flat = np.array([x for s in samples for x in s] or [np.nan])
    third = max(1, len(samples) // 3)
    first = np.mean([x for s in samples[:third] for x in s] or [np.nan])
    last = np.mean([x for s in samples[-third:] for x in s] or [np.nan])
    per_cam_fps = float(np.mean(analysed)) / elapsed
    growth = float(last - first)
    return {
        "n": n,
        "fps_per_cam": per_cam_fps,
        "lag_p50": float(np.nanpercentile(flat, 50)),
        "lag_p95": float(np.nanpercentile(flat, 95)),
        "lag_growth": growth,
        "det_per_s": det / elapsed,
        "cpu_cores": cpu / elapsed,
        "keeps_up": float(per_cam_fps >= 0.9 * analysis_fps and growth < 0.5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[4, 8, 12, 16, 20])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--analysis-fps", type=float, default=2.0)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; clip {CAR_CLIP.name}; {args.analysis_fps:g} analysis fps per camera")
    print(
        f"{'N':>3} {'fps/cam':>8} {'lag p50':>8} {'lag p95':>8} {'growth':>7} {'det/s':>6} {'cores':>6} keeps up"
    )
    best = None
    for n in args.counts:
        r = run_one(n, args.seconds, args.warmup, args.analysis_fps)
        print(
            f"{n:3d} {r['fps_per_cam']:8.2f} {r['lag_p50']:8.2f} {r['lag_p95']:8.2f} {r['lag_growth']:7.2f}"
            f" {r['det_per_s']:6.1f} {r['cpu_cores']:6.2f} {'yes' if r['keeps_up'] else 'NO'}",
            flush=True,
        )
        if r["keeps_up"]:
            best = r
    if best:
        print(f"largest N that keeps up: {best['n']:.0f} (p95 lag {best['lag_p95']:.2f} s)")
    else:
        print("no N kept up")


if __name__ == "__main__":
    main()
