"""Missing sequence numbers of one edge as sorted, disjoint, inclusive spans ``[first, last]``.

Why spans: the hub used to expand a jump in ``seq`` into every missing number -- a jump of 10
million cost 755 MB and stalled ``/healthz`` for 0.7 s, and any edge could send one. Spans cost
O(number of holes), whatever their size: a jump adds one span, a late arrival splits at most one.
At most :data:`MAX_TRACKED_SPANS` spans are kept per edge (the oldest are given up on, and are
still counted in ``missing_total``).

Stored in ``edge_sequence.missing`` (JSON) as ``[[first, last], ...]``; a bare integer (the older
format) reads as a one-number span.

>>> spans = add([], 5, 9)
>>> spans, contains(spans, 7)
([[5, 9]], True)
>>> remove(spans, 7)
([[5, 6], [8, 9]], True)
>>> expand([[5, 6], [8, 9]], cap=3)
[5, 6, 8]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

MAX_TRACKED_SPANS = 1000
Spans = list[list[int]]


def normalise(raw: Iterable[Any] | None) -> Spans:
    """Read the stored form (spans, or bare ints from before) into sorted, merged spans."""
    spans = sorted([int(x), int(x)] if isinstance(x, int) else [int(x[0]), int(x[1])] for x in raw or ())
    merged: Spans = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


def add(spans: Spans, first: int, last: int, *, limit: int = MAX_TRACKED_SPANS) -> Spans:
    """A new hole above every known one (a jump forward); keeps the newest ``limit`` spans."""
    if first > last:
        return spans
    if spans and first <= spans[-1][1] + 1:
        out = [*spans[:-1], [spans[-1][0], max(spans[-1][1], last)]]
    else:
        out = [*spans, [first, last]]
    return out[-limit:]


def _index(spans: Sequence[Sequence[int]], seq: int) -> int:
    """Index of the span that may hold ``seq`` (the last one starting at or before it), or -1:
    a binary search, O(log spans)."""
    lo, hi = 0, len(spans)
    while lo < hi:
        mid = (lo + hi) // 2
        if spans[mid][0] <= seq:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def contains(spans: Sequence[Sequence[int]], seq: int) -> bool:
    i = _index(spans, seq)
    return i >= 0 and spans[i][0] <= seq <= spans[i][1]


def remove(spans: Spans, seq: int) -> tuple[Spans, bool]:
    """``seq`` arrived late: split its span; (new spans, whether it was missing)."""
    i = _index(spans, seq)
    if i < 0 or not spans[i][0] <= seq <= spans[i][1]:
        return spans, False
    first, last = spans[i]
    middle = [[a, b] for a, b in ((first, seq - 1), (seq + 1, last)) if a <= b]
    return [*spans[:i], *middle, *spans[i + 1 :]], True


def count(spans: Sequence[Sequence[int]]) -> int:
    return sum(last - first + 1 for first, last in spans)


def expand(spans: Sequence[Sequence[int]], cap: int) -> list[int]:
    """The first ``cap`` missing numbers, in order (for replay requests and the fleet view)."""
    out: list[int] = []
    for first, last in spans:
        out.extend(range(first, min(last, first + cap - len(out) - 1) + 1))
        if len(out) >= cap:
            break
    return out
