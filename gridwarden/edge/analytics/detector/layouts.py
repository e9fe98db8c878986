"""Model output layouts: telling them apart, and decoding each into candidate boxes.

Three families are supported, and each wants its own preprocessing as well:

=============  ==================  ==========================================  ===========  =========
layout         output              boxes                                       input        pad
=============  ==================  ==========================================  ===========  =========
ultralytics    ``[B, 4+C, N]``     cx,cy,w,h in input pixels; class scores     RGB 0-1      centred
               (YOLOv8, YOLO11)    without objectness
yolox          ``[B, N, 5+C]``     cx,cy grid offsets, w,h log-sizes, for      BGR 0-255    top-left
                                   strides 8/16/32; objectness; class scores
yolov5         ``[B, N, 5+C]``     cx,cy,w,h decoded in input pixels;          RGB 0-1      centred
                                   objectness * class score
=============  ==================  ==========================================  ===========  =========

How the layout is told apart (override it with ``layout=`` when a model defeats this). All
three heads predict on the strides 8/16/32 grid, whose cell count G for the input size is
sum((H/s)*(W/s)): 3549 at 416, 8400 at 640. Ultralytics and YOLOX have one prediction per
cell (N = G), YOLOv5 three anchors per cell (N = 3G).

1. ``[B, K, N]`` with N = G in the last axis and K < N is ultralytics (channels first).
2. ``[B, N, 5+C]`` with N = G is YOLOX. A probe run on a grey image tells whether the box
   columns are raw or decoded: raw YOLOX centre offsets are grid-cell units (median about 0.5),
   decoded centres are pixels (median about half the width). Decoded means YOLOX exported with
   ``decode_in_inference``: still YOLOX preprocessing, with the grid decode skipped.
3. ``[B, N, 5+C]`` with decoded boxes (N = 3G, or any N that fits no grid) is YOLOv5.
4. Otherwise, a shape with fewer rows than columns is taken as ultralytics (an export at an
   unusual stride set); raw boxes off the grid are an error that names the shape.

Metadata does not decide the layout: YOLOv5's exporter writes the same ``names``/``stride``
keys as ultralytics. It does give the class names (see :mod:`.session`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gridwarden.edge.analytics.detector.preprocess import InputFormat

ULTRALYTICS = "ultralytics"
YOLOX = "yolox"
YOLOV5 = "yolov5"
LAYOUTS = (ULTRALYTICS, YOLOX, YOLOV5)
YOLOX_STRIDES = (8, 16, 32)


class UnsupportedModelError(ValueError):
    """The model's inputs or outputs fit none of the supported layouts."""


@dataclass(frozen=True, slots=True)
class Layout:
    """One model's output layout plus the facts needed to decode it."""

    name: str
    num_classes: int
    boxes_encoded: bool = False  # YOLOX grid offsets/log-sizes that still need the grid decode

    def input_format(self, width: int, height: int, dtype: type = np.float32) -> InputFormat:
        """Preprocessing follows the family: YOLOX trains on BGR 0-255 with the image in the
        top-left corner; ultralytics and YOLOv5 on RGB 0-1, centred."""
        if self.name == YOLOX:
            return InputFormat(width, height, rgb=False, scale=1.0, centre_pad=False, dtype=dtype)
        return InputFormat(width, height, rgb=True, scale=1.0 / 255.0, centre_pad=True, dtype=dtype)


def yolox_grid_count(width: int, height: int, strides: tuple[int, ...] = YOLOX_STRIDES) -> int:
    return sum((height // s) * (width // s) for s in strides)


def looks_decoded(anchor_rows: np.ndarray, width: int) -> bool:
    """Whether ``[N, 5+C]`` box columns hold pixels (decoded) rather than grid units.

    See the module docstring: the median centre-x of all anchors is about half the input
    width when decoded, and below 1 when raw. The threshold sits far from both.
    """
    return float(np.median(anchor_rows[:, 0])) > max(8.0, 0.05 * width)


def identify_layout(
    output_shape: tuple[int, ...],
    probe_output: np.ndarray,
    input_width: int,
    input_height: int,
    override: str | None = None,
) -> Layout:
    """Pick the layout for a model from its concrete output shape and a probe run's output."""
    if len(output_shape) != 3 or min(output_shape) < 1:
        raise UnsupportedModelError(
            f"unsupported output shape {list(output_shape)}: expected [batch, 4+classes, anchors] "
            "(ultralytics) or [batch, anchors, 5+classes] (YOLOX / YOLOv5)"
        )
    _, a, b = output_shape
    if override is not None:
        if override not in LAYOUTS:
            raise ValueError(f"unknown layout {override!r}; valid layouts: {', '.join(LAYOUTS)}")
        if override == ULTRALYTICS:
            return _checked(Layout(ULTRALYTICS, a - 4), output_shape)
        encoded = override == YOLOX and not looks_decoded(probe_output[0], input_width)
        grid = yolox_grid_count(input_width, input_height)
        if encoded and a != grid:
            raise UnsupportedModelError(
                f"layout 'yolox' with raw boxes needs {grid} anchors for input {input_width}x{input_height}, "
                f"but the output shape is {list(output_shape)}"
            )
        return _checked(Layout(override, b - 5, boxes_encoded=encoded), output_shape)
    grid = yolox_grid_count(input_width, input_height)
    if b == grid and a < b:
        return _checked(Layout(ULTRALYTICS, a - 4), output_shape)
    decoded = looks_decoded(probe_output[0], input_width)
    if a == grid:
        return _checked(Layout(YOLOX, b - 5, boxes_encoded=not decoded), output_shape)
    if a > b and decoded:
        return _checked(Layout(YOLOV5, b - 5), output_shape)
    if a < b:
        return _checked(Layout(ULTRALYTICS, a - 4), output_shape)
    raise UnsupportedModelError(
        f"unsupported output shape {list(output_shape)}: anchors-first with raw (undecoded) boxes, but "
        f"{a} anchors is not the YOLOX grid count {grid} for input {input_width}x{input_height}; "
        "pass layout= if you know the layout"
    )


def _checked(layout: Layout, output_shape: tuple[int, ...]) -> Layout:
    if layout.num_classes < 1:
        raise UnsupportedModelError(
            f"output shape {list(output_shape)} leaves {layout.num_classes} classes for layout {layout.name!r}"
        )
    return layout


@dataclass(slots=True)
class Candidates:
    """Boxes of one image that passed their class threshold, before NMS, in input pixels."""

    xyxy: np.ndarray  # (K, 4) float32
    scores: np.ndarray  # (K,) float32
    class_ids: np.ndarray  # (K,) int32


@dataclass
class Decoder:
    """Turns one image's raw output into :class:`Candidates`. Vectorised over anchors; the
    grid for YOLOX is computed once per input size."""

    layout: Layout
    input_width: int
    input_height: int
    _grid: np.ndarray = field(init=False, repr=False)  # (N, 2) cell x, y
    _strides: np.ndarray = field(init=False, repr=False)  # (N,)

    def __post_init__(self) -> None:
        cells, strides = [], []
        if self.layout.boxes_encoded:
            for s in YOLOX_STRIDES:
                ys, xs = np.mgrid[0 : self.input_height // s, 0 : self.input_width // s]
                cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
                strides.append(np.full(xs.size, s))
        self._grid = np.concatenate(cells).astype(np.float32) if cells else np.zeros((0, 2), np.float32)
        self._strides = np.concatenate(strides).astype(np.float32) if strides else np.zeros(0, np.float32)

    def candidates(self, raw: np.ndarray, thresholds: np.ndarray) -> Candidates:
        """``raw`` is one image's output (batch dim removed); ``thresholds`` one per class."""
        if self.layout.name == ULTRALYTICS:
            return self._ultralytics(raw, thresholds)
        return self._objectness(raw, thresholds)

    def _ultralytics(self, raw: np.ndarray, thresholds: np.ndarray) -> Candidates:
        class_scores = raw[4:]  # (C, N)
        # The max over classes is a fast row-wise reduction; the argmax (strided, slower) runs
        # only on anchors whose best score clears the lowest threshold: a few dozen, not 8400.
        best = class_scores.max(axis=0)
        rows = np.flatnonzero(best >= thresholds.min())
        class_ids = class_scores[:, rows].argmax(axis=0)
        scores = best[rows]
        keep = scores >= thresholds[class_ids]
        rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
        boxes = raw[:4, rows].T
        return Candidates(_xywh_to_xyxy(boxes), scores.astype(np.float32), class_ids.astype(np.int32))

    def _objectness(self, raw: np.ndarray, thresholds: np.ndarray) -> Candidates:
        # score = objectness * best class score <= objectness, so rows whose objectness is below
        # the lowest threshold are dropped before the (C-wide) argmax: most rows, cheaply.
        rows = np.flatnonzero(raw[:, 4] >= thresholds.min())
        sub = raw[rows]
        class_ids = sub[:, 5:].argmax(axis=1)
        scores = sub[:, 4] * sub[np.arange(len(sub)), 5 + class_ids]
        keep = scores >= thresholds[class_ids]
        rows, sub, class_ids, scores = rows[keep], sub[keep], class_ids[keep], scores[keep]
        boxes = sub[:, :4].astype(np.float32)
        if self.layout.boxes_encoded:
            stride = self._strides[rows, None]
            boxes[:, :2] = (boxes[:, :2] + self._grid[rows]) * stride
            boxes[:, 2:] = np.exp(boxes[:, 2:]) * stride
        return Candidates(_xywh_to_xyxy(boxes), scores.astype(np.float32), class_ids.astype(np.int32))


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty((len(xywh), 4), dtype=np.float32)
    half = xywh[:, 2:4] / 2
    out[:, :2] = xywh[:, :2] - half
    out[:, 2:] = xywh[:, :2] + half
    return out
