"""Decode budget: decode only keyframes for cameras whose rules are all slow.

Decoding is most of an edge box's CPU: an H.264 decoder must decode every frame of a GOP to
produce any of them, even when the rules look at 2 frames a second. A camera watched only by
slow rules (every rule's ``dwell_s`` at least :data:`SLOW_DWELL_S`, e.g. illegal parking after
a minute) loses nothing by being analysed on keyframes alone, as long as keyframes come often
enough: at least :data:`MIN_SLOW_FPS` a second (or the camera's ``analysis_fps`` if that is
lower), i.e. a GOP of at most 2 s for the usual setting. Skipping the other frames
(``skip_frame = NONKEY``) cuts the decode cost by the GOP length (see ``bench/bench_decode.py``
and ``bench/bench_streams.py``).

The GOP is not known from the configuration, so it is measured from the keyframes the stream
actually sends (median of the last few intervals); until two intervals have been seen, every
frame is decoded. The camera's ``keyframes_only`` setting overrides all this: ``true`` or
``false`` is obeyed, ``auto`` (the default) lets this module decide. Moving cameras (handheld,
vehicle: ``detect_camera_motion``) always decode every frame, as they need the motion.

Example::

    >>> budget = DecodeBudget("auto", rules_slow=lambda: True, analysis_fps=2.0)
    >>> for t in (0.0, 2.0, 4.0):
    ...     budget.on_packet(is_keyframe=True, media_time=t)
    >>> budget.keyframes_only(), budget.reason
    (True, 'auto: all rules dwell >= 30 s and a keyframe every 2.0 s gives 0.5 fps')
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Callable
from typing import Literal

SLOW_DWELL_S = 30.0
#: The analysis rate slow rules still need: a look every 2 s is 15 looks within a 30 s dwell.
MIN_SLOW_FPS = 0.5
_INTERVALS_KEPT = 5

KeyframesSetting = bool | Literal["auto"]


def rules_are_slow(camera: object) -> bool:
    """True when the camera has rules and every one waits at least :data:`SLOW_DWELL_S`."""
    rules = [rule for zone in getattr(camera, "zones", []) for rule in zone.rules]
    return bool(rules) and all(rule.dwell_s >= SLOW_DWELL_S for rule in rules)


class DecodeBudget:
    """Decides, per packet, whether one camera's detect stream is decoded keyframes only.

    ``on_packet`` is called on the camera's reader thread for every video packet (it only
    notes keyframe times); ``keyframes_only()`` is asked by the reader before each decode.
    ``rules_slow`` is a callable so a configuration pushed live (new rules) takes effect.
    """

    def __init__(
        self,
        setting: KeyframesSetting,
        *,
        rules_slow: Callable[[], bool],
        analysis_fps: float,
        moving_camera: bool = False,
    ) -> None:
        self.setting = setting
        self.analysis_fps = analysis_fps
        self.moving_camera = moving_camera
        self._rules_slow = rules_slow
        self._lock = threading.Lock()
        self._last_keyframe: float | None = None
        self._intervals: deque[float] = deque(maxlen=_INTERVALS_KEPT)
        self.reason = "auto: measuring the keyframe interval" if setting == "auto" else ""
        self._decided = bool(setting) if setting != "auto" else False
        if setting is True:
            self.reason = "config: keyframes_only: true"
        elif setting is False:
            self.reason = "config: keyframes_only: false"

    @property
    def keyframe_interval_s(self) -> float | None:
        with self._lock:
            return statistics.median(self._intervals) if len(self._intervals) >= 2 else None

    def on_packet(self, is_keyframe: bool, media_time: float) -> None:
        if not is_keyframe:
            return
        with self._lock:
            if self._last_keyframe is not None and media_time > self._last_keyframe:
                self._intervals.append(media_time - self._last_keyframe)
            self._last_keyframe = media_time

    def keyframes_only(self) -> bool:
        if self.setting != "auto":
            return self._decided
        decided, reason = self._decide()
        self._decided, self.reason = decided, reason
        return decided

    @property
    def mode(self) -> Literal["all_frames", "keyframes_only"]:
        return "keyframes_only" if self._decided else "all_frames"

    def _decide(self) -> tuple[bool, str]:
        if self.moving_camera:
            return False, "auto: a moving camera needs every frame"
        if not self._rules_slow():
            return False, f"auto: a rule waits less than {SLOW_DWELL_S:g} s"
        interval = self.keyframe_interval_s
        if interval is None:
            return False, "auto: measuring the keyframe interval"
        needed = min(self.analysis_fps, MIN_SLOW_FPS)
        rate = 1.0 / interval
        if rate + 1e-6 < needed:
            return (
                False,
                f"auto: a keyframe every {interval:.1f} s is below the {needed:g} fps slow rules need",
            )
        return (
            True,
            f"auto: all rules dwell >= {SLOW_DWELL_S:g} s and a keyframe every {interval:.1f} s gives {rate:.2g} fps",
        )
