"""Acknowledged events stay in the outbox for replay: retention, replay, the pruning order, the
resend window, and the in-place migration of an outbox file written by an older release."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gridwarden.edge.transport.outbox import Outbox, ResendOutcome
from tests.outbox.events import make_event

# The outbox schema before acked_at existed (as shipped on boxes in the field).
_OLD_SCHEMA = """
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('started', 'updated', 'ended')),
    incident_id TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    enqueued_at REAL    NOT NULL
);
CREATE INDEX outbox_updated_by_seq ON outbox (seq) WHERE kind = 'updated';
CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO outbox_meta (key, value) VALUES ('next_seq', 1), ('dropped', 0);
"""


def _seqs(box: Outbox) -> list[int]:
    return [e.seq for e in box.pending(limit=10_000)]


def test_acked_rows_are_retained_but_neither_pending_nor_counted_in_depth(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        for i in range(5):
            box.enqueue(make_event(i))
        box.ack_many([1, 2, 3])
        box.ack(2)  # a second PUBACK for the same seq changes nothing
        assert (box.depth(), box.stored_rows(), _seqs(box)) == (2, 5, [4, 5])
    with Outbox(path) as box:  # the acknowledged state is on disk, not only in memory
        assert (box.depth(), box.stored_rows(), _seqs(box)) == (2, 5, [4, 5])


def test_resend_marks_retained_rows_pending_again_in_seq_order(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        stored = [box.enqueue(make_event(i)) for i in range(6)]
        box.ack_many([1, 2, 3, 4, 5])
        assert box.resend(2, 4) == ResendOutcome(remarked=3, already_pending=0, unavailable=0)
        assert _seqs(box) == [2, 3, 4, 6] and box.depth() == 4
        assert box.pending()[0] == stored[1]  # the very same event, payload unchanged
        # Overlapping, already pending and never-assigned seqs are told apart.
        assert box.resend(4, 9) == ResendOutcome(remarked=1, already_pending=2, unavailable=3)
        assert _seqs(box) == [2, 3, 4, 5, 6]
        box.ack_many(_seqs(box))  # sent again and acknowledged again
        assert box.depth() == 0 and box.stored_rows() == 6
        for bad in ((0, 3), (5, 4), (-1, -1)):
            with pytest.raises(ValueError, match="1 <= from_seq <= to_seq"):
                box.resend(*bad)


def test_a_full_outbox_prunes_acknowledged_rows_first_then_the_oldest_unacked_updated(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_rows=5) as box:
        for i, kind in enumerate(["started", "updated", "updated", "ended", "started"]):
            box.enqueue(make_event(i, kind=kind))
        box.ack_many([4, 1])  # one batch: same acked_at, so the lower seq is the older
        box.enqueue(make_event(5, kind="updated"))  # full: acked seq 1 goes (a started: delivered)
        box.enqueue(make_event(6, kind="updated"))  # full: acked seq 4 goes (an ended: delivered)
        assert box.dropped() == 0 and box.stored_rows() == 5
        assert box.resend(1, 4) == ResendOutcome(remarked=0, already_pending=2, unavailable=2)
        box.enqueue(make_event(7, kind="ended"))  # no acked row left: the oldest unacked updated
        assert _seqs(box) == [3, 5, 6, 7, 8]
        assert box.dropped() == 1 and box.depth() == box.stored_rows() == 5
        box.ack(7)
        box.enqueue(make_event(8, kind="started"))  # an acked row exists again: it goes first
        assert _seqs(box) == [3, 5, 6, 8, 9] and box.dropped() == 1


def test_rows_acknowledged_longer_ago_than_the_window_are_pruned(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", retain_acked_s=3600) as box:
        for i in range(4):
            box.enqueue(make_event(i))
        box.ack_many([1, 2])
        assert box.prune_expired() == 0  # within the window
        assert box.prune_expired(now=time.time() + 3601) == 2  # as seen an hour later
        assert box.stored_rows() == 2 and box.depth() == 2 and _seqs(box) == [3, 4]
        assert box.resend(1, 2).unavailable == 2
    with Outbox(tmp_path / "z.db", retain_acked_s=0) as box:  # window 0: acked rows go at once
        box.enqueue(make_event(0))
        box.ack(1)
        time.sleep(0.01)
        assert box.prune_expired() == 1 and box.stored_rows() == 0
    with pytest.raises(ValueError, match="retain_acked_s"):
        Outbox(tmp_path / "x.db", retain_acked_s=-1)


def test_an_outbox_file_from_before_acked_at_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_SCHEMA)
    for seq in (3, 4, 5):  # seqs 1-2 were acked (deleted) by the old release
        event = make_event(seq - 1).model_copy(update={"seq": seq})
        conn.execute(
            "INSERT INTO outbox (seq, kind, incident_id, payload, enqueued_at) VALUES (?, ?, ?, ?, ?)",
            (seq, event.event, event.incident_id, event.model_dump_json(), time.time()),
        )
    conn.execute("UPDATE outbox_meta SET value = 6 WHERE key = 'next_seq'")
    conn.commit()
    conn.close()

    with Outbox(path) as box:
        assert box.depth() == 3 and _seqs(box) == [3, 4, 5]  # old rows are all unacknowledged
        box.ack(3)
        assert box.enqueue(make_event(5)).seq == 6
        assert box.depth() == 3 and box.stored_rows() == 4
        assert box.resend(3, 3).remarked == 1
    with Outbox(path) as box:  # the second open finds the new schema and changes nothing
        assert _seqs(box) == [3, 4, 5, 6]
    check = sqlite3.connect(path)
    assert "acked_at" in {row[1] for row in check.execute("PRAGMA table_info(outbox)")}
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
