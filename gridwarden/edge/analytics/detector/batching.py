"""Group model inputs that wait at the same time, from any number of threads, into one call.

Each camera worker calls the detector from its own thread. When the model has a dynamic batch
dimension, frames that arrive while an inference is running are run together in the next
call: one batched call costs much less than the same frames one by one, and no camera waits
for a timer to fill a batch. There is no background thread: whichever waiting caller finds
the model idle becomes the leader, takes up to ``max_batch`` queued inputs (oldest first),
runs them and hands every caller its rows. With ``max_batch=1`` the same code simply
serialises calls, which is what a fixed-batch model on a small CPU wants anyway (concurrent
runs would only fight over the same cores).

Example::

    >>> import numpy as np
    >>> coalescer = BatchCoalescer(lambda batch: batch * 2, max_batch=4)
    >>> [r.tolist() for r in coalescer.run([np.array([1.0]), np.array([2.0])])]
    [[2.0], [4.0]]
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np


class _Slot:
    __slots__ = ("tensor", "result", "error", "done")

    def __init__(self, tensor: np.ndarray) -> None:
        self.tensor = tensor
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class BatchCoalescer:
    """Thread-safe: ``run`` may be called from many threads at once.

    ``run_batch`` gets a stacked array ``(B, ...)`` with ``1 <= B <= max_batch`` and must return
    an array whose first dimension is B. ``batches_run`` and ``items_run`` count calls and rows,
    so callers (and tests) can see how well batching works.
    """

    def __init__(self, run_batch: Callable[[np.ndarray], np.ndarray], max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: deque[_Slot] = deque()
        self._busy = False
        self.batches_run = 0
        self.items_run = 0

    @property
    def pending(self) -> int:
        """Inputs queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    def run(self, tensors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run every tensor (one image each) and return its output row, in order."""
        slots = [_Slot(t) for t in tensors]
        with self._cond:
            self._queue.extend(slots)
            while not all(s.done for s in slots):
                if self._busy or not self._queue:
                    self._cond.wait()
                    continue
                self._lead()
        for slot in slots:
            if slot.error is not None:
                raise slot.error
        return [s.result for s in slots]  # type: ignore[misc]

    def _lead(self) -> None:
        """Run one batch. Called holding the lock; releases it around the model call."""
        batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        self._busy = True
        self._cond.release()
        try:
            outputs = self._run_batch(stack_rows([s.tensor for s in batch]))
            for i, slot in enumerate(batch):
                slot.result = outputs[i]
        except BaseException as exc:  # handed to every caller in the batch, not swallowed
            for slot in batch:
                slot.error = exc
        finally:
            self._cond.acquire()
            for slot in batch:
                slot.done = True
                slot.tensor = None  # type: ignore[assignment]  # free the input early
            self._busy = False
            self.batches_run += 1
            self.items_run += len(batch)
            self._cond.notify_all()


def stack_rows(tensors: list[np.ndarray]) -> np.ndarray:
    """``np.stack(tensors)``, without the copy when they already lie back to back in one
    C-contiguous array (one caller's images, letterboxed into its reused batch buffer)."""
    first = tensors[0]
    if len(tensors) == 1:
        return first[None]
    base = first.base
    if not (isinstance(base, np.ndarray) and base.flags.c_contiguous):
        return np.stack(tensors)
    start = first.__array_interface__["data"][0]
    offset = start - base.__array_interface__["data"][0]
    consecutive = all(
        t.base is base
        and t.flags.c_contiguous
        and t.shape == first.shape
        and t.dtype == first.dtype
        and t.__array_interface__["data"][0] == start + i * first.nbytes
        for i, t in enumerate(tensors)
    )
    if not consecutive or offset + len(tensors) * first.nbytes > base.nbytes:
        return np.stack(tensors)
    return np.ndarray((len(tensors), *first.shape), dtype=first.dtype, buffer=base, offset=offset)
