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
from collections.abc import Callable

import cv2
import numpy as np

from gridwarden.edge.analytics.gate import check_image, check_small, check_time, downscale, small_size

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
    """One analysed frame compared with the camera's long-term background.

    Everything is computed on first use: most frames nobody asks (no rule remembers an unseen
    object, no signature is due), and then the view costs nothing. ``small`` is the frame already
    area-averaged to the model's width when the caller has it (the motion gate makes the same
    one), else a function that makes it; ``background`` is the model's background as of this
    frame (the model replaces, never mutates, it, so a view keeps what it was built against).
    """

    def __init__(
        self,
        image: np.ndarray,
        small: np.ndarray | Callable[[], np.ndarray],
        background: np.ndarray,
        base_threshold: float,
        *,
        match_exposure: bool = True,
    ) -> None:
        self.image = image
        self._small_source = small
        self._background = background
        self._base_threshold = base_threshold
        self._match_exposure = match_exposure
        self._sx = background.shape[1] / image.shape[1]
        self._sy = background.shape[0] / image.shape[0]
        self._prepared: tuple[np.ndarray, float, float] | None = None
        self._matched: np.ndarray | None = None
        self._diff: np.ndarray | None = None

    def _prepare(self) -> tuple[np.ndarray, float, float]:
        """(blurred float small frame, median brightness, difference threshold)."""
        if self._prepared is None:
            source = self._small_source
            small = source() if callable(source) else source
            if small.ndim == 2:
                small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
            small = cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)
            median_value = float(np.median(small[::3, ::3].max(axis=2)))
            # At dusk every contrast shrinks with the light: the threshold follows the scene's
            # brightness (down to a floor well above the sensor noise left after downscaling).
            threshold = float(
                np.clip(
                    self._base_threshold * median_value / _DAYLIGHT_MEDIAN,
                    _MIN_THRESHOLD,
                    self._base_threshold,
                )
            )
            self._prepared = (small, median_value, threshold)
        return self._prepared

    @property
    def _small(self) -> np.ndarray:
        return self._prepare()[0]

    @property
    def _median_value(self) -> float:
        return self._prepare()[1]

    @property
    def _threshold(self) -> float:
        return self._prepare()[2]

    def _matched_background(self) -> np.ndarray:
        """The background with the frame's global brightness offset added."""
        if self._matched is None:
            if self._match_exposure:
                small = self._small
                # Global brightness drift from every third pixel: the median ignores a local object.
                diff = (small[::3, ::3] - self._background[::3, ::3]).reshape(-1, 3)
                offset = np.median(diff, axis=0)
                self._matched = self._background + offset.astype(np.float32)
            else:
                self._matched = self._background
        return self._matched

    def _difference(self) -> np.ndarray:
        if self._diff is None:
            d = cv2.absdiff(self._small, self._matched_background())
            self._diff = cv2.max(cv2.max(d[:, :, 0], d[:, :, 1]), d[:, :, 2])
        return self._diff

    def foreground_fraction(self, box_px: np.ndarray) -> float:
        """Share (0..1) of the box's inner pixels that differ from the background."""
        x0, y0, x1, y1 = _inner(box_px, 0.1)
        h, w = self._background.shape[:2]
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


def _checked(small: np.ndarray, image_shape: tuple[int, ...], width: int) -> np.ndarray:
    check_small(small, image_shape, width)
    return small


class SceneModel:
    """Long-term background of one camera's view; :meth:`update` returns a :class:`SceneView`.

    Parameters (media seconds; every rate is ``1 - exp(-dt / tau)``):
        width: analysis width in pixels (aspect ratio kept).
        background_s: time constant for pixels that match the background.
        absorb_s: time constant for pixels that differ from it (objects, occluders).
        diff_threshold: grey levels (max over B, G, R) above which a pixel differs in daylight;
            scaled down with the scene's median brightness at dusk (never below 8).
        update_s: the background learns a frame at most this often (0: every frame). With time
            constants of minutes, once a second follows the light just as well, and the frames
            in between cost nothing unless a rule looks at them.
    """

    def __init__(
        self,
        *,
        width: int = 160,
        background_s: float = 300.0,
        absorb_s: float = 3600.0,
        diff_threshold: float = 25.0,
        update_s: float = 1.0,
    ) -> None:
        if width < 32:
            raise ValueError(f"width must be at least 32, got {width}")
        if not 0 < background_s <= absorb_s:
            raise ValueError("need 0 < background_s <= absorb_s")
        if not 0 < diff_threshold < 255:
            raise ValueError(f"diff_threshold must be in (0, 255), got {diff_threshold}")
        if update_s < 0:
            raise ValueError(f"update_s must be >= 0, got {update_s}")
        self._width = width
        self._update_s = update_s
        self._background_s = background_s
        self._absorb_s = absorb_s
        self._threshold = float(diff_threshold)
        self._background: np.ndarray | None = None
        self._last_t = -math.inf  # media time of the last background update
        self._last_frame_t = -math.inf

    @property
    def width(self) -> int:
        """Width of the analysis image (what ``update``'s ``small`` must be)."""
        return self._width

    def update(
        self,
        image: np.ndarray,
        media_time: float,
        small: np.ndarray | Callable[[], np.ndarray] | None = None,
    ) -> SceneView:
        """This frame against the background; learns the frame into it at most every
        ``update_s`` media seconds.

        ``small`` is ``image`` downscaled to :attr:`width` (:func:`~..gate.downscale`), or a
        function that returns it, when the caller shares it with the motion gate and the
        static-object path (:class:`~..gate.DownscaleCache`). Between background updates the
        returned view computes nothing until a rule asks.
        """
        t = check_time(media_time)
        check_image(image)
        size = small_size(image.shape, self._width)
        if isinstance(small, np.ndarray):
            check_small(small, image.shape, self._width)
        source: np.ndarray | Callable[[], np.ndarray]
        if small is None:
            source = lambda: downscale(image, self._width)  # noqa: E731
        elif callable(small):
            shared = small
            source = lambda: _checked(shared(), image.shape, self._width)  # noqa: E731
        else:
            source = small
        restart = t < self._last_frame_t  # media time went back: a restarted stream
        self._last_frame_t = t
        if restart or self._background is None or self._background.shape[:2] != (size[1], size[0]):
            first = SceneView(
                image,
                source,
                np.empty((size[1], size[0], 3), np.float32),
                self._threshold,
                match_exposure=False,
            )
            self._background = first._small.copy()
            first._background = self._background  # the frame is its own background: nothing differs
            self._last_t = t
            return first
        view = SceneView(image, source, self._background, self._threshold)
        dt = t - self._last_t
        if dt >= self._update_s and dt > 0:
            self._last_t = t
            foreground = view._difference() > view._threshold
            matched = view._matched_background()
            rate_bg = 1.0 - math.exp(-dt / self._background_s)
            rate_fg = 1.0 - math.exp(-dt / self._absorb_s)
            rate = np.where(foreground, np.float32(rate_fg), np.float32(rate_bg))[..., None]
            # A new array, not in place: views already handed out keep their background.
            self._background = self._background + rate * (view._small - matched)
        return view
