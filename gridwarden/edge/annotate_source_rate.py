"""The annotated replay video at the clip's own frame rate.

The pipeline analyses a camera at its analysis rate (2 fps for a fixed camera), so drawing only
the analysed frames gives a 2 fps video that jumps. This writer decodes the clip a second time,
in step with the replay, and writes EVERY source frame with the drawing of the latest analysed
frame laid over it (the pixels :func:`gridwarden.edge.annotate.draw_result` changed). Memory stays
bounded: only the latest overlay is kept, and source frames are written as soon as the replay
has passed their time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from gridwarden.edge.annotate import AnnotatedVideoWriter

DEFAULT_FPS = 25.0


class SourceRateAnnotator:
    """``add(drawn, original, media_time)`` for each analysed frame, then ``close()``."""

    def __init__(self, clip: str | Path, out: str | Path) -> None:
        self._container = av.open(str(clip))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else DEFAULT_FPS
        self._frames: Iterator[av.VideoFrame] = self._container.decode(stream)
        self._out = Path(out)
        self._writer: AnnotatedVideoWriter | None = None
        self._mask: np.ndarray | None = None
        self._layer: np.ndarray | None = None
        self._pending: tuple[float, np.ndarray] | None = None
        self._first_time: float | None = None
        self.written = 0

    def add(self, drawn: np.ndarray, original: np.ndarray, media_time: float) -> None:
        """Write the source frames before ``media_time``, then use this drawing from there on."""
        self._write_until(media_time)
        self._mask = np.any(drawn != original, axis=2)
        self._layer = drawn

    def close(self) -> None:
        self._write_until(float("inf"))
        if self._writer is not None:
            self._writer.close()
        self._container.close()

    def _next(self) -> tuple[float, np.ndarray] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        for frame in self._frames:
            if frame.pts is None or frame.time is None:
                continue
            t = float(frame.time)
            if self._first_time is None:
                self._first_time = t
            return t - self._first_time, frame.to_ndarray(format="bgr24")
        return None

    def _write_until(self, media_time: float) -> None:
        # Media times of the replay count from the clip's first frame, as here.
        while (item := self._next()) is not None:
            t, image = item
            if t >= media_time - 1e-3:
                self._pending = item
                return
            if self._writer is None:
                self._writer = AnnotatedVideoWriter(self._out, self.fps, (image.shape[1], image.shape[0]))
            self._writer.write(self._overlay(image))
            self.written += 1

    def _overlay(self, image: np.ndarray) -> np.ndarray:
        if self._mask is None or self._layer is None:
            return image
        mask, layer = self._mask, self._layer
        if layer.shape[:2] != image.shape[:2]:
            size = (image.shape[1], image.shape[0])
            layer = cv2.resize(layer, size, interpolation=cv2.INTER_NEAREST)
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        out = image.copy()
        out[mask] = layer[mask]
        return out
