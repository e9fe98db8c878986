"""The durable outbox on its own: seq assignment, acks, replay order, the full policy, and a
writer killed with SIGKILL mid-stream."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gridwarden.edge.transport.outbox import Outbox, OutboxLockedError
from tests.outbox.events import make_event
from tests.support.paths import REPO_ROOT


def test_seq_is_assigned_strictly_increasing_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        first = [box.enqueue(make_event(i)).seq for i in range(5)]
        box.ack_many(first)  # rows gone: their seqs must still never come back
        assert box.depth() == 0
    with Outbox(path) as box:
        second = [box.enqueue(make_event(i)).seq for i in range(3)]
        assert box.last_seq() == 8
    assert first == [1, 2, 3, 4, 5]
    assert second == [6, 7, 8]


def test_enqueue_ignores_the_callers_seq_and_stores_the_event_unchanged(tmp_path: Path) -> None:
    event = make_event(3).model_copy(update={"seq": 999})
    with Outbox(tmp_path / "o.db") as box:
        stored = box.enqueue(event)
        (replayed,) = box.pending()
    assert stored.seq == 1
    assert replayed == stored
    assert replayed.model_dump(exclude={"seq"}) == event.model_dump(exclude={"seq"})


def test_ack_removes_only_that_event_and_unknown_acks_are_harmless(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        seqs = [box.enqueue(make_event(i)).seq for i in range(4)]
        box.ack(seqs[1])
        box.ack(seqs[1])  # a duplicate PUBACK after a replay
        box.ack(12345)
        assert [e.seq for e in box.pending()] == [seqs[0], seqs[2], seqs[3]]
        assert box.depth() == 3


def test_pending_replays_in_seq_order_across_reopen_and_pages_with_after_seq(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        for i in range(25):
            box.enqueue(make_event(i))
        box.ack(3)
    with Outbox(path) as box:
        page1 = box.pending(limit=10)
        page2 = box.pending(limit=10, after_seq=page1[-1].seq)
        rest = box.pending(limit=100, after_seq=page2[-1].seq)
        assert box.depth() == 24
    seqs = [e.seq for e in page1 + page2 + rest]
    assert seqs == [s for s in range(1, 26) if s != 3]
    assert [e.incident_id for e in page1[:2]] == ["inc-00000", "inc-00000"]


def test_full_outbox_drops_the_oldest_updated_and_never_started_or_ended(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_rows=5) as box:
        kinds = ["started", "updated", "updated", "ended", "started"]
        for i, kind in enumerate(kinds):
            box.enqueue(make_event(i, kind=kind))
        assert box.depth() == 5 and box.dropped() == 0

        box.enqueue(make_event(5, kind="updated"))  # full: seq 2 (oldest updated) goes
        assert [(e.seq, e.event) for e in box.pending()] == [
            (1, "started"),
            (3, "updated"),
            (4, "ended"),
            (5, "started"),
            (6, "updated"),
        ]
        box.enqueue(make_event(6, kind="ended"))  # full: seq 3 goes
        box.enqueue(make_event(7, kind="started"))  # full: seq 6 goes
        assert [e.seq for e in box.pending()] == [1, 4, 5, 7, 8]
        assert box.depth() == 5
        assert box.dropped() == 3


def test_full_of_started_and_ended_still_accepts_over_the_bound_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, max_rows=3) as box:
        for i, kind in enumerate(["started", "ended", "started"]):
            box.enqueue(make_event(i, kind=kind))
        with caplog.at_level(logging.WARNING, logger="gridwarden.edge.transport.outbox"):
            box.enqueue(make_event(3, kind="ended"))
            box.enqueue(make_event(4, kind="updated"))  # nothing older to drop: kept as well
        assert box.depth() == 5
        assert box.dropped() == 0
        assert [e.event for e in box.pending()] == ["started", "ended", "started", "ended", "updated"]
        assert sum("over its bound" in r.getMessage() for r in caplog.records) == 1
    with Outbox(path, max_rows=3) as box:
        box.enqueue(make_event(5, kind="started"))  # now the updated (seq 5) is the one to go
        assert [e.seq for e in box.pending()] == [1, 2, 3, 4, 6]
        assert box.dropped() == 1  # persisted across reopen


def test_concurrent_enqueue_and_ack_from_threads_keep_seqs_unique_and_depth_exact(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", synchronous="NORMAL") as box:
        assigned: list[int] = []
        lock = threading.Lock()

        def writer(offset: int) -> None:
            for i in range(200):
                seq = box.enqueue(make_event(offset + i)).seq
                with lock:
                    assigned.append(seq)

        def acker() -> None:
            acked = 0
            while acked < 300:
                batch = box.pending(limit=min(20, 300 - acked))
                box.ack_many(e.seq for e in batch)
                acked += len(batch)

        threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(3)]
        threads.append(threading.Thread(target=acker))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(assigned) == list(range(1, 601))
        assert box.depth() == len(box.pending(limit=1000)) == 600 - 300


def test_second_owner_is_refused_clearly_and_bad_arguments_raise(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path), pytest.raises(OutboxLockedError, match="owned by another process"):
        Outbox(path)
    with pytest.raises(ValueError, match="max_rows"):
        Outbox(tmp_path / "x.db", max_rows=0)
    with pytest.raises(ValueError, match="synchronous"):
        Outbox(tmp_path / "y.db", synchronous="OFF")  # type: ignore[arg-type]
    with Outbox(tmp_path / "z.db") as box, pytest.raises(TypeError, match="IncidentEvent"):
        box.enqueue({"event": "started"})  # type: ignore[arg-type]


def test_wal_mode_and_sync_level_are_what_the_docstring_promises(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.enqueue(make_event(0))
        conn = box._conn  # the owner's own connection: pragma synchronous is per connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        box.ack(1)  # acks commit without fsync, then put FULL back for the next enqueue
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_sigkilled_writer_leaves_a_consistent_outbox_with_contiguous_seqs(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    printed: list[int] = []
    for _round in range(2):  # kill it twice: the second run must continue the seq line
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.outbox.outbox_writer_proc", str(path)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        target = len(printed) + 300
        while len(printed) < target:
            line = proc.stdout.readline()
            assert line, "writer died before it was killed"
            printed.append(int(line))
        proc.send_signal(signal.SIGKILL)  # mid-loop, likely mid-transaction
        proc.wait(timeout=10)
        proc.stdout.close()

    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    with Outbox(path) as box:
        stored = [e.seq for e in box.pending(limit=10_000)]
        last = box.last_seq()
        # Everything the writer reported as committed is there, nothing is missing in between,
        # and nothing beyond the last committed seq exists.
        assert stored == list(range(1, last + 1))
        assert set(printed) <= set(stored)
        assert printed == sorted(printed) and len(set(printed)) == len(printed)
        assert box.depth() == last
        assert box.enqueue(make_event(0)).seq == last + 1
