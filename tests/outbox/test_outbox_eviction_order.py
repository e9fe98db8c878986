"""A full outbox evicts the row acknowledged EARLIEST, not the lowest seq (issue 12 item 14):
acknowledgements arrive out of seq order after a reconnect, and the replay window must lose what
has been safe at the broker longest."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from gridwarden.edge.transport.outbox import Outbox
from tests.outbox.events import make_event


def _seqs(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT seq FROM outbox ORDER BY seq")]


def test_a_full_outbox_evicts_the_oldest_acknowledged_first(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, max_rows=3)
    try:
        seqs = [box.enqueue(make_event(i)).seq for i in range(3)]
        assert seqs == [1, 2, 3]
        box.ack(3)  # acknowledged first, although it has the highest seq ...
        time.sleep(0.02)
        box.ack(1)  # ... then seq 1; seq 2 stays pending
        box.enqueue(make_event(3))  # full: one row must go
        assert _seqs(path) == [1, 2, 4], "evicted by seq instead of by acknowledgement time"
        time.sleep(0.02)
        box.ack(4)
        box.enqueue(make_event(4))
        assert _seqs(path) == [2, 4, 5], "the next eviction is seq 1, acknowledged before seq 4"
        assert box.depth() == 2  # seq 2 and seq 5 are still pending: nothing unsent was dropped
    finally:
        box.close()
