"""The detector: one inference session per model (OpenVINO or onnxruntime, see
:mod:`.backends`), shared by every camera on the box.

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

from gridwarden.edge.analytics.detector.backends import (
    ORT_CPU,
    PREFERRED_PROVIDERS,
    InferenceBackend,
    ModelLoadError,
    choose_providers,
    open_backend,
)
from gridwarden.edge.analytics.detector.batching import BatchCoalescer
from gridwarden.edge.analytics.detector.classes import (
    COCO80,
    are_placeholder_names,
    load_labels_file,
    parse_metadata_names,
)
from gridwarden.edge.analytics.detector.layouts import Decoder, UnsupportedModelError, identify_layout
from gridwarden.edge.analytics.detector.nms import per_class_nms, threshold_table
from gridwarden.edge.analytics.detector.preprocess import PAD_VALUE, LetterboxTransform, letterbox
from gridwarden.edge.types import Detections

log = logging.getLogger(__name__)

CPU = ORT_CPU
__all__ = ["PREFERRED_PROVIDERS", "Detector", "ModelLoadError", "choose_providers"]
DEFAULT_INPUT_SIZE = 640
MAX_DETECTIONS = 300


class Detector:
    """Object detector for one ONNX model; thread-safe, one instance shared by all cameras.

    Attributes fixed at construction: ``layout`` ('ultralytics' | 'yolox' | 'yolov5'),
    ``class_names``, ``backend`` ('onnxruntime' | 'openvino') and ``backend_reason`` (why it
    was chosen), ``provider`` (the onnxruntime execution provider or OpenVINO device actually
    used), ``input_size`` (width, height), ``supports_batch`` and ``model_path``.

    ``backend``: 'onnxruntime' (the default for library callers, which want the same numbers
    everywhere), 'openvino', or 'auto' (what the edge config defaults to: OpenVINO when it is
    installed and measured faster on this machine at start; see :mod:`.backends`).
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
        backend: str | None = "onnxruntime",
    ) -> None:
        self.model_path = Path(model_path)
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be within 0..1, got {iou_threshold}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.iou_threshold = float(iou_threshold)
        # The runtime (onnxruntime or OpenVINO, see backends.py); all the rest is shared.
        choice = open_backend(
            self.model_path,
            backend,
            lambda b: self._model_input_size(b, input_size),
            providers=providers,
            threads=intra_op_threads,
        )
        self._backend: InferenceBackend = choice.backend
        self.backend: str = self._backend.name
        self.backend_reason: str = choice.reason
        self.backend_cpu_ms: dict[str, float] = choice.cpu_ms
        self.provider: str = self._backend.device
        self._metadata = self._backend.metadata
        self._dtype = self._backend.input_dtype
        self.input_size = self._model_input_size(self._backend, input_size)
        batch_dim = self._backend.input_shape[0]
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
            "detector %s: backend=%s (%s) layout=%s classes=%d input=%dx%d provider=%s batch=%s",
            self.model_path.name,
            self.backend,
            self.backend_reason,
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
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "provider": self.provider,
            "providers_available": _providers_available(),
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
        return (
            f"Detector({str(self.model_path)!r}, layout={self.layout!r}, backend={self.backend!r}, "
            f"provider={self.provider!r})"
        )

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
        out = self._backend.run(batch)
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
                out = self._backend.run(np.repeat(grey, 2, axis=0))
                if out.shape[0] == 2:
                    return out[:1], True
            except Exception as exc:  # onnxruntime raises its own exception types
                log.warning("%s declares a dynamic batch but fails with 2 images (%s); running one by one",
                            self.model_path, exc)  # fmt: skip
        try:
            out = self._backend.run(grey)
        except Exception as exc:
            raise ModelLoadError(
                f"model {self.model_path} failed on a test input {list(grey.shape)}: {exc}"
            ) from exc
        return out, False

    def _model_input_size(self, backend: InferenceBackend, requested: int | None) -> tuple[int, int]:
        """The input size to run at, read from a backend's view of the model's input."""
        if len(backend.input_names) != 1:
            raise UnsupportedModelError(
                f"{self.model_path}: expected one image input, the model has {backend.input_names}"
            )
        self._metadata = backend.metadata  # imgsz metadata may decide the size
        return self._resolve_input_size(backend.input_shape, requested)

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


def _providers_available() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _checked_size(width: int, height: int) -> tuple[int, int]:
    if width < 32 or height < 32 or width % 32 or height % 32:
        raise ValueError(f"input size must be a multiple of 32 and at least 32, got {width}x{height}")
    return int(width), int(height)
