"""The one frame-dropping queue of the edge: newest items per key, oldest dropped and counted.

Why drop instead of queue: a consumer that falls behind a live source (the analysis loop behind
a camera, or behind every camera of the box) must keep working on RECENT frames and show that it
fell behind -- the drop count -- instead of an unbounded queue hiding ever-growing lag.

Why keyed: the same shape serves both places that need it. A :class:`CameraWorker` keeps up to
``queue_size`` frames of its one camera and hands them out one at a time (:meth:`get`); the
:class:`~gridwarden.edge.runner.EdgeRunner` keeps the newest frame of EACH camera (``maxsize=1``)
and takes all of them at once for one batched detector call (:meth:`take_all`), so a busy camera
cannot push a quiet one's frame out.

>>> q: DroppingQueue[str, int] = DroppingQueue(maxsize=2)
>>> for i in range(5):
...     q.put("cam-1", i)
>>> q.put("cam-2", 10)
>>> q.dropped("cam-1"), q.dropped("cam-2"), q.total_dropped()
(3, 0, 3)
>>> q.get(timeout=0)  # the oldest kept item of the key waiting longest
3
>>> q.take_all(timeout=0)  # everything kept, key by key
[4, 10]
>>> q.close()
>>> q.get(timeout=60) is None  # closed and empty: answers at once
True
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class DroppingQueue(Generic[K, T]):
    """Per key, a FIFO of at most ``maxsize`` items; a put on a full key drops that key's oldest.

    Thread-safe: any number of producers, one or more consumers. :meth:`get` and
    :meth:`take_all` wait up to ``timeout`` for an item and return at once after :meth:`close`.
    """

    def __init__(self, maxsize: int = 1) -> None:
        if maxsize < 1:
            raise ValueError(f"queue_size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        # Keys in the order they last became non-empty, so get() serves the longest waiting key.
        self._items: dict[K, deque[T]] = {}
        self._dropped: dict[K, int] = {}
        self._cond = threading.Condition()
        self._closed = False

    def put(self, key: K, item: T) -> None:
        with self._cond:
            items = self._items.get(key)
            if items is None:
                items = self._items[key] = deque(maxlen=self.maxsize)
            elif len(items) == self.maxsize:
                self._dropped[key] = self._dropped.get(key, 0) + 1  # deque(maxlen) evicts the oldest
            items.append(item)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest kept item of the key waiting longest; None on timeout, or at once when
        closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if not self._items:
                return None
            key, items = next(iter(self._items.items()))
            item = items.popleft()
            if not items:
                del self._items[key]
            return item

    def take_all(self, timeout: float | None = None) -> list[T]:
        """Every kept item, key by key (each key's oldest first), emptying the queue; [] on
        timeout, or at once when closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            taken = [item for items in self._items.values() for item in items]
            self._items.clear()
            return taken

    def dropped(self, key: K) -> int:
        """How many of ``key``'s items were dropped to make room for newer ones."""
        with self._cond:
            return self._dropped.get(key, 0)

    def total_dropped(self) -> int:
        with self._cond:
            return sum(self._dropped.values())

    def close(self) -> None:
        """Wake every waiting consumer; later waits on an empty queue return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
