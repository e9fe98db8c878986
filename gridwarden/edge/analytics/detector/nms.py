"""Per-class non-maximum suppression and per-class confidence thresholds.

Per class, because a person standing next to a car must keep both boxes; within a class,
overlapping boxes are one object. The work is done by OpenCV's C++ ``NMSBoxesBatched``;
everything around it is numpy, with no per-box Python loop.

Example::

    >>> import numpy as np
    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    >>> scores = np.array([0.9, 0.8, 0.7], np.float32)
    >>> classes = np.array([0, 0, 1], np.int32)
    >>> per_class_nms(boxes, scores, classes, iou_threshold=0.45).tolist()
    [0, 2]
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np


def per_class_nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    *,
    iou_threshold: float,
    max_detections: int = 300,
) -> np.ndarray:
    """Indices of the boxes kept, best score first; boxes of different classes never suppress
    each other."""
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.empty_like(xyxy, dtype=np.float32)
    xywh[:, :2] = xyxy[:, :2]
    xywh[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    kept = cv2.dnn.NMSBoxesBatched(
        xywh,  # type: ignore[arg-type]  # the stubs say Sequence; OpenCV takes arrays
        scores.astype(np.float32, copy=False),  # type: ignore[arg-type]
        class_ids.astype(np.int32, copy=False),  # type: ignore[arg-type]
        0.0,
        iou_threshold,
    )
    keep = np.asarray(kept, dtype=np.int64).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keep[:max_detections]


def threshold_table(
    class_names: list[str], default: float, per_class: Mapping[str, float] | None
) -> np.ndarray:
    """One confidence threshold per class id, so filtering is a single vectorised lookup.

    Per-class thresholds let a deployment ask more of a noisy label (``cell phone`` from above)
    without raising the bar for cars. Unknown names are an error listing the valid ones.
    """
    _check_threshold("conf_threshold", default)
    table = np.full(len(class_names), default, dtype=np.float32)
    index = {name: i for i, name in enumerate(class_names)}
    for name, value in (per_class or {}).items():
        if name not in index:
            raise ValueError(
                f"class_thresholds names unknown class {name!r}; the model's classes are: {', '.join(class_names)}"
            )
        _check_threshold(f"class_thresholds[{name!r}]", value)
        table[index[name]] = value
    return table


def _check_threshold(what: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{what} must be within 0..1, got {value}")
