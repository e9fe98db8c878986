"""Motion gate: skip the detector on frames in which nothing changed inside the zones.

The detector costs ~16 ms a frame on a small CPU; a parked-car street is still most of the time.
The gate compares a ~160 px wide, blurred grey copy of each frame with the copy the detector last
saw. If too few pixels inside the zones changed, the detector's previous answer still holds and
the frame is skipped. Comparing against the *last detected* frame (not the previous frame) means
slow changes accumulate until they trigger: a car that creeps in over many frames is not missed.

Nuisances it is built to ignore:
 - sensor noise and compression flicker: INTER_AREA downscaling averages ~25 source pixels per
   small pixel and a Gaussian blur follows, so per-pixel noise drops far below ``pixel_threshold``;
 - global brightness drift (clouds, auto-exposure): the reference is mapped to the current
   exposure with a gain and offset taken from quantiles inside the zones before thresholding,
   so a uniform brightening or darkening changes nothing while a local object still does.

Example::

    >>> import numpy as np
    >>> gate = MotionGate(max_skip_s=10.0)
    >>> still = np.full((432, 768, 3), 90, np.uint8)
    >>> [gate.should_detect(still, t) for t in (0.0, 0.5, 1.0)]
    [True, False, False]
    >>> moved = still.copy(); moved[200:260, 300:380] = 200
    >>> gate.should_detect(moved, 1.5), gate.gated_count
    (True, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from gridwarden.geometry import polygon_mask

Polygon = Sequence[tuple[float, float]]


def check_image(image: np.ndarray) -> None:
    """Raise a clear error for anything that is not an 8-bit grey or BGR picture."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"image must be HxW or HxWx3, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image is too small: {image.shape}")


def check_time(media_time: float) -> float:
    t = float(media_time)
    if not math.isfinite(t):
        raise ValueError(f"media_time must be finite, got {media_time!r}")
    return t


def small_size(image_shape: tuple[int, ...], width: int) -> tuple[int, int]:
    """(width, height) of the analysis image: ``width`` wide, aspect ratio kept."""
    h, w = image_shape[:2]
    return width, max(2, round(h * width / w))


def downscale(image: np.ndarray, width: int) -> np.ndarray:
    """Area-average ``image`` down to ``width`` px wide (area averaging is what kills the noise)."""
    check_image(image)
    size = small_size(image.shape, width)
    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    # OpenCV's INTER_AREA is ~3x faster for an integer factor (768 -> 192) than for 4.8x
    # (768 -> 160); taking the integer step first and the small remainder second costs less.
    k = w // size[0]
    if k >= 2 and w % k == 0 and h % k == 0 and (w // k, h // k) != size:
        image = cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class DownscaleCache:
    """One frame's downscaled copies, made once and shared by whoever needs them.

    Why: the motion gate, the static-object path and the scene model each area-average the same
    frame to the same 160 px width, and that resize is most of what they cost per frame. The
    cache holds only the current frame (by identity: a new picture drops the old copies); call
    :meth:`clear` when done with a frame so it does not keep the frame alive.
    """

    def __init__(self) -> None:
        self._image: np.ndarray | None = None
        self._small: dict[int, np.ndarray] = {}

    def get(self, image: np.ndarray, width: int) -> np.ndarray:
        """``downscale(image, width)``, computed at most once per frame and width."""
        if image is not self._image:
            self._image = image
            self._small = {}
        small = self._small.get(width)
        if small is None:
            small = self._small[width] = downscale(image, width)
        return small

    def clear(self) -> None:
        self._image = None
        self._small = {}


def check_small(small: np.ndarray, image_shape: tuple[int, ...], width: int) -> None:
    """Raise when ``small`` is not a frame of ``image_shape`` downscaled to ``width``."""
    check_image(small)
    size = small_size(image_shape, width)
    if (small.shape[1], small.shape[0]) != size:
        raise ValueError(f"small must be {size[0]}x{size[1]}, got shape {small.shape}")


def small_grey(image: np.ndarray, width: int, blur: int = 5) -> np.ndarray:
    """Downscaled, grey, Gaussian-blurred uint8 copy used by the cheap per-frame analyses."""
    small = downscale(image, width)
    if small.ndim == 3 and small.shape[2] == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    elif small.ndim == 3:
        small = small[:, :, 0]
    return cv2.GaussianBlur(small, (blur, blur), 0) if blur > 1 else small


def region_mask(regions: Sequence[Polygon] | None, size: tuple[int, int]) -> np.ndarray:
    """Boolean mask (h, w) of the union of normalised polygons; ``None`` means the whole frame."""
    w, h = size
    if regions is None:
        return np.ones((h, w), bool)
    polys = []
    for poly in regions:
        pts = np.asarray(poly, np.float64).reshape(-1, 2)
        if len(pts) < 3:
            raise ValueError(f"a region needs at least 3 points, got {len(pts)}")
        if not np.isfinite(pts).all() or pts.min() < -0.01 or pts.max() > 1.01:
            raise ValueError("region points must be normalised to [0, 1]")
        polys.append(pts)
    mask = polygon_mask(polys, (w, h))  # pixel centres inside, as zones decide it
    if not mask.any():
        raise ValueError("regions cover no pixel at the analysis size")
    return mask


def _match_exposure(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """``ref`` mapped to ``cur``'s exposure by a robust gain and offset.

    Gain from the inter-quartile ranges, offset from the medians: quantiles ignore a local
    object (up to a quarter of the zone), unlike a mean or a least-squares fit. The gain is
    clamped so a flat, texture-less zone (tiny IQR) cannot produce a wild one.
    """
    r25, r50, r75 = np.percentile(ref, (25, 50, 75))
    c25, c50, c75 = np.percentile(cur, (25, 50, 75))
    gain = float(np.clip((c75 - c25) / (r75 - r25), 0.7, 1.4)) if r75 - r25 >= 4 else 1.0
    return (ref - r50) * gain + c50


class MotionGate:
    """Decides per frame whether the detector must run.

    ``should_detect`` returns True on the first frame, when more than ``min_changed_fraction`` of
    the zone pixels differ by more than ``pixel_threshold`` grey levels from the frame the
    detector last saw (after removing the global brightness offset), when ``max_skip_s`` media
    seconds have passed since the last detection (re-confirmation cadence: a parked car must
    keep being seen), or when media time jumps backwards (a restarted stream). Every True
    makes the current frame the new reference, so the caller must run the detector on it.
    """

    def __init__(
        self,
        *,
        regions: Sequence[Polygon] | None = None,
        width: int = 160,
        pixel_threshold: int = 18,
        min_changed_fraction: float = 0.002,
        max_skip_s: float = 10.0,
    ) -> None:
        if width < 16:
            raise ValueError(f"width must be at least 16, got {width}")
        if not 0 < pixel_threshold < 255:
            raise ValueError(f"pixel_threshold must be in (0, 255), got {pixel_threshold}")
        if not 0 <= min_changed_fraction < 1:
            raise ValueError(f"min_changed_fraction must be in [0, 1), got {min_changed_fraction}")
        if max_skip_s <= 0:
            raise ValueError(f"max_skip_s must be positive, got {max_skip_s}")
        self._regions = regions
        self._width = width
        self._threshold = pixel_threshold
        self._min_fraction = min_changed_fraction
        self._max_skip_s = max_skip_s
        self._reference: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._mask_pixels = 0
        self._last_detect_t = -math.inf
        self._gated = 0
        self.last_changed_fraction: float = 0.0
        if regions is not None:  # validate polygons now rather than on the first frame
            region_mask(regions, (width, width))

    @property
    def width(self) -> int:
        """Width of the analysis image (what ``should_detect``'s ``small`` must be)."""
        return self._width

    @property
    def gated_count(self) -> int:
        """How many frames were skipped so far."""
        return self._gated

    def reset(self) -> None:
        """Forget the reference: the next frame is detected (e.g. after the camera moved)."""
        self._reference = None

    def should_detect(self, image: np.ndarray, media_time: float, small: np.ndarray | None = None) -> bool:
        """``small``: ``image`` already downscaled to :attr:`width` (:class:`DownscaleCache`), if
        the caller has it; the answer is the same, the resize is saved."""
        t = check_time(media_time)
        if small is not None:
            check_small(small, image.shape, self._width)
        small = small_grey(image if small is None else small, self._width)
        if self._reference is None or self._reference.shape != small.shape or t < self._last_detect_t:
            if self._mask is None or self._mask.shape != small.shape:  # rasterised once per size
                self._mask = region_mask(self._regions, (small.shape[1], small.shape[0]))
                self._mask_pixels = int(self._mask.sum())
            self.last_changed_fraction = 1.0
            return self._accept(small, t)

        assert self._mask is not None
        cur = small[self._mask].astype(np.float32)
        ref = self._reference[self._mask].astype(np.float32)
        changed = np.count_nonzero(np.abs(_match_exposure(ref, cur) - cur) > self._threshold)
        self.last_changed_fraction = changed / self._mask_pixels
        if self.last_changed_fraction > self._min_fraction or t - self._last_detect_t >= self._max_skip_s:
            return self._accept(small, t)
        self._gated += 1
        return False

    def _accept(self, small: np.ndarray, t: float) -> bool:
        self._reference = small
        self._last_detect_t = t
        return True
