"""Same clip, same model, one process: ultralytics ``YOLO(model).track(...)`` versus Gridwarden.

Run (needs the benchmark virtualenv, which has torch and ultralytics)::

    bash bench/setup_ultralytics_venv.sh
    .venv-bench/bin/python bench/bench_vs_ultralytics.py [--clip ../shared/media/car-detection.mp4]

Both sides use ../shared/models/yolo11n_untrained.onnx at 640 (the ultralytics ONNX layout;
its detections are meaningless but its compute is the released YOLO11n's), analyse the clip at
the same rate (ultralytics ``vid_stride`` = source fps / analysis fps), and track. Printed:
wall time for the whole clip, CPU-ms per analysed frame, detector calls, and the ratios.
Gridwarden runs twice: motion gate off (same detector calls as the baseline) and on (default).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("GRIDWARDEN_SHARED", REPO.parent / "shared"))


def cpu_seconds() -> float:
    """User + system CPU of this process and its threads (onnxruntime and torch use threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_ultralytics(model: Path, clip: Path, stride: int) -> dict[str, float]:
    from ultralytics import YOLO

    yolo = YOLO(str(model), task="detect")
    calls = 0
    c0, t0 = cpu_seconds(), time.perf_counter()
    for _ in yolo.track(
        source=str(clip), vid_stride=stride, stream=True, verbose=False, imgsz=640, device="cpu"
    ):
        calls += 1
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {
        "wall_s": wall,
        "cpu_ms_per_frame": 1000 * cpu / max(calls, 1),
        "detector_calls": calls,
        "frames": calls,
    }


def run_gridwarden(model: Path, clip: Path, analysis_fps: float, gate: bool) -> dict[str, float]:
    from gridwarden.edge.config import load_edge_config_text
    from gridwarden.edge.replay import ReplayStats, replay

    cfg = load_edge_config_text(
        f"""
edge_id: bench
model: {{path: {model}, input_size: 640}}
cameras:
  - id: cam
    url: {clip}
    analysis_fps: {analysis_fps}
    motion_gate: {{enabled: {str(gate).lower()}}}
    zones:
      - id: z
        polygon: [[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]]
        rules: [{{type: illegal_parking, classes: [any], dwell_s: 60}}]
"""
    )
    stats = ReplayStats()
    c0, t0 = cpu_seconds(), time.perf_counter()
    for _ in replay(clip, cfg, stats=stats):
        pass
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {
        "wall_s": wall,
        "cpu_ms_per_frame": 1000 * cpu / max(stats.frames, 1),
        "detector_calls": stats.detector_calls,
        "frames": stats.frames,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=SHARED / "media" / "car-detection.mp4")
    ap.add_argument("--model", type=Path, default=SHARED / "models" / "yolo11n_untrained.onnx")
    ap.add_argument("--analysis-fps", type=float, default=2.0)
    args = ap.parse_args()
    import av

    with av.open(str(args.clip)) as c:
        fps = float(c.streams.video[0].average_rate)
    stride = max(1, round(fps / args.analysis_fps))
    print(
        f"clip {args.clip.name}: {fps:g} fps; analysis {args.analysis_fps:g} fps; ultralytics vid_stride={stride}"
    )
    results = {
        "ultralytics track": run_ultralytics(args.model, args.clip, stride),
        "gridwarden (gate off)": run_gridwarden(args.model, args.clip, args.analysis_fps, gate=False),
        "gridwarden (gate on)": run_gridwarden(args.model, args.clip, args.analysis_fps, gate=True),
    }
    base = results["ultralytics track"]
    print(
        f"{'':24} {'wall s':>8} {'CPU ms/frame':>13} {'det calls':>10} {'frames':>7} {'wall ratio':>11} {'CPU ratio':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:24} {r['wall_s']:8.2f} {r['cpu_ms_per_frame']:13.1f} {r['detector_calls']:10.0f} {r['frames']:7.0f}"
            f" {r['wall_s'] / base['wall_s']:11.2f} {r['cpu_ms_per_frame'] / base['cpu_ms_per_frame']:10.2f}"
        )


if __name__ == "__main__":
    main()
