"""The detector: one onnxruntime session per model, shared by every camera on the box.

A small box cannot afford a model copy per camera, so all camera workers call one
:class:`Detector` from their own threads. Frames that wait at the same time are run as one
batch when the model has a dynamic batch dimension (see :mod:`.batching`), one by one otherwise.
The layout (ultralytics / YOLOX / YOLOv5) is read from the model itself (see :mod:`.layouts`),
and preprocessing follows it, so callers only ever hand in BGR frames and get back
:class:`~gridwarden.edge.types.Detections` in the pixels of the frame they passed.

Example::

    detector = Detector("models/yolox_nano_coco.onnx", conf_threshold=0.3)
    detections = detector.detect_one(frame.image)          # BGR uint8 HxWx3, any size
    cars = detections[np.isin(detections.class_id, list(resolve_classes(["vehicle"], detector.class_names)))]
"""

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from gridwarden.edge.detector.batching import BatchCoalescer
from gridwarden.edge.detector.classes import (
    COCO80,
    are_placeholder_names,
    load_labels_file,
    parse_metadata_names,
)
from gridwarden.edge.detector.layouts import Decoder, UnsupportedModelError, identify_layout
from gridwarden.edge.detector.nms import per_class_nms, threshold_table
from gridwarden.edge.detector.preprocess import PAD_VALUE, LetterboxTransform, letterbox
from gridwarden.edge.types import Detections

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
#: Best first. CPU is always appended so a broken GPU install degrades instead of failing.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "OpenVINOExecutionProvider", CPU)
DEFAULT_INPUT_SIZE = 640
MAX_DETECTIONS = 300
_INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class ModelLoadError(RuntimeError):
    """The model file exists but onnxruntime cannot load or run it."""


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """Execution providers to ask onnxruntime for, best first, limited to those installed.

    A requested provider that is not installed is logged and skipped rather than fatal: an
    edge box with a broken CUDA install should keep detecting on the CPU, visibly.
    """
    available = ort.get_available_providers()
    wanted = list(PREFERRED_PROVIDERS) if requested is None else list(requested)
    missing = [p for p in wanted if p not in available]
    if requested is not None and missing:
        log.warning("execution providers %s are not installed (available: %s)", missing, available)
    chosen = [p for p in wanted if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


class Detector:
    """Object detector for one ONNX model; thread-safe, one instance shared by all cameras.

    Attributes fixed at construction: ``layout`` ('ultralytics' | 'yolox' | 'yolov5'),
    ``class_names``, ``provider`` (the execution provider actually used), ``input_size``
    (width, height), ``supports_batch`` and ``model_path``.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        input_size: int | None = None,
        conf_threshold: float = 0.25,
        class_thresholds: dict[str, float] | None = None,
        iou_threshold: float = 0.45,
        labels_path: str | Path | None = None,
        layout: str | None = None,
        providers: list[str] | None = None,
        max_batch: int = 8,
        intra_op_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be within 0..1, got {iou_threshold}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.iou_threshold = float(iou_threshold)
        self._session = _open_session(self.model_path, providers, intra_op_threads)
        self.provider: str = self._session.get_providers()[0]
        self._metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)

        inp = self._session.get_inputs()
        if len(inp) != 1:
            raise UnsupportedModelError(
                f"{self.model_path}: expected one image input, the model has {[i.name for i in inp]}"
            )
        self._input_name = inp[0].name
        self._output_name = self._session.get_outputs()[0].name
        self._dtype = _input_dtype(inp[0].type, self.model_path)
        self.input_size: tuple[int, int] = self._resolve_input_size(list(inp[0].shape), input_size)
        batch_dim = inp[0].shape[0]
        declared_dynamic = not isinstance(batch_dim, int) or batch_dim < 1

        probe, self.supports_batch = self._probe(declared_dynamic)
        width, height = self.input_size
        try:
            self.layout_info = identify_layout(tuple(probe.shape), probe, width, height, override=layout)
        except UnsupportedModelError as exc:
            raise UnsupportedModelError(f"{self.model_path}: {exc}") from exc
        self.layout: str = self.layout_info.name
        self.class_names: list[str] = self._resolve_class_names(labels_path)
        self._format = self.layout_info.input_format(width, height, self._dtype)
        self._thresholds = threshold_table(self.class_names, conf_threshold, class_thresholds)
        self.conf_threshold = float(conf_threshold)
        self._decoder = Decoder(self.layout_info, width, height)
        self.max_batch = max_batch if self.supports_batch else 1
        self._coalescer = BatchCoalescer(self._run_session, self.max_batch)
        self._scratch = threading.local()
        log.info(
            "detector %s: layout=%s classes=%d input=%dx%d provider=%s batch=%s",
            self.model_path.name,
            self.layout,
            len(self.class_names),
            width,
            height,
            self.provider,
            f"dynamic (max {self.max_batch})" if self.supports_batch else "1",
        )

    # ---------------------------------------------------------------- public API
    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in each BGR uint8 image (any size each); boxes are in its pixels."""
        if len(images) == 0:
            return []
        tensors, transforms = self.preprocess(images, reuse_buffer=True)
        raws = self.infer(tensors)
        return self.postprocess(raws, transforms)

    def detect_one(self, image: np.ndarray) -> Detections:
        return self.detect([image])[0]

    def describe(self) -> dict[str, Any]:
        """What was read from the model, for ``models check`` and the startup log."""
        return {
            "model_path": str(self.model_path),
            "layout": self.layout,
            "boxes_encoded": self.layout_info.boxes_encoded,
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
            "input_size": list(self.input_size),
            "input_dtype": np.dtype(self._dtype).name,
            "provider": self.provider,
            "providers_available": ort.get_available_providers(),
            "supports_batch": self.supports_batch,
            "max_batch": self.max_batch,
            "conf_threshold": self.conf_threshold,
            "iou_threshold": self.iou_threshold,
        }

    # The three steps of ``detect``, public so benchmarks and callers that want to overlap
    # decode with inference can time or schedule them separately.
    def preprocess(
        self, images: Sequence[np.ndarray], *, reuse_buffer: bool = False
    ) -> tuple[list[np.ndarray], list[LetterboxTransform]]:
        """Letterbox images into model input tensors. With ``reuse_buffer`` (what ``detect``
        does) the tensors are rows of this thread's buffer and are overwritten by the thread's
        next call; without it they are fresh arrays the caller may keep."""
        if reuse_buffer:
            return self._preprocess_reusing_buffer(images)
        pairs = [letterbox(image, self._format) for image in images]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def infer(self, tensors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Raw model output per tensor; batched with other threads' tensors where possible."""
        return self._coalescer.run(tensors)

    def postprocess(
        self, raws: Sequence[np.ndarray], transforms: Sequence[LetterboxTransform]
    ) -> list[Detections]:
        return [self._postprocess_one(raw, tf) for raw, tf in zip(raws, transforms, strict=True)]

    @property
    def batch_stats(self) -> tuple[int, int]:
        """(session calls, images run) so far: their ratio is the mean batch size achieved."""
        return self._coalescer.batches_run, self._coalescer.items_run

    def __repr__(self) -> str:
        return f"Detector({str(self.model_path)!r}, layout={self.layout!r}, provider={self.provider!r})"

    # ---------------------------------------------------------------- internals
    def _postprocess_one(self, raw: np.ndarray, transform: LetterboxTransform) -> Detections:
        cand = self._decoder.candidates(raw, self._thresholds)
        keep = per_class_nms(
            cand.xyxy,
            cand.scores,
            cand.class_ids,
            iou_threshold=self.iou_threshold,
            max_detections=MAX_DETECTIONS,
        )
        xyxy = transform.to_original(cand.xyxy[keep])
        # A box lying wholly in the padding clips to zero size: it is not in the image at all.
        visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        keep = keep[visible]
        return Detections(xyxy=xyxy[visible], confidence=cand.scores[keep], class_id=cand.class_ids[keep])

    def _preprocess_reusing_buffer(
        self, images: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], list[LetterboxTransform]]:
        """Letterbox into this thread's batch buffer, reused from call to call: no fresh pages
        per frame, and a caller's batch goes to the model without being stacked again. Safe
        because a thread is blocked in ``detect`` until the model has read its rows."""
        width, height = self.input_size
        buffer: np.ndarray | None = getattr(self._scratch, "buffer", None)
        if buffer is None or len(buffer) < len(images):
            # Sized to what this thread asks for (a camera worker: one frame), not max_batch:
            # eight cameras times eight 640x640 rows would be 300 MB of idle buffers.
            buffer = np.empty((len(images), 3, height, width), dtype=self._dtype)
            self._scratch.buffer = buffer
        transforms = [letterbox(image, self._format, out=buffer[i])[1] for i, image in enumerate(images)]
        return [buffer[i] for i in range(len(images))], transforms

    def _run_session(self, batch: np.ndarray) -> np.ndarray:
        out = self._session.run([self._output_name], {self._input_name: batch})[0]
        if out.shape[0] != batch.shape[0]:
            raise UnsupportedModelError(
                f"{self.model_path}: fed a batch of {batch.shape[0]}, got output shape {list(out.shape)}"
            )
        return out

    def _probe(self, try_batch: bool) -> tuple[np.ndarray, bool]:
        """Run a grey image once: gives the concrete output shape, the values the layout check
        needs, proves the model runs at all, and warms the session up. A model that declares a
        dynamic batch but has a batch of 1 baked into a reshape is caught here, not in service.
        """
        width, height = self.input_size
        grey: np.ndarray = np.full((1, 3, height, width), PAD_VALUE / 255.0, dtype=self._dtype)
        if try_batch:
            try:
                out = self._session.run([self._output_name], {self._input_name: np.repeat(grey, 2, axis=0)})[
                    0
                ]
                if out.shape[0] == 2:
                    return out[:1], True
            except Exception as exc:  # onnxruntime raises its own exception types
                log.warning("%s declares a dynamic batch but fails with 2 images (%s); running one by one",
                            self.model_path, exc)  # fmt: skip
        try:
            out = self._session.run([self._output_name], {self._input_name: grey})[0]
        except Exception as exc:
            raise ModelLoadError(
                f"model {self.model_path} failed on a test input {list(grey.shape)}: {exc}"
            ) from exc
        return out, False

    def _resolve_input_size(self, shape: list[Any], requested: int | None) -> tuple[int, int]:
        if len(shape) != 4:
            raise UnsupportedModelError(f"{self.model_path}: expected an NCHW image input, got shape {shape}")
        channels, height, width = shape[1:]
        if isinstance(channels, int) and channels != 3:
            raise UnsupportedModelError(f"{self.model_path}: expected 3 input channels, got shape {shape}")
        if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
            if requested is not None and (requested, requested) != (width, height):
                raise ValueError(
                    f"{self.model_path} has a fixed input of {width}x{height}; input_size={requested} cannot apply"
                )
            return width, height
        if requested is not None:
            return _checked_size(requested, requested)
        imgsz = self._metadata.get("imgsz")
        if imgsz:
            try:
                value = ast.literal_eval(imgsz)
                h, w = (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))
                return _checked_size(w, h)
            except (ValueError, SyntaxError, TypeError, IndexError):
                log.warning("%s: unreadable imgsz metadata %r", self.model_path, imgsz)
        return DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE

    def _resolve_class_names(self, labels_path: str | Path | None) -> list[str]:
        """Labels file first (the operator's word), then model metadata, then COCO-80 when the
        model has 80 classes and no meaningful names, else ``class_<i>`` placeholders."""
        count = self.layout_info.num_classes
        if labels_path is not None:
            names = load_labels_file(labels_path)
            if len(names) != count:
                raise ValueError(
                    f"labels file {labels_path} has {len(names)} names, the model has {count} classes"
                )
            return names
        raw = self._metadata.get("names")
        if raw:
            names = parse_metadata_names(raw)
            if len(names) != count:
                raise ValueError(
                    f"{self.model_path}: metadata names {len(names)} classes, the output has {count}"
                )
            if not are_placeholder_names(names):
                return names
            log.info("%s: metadata names are placeholders ('0', '1', ...)", self.model_path)
        if count == len(COCO80):
            return list(COCO80)
        log.warning("%s: no class names for %d classes; using class_<id>", self.model_path, count)
        return [f"class_{i}" for i in range(count)]


def _open_session(path: Path, providers: list[str] | None, threads: int | None) -> ort.InferenceSession:
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=choose_providers(providers))
    except Exception as exc:  # InvalidProtobuf, Fail, ...: onnxruntime has no common base class
        raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc


def _input_dtype(onnx_type: str, path: Path) -> type:
    if onnx_type not in _INPUT_DTYPES:
        raise UnsupportedModelError(f"{path}: input type {onnx_type} is not supported (float32 or float16)")
    return _INPUT_DTYPES[onnx_type]


def _checked_size(width: int, height: int) -> tuple[int, int]:
    if width < 32 or height < 32 or width % 32 or height % 32:
        raise ValueError(f"input size must be a multiple of 32 and at least 32, got {width}x{height}")
    return int(width), int(height)
