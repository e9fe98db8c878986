"""Detector speed on this machine: YOLOX-Nano at 416, batch 1 against batch 4, and how much
the pipeline around the model (letterbox, decode, NMS, mapping back) costs next to inference.

    .venv/bin/python bench/bench_detector.py [--frames 16] [--rounds 15] [--threads N]

Batch 4 needs a dynamic-batch copy of the model, made in a temporary folder with the ``onnx``
package (a test dependency); without it only batch 1 is measured. Figures are the best round
of each step; on a shared 2-core box, rerun when ratios look off.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.detector import Detector  # noqa: E402
from tests.support.paths import CAR_CLIP, YOLOX_NANO  # noqa: E402


def read_frames(count: int) -> list[np.ndarray]:
    with av.open(str(CAR_CLIP)) as container:
        frames = [
            f.to_ndarray(format="bgr24")
            for _, f in zip(range(count), container.decode(video=0), strict=False)
        ]
    return frames


def measure(detector: Detector, frames: list[np.ndarray], batch: int, rounds: int) -> dict[str, float]:
    """Milliseconds per frame for the whole ``detect`` and for each of its three steps.

    The four measurements are interleaved round by round and the best round of each kept (as
    ``timeit`` does): on a shared box, load from other processes only ever adds time, so the
    minimum is the closest to the uncontended cost, and interleaving exposes each step to the
    same quiet moments.
    """
    groups = [frames[i : i + batch] for i in range(0, len(frames) - batch + 1, batch)]
    n = len(groups) * batch
    prepared = [detector.preprocess(g) for g in groups]
    raws = [detector.infer(t) for t, _ in prepared]
    # Each step's result is dropped before the next group, as in service: keeping every
    # tensor alive would time fresh-page faults instead of the steady state.
    steps: dict[str, Callable[[], object]] = {
        "detect": lambda: [len(detector.detect(g)) for g in groups],
        "preprocess": lambda: [len(detector.preprocess(g, reuse_buffer=True)) for g in groups],
        "inference": lambda: [len(detector.infer(t)) for t, _ in prepared],
        "postprocess": lambda: [
            len(detector.postprocess(r, tf)) for r, (_, tf) in zip(raws, prepared, strict=True)
        ],
    }
    steps["detect"]()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            samples[name].append((time.perf_counter() - start) * 1000.0 / n)
    return {name: min(values) for name, values in samples.items()}


def report(name: str, m: dict[str, float]) -> None:
    overhead = m["preprocess"] + m["postprocess"]
    print(
        f"{name:<10} detect {m['detect']:6.2f} ms/frame | inference {m['inference']:6.2f} | "
        f"pre {m['preprocess']:5.2f} | post {m['postprocess']:5.2f} | "
        f"(pre+post)/inference {overhead / m['inference']:.3f} | detect/inference {m['detect'] / m['inference']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    frames = read_frames(args.frames)
    fixed = Detector(YOLOX_NANO, intra_op_threads=args.threads)
    print(f"model {YOLOX_NANO.name} layout={fixed.layout} input={fixed.input_size} provider={fixed.provider}")
    print(f"{len(frames)} frames of {CAR_CLIP.name} ({frames[0].shape[1]}x{frames[0].shape[0]})")
    batch1 = measure(fixed, frames, 1, args.rounds)
    report("batch 1", batch1)
    sys.stdout.flush()

    try:
        from tests.detector.onnx_builders import make_batch_dynamic
    except ImportError:
        print("batch 4: skipped (install the onnx package to make a dynamic-batch copy)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        dynamic = Detector(
            make_batch_dynamic(YOLOX_NANO, Path(tmp) / "dynamic.onnx"),
            max_batch=4,
            intra_op_threads=args.threads,
        )
        batch4 = measure(dynamic, frames, 4, args.rounds)
        batch1_dyn = measure(dynamic, frames, 1, args.rounds)
    report("batch 4", batch4)
    report("b1 (dyn)", batch1_dyn)
    print(f"ratio batch4/batch1 ms per frame (detect):    {batch4['detect'] / batch1['detect']:.3f}")
    print(f"ratio batch4/batch1 ms per frame (inference): {batch4['inference'] / batch1['inference']:.3f}")
    for name, m in (("batch 1", batch1), ("batch 4", batch4)):
        overhead = (m["preprocess"] + m["postprocess"]) / m["inference"]
        print(f"pre+post as a fraction of inference, {name}: {overhead:.3f} (target <= 0.15)")


if __name__ == "__main__":
    main()
