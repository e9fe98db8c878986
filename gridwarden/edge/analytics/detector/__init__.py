"""Object detection on the edge box: one shared onnxruntime session per model.

Callers need only :class:`Detector` (frames in, :class:`~gridwarden.edge.types.Detections`
out) and :func:`resolve_classes` (config class/group names to class ids).
"""

from gridwarden.edge.analytics.detector.classes import (
    COCO80,
    DEFAULT_CLASS_GROUPS,
    load_labels_file,
    resolve_classes,
)
from gridwarden.edge.analytics.detector.layouts import LAYOUTS, UnsupportedModelError
from gridwarden.edge.analytics.detector.session import Detector, ModelLoadError, choose_providers

__all__ = [
    "COCO80",
    "DEFAULT_CLASS_GROUPS",
    "LAYOUTS",
    "Detector",
    "ModelLoadError",
    "UnsupportedModelError",
    "choose_providers",
    "load_labels_file",
    "resolve_classes",
]
