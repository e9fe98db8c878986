"""Capped exponential backoff: how long to wait before retry ``n``. One helper for every retry loop.

Camera reconnects, evidence uploads, webhook deliveries, the hub's resend requests and its
database retries each had their own doubling-with-a-cap; they differ only in their numbers and
in how much jitter they add (a fleet that failed together must not retry in lockstep).

>>> Backoff(0.5, 30.0).delay(1), Backoff(0.5, 30.0).delay(3), Backoff(0.5, 30.0).delay(99)
(0.5, 2.0, 30.0)
>>> import random
>>> 0.8 <= Backoff(1.0, 30.0, jitter=0.2, rng=random.Random(1)).delay(1) <= 1.2
True
"""

from __future__ import annotations

import random


class Backoff:
    """``delay(n)`` = ``min(max_s, initial_s * 2**(n-1))``, times a random factor, at most ``max_s``.

    The factor is drawn from ``spread`` (low, high) when given, else from ``1 ± jitter``;
    ``jitter=0`` and no ``spread`` give the exact doubling."""

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        jitter: float = 0.0,
        *,
        spread: tuple[float, float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {initial_s}, {max_s}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        low, high = spread if spread is not None else (1.0 - jitter, 1.0 + jitter)
        if not 0 < low <= high:
            raise ValueError(f"spread must be 0 < low <= high, got {spread}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self.spread = (low, high)
        self._rng = rng or random.Random()

    def base(self, attempt: int) -> float:
        """The delay before retry ``attempt`` (1 = the first) without jitter."""
        exponent = min(max(attempt, 1) - 1, 62)  # no overflow after days of outage
        return min(self.max_s, self.initial_s * 2.0**exponent)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1 = the first)."""
        low, high = self.spread
        factor = 1.0 if low == high == 1.0 else self._rng.uniform(low, high)
        return min(self.max_s, self.base(attempt) * factor)
