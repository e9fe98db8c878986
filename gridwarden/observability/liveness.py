"""Is the processing loop still turning? A heartbeat timestamp that ``/healthz`` judges.

Why a heartbeat from the loop rather than "the process answers HTTP": the HTTP server runs on
its own thread and keeps answering while the analysis loop is stuck, so only a timestamp the
loop itself writes can tell a hung pipeline from a working one. Writing it costs one clock read.

>>> live = Liveness(max_age_s=10.0)
>>> live.healthy()          # never beaten: not healthy yet
False
>>> live.beat(); live.healthy()
True
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Liveness:
    """Last time the loop beat; healthy while that is at most ``max_age_s`` ago."""

    def __init__(self, max_age_s: float = 30.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self.max_age_s = max_age_s
        self._clock = clock
        self._last: float | None = None

    def beat(self) -> None:
        self._last = self._clock()

    __call__ = beat  # usable directly as the runner's ``heartbeat`` callable

    def age_s(self) -> float | None:
        """Seconds since the last beat, or None before the first one."""
        last = self._last
        return None if last is None else max(0.0, self._clock() - last)

    def healthy(self) -> bool:
        age = self.age_s()
        return age is not None and age <= self.max_age_s


def heartbeats(*beats: Callable[[], object]) -> Callable[[], None]:
    """One heartbeat callable that calls each of ``beats`` (e.g. a Liveness and a Watchdog)."""

    def beat() -> None:
        for b in beats:
            b()

    return beat
