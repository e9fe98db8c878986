"""Inference backends on this machine: onnxruntime against OpenVINO (f32, and bf16 for
reference), yolox_nano at 416 and yolo11n at 640, one and two threads.

    GRIDWARDEN_SHARED=/work/shared .venv/bin/python bench/bench_backends.py [--runs 30]

Prints per configuration: median ms per frame (inference only; pre/post-processing are the
same code for every backend), and analysed frames per CPU core-second (frames divided by the
process CPU time spent, so a runtime that spins extra threads pays for them). Ratios are
against onnxruntime in the same process, blocks of calls alternated round by round so that load
from other processes on a shared box hits all alike. OpenVINO rows are skipped when the package is
not installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.detector import Detector  # noqa: E402
from gridwarden.edge.analytics.detector.backends import OpenVinoBackend, openvino_installed  # noqa: E402
from gridwarden.models.quantize import sample_frames  # noqa: E402
from tests.support.paths import CAR_CLIP, YOLO11N_UNTRAINED, YOLOX_NANO  # noqa: E402

ROUNDS = 3


def _variants(model: Path, threads: int) -> dict[str, Detector]:
    out = {"onnxruntime": Detector(model, backend="onnxruntime", intra_op_threads=threads)}
    if openvino_installed():
        out["openvino f32"] = Detector(model, backend="openvino", intra_op_threads=threads)
        bf16 = Detector(model, backend="openvino", intra_op_threads=threads)
        backend = OpenVinoBackend(model, threads, precision="bf16")
        backend.prepare(*bf16.input_size)
        bf16._backend = backend  # noqa: SLF001  # reference only: not an offered configuration
        out["openvino bf16"] = bf16
    return out


def measure(model: Path, threads: int, runs: int, images: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """name -> (median ms per frame, frames per CPU core-second)."""
    detectors = _variants(model, threads)
    tensors = {name: d.preprocess(images)[0] for name, d in detectors.items()}
    for name, d in detectors.items():  # warm-up
        for t in tensors[name][:3]:
            d.infer([t])
    wall: dict[str, list[float]] = {n: [] for n in detectors}
    cpu: dict[str, float] = dict.fromkeys(detectors, 0.0)
    # Blocks of calls, alternated: interleaving single calls would let onnxruntime's
    # spin-waiting pool threads steal the cores from the next backend's call.
    block = max(1, runs // ROUNDS)
    for _ in range(ROUNDS):
        for name, d in detectors.items():
            time.sleep(0.05)  # let the previous runtime's threads go idle
            c0 = time.process_time()
            for i in range(block):
                w0 = time.perf_counter()
                d.infer([tensors[name][i % len(images)]])
                wall[name].append(time.perf_counter() - w0)
            cpu[name] += time.process_time() - c0
    count = block * ROUNDS
    return {
        n: (statistics.median(wall[n]) * 1000.0, count / cpu[n] if cpu[n] else float("nan"))
        for n in detectors
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    images = list(sample_frames(CAR_CLIP, 8))
    print(f"openvino installed: {openvino_installed()}")
    for model in (YOLOX_NANO, YOLO11N_UNTRAINED):
        for threads in args.threads:
            results = measure(model, threads, args.runs, images)
            base_ms, base_fpc = results["onnxruntime"]
            for name, (ms, fpc) in results.items():
                print(
                    f"{model.name:24s} threads={threads} {name:14s} {ms:7.2f} ms/frame (x{base_ms / ms:4.2f})  "
                    f"{fpc:6.1f} frames/core-s (x{fpc / base_fpc:4.2f})"
                )


if __name__ == "__main__":
    main()
