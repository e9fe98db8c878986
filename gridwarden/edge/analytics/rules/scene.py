"""What the picture says about a remembered place: empty road, something in front, or which object.

The dwell rules remember resting objects by place (:mod:`.base`). When the detector stops seeing
one, the tracks alone cannot tell *why*: the car drove off, or a bus stopped in front of it. This
module answers from the pixels, cheaply:

* :class:`SceneModel` keeps a long-term background of the camera's view at a small size (160 px
  wide, colour, blurred), in media time. Pixels that match it follow the scene slowly
  (``background_s``: daylight); pixels that differ are absorbed far more slowly (``absorb_s``), so
  a car parked for an hour, or a bus standing in front of it for a minute, does not become road.
  The global brightness offset (clouds, auto-exposure, headlights sweeping the view) is removed
  with the median difference before comparing, as in the static-object path.
* :class:`SceneView` is one frame against that background. ``foreground_fraction(box)`` is the
  share of a place's pixels that differ from the background: low means the place is *seen
  empty*; high with no detection there means something the detector does not know covers it.
* ``signature(box)`` is a small colour histogram of the box centre taken from the full-resolution
  frame, with grey levels binned relative to the frame's median brightness: a white car stays
  "bright" at dusk, a red car stays red. :func:`signature_distance` (Hellinger) tells a different
  car at the same place apart from the same car seen again.

Limitations (shown by the tests): an object already present when the model started is part of
its background, so when it leaves unseen its place does not read as empty and the rule falls back
to the occlusion memory's time limit; two cars of the same colour at the same place are the same
object to the signature.

Example::

    >>> import numpy as np
    >>> road = np.full((432, 768, 3), 80, np.uint8)
    >>> model = SceneModel()
    >>> _ = model.update(road, 0.0)
    >>> car = road.copy(); car[100:300, 300:450] = (40, 40, 200)  # a red car arrives
    >>> view = model.update(car, 1.0)
    >>> round(view.foreground_fraction(np.array([300, 100, 450, 300])), 2)
    1.0
    >>> round(view.foreground_fraction(np.array([500, 100, 650, 300])), 2)
    0.0
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gridwarden.edge.analytics.gate import check_time, downscale

# Bins of the signature: hue of coloured pixels, then grey levels relative to the frame median.
_HUE_BINS = 12
_GREY_BINS = 3
_MIN_SATURATION = 60
_SIGNATURE_SIDE = 24  # the box centre is resampled to this many pixels a side before binning
_CENTRE_MARGIN = 0.2  # fraction of the box trimmed on each side: road around a car stays out
# The difference threshold applies as given in daylight (median brightness about this level) and
# shrinks in proportion at dusk, never below _MIN_THRESHOLD.
_DAYLIGHT_MEDIAN = 100.0
_MIN_THRESHOLD = 8.0


class SceneView:
    """One analysed frame compared with the camera's long-term background."""

    def __init__(
        self,
        image: np.ndarray,
        small: np.ndarray,
        background: np.ndarray,
        threshold: float,
        median_value: float,
    ) -> None:
        self.image = image
        self._small = small
        self._background = background
        self._threshold = threshold
        self._median_value = median_value
        self._sx = small.shape[1] / image.shape[1]
        self._sy = small.shape[0] / image.shape[0]
        self._diff: np.ndarray | None = None

    def _difference(self) -> np.ndarray:
        if self._diff is None:
            d = cv2.absdiff(self._small, self._background)
            self._diff = cv2.max(cv2.max(d[:, :, 0], d[:, :, 1]), d[:, :, 2])
        return self._diff

    def foreground_fraction(self, box_px: np.ndarray) -> float:
        """Share (0..1) of the box's inner pixels that differ from the background."""
        x0, y0, x1, y1 = _inner(box_px, 0.1)
        h, w = self._small.shape[:2]
        c0, c1 = (
            int(np.clip(math.floor(x0 * self._sx), 0, w - 1)),
            int(np.clip(math.ceil(x1 * self._sx), 1, w)),
        )
        r0, r1 = (
            int(np.clip(math.floor(y0 * self._sy), 0, h - 1)),
            int(np.clip(math.ceil(y1 * self._sy), 1, h)),
        )
        patch = self._difference()[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]
        return float(np.count_nonzero(patch > self._threshold)) / max(patch.size, 1)

    def signature(self, box_px: np.ndarray) -> np.ndarray:
        """Normalised colour histogram of the box centre (see the module docstring)."""
        x0, y0, x1, y1 = _inner(box_px, _CENTRE_MARGIN)
        h, w = self.image.shape[:2]
        c0, c1 = int(np.clip(x0, 0, w - 1)), int(np.clip(round(x1), 1, w))
        r0, r1 = int(np.clip(y0, 0, h - 1)), int(np.clip(round(y1), 1, h))
        crop = self.image[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]
        step = max(1, min(crop.shape[0], crop.shape[1]) // (2 * _SIGNATURE_SIDE))
        crop = crop[::step, ::step]  # a histogram needs no more pixels than this: keep it cheap
        if crop.ndim == 2:
            crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
        crop = cv2.resize(crop, (_SIGNATURE_SIDE, _SIGNATURE_SIDE), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
        hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
        # Saturation is noise on dark pixels: only a pixel bright enough to show colour counts as coloured.
        coloured = (sat >= _MIN_SATURATION) & (val >= 0.5 * self._median_value)
        hue_bin = np.minimum((hue / 180.0 * _HUE_BINS).astype(np.int64), _HUE_BINS - 1)
        relative = val / max(self._median_value, 1.0)
        grey_bin = _HUE_BINS + np.digitize(relative, [0.6, 1.6])
        bins = np.where(coloured, hue_bin, grey_bin)
        hist = np.bincount(bins, minlength=_HUE_BINS + _GREY_BINS).astype(np.float64)
        return hist / max(hist.sum(), 1.0)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of two signatures: 0 identical, 1 nothing in common."""
    overlap = float(np.sum(np.sqrt(np.asarray(a) * np.asarray(b))))
    return math.sqrt(max(0.0, 1.0 - overlap))


def _inner(box_px: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box_px, dtype=np.float64).reshape(4))
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return x0 + dx, y0 + dy, max(x1 - dx, x0 + dx + 1), max(y1 - dy, y0 + dy + 1)


class SceneModel:
    """Long-term background of one camera's view; :meth:`update` returns a :class:`SceneView`.

    Parameters (media seconds; every rate is ``1 - exp(-dt / tau)``):
        width: analysis width in pixels (aspect ratio kept).
        background_s: time constant for pixels that match the background.
        absorb_s: time constant for pixels that differ from it (objects, occluders).
        diff_threshold: grey levels (max over B, G, R) above which a pixel differs in daylight;
            scaled down with the scene's median brightness at dusk (never below 8).
    """

    def __init__(
        self,
        *,
        width: int = 160,
        background_s: float = 300.0,
        absorb_s: float = 3600.0,
        diff_threshold: float = 25.0,
    ) -> None:
        if width < 32:
            raise ValueError(f"width must be at least 32, got {width}")
        if not 0 < background_s <= absorb_s:
            raise ValueError("need 0 < background_s <= absorb_s")
        if not 0 < diff_threshold < 255:
            raise ValueError(f"diff_threshold must be in (0, 255), got {diff_threshold}")
        self._width = width
        self._background_s = background_s
        self._absorb_s = absorb_s
        self._threshold = float(diff_threshold)
        self._background: np.ndarray | None = None
        self._last_t = -math.inf

    def update(self, image: np.ndarray, media_time: float) -> SceneView:
        t = check_time(media_time)
        small = downscale(image, self._width)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        small = cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)
        median_value = float(np.median(small[::3, ::3].max(axis=2)))
        # At dusk every contrast shrinks with the light: the threshold follows the scene's
        # brightness (down to a floor well above the sensor noise left after downscaling).
        threshold = float(
            np.clip(self._threshold * median_value / _DAYLIGHT_MEDIAN, _MIN_THRESHOLD, self._threshold)
        )
        if self._background is None or self._background.shape != small.shape or t < self._last_t:
            self._background = small.copy()
            self._last_t = t
            return SceneView(image, small, self._background.copy(), threshold, median_value)
        dt = t - self._last_t
        self._last_t = t
        # Global brightness drift from every third pixel: the median ignores a local object.
        offset = np.median((small[::3, ::3] - self._background[::3, ::3]).reshape(-1, 3), axis=0)
        matched = self._background + offset.astype(np.float32)
        view = SceneView(image, small, matched, threshold, median_value)
        if dt > 0:
            foreground = view._difference() > threshold
            rate_bg = 1.0 - math.exp(-dt / self._background_s)
            rate_fg = 1.0 - math.exp(-dt / self._absorb_s)
            rate = np.where(foreground, np.float32(rate_fg), np.float32(rate_bg))[..., None]
            self._background += rate * (small - matched)
        return view
