"""Camera motion: tell a moving view (pan, handheld, vehicle) from things moving in a still view.

Dwell rules assume a fixed view: while the camera pans every object "moves" and every zone
slides over a different patch of street, so those rules must pause. The estimator measures the
global image shift between consecutive analysed frames and reports "moving" with hysteresis.

Global versus local motion is the whole difficulty. A single global estimate (phase correlation,
or RANSAC over all feature tracks) locks onto the strongest structure, and on a plain car park
that is a passing car: measured on ``car-detection.mp4``, whole-frame phase correlation reports
a 0.15-frame-width "shift" with response 0.9 while a white car drives under a fixed camera.
So the frame is cut into a grid of tiles; the best corner of each quarter of each tile is
tracked with pyramidal Lucas-Kanade (twice: from rest and from the phase-correlation guess, the
better fit wins, so both still tiles and large pans are tracked), and each tile reports its
median displacement. The camera is judged to move only when enough tiles agree on the same
non-zero displacement and more tiles follow it than stay put; a car covers a few tiles and is
outvoted by the still ones. Frames are high-pass filtered and normalised by their *local*
contrast first, so auto-exposure changes (which the same clip shows when a white car fills the
view) do not break the brightness-constancy assumption of optical flow, and faint asphalt
texture stays trackable next to a high-contrast car.

Units: ``last_shift`` is (dx / frame width, dy / frame height) between the last two compared
frames. ``shift_threshold`` and ``last_speed`` are speeds in frame widths per second (the
vertical component converted to width units), so the same pan gives the same speed at 2 fps
and at 12.5 fps. The default 0.02 widths/s is a 60 degree lens panning at ~1.2 degree/s; a
slow PTZ pan (>= 0.05 widths/s) is well above it, and on the static ``car-detection.mp4``
no frame pair with tile consensus came near it.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scene = (rng.random((300, 600)) * 255).astype(np.uint8)
    >>> est = CameraMotionEstimator(settle_s=1.0)
    >>> [est.update(scene[:, 100:500], t) for t in (0.0, 0.5, 1.0)]
    [False, False, False]
    >>> [est.update(scene[:, 100 + 30 * k:500 + 30 * k], 1.0 + 0.5 * k) for k in (1, 2)]
    [True, True]
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gridwarden.edge.analytics.gate import check_image, check_time, small_grey

_MIN_POINTS_PER_TILE = 2
_MIN_SHIFT_PX = 0.5  # below this, at the analysis width, a pair's shift is tracking noise
_LK_WINDOW = (15, 15)
_LK_LEVELS = 3  # handles shifts up to ~1/3 of a 160 px frame between compared frames


class CameraMotionEstimator:
    """Judges per frame whether the camera itself is moving.

    Frames are compared in pairs at least ``min_interval_s`` apart (frames in between only
    advance the settle timer): at 12.5 fps a single frame step is a fraction of a pixel, where
    a passing car biases the tile median by as much as a slow pan moves the view. A pair is
    evidence of camera motion when at least ``min_agreeing_fraction`` of all tiles agree on the
    median shift, more tiles agree with it than with "no motion", and the shift is faster than
    ``shift_threshold`` frame widths per second. ``update`` returns True from the first evidence
    until none has been seen for ``settle_s`` media seconds. A backwards jump in media time
    (restarted stream) or a change of frame size starts afresh, judged still.
    """

    def __init__(
        self,
        *,
        width: int = 160,
        shift_threshold: float = 0.02,
        settle_s: float = 1.0,
        grid: int = 4,
        min_interval_s: float = 0.2,
        min_agreeing_fraction: float = 0.3,
    ) -> None:
        if width < 64:
            raise ValueError(f"width must be at least 64, got {width}")
        if shift_threshold <= 0 or settle_s < 0 or min_interval_s < 0:
            raise ValueError("shift_threshold must be positive, settle_s and min_interval_s non-negative")
        if not 2 <= grid <= 8:
            raise ValueError(f"grid must be 2..8 tiles a side, got {grid}")
        if not 0 < min_agreeing_fraction <= 1:
            raise ValueError("min_agreeing_fraction must be in (0, 1]")
        self._width = width
        self._threshold = shift_threshold
        self._settle_s = settle_s
        self._grid = grid
        self._min_interval_s = min_interval_s
        self._min_agree = min_agreeing_fraction
        self._prev: np.ndarray | None = None
        self._prev_t = -math.inf
        self._window: np.ndarray | None = None
        self._moving = False
        self._last_evidence_t = -math.inf
        self.last_shift: tuple[float, float] = (0.0, 0.0)
        self.last_speed: float = 0.0  # frame widths per second, last compared pair
        self.last_agreement: float = 0.0  # fraction of all tiles agreeing with the median shift

    @property
    def moving(self) -> bool:
        return self._moving

    def update(self, image: np.ndarray, media_time: float) -> bool:
        t = check_time(media_time)
        check_image(image)
        if self._prev is not None and self._prev_t < t < self._prev_t + self._min_interval_s:
            return self._settle(t)
        cur = self._prepare(image)
        if self._prev is None or self._prev.shape != cur.shape or t <= self._prev_t:
            self._restart(cur, t)
            return False

        (dx, dy), agreement, beats_still = self._global_shift(self._prev, cur)
        h, w = cur.shape
        dt = t - self._prev_t
        self.last_shift = (dx / w, dy / h)
        self.last_agreement = agreement
        self.last_speed = math.hypot(dx, dy) / w / dt
        self._prev, self._prev_t = cur, t
        evidence = (
            agreement >= self._min_agree
            and beats_still
            and math.hypot(dx, dy) >= _MIN_SHIFT_PX
            and self.last_speed > self._threshold
        )
        if evidence:
            self._moving = True
            self._last_evidence_t = t
            return True
        return self._settle(t)

    def _settle(self, t: float) -> bool:
        if self._moving and t - self._last_evidence_t >= self._settle_s:
            self._moving = False
        return self._moving

    def _restart(self, cur: np.ndarray, t: float) -> None:
        self._prev, self._prev_t = cur, t
        self._moving = False
        self._last_evidence_t = -math.inf
        self.last_shift = (0.0, 0.0)
        self.last_speed = 0.0
        self.last_agreement = 0.0

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """Locally contrast-normalised high-pass grey, immune to exposure changes.

        Normalising by the *local* (not global) contrast matters: when a bright car enters,
        a global normalisation would squash the faint asphalt texture of every other tile
        into quantisation noise and leave only the car trackable.
        """
        grey = small_grey(image, self._width, blur=1).astype(np.float32)
        high = grey - cv2.GaussianBlur(grey, (0, 0), 4.0)
        local_std = np.sqrt(cv2.GaussianBlur(high * high, (0, 0), 8.0)) + 1.0
        return np.clip(high * (30.0 / local_std) + 128.0, 0, 255).astype(np.uint8)

    def _track(self, prev: np.ndarray, cur: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """New positions (N, 2) of ``pts``, NaN where lost.

        Each point is tracked twice: from its own position (right for still parts of the view)
        and from the whole-frame phase-correlation shift (right for whatever dominates the
        frame, e.g. the pan: pyramidal LK alone loses fine texture shifted by 10+ px). The
        result with the smaller patch error wins, point by point.
        """
        if self._window is None or self._window.shape != prev.shape:
            self._window = cv2.createHanningWindow((prev.shape[1], prev.shape[0]), cv2.CV_32F)
        (sx, sy), _ = cv2.phaseCorrelate(prev.astype(np.float32), cur.astype(np.float32), self._window)
        at_rest, st0, err0 = cv2.calcOpticalFlowPyrLK(
            prev, cur, pts, np.empty_like(pts), winSize=_LK_WINDOW, maxLevel=_LK_LEVELS
        )
        guess = (pts + np.array([sx, sy], np.float32)).astype(np.float32)
        shifted, st1, err1 = cv2.calcOpticalFlowPyrLK(
            prev, cur, pts, guess, winSize=_LK_WINDOW, maxLevel=_LK_LEVELS, flags=cv2.OPTFLOW_USE_INITIAL_FLOW
        )
        ok0, ok1 = st0.reshape(-1) == 1, st1.reshape(-1) == 1
        use_shifted = ok1 & (~ok0 | (err1.reshape(-1) < err0.reshape(-1)))
        out = np.where(use_shifted[:, None], shifted.reshape(-1, 2), at_rest.reshape(-1, 2))
        out[~(ok0 | ok1)] = np.nan
        return out

    def _global_shift(self, prev: np.ndarray, cur: np.ndarray) -> tuple[tuple[float, float], float, bool]:
        """Median tile displacement (px), the fraction of all tiles agreeing with it, and whether
        more tiles follow it than stay put."""
        g = self._grid
        cells = 2 * g  # each tile tracks the best corner of each of its 2x2 cells
        h, w = prev.shape
        ch, cw = h // cells, w // cells
        # Spread the points: a tile's four strongest corners would all sit on one car edge.
        eig = cv2.cornerMinEigenVal(prev, 5)[: ch * cells, : cw * cells]
        per_cell = eig.reshape(cells, ch, cells, cw).transpose(0, 2, 1, 3).reshape(cells, cells, ch * cw)
        best = per_cell.argmax(axis=2)
        strength = np.take_along_axis(per_cell, best[..., None], axis=2)[..., 0]
        cy, cx = np.mgrid[0:cells, 0:cells]
        pts = np.stack([cx * cw + best % cw, cy * ch + best // cw], axis=-1).astype(np.float32)
        nxt = self._track(prev, cur, pts.reshape(-1, 1, 2))
        ok = ~np.isnan(nxt[:, 0]).reshape(cells, cells) & (strength > 1e-4)
        disp = nxt.reshape(cells, cells, 2) - pts
        disp[~ok] = np.nan
        # Group the 2x2 cells of each tile: (g, 2, g, 2, 2) -> (g*g, 4, 2).
        disp = disp.reshape(g, 2, g, 2, 2).transpose(0, 2, 1, 3, 4).reshape(g * g, 4, 2)
        usable = (~np.isnan(disp[:, :, 0])).sum(axis=1) >= _MIN_POINTS_PER_TILE
        if not usable.any():
            return (0.0, 0.0), 0.0, False
        tile_disp = np.nanmedian(disp[usable], axis=1)
        median = np.median(tile_disp, axis=0)
        to_median = np.hypot(*(tile_disp - median).T)
        to_zero = np.hypot(*tile_disp.T)
        tolerance = max(1.0, 0.2 * float(np.hypot(*median)))
        agree = (to_median <= tolerance) & (to_median + _MIN_SHIFT_PX < to_zero)
        stay = to_zero + _MIN_SHIFT_PX < to_median
        # Agreement is counted against all tiles, not only usable ones: a car that leaves
        # most tiles untrackable (flat asphalt) must not win by default.
        return (
            (float(median[0]), float(median[1])),
            float(agree.sum()) / (g * g),
            int(agree.sum()) > int(stay.sum()),
        )
