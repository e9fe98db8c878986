"""Camera motion: tell a moving view (pan, handheld, vehicle) from things moving in a still view.

Dwell rules assume a fixed view: while the camera pans every object "moves" and every zone
slides over a different patch of street, so those rules must pause. The estimator measures the
global image shift between consecutive analysed frames and reports "moving" with hysteresis.

Global versus local motion is the whole difficulty. A single global estimate (phase correlation,
or RANSAC over all feature tracks) locks onto the strongest structure, and on a plain car park
that is a passing car: measured on ``car-detection.mp4``, whole-frame phase correlation reports
a 0.15-frame-width "shift" with response 0.9 while a white car drives under a fixed camera. So
the frame is cut into a grid of tiles, the best few corners of each tile are tracked with
pyramidal Lucas-Kanade, and each tile reports its median displacement. The camera is judged to
move only when a majority of tiles agree on the same non-zero displacement; a car covers a few
tiles and is outvoted by the still ones. Frames are high-pass filtered and contrast-normalised
first, so auto-exposure changes (which the same clip shows when a white car fills the view) do
not look like motion to the brightness-constancy assumption of optical flow.

Units: ``last_shift`` is (dx / frame width, dy / frame height) between the last two frames.
``shift_threshold`` is a speed in frame widths per second (the vertical component is converted
to width units), measured over the last ``window_s`` so that the frame rate does not matter:
a 2 fps and a 12.5 fps stream of the same pan give the same speed, and per-frame tracking noise
(zero-mean) averages out over the window instead of tripping the threshold at high frame rates.

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
from collections import deque

import cv2
import numpy as np

from gridwarden.edge.gate import check_time, small_grey

_POINTS_PER_TILE = 4
_MIN_POINTS_PER_TILE = 2
_LK_WINDOW = (15, 15)
_LK_LEVELS = 3  # handles shifts up to ~1/3 of a 160 px frame between analysed frames


class CameraMotionEstimator:
    """Judges per frame whether the camera itself is moving.

    ``update`` returns True once the windowed global speed exceeds ``shift_threshold`` (frame
    widths per second) with a majority of tiles agreeing, and stays True until no such evidence
    has been seen for ``settle_s`` media seconds. A backwards jump in media time (restarted
    stream) or a change of frame size starts afresh, judged still.
    """

    def __init__(
        self,
        *,
        width: int = 160,
        shift_threshold: float = 0.01,
        settle_s: float = 1.0,
        grid: int = 4,
        window_s: float = 1.0,
        min_agreeing_fraction: float = 0.5,
    ) -> None:
        if width < 64:
            raise ValueError(f"width must be at least 64, got {width}")
        if shift_threshold <= 0 or settle_s < 0 or window_s <= 0:
            raise ValueError("shift_threshold and window_s must be positive, settle_s non-negative")
        if not 2 <= grid <= 8:
            raise ValueError(f"grid must be 2..8 tiles a side, got {grid}")
        if not 0 < min_agreeing_fraction <= 1:
            raise ValueError("min_agreeing_fraction must be in (0, 1]")
        self._width = width
        self._threshold = shift_threshold
        self._settle_s = settle_s
        self._grid = grid
        self._window_s = window_s
        self._min_agree = min_agreeing_fraction
        self._prev: np.ndarray | None = None
        self._prev_t = -math.inf
        # (previous media_time, media_time, dx_px, dy_px) of the shifts inside the speed window;
        # shifts without tile consensus are recorded as zero.
        self._history: deque[tuple[float, float, float, float]] = deque()
        self._moving = False
        self._last_evidence_t = -math.inf
        self.last_shift: tuple[float, float] = (0.0, 0.0)
        self.last_speed: float = 0.0  # frame widths per second over the window
        self.last_agreement: float = 0.0  # fraction of usable tiles that agreed with the median shift

    @property
    def moving(self) -> bool:
        return self._moving

    def update(self, image: np.ndarray, media_time: float) -> bool:
        t = check_time(media_time)
        cur = self._prepare(image)
        if self._prev is None or self._prev.shape != cur.shape or t <= self._prev_t:
            self._restart(cur, t)
            return False

        shift_px, agreement = self._global_shift(self._prev, cur)
        h, w = cur.shape
        self.last_shift = (shift_px[0] / w, shift_px[1] / h)
        self.last_agreement = agreement
        consensus = agreement >= self._min_agree
        dx, dy = shift_px if consensus else (0.0, 0.0)
        self._history.append((self._prev_t, t, dx, dy))
        while len(self._history) > 1 and self._history[0][1] <= t - self._window_s:
            self._history.popleft()
        span = t - self._history[0][0]
        total_dx = sum(item[2] for item in self._history)
        total_dy = sum(item[3] for item in self._history)
        self.last_speed = math.hypot(total_dx, total_dy) / w / span

        if consensus and self.last_speed > self._threshold:
            self._moving = True
            self._last_evidence_t = t
        elif self._moving and t - self._last_evidence_t >= self._settle_s:
            self._moving = False
        self._prev, self._prev_t = cur, t
        return self._moving

    def _restart(self, cur: np.ndarray, t: float) -> None:
        self._prev, self._prev_t = cur, t
        self._history.clear()
        self._moving = False
        self._last_evidence_t = -math.inf
        self.last_shift = (0.0, 0.0)
        self.last_speed = 0.0

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """High-pass, contrast-normalised grey: immune to exposure and lighting changes."""
        grey = small_grey(image, self._width, blur=1).astype(np.float32)
        high = grey - cv2.GaussianBlur(grey, (0, 0), 4.0)
        high *= 25.0 / (float(high.std()) + 1e-3)
        return np.clip(high + 128.0, 0, 255).astype(np.uint8)

    def _global_shift(self, prev: np.ndarray, cur: np.ndarray) -> tuple[tuple[float, float], float]:
        """Median tile displacement in pixels and the fraction of usable tiles agreeing with it."""
        g, k = self._grid, _POINTS_PER_TILE
        h, w = prev.shape
        th, tw = h // g, w // g
        # Best-textured pixels of each tile, picked with one vectorised argpartition over tiles.
        eig = cv2.cornerMinEigenVal(prev, 5)[: th * g, : tw * g]
        tiles = eig.reshape(g, th, g, tw).transpose(0, 2, 1, 3).reshape(g * g, th * tw)
        idx = np.argpartition(-tiles, k, axis=1)[:, :k]
        strength = np.take_along_axis(tiles, idx, axis=1)
        ty, tx = np.divmod(np.arange(g * g), g)
        py = ty[:, None] * th + idx // tw
        px = tx[:, None] * tw + idx % tw
        pts = np.stack([px, py], axis=-1).reshape(-1, 1, 2).astype(np.float32)
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, winSize=_LK_WINDOW, maxLevel=_LK_LEVELS)
        ok = (status.reshape(g * g, k) == 1) & (strength > 1e-4)
        disp = (nxt - pts).reshape(g * g, k, 2)
        disp[~ok] = np.nan
        usable = ok.sum(axis=1) >= _MIN_POINTS_PER_TILE
        if not usable.any():
            return (0.0, 0.0), 0.0
        tile_disp = np.nanmedian(disp[usable], axis=1)
        median = np.median(tile_disp, axis=0)
        tolerance = max(1.0, 0.2 * float(np.hypot(*median)))
        agree = np.hypot(*(tile_disp - median).T) <= tolerance
        # Agreement is counted against all tiles, not only usable ones: a car that leaves
        # most tiles untrackable (flat asphalt) must not win by default.
        return (float(median[0]), float(median[1])), float(agree.sum()) / (g * g)
