"""Value types that flow through the edge pipeline: :class:`Frame` and :class:`Detections`.

Detections are columnar numpy arrays (one row per box) rather than a list of objects: every
stage after the detector is vectorised, and per-box Python objects on the hot path cost more
than the model does on a small CPU box.

Example::

    >>> import numpy as np
    >>> d = Detections(xyxy=np.array([[0, 0, 10, 20]], np.float32),
    ...                confidence=np.array([0.9], np.float32), class_id=np.array([2], np.int32))
    >>> d.anchors("bottom_center").tolist()
    [[5.0, 20.0]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

AnchorPoint = Literal["bottom_center", "center", "top_center"]


@dataclass(slots=True)
class Frame:
    """One decoded picture from a camera.

    ``media_time`` is seconds from the stream's start, taken from the packet pts: rules measure
    dwell in media time so a replay at 10x speed behaves exactly like the live stream.
    """

    camera_id: str
    image: np.ndarray  # HxWx3 uint8, BGR
    media_time: float
    wall_time: float
    index: int = 0

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _empty_f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


@dataclass(slots=True)
class Detections:
    """Boxes found in one frame, in pixel coordinates of that frame.

    ``track_id`` is -1 until a tracker assigns ids.
    """

    xyxy: np.ndarray = field(default_factory=lambda: _empty_f32(0, 4))
    confidence: np.ndarray = field(default_factory=lambda: _empty_f32(0))
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        if self.track_id is None:
            self.track_id = np.full(len(self.xyxy), -1, dtype=np.int64)
        else:
            self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if not (len(self.confidence) == len(self.class_id) == len(self.track_id) == n):
            raise ValueError("Detections columns differ in length")

    @classmethod
    def empty(cls) -> Detections:
        return cls()

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: np.ndarray | slice | list[int]) -> Detections:
        """Select rows by boolean mask, index array or slice."""
        assert self.track_id is not None
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            track_id=self.track_id[index],
        )

    @staticmethod
    def concatenate(items: list[Detections]) -> Detections:
        if not items:
            return Detections.empty()
        return Detections(
            xyxy=np.concatenate([d.xyxy for d in items]),
            confidence=np.concatenate([d.confidence for d in items]),
            class_id=np.concatenate([d.class_id for d in items]),
            track_id=np.concatenate([d.track_id for d in items if d.track_id is not None]),
        )

    @property
    def widths(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def heights(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def areas(self) -> np.ndarray:
        return np.clip(self.widths, 0, None) * np.clip(self.heights, 0, None)

    def anchors(self, anchor: AnchorPoint = "bottom_center") -> np.ndarray:
        """The point of each box that decides zone membership, shape (N, 2)."""
        cx = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        if anchor == "bottom_center":
            cy = self.xyxy[:, 3]
        elif anchor == "center":
            cy = (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2
        elif anchor == "top_center":
            cy = self.xyxy[:, 1]
        else:  # pragma: no cover - guarded by config validation
            raise ValueError(f"unknown anchor {anchor!r}")
        return np.stack([cx, cy], axis=1)
