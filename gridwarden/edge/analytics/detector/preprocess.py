"""Letterbox an image into the model's input tensor, and map boxes back out again.

Letterboxing keeps the aspect ratio (a stretched car is a different car to the model) and pads
the rest with grey 114. Where the pad goes, the colour order and the pixel scale differ between
model families, and getting any of them wrong does not fail loudly: it just loses detections.
So they are one explicit value, :class:`InputFormat`, chosen by the layout.

One ``cv2.resize`` per image; everything else writes straight into the output array.

Example::

    >>> import numpy as np
    >>> fmt = InputFormat(width=416, height=416, rgb=False, scale=1.0, centre_pad=False)
    >>> tensor, box = letterbox(np.zeros((432, 768, 3), np.uint8), fmt)
    >>> tensor.shape, round(box.scale, 4), box.pad_x, box.pad_y
    ((3, 416, 416), 0.5417, 0.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class InputFormat:
    """What the model expects: input size, colour order, pixel scale and where the pad goes."""

    width: int
    height: int
    rgb: bool  # True: channels R,G,B; False: B,G,R as OpenCV decodes
    scale: float  # multiply uint8 pixels by this (1/255 for 0-1 models, 1.0 for 0-255)
    centre_pad: bool  # True: pad split around the image; False: all pad at bottom/right
    dtype: type = np.float32


@dataclass(frozen=True, slots=True)
class LetterboxTransform:
    """How one original image was placed in the input tensor, to invert it for the boxes."""

    scale: float
    pad_x: float
    pad_y: float
    orig_width: int
    orig_height: int

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Map xyxy boxes from input-tensor pixels to original-image pixels, clipped to it."""
        out = np.empty_like(xyxy, dtype=np.float32)
        inv = 1.0 / self.scale
        np.multiply(xyxy[:, 0::2] - self.pad_x, inv, out=out[:, 0::2], casting="unsafe")
        np.multiply(xyxy[:, 1::2] - self.pad_y, inv, out=out[:, 1::2], casting="unsafe")
        np.clip(out[:, 0::2], 0, self.orig_width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.orig_height, out=out[:, 1::2])
        return out

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        """The forward mapping (original pixels to input pixels); used by tests and tools."""
        out = np.asarray(xyxy, dtype=np.float32).copy()
        out[:, 0::2] = out[:, 0::2] * self.scale + self.pad_x
        out[:, 1::2] = out[:, 1::2] * self.scale + self.pad_y
        return out


def letterbox(
    image: np.ndarray, fmt: InputFormat, out: np.ndarray | None = None
) -> tuple[np.ndarray, LetterboxTransform]:
    """Resize ``image`` (BGR uint8 HxWx3) into a CHW tensor of ``fmt``, padded with grey 114.

    Returns the tensor (3, fmt.height, fmt.width) and the transform to map boxes back. Pass
    ``out`` (a row of a reused batch buffer) to skip the allocation: a fresh 2 MB tensor per
    frame costs page faults comparable to the whole conversion.
    """
    _check_image(image)
    h, w = image.shape[:2]
    r = min(fmt.width / w, fmt.height / h)
    new_w = max(1, min(fmt.width, round(w * r)))
    new_h = max(1, min(fmt.height, round(h * r)))
    if fmt.centre_pad:
        # Same rounding as ultralytics/YOLOv5, so boxes line up with their reference pipelines.
        left = round((fmt.width - new_w) / 2 - 0.1)
        top = round((fmt.height - new_h) / 2 - 0.1)
    else:
        left = top = 0
    resized = (
        image
        if (new_w, new_h) == (w, h)
        else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    )

    if out is None:
        out = np.empty((3, fmt.height, fmt.width), dtype=fmt.dtype)
    elif out.shape != (3, fmt.height, fmt.width) or out.dtype != fmt.dtype:
        raise ValueError(
            f"out must be {(3, fmt.height, fmt.width)} {np.dtype(fmt.dtype)}, got {out.shape} {out.dtype}"
        )
    _fill_padding(out, top, left, new_h, new_w, PAD_VALUE * fmt.scale)
    # cv2.split gives contiguous planes, so the per-channel convert below streams memory
    # instead of striding across interleaved pixels (about 2x faster than one strided ufunc).
    planes = cv2.split(resized)
    order = (2, 1, 0) if fmt.rgb else (0, 1, 2)
    scale = fmt.dtype(fmt.scale)
    for channel, plane in enumerate(order):
        region = out[channel, top : top + new_h, left : left + new_w]
        if fmt.scale == 1.0:
            np.copyto(region, planes[plane], casting="unsafe")
        else:
            np.multiply(planes[plane], scale, out=region, casting="unsafe")
    return out, LetterboxTransform(float(r), float(left), float(top), w, h)


def _fill_padding(out: np.ndarray, top: int, left: int, new_h: int, new_w: int, value: float) -> None:
    """Write the pad value around the content rectangle only (the content is written next)."""
    out[:, :top] = value
    out[:, top + new_h :] = value
    out[:, top : top + new_h, :left] = value
    out[:, top : top + new_h, left + new_w :] = value


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 HxWx3 image, got shape {image.shape} dtype {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image of shape {image.shape}")
