"""INT8 by OpenVINO's post-training quantisation (NNCF): agreement with FP32 and speed.

    GRIDWARDEN_SHARED=/work/shared .venv/bin/python bench/bench_int8_nncf.py [--frames 60]

Needs ``pip install nncf`` (not a dependency of the edge: a one-off model tool). For each
shared model, NNCF quantises the ONNX file read by OpenVINO (preset MIXED: symmetric weights,
asymmetric activations), calibrated on ``--frames`` frames spread over each of the two shared
clips (the project's scenario footage), letterboxed exactly as the detector does. Then:

* agreement: detections of INT8 (OpenVINO) against FP32 (onnxruntime) on the same frames,
  conf >= 0.25: the share of FP32 boxes that INT8 keeps (same class, IoU >= 0.5) and the share
  of INT8 boxes FP32 also has; the project makes INT8 a default only at >= 95 % kept;
* speed: inference ms per frame and frames per CPU core-second, one thread, blocks alternated
  (as in ``bench_backends.py``), FP32 onnxruntime as the baseline.

yolo11n_untrained has random weights: its agreement means nothing, its speed does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.detector import Detector  # noqa: E402
from gridwarden.models.quantize import matched_fractions, sample_frames  # noqa: E402
from tests.support.paths import CAR_CLIP, PERSON_CLIP, YOLO11N_UNTRAINED, YOLOX_NANO  # noqa: E402


def quantize(model: Path, reference: Detector, frames: int, out_dir: Path) -> tuple[Path, float]:
    import nncf
    import openvino as ov

    images = [*sample_frames(CAR_CLIP, frames), *sample_frames(PERSON_CLIP, frames)]
    tensors = [reference.preprocess([image])[0][0][None].copy() for image in images]
    started = time.perf_counter()
    quantized = nncf.quantize(
        ov.Core().read_model(str(model)),
        nncf.Dataset(tensors),
        subset_size=len(tensors),
        preset=nncf.QuantizationPreset.MIXED,
    )
    out = out_dir / f"{model.stem}.int8.xml"
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out, time.perf_counter() - started


def agreement(fp32: Detector, int8: Detector) -> tuple[float, float, int]:
    ref, got = [], []
    for clip in (CAR_CLIP, PERSON_CLIP):
        for image in sample_frames(clip, 60):
            ref.append(fp32.detect_one(image))
            got.append(int8.detect_one(image))
    n_ref, kept, n_int8, found = matched_fractions(ref, got, 0.5)
    return kept / max(1, n_ref), found / max(1, n_int8), n_ref


def speed(detectors: dict[str, Detector], runs: int = 30, rounds: int = 3) -> dict[str, tuple[float, float]]:
    image = next(sample_frames(CAR_CLIP, 1))
    tensors = {name: d.preprocess([image])[0] for name, d in detectors.items()}
    for name, d in detectors.items():
        d.infer(tensors[name])
    wall: dict[str, list[float]] = {n: [] for n in detectors}
    cpu = dict.fromkeys(detectors, 0.0)
    for _ in range(rounds):
        for name, d in detectors.items():
            time.sleep(0.05)
            c0 = time.process_time()
            for _ in range(runs // rounds):
                w0 = time.perf_counter()
                d.infer(tensors[name])
                wall[name].append(time.perf_counter() - w0)
            cpu[name] += time.process_time() - c0
    count = (runs // rounds) * rounds
    return {n: (statistics.median(wall[n]) * 1000, count / cpu[n]) for n in detectors}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=60, help="calibration frames per clip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in (YOLOX_NANO, YOLO11N_UNTRAINED):
            fp32 = Detector(model, backend="onnxruntime", intra_op_threads=1)
            xml, seconds = quantize(model, fp32, args.frames, Path(tmp))
            int8 = Detector(xml, backend="openvino", input_size=fp32.input_size[0], intra_op_threads=1)
            kept, found, boxes = agreement(fp32, int8)
            print(
                f"{model.name}: NNCF INT8 in {seconds:.0f} s; agreement with FP32 on {boxes} boxes: "
                f"{kept:.1%} kept, {found:.1%} of INT8 boxes confirmed "
                f"({'meets' if kept >= 0.95 else 'below'} the 95 % bar)"
            )
            detectors = {
                "onnxruntime fp32": fp32,
                "openvino fp32": Detector(model, backend="openvino", intra_op_threads=1),
                "openvino int8": int8,
            }
            results = speed(detectors)
            base_ms, base_fpc = results["onnxruntime fp32"]
            for name, (ms, fpc) in results.items():
                print(
                    f"  {name:17s} {ms:7.2f} ms/frame (x{base_ms / ms:4.2f})  {fpc:6.1f} frames/core-s (x{fpc / base_fpc:4.2f})"
                )


if __name__ == "__main__":
    main()
