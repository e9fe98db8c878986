"""Pipeline overhead beyond inference, per analysed frame (target: at most 15 % of inference).

One replay of a clip with the motion gate OFF (so every analysed frame runs the detector).
The detector's ``infer`` (the onnxruntime call alone) is timed in place; everything else the
pipeline spends per analysed frame is overhead, reported in two parts:

* analysis overhead: letterbox, decode of outputs, NMS, tracking, zones, rules (CPU time);
* decode: PyAV decoding of every packet plus colour conversion of the sampled frames.

Printed as ratios to inference time. Run::

    .venv/bin/python bench/bench_pipeline_overhead.py [--clip ../shared/media/car-detection.mp4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("GRIDWARDEN_SHARED", REPO.parent / "shared"))

from gridwarden.edge.analytics.camera_analytics import CameraAnalytics  # noqa: E402
from gridwarden.edge.analytics.model_loader import build_detector  # noqa: E402
from gridwarden.edge.capture.sources import SourceOptions, open_frames  # noqa: E402
from gridwarden.edge.config import load_edge_config_text  # noqa: E402


def thread_cpu() -> float:
    return time.thread_time()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=SHARED / "media" / "car-detection.mp4")
    ap.add_argument("--model", type=Path, default=SHARED / "models" / "yolox_nano_coco.onnx")
    ap.add_argument("--analysis-fps", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg = load_edge_config_text(
        f"""
edge_id: bench
model: {{path: {args.model}}}
cameras:
  - id: cam
    url: {args.clip}
    analysis_fps: {args.analysis_fps}
    motion_gate: {{enabled: false}}
    zones:
      - id: z
        polygon: [[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]]
        rules:
          - {{type: illegal_parking, classes: [any], dwell_s: 60}}
          - {{type: occupied_space, classes: [any], coverage: 0.3, dwell_s: 60}}
"""
    )
    detector = build_detector(cfg)
    assert detector is not None
    infer_wall = 0.0
    original_infer = detector.infer

    def timed_infer(tensors):  # type: ignore[no-untyped-def]
        nonlocal infer_wall
        t = time.perf_counter()
        out = original_infer(tensors)
        infer_wall += time.perf_counter() - t
        return out

    detector.infer = timed_infer  # type: ignore[method-assign]
    rows = []
    for _ in range(args.repeat):
        analytics = CameraAnalytics(cfg.cameras[0], cfg, detector.class_names)
        infer_wall = 0.0
        decode_wall = analysis_wall = 0.0
        frames = 0
        source = iter(open_frames("cam", SourceOptions(url=str(args.clip), analysis_fps=args.analysis_fps)))
        while True:
            t0 = time.perf_counter()
            frame = next(source, None)
            t1 = time.perf_counter()
            if frame is None:
                break
            decode_wall += t1 - t0
            analytics.process(frame, detector.detect_one(frame.image))
            analysis_wall += time.perf_counter() - t1
            frames += 1
        overhead = analysis_wall - infer_wall
        rows.append((frames, infer_wall / frames, overhead / frames, decode_wall / frames))
    rows.sort(key=lambda r: r[1])
    frames, inf, over, dec = rows[len(rows) // 2]  # median run by inference time
    print(f"clip {args.clip.name}, model {args.model.name} ({detector.provider}), {frames} analysed frames")
    print(f"inference (onnxruntime run)            {1000 * inf:7.2f} ms/frame   1.000")
    print(
        f"analysis overhead (pre/post/track/rules) {1000 * over:5.2f} ms/frame   {over / inf:.3f} of inference"
    )
    print(f"decode + colour conversion             {1000 * dec:7.2f} ms/frame   {dec / inf:.3f} of inference")
    print(f"total overhead beyond inference                        {(over + dec) / inf:.3f} of inference")


if __name__ == "__main__":
    main()
