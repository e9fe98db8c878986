"""Class-agnostic static objects: things that arrived and stayed, whatever the detector calls them.

The detector only knows its training classes; a market stall, a pile of goods or a skip on the
pavement occupy public space just the same. This module keeps two background models of a small
(~160 px wide) colour copy of the view and reports regions that differ from the *long-term*
background but have stopped changing, as pseudo-detections of class ``static_object`` that the
occupancy rule treats like any other box (coverage, dwell).

Per pixel, in media time (so 2 fps and 10 fps streams, and replay at any speed, behave alike;
every rate is ``1 - exp(-dt / tau)``):

- **foreground**: differs from the long-term background by more than ``diff_threshold`` (max over
  B, G, R, after removing the global brightness offset, so a cloud is not an object);
- **age**: media seconds the pixel has been foreground without interruption; any frame in which
  the background shows through resets it, so people walking through never get old;
- **still**: matches the short-term background (time constant ``short_term_s``), i.e. has not
  changed over the last few seconds;
- **static**: age >= ``min_static_s`` and still (once static, a pixel stays static while it is
  foreground, so someone walking in front of a stall does not reset its box).
- **shadow**: darker than the background by a similar factor in every channel, with the
  background's texture: not foreground, so a building's shadow sweeping slowly over a pavement
  is not an object (see ``_shadow``).

Because age counts from arrival, an object is reported about ``min_static_s`` after it arrives,
or ``short_term_s * ln(contrast / diff_threshold)`` after it stops if that is later. Each box comes
with its age (:attr:`StaticForegroundDetector.last_ages`, the oldest pixel of the region), so the
rules count dwell from arrival: a ``dwell_s: 30`` rule fires 30 s after the goods were put down,
not 30 s after the detector confirmed them.

Time constants of the long-term model (the "must not absorb a stall" part):

- background pixels follow the scene with ``long_term_s`` (default 600 s): slow daylight changes;
- foreground pixels are absorbed with ``absorb_s`` (default 3600 s): a stall of contrast C stays
  reported for about ``absorb_s * ln(C / diff_threshold)``, e.g. 83 min for C = 100 and 28 min
  for a faint C = 40 at the default threshold 25. When the object leaves, the background shows
  again, foreground ends and the box disappears on the next frame.

Ghosts: when something that was in the long-term background leaves (a car parked when the box
started), the revealed street differs from the model and would be reported as a static object.
Before a region is first reported, its outline is checked: a real object has its edges in the
current frame; a ghost has them in the background model and not in the frame. Ghost regions are
written into the long-term background at once. Limitation: an object already present when the
detector starts is background to it and is never reported by this path (the class detector still
sees cars); a flat grey object darker than flat grey ground passes for a shadow.

Example::

    >>> from gridwarden.edge.capture.synthetic_scene import make_street_scene, stall_box
    >>> det = StaticForegroundDetector(min_static_s=10.0)
    >>> for t, image in make_street_scene(320, 180, fps=2, duration_s=20, arrive_s=4, leave_s=99):
    ...     boxes = det.update(image, t)
    >>> len(boxes), boxes.class_id.tolist()
    (1, [0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from gridwarden.edge.analytics.gate import (
    Polygon,
    check_image,
    check_small,
    check_time,
    downscale,
    region_mask,
)
from gridwarden.edge.types import Detections

STATIC_OBJECT_CLASS = "static_object"

_MAX_STEP_S = 5.0  # a longer gap in the stream is not counted as more than this much dwell
_GHOST_EDGE_RATIO = 1.0
# A shadow: frame / background between these (darker, not black), the same within this much across
# B, G, R, and varying by at most this standard deviation over 5x5 pixels (the ground's texture).
_SHADOW_RATIO = (0.3, 0.92)
_SHADOW_MAX_COLOUR_SPREAD = 0.12
_SHADOW_MAX_TEXTURE_SD = 0.05  # the outline is where edges are stronger: frame (object) or model (ghost)


class StaticForegroundDetector:
    """Reports regions that arrived and stayed, as boxes in original pixel coordinates.

    ``update`` returns one box per connected static region of at least ``min_area_fraction`` of
    the frame, inside ``regions`` (normalised polygons; None = whole frame). Confidence is the
    region's mean static age over ``2 * min_static_s``, clipped to [0, 1] (0.5 when first seen).
    """

    def __init__(
        self,
        *,
        width: int = 160,
        long_term_s: float = 600.0,
        short_term_s: float = 5.0,
        diff_threshold: int = 25,
        min_static_s: float = 10.0,
        min_area_fraction: float = 0.002,
        regions: Sequence[Polygon] | None = None,
        class_id: int = 0,
        absorb_s: float = 3600.0,
    ) -> None:
        if width < 32:
            raise ValueError(f"width must be at least 32, got {width}")
        if not 0 < short_term_s < long_term_s <= absorb_s:
            raise ValueError("need 0 < short_term_s < long_term_s <= absorb_s")
        if not 0 < diff_threshold < 255:
            raise ValueError(f"diff_threshold must be in (0, 255), got {diff_threshold}")
        if min_static_s <= 0 or not 0 <= min_area_fraction < 1:
            raise ValueError("min_static_s must be positive and min_area_fraction in [0, 1)")
        self._width = width
        self._long_s = long_term_s
        self._short_s = short_term_s
        self._absorb_s = absorb_s
        self._threshold = float(diff_threshold)
        self._min_static_s = min_static_s
        self._min_area_fraction = min_area_fraction
        self._regions = regions
        self._class_id = class_id
        if regions is not None:
            region_mask(regions, (width, width))  # fail fast on bad polygons
        self._long: np.ndarray | None = None
        self._short: np.ndarray | None = None
        self._age: np.ndarray | None = None
        self._static: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._last_t = -math.inf
        self._scale = (1.0, 1.0)
        self._last_result = Detections.empty()
        self._last_ages = np.zeros(0, np.float64)

    @property
    def last_ages(self) -> np.ndarray:
        """For each box of the latest result: media seconds since its pixels became foreground
        (the oldest pixel of the region), i.e. how long the object has been there. Rules use it
        to count dwell from arrival rather than from the moment the region was confirmed."""
        return self._last_ages.copy()

    @property
    def static_mask(self) -> np.ndarray | None:
        """Boolean per-pixel static mask at the analysis size (for overlays and debugging)."""
        return None if self._static is None else self._static.copy()

    @property
    def width(self) -> int:
        """Width of the analysis image (what ``update``'s ``small`` must be)."""
        return self._width

    def update(self, image: np.ndarray, media_time: float, small: np.ndarray | None = None) -> Detections:
        """``small``: ``image`` already downscaled to :attr:`width` (shared with the motion gate
        through :class:`~..gate.DownscaleCache`), if the caller has it; it saves the resize."""
        t = check_time(media_time)
        if small is None:
            small = downscale(image, self._width)
        else:
            check_image(image)
            check_small(small, image.shape, self._width)
        small = cv2.GaussianBlur(self._as_bgr(small), (3, 3), 0).astype(np.float32)
        if self._long is None or self._long.shape != small.shape or t < self._last_t:
            self._restart(small, image, t)
            return self._last_result
        if t == self._last_t:
            return self._last_result
        assert self._short is not None and self._age is not None and self._static is not None
        dt = t - self._last_t
        self._last_t = t

        # Global brightness drift, from every other pixel: the median ignores a local object.
        offset = np.median((small[::2, ::2] - self._long[::2, ::2]).reshape(-1, 3), axis=0)
        current = small - offset.astype(np.float32)
        foreground = _max_channel_diff(current, self._long) > self._threshold
        foreground &= ~_shadow(small, self._long)
        still = _max_channel_diff(small, self._short) <= self._threshold
        self._age = np.where(foreground, self._age + min(dt, _MAX_STEP_S), 0.0).astype(np.float32)
        static = foreground & (self._age >= self._min_static_s) & (still | self._static)
        static &= self._mask

        self._update_models(small, foreground, dt)
        static = self._drop_ghosts(static, foreground, current)
        self._static = static
        self._last_result, self._last_ages = self._boxes(static)
        return self._last_result

    def _restart(self, small: np.ndarray, image: np.ndarray, t: float) -> None:
        h, w = small.shape[:2]
        self._long = small.copy()
        self._short = small.copy()
        self._age = np.zeros((h, w), np.float32)
        self._static = np.zeros((h, w), bool)
        if self._mask is None or self._mask.shape != (h, w):  # rasterised once per size
            self._mask = region_mask(self._regions, (w, h))
        self._scale = (image.shape[1] / w, image.shape[0] / h)
        self._last_t = t
        self._last_result = Detections.empty()
        self._last_ages = np.zeros(0, np.float64)

    @staticmethod
    def _as_bgr(small: np.ndarray) -> np.ndarray:
        if small.ndim == 2:
            return cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        return small if small.shape[2] == 3 else cv2.cvtColor(small[:, :, 0], cv2.COLOR_GRAY2BGR)

    def _update_models(self, small: np.ndarray, foreground: np.ndarray, dt: float) -> None:
        assert self._long is not None and self._short is not None
        self._short += (1.0 - math.exp(-dt / self._short_s)) * (small - self._short)
        rate_bg = 1.0 - math.exp(-dt / self._long_s)
        rate_fg = 1.0 - math.exp(-dt / self._absorb_s)
        rate = np.where(foreground, np.float32(rate_fg), np.float32(rate_bg))[..., None]
        self._long += rate * (small - self._long)

    def _drop_ghosts(self, static: np.ndarray, foreground: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Absorb newly static regions whose outline is in the model, not in the frame.

        The outline tested is that of the whole foreground blob holding the new static pixels,
        not of the static pixels alone: a static fragment of a standing person has a boundary
        through the person's interior (no edges in the frame) and over whatever fixed structure
        is behind (edges in the model), and would be mistaken for a ghost.
        """
        assert self._static is not None and self._long is not None and self._age is not None
        new = static & ~self._static
        if not new.any():
            return static
        n, labels = cv2.connectedComponents(foreground.astype(np.uint8), connectivity=8)
        candidates = np.unique(labels[new])
        kernel = np.ones((3, 3), np.uint8)
        fg_u8 = foreground.astype(np.uint8)
        band = cv2.dilate(fg_u8, kernel) > cv2.erode(fg_u8, kernel)
        band_labels = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int32)[band]
        now_sum = np.bincount(band_labels, weights=_edge_strength(current)[band], minlength=n)
        model_sum = np.bincount(band_labels, weights=_edge_strength(self._long)[band], minlength=n)
        is_ghost = now_sum[candidates] < _GHOST_EDGE_RATIO * model_sum[candidates]
        ghost_ids = candidates[(candidates > 0) & is_ghost]
        if len(ghost_ids) == 0:
            return static
        ghost = np.isin(labels, ghost_ids) & static
        self._long[ghost] = current[ghost]
        self._age[ghost] = 0.0
        return static & ~ghost

    def _boxes(self, static: np.ndarray) -> tuple[Detections, np.ndarray]:
        none = (Detections.empty(), np.zeros(0, np.float64))
        if not static.any():
            return none
        assert self._age is not None
        closed = cv2.morphologyEx(static.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
        h, w = static.shape
        area = stats[1:, cv2.CC_STAT_AREA]
        keep = area >= max(1.0, self._min_area_fraction * h * w)
        if not keep.any():
            return none
        age_sum = np.bincount(labels.reshape(-1), weights=(self._age * static).reshape(-1), minlength=n)[1:]
        static_px = np.bincount(labels.reshape(-1), weights=static.reshape(-1), minlength=n)[1:]
        mean_age = age_sum / np.maximum(static_px, 1)
        x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
        bw, bh = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
        sx, sy = self._scale
        xyxy = np.stack([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy], axis=1)[keep]
        confidence = np.clip(mean_age / (2.0 * self._min_static_s), 0.0, 1.0)[keep]
        oldest = np.zeros(n, np.float64)
        np.maximum.at(
            oldest, labels.reshape(-1).astype(np.intp), (self._age * static).reshape(-1).astype(np.float64)
        )
        detections = Detections(xyxy=xyxy, confidence=confidence, class_id=np.full(len(xyxy), self._class_id))
        return detections, oldest[1:][keep]


def _shadow(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels that look like the background under a shadow, not like something new.

    A shadow darkens every channel by about the same factor (colour kept) and keeps the ground's
    texture, so the ratio frame / background is below one, nearly equal across B, G, R, and
    smooth over a few pixels; an object has its own colour and its own texture. Limitation: a
    flat grey object on flat grey ground, darker than it, passes for a shadow.
    """
    ratio = (frame + 1.0) / (background + 1.0)
    mean = ratio.mean(axis=2)
    spread = ratio.max(axis=2) - ratio.min(axis=2)
    smooth = cv2.blur(mean, (5, 5))
    local_sd = np.sqrt(np.maximum(cv2.blur(mean * mean, (5, 5)) - smooth * smooth, 0.0))
    return (
        (mean >= _SHADOW_RATIO[0])
        & (mean <= _SHADOW_RATIO[1])
        & (spread <= _SHADOW_MAX_COLOUR_SPREAD)
        & (local_sd <= _SHADOW_MAX_TEXTURE_SD)
    )


def _max_channel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(|a - b|) over B, G, R; cv2 on channel planes is ~5x faster than numpy's axis reduce."""
    d = cv2.absdiff(a, b)
    return cv2.max(cv2.max(d[:, :, 0], d[:, :, 1]), d[:, :, 2])


def _edge_strength(bgr: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey image (float32), for the ghost test."""
    grey = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.float32), cv2.COLOR_BGR2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)
