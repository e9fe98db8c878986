"""Build the shared detector from an edge configuration's ``model`` section."""

from __future__ import annotations

from gridwarden.edge.analytics.detector import Detector
from gridwarden.edge.config import EdgeConfig


def build_detector(config: EdgeConfig) -> Detector | None:
    """The configured detector, or ``None`` when the edge runs class-agnostic rules only."""
    if config.model is None:
        return None
    m = config.model
    return Detector(
        m.path,
        input_size=m.input_size,
        conf_threshold=m.conf_threshold,
        class_thresholds=m.class_thresholds or None,
        iou_threshold=m.iou_threshold,
        labels_path=m.labels,
        layout=None if m.layout == "auto" else m.layout,
        providers=m.providers,
        backend=m.backend,
    )
