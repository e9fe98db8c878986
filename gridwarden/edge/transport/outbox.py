"""The edge's durable outbox: every incident event is on disk before it goes on the wire.

The pipeline calls :meth:`Outbox.enqueue`; the publisher reads :meth:`Outbox.pending` in ``seq``
order, publishes, and calls :meth:`Outbox.ack` when the broker's PUBACK arrives. Whatever is not
acked when the broker goes away, the process is SIGKILLed or the power is cut is sent again from
here, in ``seq`` order, on the next connection. Duplicates are expected and harmless: the hub is
idempotent by ``(edge_id, seq)``.

Why acknowledged rows are KEPT (``acked_at`` set, not deleted) for ``retain_acked_s`` (default 24 h):
a PUBACK only says the broker took the event, not that a hub has it. Measured with Mosquitto
2.0.11: after a broker restart, shared subscriptions (``$share/<group>/...``, which the hub uses)
are not restored from the persistence file, so events acknowledged between the restart and the
hub re-subscribing reach nobody. The hub notices the hole (a ``seq`` gap, or
``EdgeStatus.last_seq`` above what it stored) and asks for a resend (a ``ReplayRequest`` on the wire); :meth:`Outbox.resend` marks
the retained rows pending again and the publisher sends them once more. :meth:`Outbox.depth`
still counts only rows the broker has not acknowledged: it is the "stuck at the edge" metric.
Files written before this column existed are migrated in place when opened (the column is added;
their rows are all unacknowledged, which is what they were).

Why SQLite in WAL mode: one file, atomic transactions, readers (the publisher) never block the
writer (the pipeline), and a SIGKILL mid-write leaves the last committed state.

Why ``synchronous=FULL`` (the default): the edge must not lose a committed incident on a power
cut. In WAL mode ``NORMAL`` only fsyncs the WAL at checkpoints, so the last transactions before a
power loss can roll back -- the process was told "stored", the hub never hears of it, and the seq
it was given may be handed out again (the counter lives in the same transactions). ``FULL``
fsyncs the WAL at every commit, so a returned :meth:`enqueue` is on stable storage. Measured on
the 2-core development VM (virtio disk, SQLite 3.40, ``python -m tests.outbox.bench_publisher``):
an enqueue costs one fsync with ``FULL`` -- 0.2-0.3 ms on a quiet disk, 3-4 ms while other
processes hammer it -- against 0.02-0.2 ms with ``NORMAL``; the publisher sustains roughly
500-1,900 events/s into a local broker with ``FULL`` and 2,400-6,500 with ``NORMAL``. Incidents
arrive at a few per second per camera, so ``FULL`` is far from the bottleneck and costs the
pipeline thread at most a few ms per event. Both modes survive a SIGKILL of the process (WAL
pages are in the OS page cache); only ``FULL`` survives losing power. ``NORMAL`` stays available
for boxes on a UPS that need raw throughput. Acks are never fsynced (see :meth:`ack_many`).

Bound and drop policy: at most ``max_rows`` rows (acknowledged or not) are kept. When full, the
oldest acknowledged row is deleted first (it has reached the broker; only the resend window
shrinks). With no acknowledged row left, the oldest unacknowledged ``updated``
event is deleted to make room (an ``updated`` is superseded by any later event of the same
incident). ``started`` and ``ended`` are never dropped: they open and close cases at the hub. If
the outbox is full of nothing but ``started``/``ended`` rows the new event is still accepted --
exceeding the bound -- and a warning is logged, because losing an incident's start or end is worse
than using more disk. Dropped events leave gaps in ``seq`` that the hub sees; :meth:`dropped`
counts them.

Sequence numbers start at 1, are assigned inside the enqueue transaction and persisted in the
same file, so they survive restarts and are never reused, even after rows are acked or dropped.

One process owns an outbox at a time (an advisory ``flock`` on ``<path>.lock``, released by the
kernel when the owner dies, even by SIGKILL): two publishers sending the same rows would double
the traffic, and the in-memory depth counter assumes a single writer.

Example::

    box = Outbox("/var/lib/gridwarden/outbox.sqlite3", max_rows=100_000)
    event = box.enqueue(event)          # event.seq is now assigned and on disk
    for ev in box.pending(limit=100):   # oldest first
        ...publish..., then box.ack(ev.seq)
    box.resend(40, 60)                  # the hub missed 40..60: pending again, sent again
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

from gridwarden.contract import IncidentEvent

log = logging.getLogger(__name__)

SyncMode = Literal["FULL", "NORMAL"]

# Default resend window: how long an acknowledged event stays available to a hub's ReplayRequest.
DEFAULT_RETAIN_ACKED_S = 24 * 3600.0
# Expired acknowledged rows are deleted from ack_many at most this often (one indexed DELETE).
_PRUNE_INTERVAL_S = 30.0

_SCHEMA_TABLES = """
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('started', 'updated', 'ended')),
    incident_id TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    enqueued_at REAL    NOT NULL,
    acked_at    REAL    -- NULL: not yet acknowledged by the broker (pending)
);
CREATE TABLE IF NOT EXISTS outbox_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO outbox_meta (key, value) VALUES ('next_seq', 1), ('dropped', 0);
"""

# Created after the in-place migration, since they name ``acked_at``.
_SCHEMA_INDEXES = """
-- Finds the oldest droppable row without scanning when the outbox is full.
CREATE INDEX IF NOT EXISTS outbox_updated_by_seq ON outbox (seq) WHERE kind = 'updated';
-- The sender's read: pending rows in seq order, without stepping over the retained acked ones.
CREATE INDEX IF NOT EXISTS outbox_pending_by_seq ON outbox (seq) WHERE acked_at IS NULL;
-- Oldest acknowledged rows first: window expiry and making room.
CREATE INDEX IF NOT EXISTS outbox_acked_by_time ON outbox (acked_at, seq) WHERE acked_at IS NOT NULL;
"""


class ResendOutcome(NamedTuple):
    """What :meth:`Outbox.resend` found in the span it was asked for."""

    remarked: int  # acknowledged rows marked pending again (they will be sent again)
    already_pending: int  # rows not yet acknowledged anyway (they are on their way)
    unavailable: int  # seqs no longer stored (window expired, pruned, dropped) or never assigned


class OutboxError(RuntimeError):
    """The outbox cannot be used (locked by another process, closed, or a bad file)."""


class OutboxLockedError(OutboxError):
    """Another live process owns this outbox."""


class Outbox:
    """A bounded, durable FIFO of :class:`IncidentEvent` keyed by a per-edge ``seq``.

    Thread-safe: the pipeline enqueues from its thread while the MQTT network thread (or the
    publisher's sender thread) reads and acks. All access goes through one connection guarded by
    a lock; every operation is a short transaction.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_rows: int = 100_000,
        synchronous: SyncMode = "FULL",
        retain_acked_s: float = DEFAULT_RETAIN_ACKED_S,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if not retain_acked_s >= 0:  # also refuses NaN
            raise ValueError(f"retain_acked_s must be >= 0, got {retain_acked_s}")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = Path(path)
        self.max_rows = max_rows
        self.synchronous: SyncMode = synchronous
        self.retain_acked_s = float(retain_acked_s)
        self._lock = threading.Lock()
        self._lock_file = self._acquire_owner_lock(self.path)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.executescript(_SCHEMA_TABLES)
            self._migrate(self._conn)
            self._conn.executescript(_SCHEMA_INDEXES)
            self._rows: int = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            self._depth: int = self._conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._release_owner_lock()
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        self._warned_over_bound = False
        self._closed = False
        self._next_prune = 0.0
        self.prune_expired()

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Bring an outbox file from an older release up to this schema, in place.

        Boxes in the field carry outbox files without ``acked_at``: their rows are all unacked
        (acked rows used to be deleted), so a NULL column is exactly right for them."""
        columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        if "acked_at" not in columns:
            conn.execute("ALTER TABLE outbox ADD COLUMN acked_at REAL")
            log.info("outbox: migrated an older file in place (added acked_at)")

    # -- ownership ---------------------------------------------------------------------------

    @staticmethod
    def _acquire_owner_lock(path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutboxLockedError(f"outbox {path} is owned by another process") from None
        return fd

    def _release_owner_lock(self) -> None:
        if self._lock_file >= 0:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            os.close(self._lock_file)
            self._lock_file = -1

    # -- writes ------------------------------------------------------------------------------

    def enqueue(self, event: IncidentEvent) -> IncidentEvent:
        """Store ``event`` durably with the next ``seq``; return a copy carrying that seq.

        The ``seq`` on the input is ignored. When this returns, the event is committed (and,
        with ``synchronous=FULL``, fsynced).
        """
        if not isinstance(event, IncidentEvent):
            raise TypeError(f"enqueue expects an IncidentEvent, got {type(event).__name__}")
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                seq = conn.execute("SELECT value FROM outbox_meta WHERE key = 'next_seq'").fetchone()[0]
                stored = event.model_copy(update={"seq": seq})
                removed_rows, removed_pending = (
                    self._make_room(conn) if self._rows >= self.max_rows else (0, 0)
                )
                conn.execute(
                    "INSERT INTO outbox (seq, kind, incident_id, payload, enqueued_at) VALUES (?, ?, ?, ?, ?)",
                    (seq, stored.event, stored.incident_id, stored.model_dump_json(), time.time()),
                )
                conn.execute("UPDATE outbox_meta SET value = ? WHERE key = 'next_seq'", (seq + 1,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._rows += 1 - removed_rows
            self._depth += 1 - removed_pending
            self._warn_if_over_bound()
            return stored

    def _make_room(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """Delete one row inside the caller's transaction: the oldest acknowledged row if any
        (it reached the broker; only the resend window shrinks), else the oldest unacknowledged
        ``updated``. Return (rows deleted, unacknowledged rows deleted)."""
        row = conn.execute(
            "SELECT seq FROM outbox WHERE acked_at IS NOT NULL ORDER BY acked_at, seq LIMIT 1"
        ).fetchone()
        if row is not None:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
            return 1, 0
        row = conn.execute(
            "SELECT seq FROM outbox WHERE kind = 'updated' AND acked_at IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        if row is None:
            return 0, 0
        conn.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
        conn.execute("UPDATE outbox_meta SET value = value + 1 WHERE key = 'dropped'")
        return 1, 1

    def _warn_if_over_bound(self) -> None:
        if self._rows > self.max_rows:
            if not self._warned_over_bound:
                log.warning(
                    "outbox %s holds %d rows, over its bound of %d: only started/ended events are "
                    "left and those are never dropped; is the broker reachable?",
                    self.path,
                    self._rows,
                    self.max_rows,
                )
                self._warned_over_bound = True
        else:
            self._warned_over_bound = False

    def ack(self, seq: int) -> None:
        """Mark the event with ``seq`` acknowledged (its PUBACK arrived); it stays retained for
        resend. Unknown or already acknowledged seqs are ignored: duplicates of one event are
        acked more than once after a reconnect."""
        self.ack_many((seq,))

    def ack_many(self, seqs: Iterable[int]) -> None:
        """Mark several events acknowledged in one transaction (and, at most every
        ``_PRUNE_INTERVAL_S``, delete acknowledged rows older than the resend window).

        Acks are committed without an fsync even under ``synchronous=FULL``: an ack lost to a
        power cut only brings the row back, and the event is delivered once more -- a duplicate
        the hub absorbs -- so paying an fsync per PUBACK burst buys nothing. (The next enqueue's
        fsync covers these WAL frames too; an unsynced tail is discarded whole at recovery, so
        the file stays consistent.)
        """
        now = time.time()
        params = [(now, int(s)) for s in seqs]
        if not params:
            return
        with self._lock:
            conn = self._connection()
            if self.synchronous == "FULL":
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    before = conn.total_changes
                    conn.executemany(
                        "UPDATE outbox SET acked_at = ? WHERE seq = ? AND acked_at IS NULL", params
                    )
                    acked = conn.total_changes - before
                    pruned = (
                        self._prune_expired_locked(conn, now) if time.monotonic() >= self._next_prune else 0
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            finally:
                if self.synchronous == "FULL":
                    conn.execute("PRAGMA synchronous=FULL")
            self._depth -= acked
            self._rows -= pruned
            self._warn_if_over_bound()

    def prune_expired(self, now: float | None = None) -> int:
        """Delete acknowledged rows older than the resend window; return how many. Called on
        open and from :meth:`ack_many`; public so an idle edge's owner can call it too."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                pruned = self._prune_expired_locked(conn, time.time() if now is None else now)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._rows -= pruned
            return pruned

    def _prune_expired_locked(self, conn: sqlite3.Connection, now: float) -> int:
        self._next_prune = time.monotonic() + _PRUNE_INTERVAL_S
        before = conn.total_changes
        conn.execute(
            "DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at < ?", (now - self.retain_acked_s,)
        )
        return conn.total_changes - before

    def resend(self, from_seq: int, to_seq: int) -> ResendOutcome:
        """Mark the retained, acknowledged events ``from_seq..to_seq`` (inclusive) pending again,
        so the sender publishes them once more in seq order (a hub asked: it never got them).

        Raises ``ValueError`` for a span that is not ``1 <= from_seq <= to_seq``."""
        if not (isinstance(from_seq, int) and isinstance(to_seq, int)) or not 1 <= from_seq <= to_seq:
            raise ValueError(f"resend span must satisfy 1 <= from_seq <= to_seq, got {from_seq}..{to_seq}")
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                conn.execute(
                    "UPDATE outbox SET acked_at = NULL WHERE seq BETWEEN ? AND ? AND acked_at IS NOT NULL",
                    (from_seq, to_seq),
                )
                remarked = conn.total_changes - before
                stored = conn.execute(
                    "SELECT COUNT(*) FROM outbox WHERE seq BETWEEN ? AND ?", (from_seq, to_seq)
                ).fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._depth += remarked
            return ResendOutcome(remarked, stored - remarked, to_seq - from_seq + 1 - stored)

    # -- reads -------------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_seq: int | None = None) -> list[IncidentEvent]:
        """Up to ``limit`` unacked events with ``seq > after_seq``, oldest first."""
        return [
            IncidentEvent.model_validate_json(payload) for _, payload in self.pending_raw(limit, after_seq)
        ]

    def pending_raw(self, limit: int = 100, after_seq: int | None = None) -> list[tuple[int, str]]:
        """Like :meth:`pending` but ``(seq, json_payload)`` pairs: the publisher sends the stored
        JSON as is, which saves a parse and a dump per event."""
        if limit < 1:
            return []
        with self._lock:
            return (
                self._connection()
                .execute(
                    "SELECT seq, payload FROM outbox WHERE acked_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                    (after_seq if after_seq is not None else 0, limit),
                )
                .fetchall()
            )

    def depth(self) -> int:
        """Number of events not yet acknowledged by the broker (a metric; retained acknowledged
        rows are not counted)."""
        with self._lock:
            return self._depth

    def stored_rows(self) -> int:
        """Rows in the file: pending plus acknowledged ones kept for resending (bounded by ``max_rows``
        unless only ``started``/``ended`` rows are pending)."""
        with self._lock:
            return self._rows

    def dropped(self) -> int:
        """Number of ``updated`` events dropped by the full-outbox policy, over the file's life."""
        with self._lock:
            return (
                self._connection()
                .execute("SELECT value FROM outbox_meta WHERE key = 'dropped'")
                .fetchone()[0]
            )

    def last_seq(self) -> int:
        """The highest seq ever assigned (0 if none), whether or not it is still stored."""
        with self._lock:
            return (
                self._connection()
                .execute("SELECT value FROM outbox_meta WHERE key = 'next_seq'")
                .fetchone()[0]
                - 1
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise OutboxError(f"outbox {self.path} is closed")
        return self._conn

    def close(self) -> None:
        """Checkpoint and close the file and give up ownership. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # a busy checkpoint is not a reason to fail close
                log.debug("outbox checkpoint on close failed: %s", exc)
            self._conn.close()
            self._release_owner_lock()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Outbox({str(self.path)!r}, max_rows={self.max_rows}, synchronous={self.synchronous!r}, "
            f"retain_acked_s={self.retain_acked_s})"
        )
