"""What the motion gate saves: its cost per frame against YOLOX-Nano's, and how many frames it skips.

Run from the repository root::

    .venv/bin/python bench/bench_gate.py [--frames 200]

Prints per-frame costs (median of repeated runs, onnxruntime on the CPU, plain session at 416)
and the gated fraction on car-detection.mp4 sampled at 2 fps and on a still frame held for 60 s
(sensor noise added, encoded with libx264 and decoded again so compression flicker is real).
Also prints the per-frame cost of the camera-motion estimator and the static-object detector,
the other two per-frame lookers, for the same budget comparison.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.camera_motion import CameraMotionEstimator  # noqa: E402
from gridwarden.edge.analytics.gate import MotionGate  # noqa: E402
from gridwarden.edge.analytics.rules.static_objects import StaticForegroundDetector  # noqa: E402

SHARED = Path(os.environ.get("GRIDWARDEN_SHARED", REPO.parent / "shared")).resolve()
MODEL = SHARED / "models" / "yolox_nano_coco.onnx"
CLIP = SHARED / "media" / "car-detection.mp4"


def decode(path: Path | io.BytesIO) -> list[tuple[float, np.ndarray]]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        return [
            (float(f.pts * stream.time_base), f.to_ndarray(format="bgr24")) for f in container.decode(stream)
        ]


def still_clip(image: np.ndarray, seconds: int, fps: int) -> list[tuple[float, np.ndarray]]:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        stream.options = {"crf": "28", "preset": "ultrafast"}
        for _ in range(seconds * fps):
            noisy = cv2.add(image, rng.normal(0, 3, image.shape).astype(np.int16), dtype=cv2.CV_8U)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buffer.seek(0)
    return [(i / fps, img) for i, (_, img) in enumerate(decode(buffer))]


def letterbox_416(image: np.ndarray) -> np.ndarray:
    """YOLOX input: BGR 0-255 float, resized to fit 416, padded with 114 at the bottom/right."""
    scale = min(416 / image.shape[0], 416 / image.shape[1])
    h, w = int(round(image.shape[0] * scale)), int(round(image.shape[1] * scale))
    canvas = np.full((416, 416, 3), 114, np.uint8)
    canvas[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)


def per_frame_ms(fn, frames: list[tuple[float, np.ndarray]], repeats: int = 3) -> float:  # noqa: ANN001
    """Median over ``repeats`` passes; media time keeps increasing across passes (12.5 fps)."""
    runs, k = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        for _, image in frames:
            fn(image, k / 12.5)
            k += 1
        runs.append((time.perf_counter() - start) * 1000 / len(frames))
    return statistics.median(runs)


def gated_fraction(frames: list[tuple[float, np.ndarray]]) -> tuple[float, int]:
    gate = MotionGate()
    for t, image in frames:
        gate.should_detect(image, t)
    return gate.gated_count / len(frames), len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames per timing run")
    args = parser.parse_args()

    clip = decode(CLIP)
    timing_frames = clip[: args.frames]

    options = ort.SessionOptions()
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: letterbox_416(clip[0][1])})  # warm-up
    detector_ms = per_frame_ms(
        lambda img, t: session.run(None, {name: letterbox_416(img)}), timing_frames[:60]
    )

    gate = MotionGate()
    gate_ms = per_frame_ms(gate.should_detect, timing_frames)
    motion = CameraMotionEstimator(min_interval_s=0.0)  # compare every frame: worst case
    motion_ms = per_frame_ms(motion.update, timing_frames)
    static = StaticForegroundDetector()
    static_ms = per_frame_ms(static.update, timing_frames)

    two_fps = [(t, img) for i, (t, img) in enumerate(clip) if i % 6 == 0]  # 12.5 fps / 6 ~ 2 fps
    still = still_clip(clip[0][1], seconds=60, fps=2)

    print(f"machine: {os.cpu_count()} CPUs, onnxruntime {ort.__version__}, OpenCV {cv2.__version__}")
    print(f"yolox_nano@416 (letterbox + run), CPU : {detector_ms:7.2f} ms/frame")
    print(
        f"MotionGate.should_detect (768x432)     : {gate_ms:7.3f} ms/frame  ratio {gate_ms / detector_ms:.3f}"
    )
    print(
        f"CameraMotionEstimator.update           : {motion_ms:7.3f} ms/frame  ratio {motion_ms / detector_ms:.3f}"
    )
    print(
        f"StaticForegroundDetector.update        : {static_ms:7.3f} ms/frame  ratio {static_ms / detector_ms:.3f}"
    )
    for label, frames in (("car-detection.mp4 @2 fps", two_fps), ("still frame 60 s @2 fps, h264", still)):
        fraction, n = gated_fraction(frames)
        print(f"gated on {label:30s}: {fraction:6.1%} of {n} frames")
    fraction, _ = gated_fraction(two_fps)
    saved = fraction * detector_ms - gate_ms
    print(
        f"net saving on the car clip            : {saved:7.2f} ms/frame ({saved / detector_ms:.0%} of detector)"
    )


if __name__ == "__main__":
    main()
