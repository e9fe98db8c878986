"""``gridwarden models quantize``: INT8 static quantisation calibrated on real footage, and an
honest report of what it buys (speed) and what it costs (detections that change).

onnxruntime's ``quantize_static`` does the work, in QDQ format with per-channel weights. The
calibration frames come from a clip of the camera's kind of scene and go through the
detector's own preprocessing, so the ranges are measured on exactly the tensors the model will
see in service (a YOLOX model calibrated on 0-1 RGB would be quantised for the wrong inputs).

Three choices, each measured on yolox_nano with car-detection.mp4 (see docs/models.md):

* **Activations uint8, weights int8 (U8S8).** onnxruntime's CPU kernels fuse QDQ Conv into
  QLinearConv only for uint8 activations; with int8 activations every Conv stays
  dequantise-float-quantise and the "INT8" model ran 2-3x *slower* than FP32.
* **The tail stays float.** Nodes after the last convolution (sigmoids, concat, reshape,
  transpose) merge box coordinates in pixels with 0-1 scores into one tensor; one int8 scale for
  both leaves the scores with a handful of levels. They are found from the graph, not by name.
* **SiLU inputs are clipped at -6.** YOLO convolutions feed SiLU (``x * sigmoid(x)``); their
  outputs reach -80 while SiLU flattens everything below -6 to about 0. The raw min-max range
  spends most int8 levels on that flat part: FP32 car boxes kept by INT8 went from 3% to 30-40%
  with the clip.

Example::

    result = quantize_model("yolox_nano_coco.onnx", "car-detection.mp4", frames=100)
    for a in compare_models("yolox_nano_coco.onnx", result.output, ["car-detection.mp4"], frames=50):
        print(a.clip, a.fp32_matched, a.int8_matched, a.speedup)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gridwarden.edge.types import Detections
from gridwarden.geometry import box_iou

#: A SiLU input below this gives |SiLU(x)| < 0.015: the range below it is not worth int8 levels.
SILU_INPUT_FLOOR = -6.0
#: Ops whose inputs need their own quantisation: nodes with none of them downstream are the tail.
_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Per-channel weight scales need QuantizeLinear/DequantizeLinear with an axis: opset 13.
_MIN_OPSET = 13
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


class QuantizeError(RuntimeError):
    """Quantisation cannot run or produced an unusable model; the message says why."""


# --------------------------------------------------------------------------- frames
def sample_frames(clip: str | Path, count: int) -> Iterator[np.ndarray]:
    """Yield ``count`` BGR frames spread evenly over ``clip`` (fewer if it is shorter).

    Spread, not the first ``count``: calibration needs the clip's variety (cars in and out of
    view, people arriving), and the first seconds of a clip are often one scene.
    """
    import av

    path = Path(clip)
    if not path.is_file():
        raise FileNotFoundError(f"clip not found: {path}")
    if count < 1:
        raise ValueError(f"frame count must be at least 1, got {count}")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = int(stream.frames or 0)
        wanted = (
            set(np.linspace(0, total - 1, num=min(count, total)).round().astype(int).tolist())
            if total
            else None
        )
        yielded = 0
        for index, frame in enumerate(container.decode(stream)):
            if wanted is not None and index not in wanted:
                continue  # decoded (H.264 needs it) but never converted: conversion is the cost
            yield frame.to_ndarray(format="bgr24")
            yielded += 1
            if yielded >= count:
                return


def _calibration_reader(detector: Any, input_name: str, clip: Path, count: int, progress: bool) -> Any:
    """A CalibrationDataReader fed with the clip's frames through the detector's own letterbox."""
    from onnxruntime.quantization import CalibrationDataReader

    class ClipCalibrationReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._bar: tqdm[Any] | None = None
            self._frames: Iterator[np.ndarray] | None = None

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._frames is None:
                self._frames = sample_frames(clip, count)
                self._bar = tqdm(total=count, desc=f"calibrating on {clip.name}", unit="frame",
                                 disable=not progress, leave=False)  # fmt: skip
            image = next(self._frames, None)
            if image is None:
                if self._bar is not None:
                    self._bar.close()
                return None
            assert self._bar is not None
            self._bar.update(1)
            tensors, _ = detector.preprocess([image])
            return {input_name: tensors[0][None]}

    return ClipCalibrationReader()


# --------------------------------------------------------------------------- graph analysis
def tail_nodes(model: Any) -> list[str]:
    """Names of nodes from which no Conv/Gemm/MatMul can be reached: the decode tail of a
    detection head, which stays float (see the module docstring)."""
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    feeds_compute: dict[int, bool] = {}
    # Nodes are topologically sorted in a valid ONNX graph: walk backwards, children first.
    for node in reversed(model.graph.node):
        feeds_compute[id(node)] = any(
            c.op_type in _COMPUTE_OPS or feeds_compute.get(id(c), False)
            for out in node.output
            for c in consumers.get(out, [])
        )
    return [n.name for n in model.graph.node if n.op_type not in _COMPUTE_OPS and not feeds_compute[id(n)]]


def silu_inputs(model: Any) -> list[str]:
    """Tensors x that feed a SiLU written as ``Mul(x, Sigmoid(x))`` (how YOLO exports it)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        for x, other in (node.input, node.input[::-1]):
            sig = producer.get(other)
            if sig is not None and sig.op_type == "Sigmoid" and sig.input[0] == x:
                found.append(x)
                break
    return found


def _range_overrides(model_path: Path, reader: Any, method: Any, floor: float) -> dict[str, list[dict]]:
    """Calibrate once to learn the SiLU inputs' ranges and return onnxruntime tensor overrides
    that raise their minimum to ``floor``."""
    import onnx
    from onnxruntime.quantization import create_calibrator

    targets = set(silu_inputs(onnx.load(str(model_path))))
    if not targets:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(
            str(model_path), op_types_to_calibrate=None, augmented_model_path=str(Path(tmp) / "aug.onnx"),
            calibrate_method=method, extra_options={"moving_average": True},
        )  # fmt: skip
        calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
    overrides: dict[str, list[dict]] = {}
    for name in targets & set(ranges.data):
        low, high = (float(np.asarray(v).reshape(-1)[0]) for v in ranges.data[name].range_value)
        if low < floor < high:
            overrides[name] = [{"rmin": np.float32(floor), "rmax": np.float32(high)}]
    return overrides


# --------------------------------------------------------------------------- quantise
@dataclass(frozen=True, slots=True)
class QuantizeResult:
    output: Path
    calibration_clip: str
    calibration_frames: int
    method: str
    per_channel: bool
    float_nodes: int  # tail nodes kept in float
    clipped_silu_inputs: int
    seconds: float


def quantize_model(
    model: str | Path,
    calibration_clip: str | Path,
    *,
    frames: int = 100,
    out: str | Path | None = None,
    method: str = "minmax",
    per_channel: bool = True,
    reduce_range: bool = False,
    input_size: int | None = None,
    progress: bool = True,
) -> QuantizeResult:
    """Write an INT8 QDQ copy of ``model`` calibrated on ``frames`` frames of ``calibration_clip``.

    ``reduce_range`` (7-bit weights) is for x86 CPUs without VNNI, where U8S8 products can
    saturate. The output keeps the source's metadata (class names, imgsz) and is checked to
    load in the :class:`Detector` with the same layout and classes before this returns.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from gridwarden.edge.analytics.detector import Detector

    started = time.perf_counter()
    src, clip = Path(model), Path(calibration_clip)
    if not src.is_file():
        raise FileNotFoundError(f"model file not found: {src}")
    if not clip.is_file():
        raise FileNotFoundError(f"calibration clip not found: {clip}")
    if method not in CALIBRATION_METHODS:
        raise ValueError(
            f"unknown calibration method {method!r}; use one of {', '.join(CALIBRATION_METHODS)}"
        )
    dst = Path(out) if out is not None else src.with_name(f"{src.stem}.int8.onnx")
    if dst.resolve() == src.resolve():
        raise ValueError("--out must differ from the input model")
    calibrate_method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[method]
    reference = Detector(src, input_size=input_size)
    source_proto = onnx.load(str(src))
    input_name = source_proto.graph.input[0].name

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _prepare(src, prepared)
        prepared_proto = onnx.load(str(prepared))
        float_nodes = tail_nodes(prepared_proto)

        def reader() -> Any:
            return _calibration_reader(reference, input_name, clip, frames, progress)

        overrides = _range_overrides(prepared, reader(), calibrate_method, SILU_INPUT_FLOOR)
        quantize_static(
            str(prepared),
            str(Path(tmp) / "int8.onnx"),
            reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            calibrate_method=calibrate_method,
            extra_options={
                "DedicatedQDQPair": True,  # a shared DequantizeLinear blocks the QLinearConv fusion
                "CalibMovingAverage": True,
                "TensorQuantOverrides": overrides,
            },
        )
        quantized = onnx.load(str(Path(tmp) / "int8.onnx"))
        _copy_metadata(source_proto, quantized)
        dst.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(quantized, str(dst))

    _verify(reference, dst, input_size)
    return QuantizeResult(
        output=dst,
        calibration_clip=str(clip),
        calibration_frames=frames,
        method=method,
        per_channel=per_channel,
        float_nodes=len(float_nodes),
        clipped_silu_inputs=len(overrides),
        seconds=round(time.perf_counter() - started, 1),
    )


def _prepare(src: Path, dst: Path) -> None:
    """Shape inference and graph optimisation (onnxruntime's recommended pre-step), then opset
    13 if older: per-channel scales need the axis attribute of opset 13's Q/DQ."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    model = onnx.load(str(dst))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), _MIN_OPSET)
    if opset < _MIN_OPSET:
        try:
            model = version_converter.convert_version(model, _MIN_OPSET)
        except Exception as exc:  # the converter raises plain RuntimeError/ValueError subclasses
            raise QuantizeError(
                f"{src} uses opset {opset}; converting it to {_MIN_OPSET} failed: {exc}"
            ) from exc
        onnx.save(model, str(dst))


def _copy_metadata(source: Any, target: Any) -> None:
    """quantize_static drops custom metadata; ultralytics class names and imgsz live there."""
    existing = {p.key for p in target.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in existing:
            target.metadata_props.add(key=prop.key, value=prop.value)


def _verify(reference: Any, quantized: Path, input_size: int | None) -> None:
    from gridwarden.edge.analytics.detector import Detector

    try:
        detector = Detector(quantized, input_size=input_size)
    except Exception as exc:
        raise QuantizeError(f"the quantised model {quantized} does not load in the detector: {exc}") from exc
    if detector.layout != reference.layout or detector.class_names != reference.class_names:
        raise QuantizeError(
            f"the quantised model reads as layout {detector.layout!r} with {len(detector.class_names)} classes; "
            f"the source is {reference.layout!r} with {len(reference.class_names)}"
        )


# --------------------------------------------------------------------------- compare
@dataclass(frozen=True, slots=True)
class Agreement:
    """How far the INT8 model's detections agree with FP32's on one clip, and the speed of each.

    ``fp32_matched``: fraction of FP32 boxes with an INT8 box of the same class at IoU >= iou
    (what quantisation lost); ``int8_matched`` the reverse (what it invented).
    """

    clip: str
    frames: int
    iou: float
    conf_threshold: float
    fp32_boxes: int
    int8_boxes: int
    fp32_matched: float
    int8_matched: float
    fp32_ms_p50: float
    int8_ms_p50: float
    speedup: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def matched_fractions(
    a: Sequence[Detections], b: Sequence[Detections], iou: float = 0.5
) -> tuple[int, int, int, int]:
    """(boxes in a, of them matched in b, boxes in b, of them matched in a), frame by frame.

    A box is matched when the other side has a box of the same class with IoU >= ``iou``
    (one IoU matrix per frame, no per-box loop).
    """
    n_a = m_a = n_b = m_b = 0
    for da, db in zip(a, b, strict=True):
        ok = (box_iou(da.xyxy, db.xyxy) >= iou) & (da.class_id[:, None] == db.class_id[None, :])
        n_a, n_b = n_a + len(da), n_b + len(db)
        m_a += int(ok.any(axis=1).sum()) if ok.size else 0
        m_b += int(ok.any(axis=0).sum()) if ok.size else 0
    return n_a, m_a, n_b, m_b


def compare_models(
    fp32: str | Path,
    int8: str | Path,
    clips: Sequence[str | Path],
    *,
    frames: int = 50,
    iou: float = 0.5,
    conf_threshold: float = 0.25,
    timing_runs: int = 20,
    input_size: int | None = None,
    progress: bool = True,
) -> list[Agreement]:
    """Run both models on ``frames`` frames spread over each clip; compare boxes and time the
    inference alone (pre- and post-processing are the same code for both)."""
    from gridwarden.edge.analytics.detector import Detector

    ref = Detector(fp32, input_size=input_size, conf_threshold=conf_threshold)
    quant = Detector(int8, input_size=input_size, conf_threshold=conf_threshold)
    results = []
    for clip in clips:
        ref_dets: list[Detections] = []
        quant_dets: list[Detections] = []
        tensors: list[np.ndarray] = []
        for image in tqdm(sample_frames(clip, frames), total=frames, desc=f"comparing on {Path(clip).name}",
                          unit="frame", disable=not progress, leave=False):  # fmt: skip
            ref_dets.append(ref.detect_one(image))
            quant_dets.append(quant.detect_one(image))
            if len(tensors) < 4:
                tensors.append(ref.preprocess([image])[0][0])
        n_ref, m_ref, n_q, m_q = matched_fractions(ref_dets, quant_dets, iou)
        ref_ms, quant_ms = _interleaved_timing(ref, quant, tensors, timing_runs)
        results.append(
            Agreement(
                clip=str(clip),
                frames=len(ref_dets),
                iou=iou,
                conf_threshold=conf_threshold,
                fp32_boxes=n_ref,
                int8_boxes=n_q,
                fp32_matched=round(m_ref / n_ref, 3) if n_ref else 1.0,
                int8_matched=round(m_q / n_q, 3) if n_q else 1.0,
                fp32_ms_p50=round(ref_ms, 2),
                int8_ms_p50=round(quant_ms, 2),
                speedup=round(ref_ms / quant_ms, 2) if quant_ms > 0 else float("nan"),
            )
        )
    return results


def _interleaved_timing(a: Any, b: Any, tensors: list[np.ndarray], runs: int) -> tuple[float, float]:
    """Median inference ms of each model, alternating calls so that load from other processes
    on a shared machine hits both alike (back-to-back blocks gave ratios off by 2x)."""
    if not tensors:
        return float("nan"), float("nan")
    for _ in range(3):  # warm-up
        a.infer(tensors[:1])
        b.infer(tensors[:1])
    times_a, times_b = [], []
    for i in range(runs):
        t = [tensors[i % len(tensors)]]
        start = time.perf_counter()
        a.infer(t)
        mid = time.perf_counter()
        b.infer(t)
        end = time.perf_counter()
        times_a.append(mid - start)
        times_b.append(end - mid)
    return float(np.median(times_a)) * 1000.0, float(np.median(times_b)) * 1000.0


def format_summary(result: QuantizeResult, agreements: Sequence[Agreement]) -> str:
    lines = [
        f"wrote {result.output} (INT8 QDQ, {'per-channel' if result.per_channel else 'per-tensor'} weights, "
        f"{result.method} calibration on {result.calibration_frames} frames of {Path(result.calibration_clip).name}; "
        f"{result.float_nodes} tail nodes kept float, {result.clipped_silu_inputs} SiLU inputs clipped; "
        f"{result.seconds:.0f} s)",
    ]
    for a in agreements:
        lines.append(
            f"{Path(a.clip).name}: {a.frames} frames, conf >= {a.conf_threshold}, IoU >= {a.iou}: "
            f"{a.fp32_matched:.0%} of {a.fp32_boxes} FP32 boxes kept by INT8, "
            f"{a.int8_matched:.0%} of {a.int8_boxes} INT8 boxes found by FP32; "
            f"inference {a.fp32_ms_p50:.1f} -> {a.int8_ms_p50:.1f} ms p50 (speed-up x{a.speedup:.2f})"
        )
    return "\n".join(lines)
