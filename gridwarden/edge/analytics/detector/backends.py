"""Inference runtimes behind the detector: onnxruntime (portable default) and OpenVINO.

Why two: on some x86 CPUs and models OpenVINO runs the very same ONNX files markedly faster
than onnxruntime (yolo11n at 640 on two threads: about 1.7x less CPU per frame on the dev box,
see ``bench/bench_backends.py``), and the number of cameras a box serves, hence the number of
boxes a district buys, follows from that. On others it does not (yolox_nano at 416 on one
thread: onnxruntime is cheaper there). OpenVINO is also a 60 MB optional wheel that exists only
for some CPU families, so onnxruntime stays the dependency every install has, the default, and
the fallback whenever OpenVINO is absent, slower, or fails to load a model.

A backend does one thing: turn a float tensor ``(B, 3, H, W)`` into the model's raw output
``(B, ...)``. Everything model-specific above that (layout, letterbox, NMS) stays in
:mod:`.session`, so both backends give the same detections by construction, up to the
floating-point differences of their kernels (bounded by ``tests/detector/test_backends.py``).

Example::

    choice = open_backend(Path("yolox_nano_coco.onnx"), "auto", lambda backend: (416, 416))
    print(choice.reason)   # e.g. "onnxruntime: auto, OpenVINO not faster here (CPU per frame: ...)"
    raw = choice.backend.run(np.zeros((1, 3, 416, 416), np.float32))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from gridwarden.edge.analytics.detector.layouts import UnsupportedModelError

log = logging.getLogger(__name__)

BackendName = Literal["auto", "onnxruntime", "openvino"]
BACKEND_NAMES: tuple[str, ...] = ("auto", "onnxruntime", "openvino")
ORT_CPU = "CPUExecutionProvider"
#: Best first. CPU is always appended so a broken GPU install degrades instead of failing.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "OpenVINOExecutionProvider", ORT_CPU)
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class ModelLoadError(RuntimeError):
    """The model file exists but the runtime cannot load or run it."""


class InferenceBackend(Protocol):
    """What the detector needs from a runtime; one instance per model, used under one lock."""

    name: str  #: 'onnxruntime' or 'openvino'
    device: str  #: the onnxruntime execution provider, or the OpenVINO device ('CPU')
    input_names: list[str]
    input_shape: list[Any]  #: ints where fixed; a str or None where dynamic
    input_dtype: type
    metadata: dict[str, str]  #: the ONNX file's custom metadata (ultralytics names, imgsz, ...)

    def prepare(self, width: int, height: int) -> None:
        """Fix the spatial input size (compiles, where the runtime compiles). Called once."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw first output for a ``(B, 3, H, W)`` batch; an array the caller may keep."""


def openvino_installed() -> bool:
    """Importable, not merely present: a broken install counts as absent (and is logged)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    except Exception as exc:  # a wheel for another CPU or glibc fails with odd errors
        log.warning("openvino is installed but cannot be imported (%s); using onnxruntime", exc)
        return False
    return True


@dataclass(frozen=True)
class BackendChoice:
    """Which runtime runs the model and why, for the startup log and ``models check``."""

    backend: InferenceBackend
    reason: str
    #: CPU milliseconds per frame measured at start, by backend name (only for 'auto' races).
    cpu_ms: dict[str, float] = field(default_factory=dict)


def open_backend(
    path: Path,
    requested: str | None,
    input_size: Callable[[InferenceBackend], tuple[int, int]],
    *,
    providers: list[str] | None = None,
    threads: int | None = None,
) -> BackendChoice:
    """Open ``path`` with the requested runtime, prepared for the size ``input_size`` reads
    from the model's declared input.

    'auto' opens both runtimes when OpenVINO is installed, times each on a blank frame, and
    keeps OpenVINO only when it costs clearly less CPU per frame (``AUTO_MARGIN``): on some
    CPU/model pairs it is the slower one (see ``bench/bench_backends.py``), and a box should
    not pay for an optional package that does not help it. Any OpenVINO failure under 'auto'
    is logged and onnxruntime used: detection must not stop because the faster runtime
    dislikes one operator.
    """
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    name = requested or "auto"
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown inference backend {name!r} (choose from {', '.join(BACKEND_NAMES)})")
    if name == "openvino":
        if not openvino_installed():
            raise ModelLoadError(
                "backend 'openvino' was asked for but the openvino package is not installed "
                "(pip install 'gridwarden[openvino]', or use backend: onnxruntime)"
            )
        try:
            ov_backend = _prepared(OpenVinoBackend(path, threads), input_size)
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO cannot load {path}: {exc}") from exc
        return BackendChoice(ov_backend, "openvino: asked for in the configuration")
    ort_backend = _prepared(OnnxRuntimeBackend(path, providers, threads), input_size)
    if name == "onnxruntime":
        return BackendChoice(ort_backend, "onnxruntime: asked for in the configuration")
    if providers is not None and any(p != ORT_CPU for p in providers):
        # Execution providers are an onnxruntime notion: asking for CUDA means onnxruntime.
        return BackendChoice(ort_backend, f"onnxruntime: execution providers {providers} configured")
    if not openvino_installed():
        return BackendChoice(ort_backend, "onnxruntime: openvino is not installed")
    try:
        ov_backend = _prepared(OpenVinoBackend(path, threads), input_size)
    except Exception as exc:
        log.warning("OpenVINO cannot load %s (%s); falling back to onnxruntime", path, exc)
        return BackendChoice(ort_backend, f"onnxruntime: OpenVINO failed on this model ({exc})")
    width, height = input_size(ort_backend)
    costs = race([ort_backend, ov_backend], width, height)
    ms = {n: round(c * 1000.0, 2) for n, c in costs.items()}
    figures = f"CPU per frame: openvino {ms['openvino']} ms, onnxruntime {ms['onnxruntime']} ms"
    if costs["openvino"] < AUTO_MARGIN * costs["onnxruntime"]:
        return BackendChoice(ov_backend, f"openvino: auto, faster here ({figures})", ms)
    return BackendChoice(ort_backend, f"onnxruntime: auto, OpenVINO not faster here ({figures})", ms)


#: OpenVINO must cost less than this fraction of onnxruntime's CPU time to be chosen by 'auto'.
AUTO_MARGIN = 0.9
RACE_ROUNDS = 3
RACE_BLOCK = 4


def race(backends: list[InferenceBackend], width: int, height: int) -> dict[str, float]:
    """CPU seconds per frame of each backend on a blank frame: the best of a few blocks,
    alternated (load from other processes only ever adds time; a short sleep lets the other
    runtime's spinning pool threads go idle first, or they would be charged to this one)."""
    best: dict[str, float] = {}
    blanks: dict[str, np.ndarray] = {
        b.name: np.full((1, 3, height, width), 114 / 255.0, dtype=b.input_dtype) for b in backends
    }
    for backend in backends:
        backend.run(blanks[backend.name])  # warm-up (first-call allocations)
    for _ in range(RACE_ROUNDS):
        for backend in backends:
            grey = blanks[backend.name]
            time.sleep(0.02)
            start = time.process_time()
            for _ in range(RACE_BLOCK):
                backend.run(grey)
            per_frame = (time.process_time() - start) / RACE_BLOCK
            best[backend.name] = min(best.get(backend.name, float("inf")), per_frame)
    return best


def _prepared(backend: Any, input_size: Callable[[InferenceBackend], tuple[int, int]]) -> InferenceBackend:
    backend.prepare(*input_size(backend))
    result: InferenceBackend = backend
    return result


def choose_providers(requested: list[str] | None = None) -> list[str]:
    """onnxruntime execution providers to ask for, best first, limited to those installed.

    A requested provider that is not installed is logged and skipped rather than fatal: an
    edge box with a broken CUDA install should keep detecting on the CPU, visibly.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = list(PREFERRED_PROVIDERS) if requested is None else list(requested)
    missing = [p for p in wanted if p not in available]
    if requested is not None and missing:
        log.warning("execution providers %s are not installed (available: %s)", missing, available)
    chosen = [p for p in wanted if p in available]
    if ORT_CPU not in chosen:
        chosen.append(ORT_CPU)
    return chosen


class OnnxRuntimeBackend:
    """onnxruntime with full graph optimisation; the portable default."""

    name = "onnxruntime"

    def __init__(self, path: Path, providers: list[str] | None, threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=choose_providers(providers)
            )
        except Exception as exc:  # InvalidProtobuf, Fail, ...: onnxruntime has no common base class
            raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc
        self.device: str = self._session.get_providers()[0]
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        inputs = self._session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.input_shape = list(inputs[0].shape)
        if inputs[0].type not in _ORT_DTYPES:
            raise UnsupportedModelError(
                f"{path}: input type {inputs[0].type} is not supported (float32 or float16)"
            )
        self.input_dtype: type = _ORT_DTYPES[inputs[0].type]
        self._output_name = self._session.get_outputs()[0].name

    def prepare(self, width: int, height: int) -> None:
        """Nothing to do: onnxruntime accepts any size a dynamic input allows."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._session.run([self._output_name], {self.input_names[0]: batch})[0]
        return out


class OpenVinoBackend:
    """OpenVINO reading the ONNX file directly (no conversion step, no IR files to keep).

    Precision: OpenVINO's CPU plugin defaults to bf16 on CPUs that have it, which moves scores
    by a few hundredths; the detector asks for f32 so both backends agree within the stated
    tolerance and a model's thresholds mean the same on every box.
    """

    name = "openvino"

    def __init__(self, path: Path, threads: int | None, precision: str = "f32") -> None:
        import openvino as ov

        self._ov = ov
        self._core = ov.Core()
        self._path = path
        try:
            self._model = self._core.read_model(str(path))
        except Exception as exc:
            raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc
        self.device = "CPU"
        self.metadata = _framework_metadata(self._model)
        inputs = self._model.inputs
        self.input_names = [i.get_any_name() for i in inputs]
        partial = inputs[0].get_partial_shape()
        self.input_shape = (
            [d.get_length() if d.is_static else None for d in partial] if partial.rank.is_static else []
        )
        element = inputs[0].get_element_type()
        self.input_dtype: type
        if element == ov.Type.f32:
            self.input_dtype = np.float32
        elif element == ov.Type.f16:
            self.input_dtype = np.float16
        else:
            raise UnsupportedModelError(f"{path}: input type {element} is not supported (float32 or float16)")
        self._config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._request: Any = None

    def prepare(self, width: int, height: int) -> None:
        """Pin height and width (a dynamic batch stays dynamic), then compile for the CPU."""
        if len(self.input_shape) == 4 and (self.input_shape[2] is None or self.input_shape[3] is None):
            batch = self.input_shape[0] if self.input_shape[0] is not None else -1
            self._model.reshape({self.input_names[0]: self._ov.PartialShape([batch, 3, height, width])})
        try:
            compiled = self._core.compile_model(self._model, self.device, self._config)
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO cannot compile {self._path}: {exc}") from exc
        self._request = compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._request is None:
            raise RuntimeError("OpenVinoBackend.run before prepare()")
        self._request.infer({0: np.ascontiguousarray(batch)})
        # The request's output buffer is reused by the next call: hand out a copy.
        return np.array(self._request.get_output_tensor(0).data, copy=True)


def _framework_metadata(model: Any) -> dict[str, str]:
    """ONNX ``metadata_props``, which OpenVINO files under the 'framework' runtime info."""
    try:
        if not model.has_rt_info(["framework"]):
            return {}
        section = model.get_rt_info(["framework"]).astype(dict)
        return {str(k): v.astype(str) for k, v in section.items()}
    except Exception as exc:  # an odd rt_info must not stop the model from loading
        log.warning("cannot read model metadata through OpenVINO: %s", exc)
        return {}
