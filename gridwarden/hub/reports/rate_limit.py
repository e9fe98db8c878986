"""Sliding-window rate limits for the public report page, per client address and per point.

The report page needs no login, so the hub limits how often one address may report and how
often any one point may be reported: a script posting in a loop is refused after a few reports
(with how long to wait), while every other address and point keeps working. Keys are kept in a
bounded LRU map so a flood of distinct addresses cannot grow memory without limit.

>>> limits = SlidingWindowLimiter(limit=2, window_s=60.0)
>>> [limits.hit("1.2.3.4", now=t) for t in (0.0, 1.0, 2.0)]
[0.0, 0.0, 58.0]
>>> limits.hit("5.6.7.8", now=2.0)
0.0
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window_s`` seconds; thread-safe."""

    def __init__(self, *, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, *, now: float | None = None) -> float:
        """Count a hit for ``key``: 0.0 when allowed, else the seconds until one would be (the
        refused hit is not counted, so waiting that long always works)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window_s - now, 0.001)
            hits.append(now)
            return 0.0
