"""Send evidence files to the hub, surviving hub outages, edge restarts and full disks.

The queue is durable and simple: each file is MOVED into ``spool_dir/files/<sha256>.<ext>``
(so the hash names it and a second enqueue of the same content is a no-op) and listed in a small
SQLite index (``spool_dir/index.sqlite3``) that records the order and the counters. A background
thread uploads the oldest file first with ``PUT {hub}/api/v1/evidence/{sha256}`` and the edge's
bearer token, and deletes it only once the hub has acknowledged it (201 created, 200 already
there). Because the hub is idempotent by hash, a retry after a lost acknowledgement is harmless.

Failure handling:

* hub unreachable, 5xx, 401/403 (a token being rotated), 408, 429: retry the same file with a
  capped exponential backoff (with jitter, so a fleet does not stampede a recovering hub);
* a permanent refusal (400 wrong hash, 413 too big, 415 wrong type, 422): retrying cannot help;
  the file is deleted, counted in :meth:`EvidenceUploader.rejected` and logged as an error;
* the spool over ``max_spool_bytes``: the OLDEST files are deleted first (the newest incident is
  the one a reviewer still needs), counted in :meth:`EvidenceUploader.dropped` and logged.

On start-up the index is reconciled with the directory, so a crash between "file moved in" and
"index updated" loses nothing: a spooled file missing from the index is re-listed.

Example::

    >>> up = EvidenceUploader(spool_dir=Path("/var/lib/gridwarden/spool"),
    ...                       hub_url="https://hub.example", token="gw_...")   # doctest: +SKIP
    >>> up.start(); up.enqueue(clip.file); ...; up.stop()                     # doctest: +SKIP
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from gridwarden.backoff import Backoff
from gridwarden.edge.capture.evidence.files import CONTENT_TYPES, EXTENSIONS, EvidenceFile, fsync_and_rename

log = logging.getLogger(__name__)

_SPOOLED_NAME = re.compile(r"^([0-9a-f]{64})(\.mp4|\.jpg)$")
# Answers after which sending the same bytes again can never succeed.
PERMANENT_REFUSALS = frozenset({400, 404, 405, 409, 411, 413, 415, 422})
ACKNOWLEDGED = frozenset({200, 201, 204})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    file_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    enqueued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class SpooledFile:
    seq: int
    sha256: str
    path: Path
    kind: str
    content_type: str
    size: int


class EvidenceUploader:
    """Durable, background upload of evidence files to the hub (see the module docstring)."""

    def __init__(
        self,
        *,
        spool_dir: Path,
        hub_url: str,
        token: str,
        max_spool_bytes: int = 2_000_000_000,
        timeout_s: float = 30.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 60.0,
        verify: bool | str = True,
    ) -> None:
        if max_spool_bytes <= 0:
            raise ValueError("max_spool_bytes must be positive")
        if not hub_url.startswith(("http://", "https://")):
            raise ValueError(f"hub_url must be http(s)://..., got {hub_url!r}")
        self.spool_dir = Path(spool_dir)
        self.files_dir = self.spool_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.hub_url = hub_url.rstrip("/")
        self.max_spool_bytes = max_spool_bytes
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        # Half to full delay: a fleet that lost the hub together does not come back in lockstep.
        self._backoff = Backoff(backoff_initial_s, backoff_max_s, spread=(0.5, 1.0))
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self._verify = verify
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.spool_dir / "index.sqlite3", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded = 0  # acknowledged by the hub in this process's lifetime
        self.last_error: str | None = None
        self._reconcile()
        self._enforce_cap()

    # -- queue ---------------------------------------------------------------------------------
    def enqueue(self, file: EvidenceFile) -> EvidenceFile:
        """Take ``file`` over (it is moved into the spool) and queue it; returns it as spooled.

        Enqueueing content already queued is a no-op apart from removing the duplicate source.
        """
        extension = EXTENSIONS.get(file.content_type)
        if extension is None:
            raise ValueError(f"cannot upload {file.content_type!r}; allowed: {sorted(EXTENSIONS)}")
        target = self.files_dir / f"{file.sha256}{extension}"
        if Path(file.path).resolve() != target.resolve():
            if target.exists():
                Path(file.path).unlink(missing_ok=True)
            else:
                _move_durably(Path(file.path), target)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO queue (sha256, file_name, kind, content_type, size, enqueued_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (file.sha256, target.name, file.kind, file.content_type, file.size, time.time()),
            )
        self._enforce_cap()
        self._wake.set()
        return file.moved_to(target)

    def pending(self) -> int:
        """Files waiting for the hub's acknowledgement."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM queue").fetchone()[0])

    def pending_bytes(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM queue").fetchone()[0])

    def dropped(self) -> int:
        """Files deleted unsent because the spool was over its size cap (persists across restarts)."""
        return self._counter("dropped")

    def rejected(self) -> int:
        """Files the hub refused permanently (wrong hash, too big, wrong type)."""
        return self._counter("rejected")

    def wait_until_empty(self, timeout: float) -> bool:
        """Block until nothing is pending or ``timeout`` passes; True if the queue drained."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    # -- thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("uploader already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="evidence-uploader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (an upload in flight is given ``timeout`` to finish); the queue stays."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("evidence uploader did not stop within %.1fs", timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._db.close()

    def _run(self) -> None:
        failures = 0
        with httpx.Client(timeout=self._timeout, verify=self._verify, headers=self._headers) as client:
            while not self._stop.is_set():
                item = self._oldest()
                if item is None:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                outcome = self._upload(client, item)
                if outcome == "retry":
                    failures += 1
                    self._stop.wait(self._backoff.delay(failures))
                else:
                    failures = 0

    def _upload(self, client: httpx.Client, item: SpooledFile) -> str:
        url = f"{self.hub_url}/api/v1/evidence/{item.sha256}"
        try:
            with open(item.path, "rb") as body:
                size = os.fstat(body.fileno()).st_size
                response = client.put(
                    url,
                    content=body,
                    headers={"Content-Type": item.content_type, "Content-Length": str(size)},
                )
        except FileNotFoundError:
            # Dropped by the size cap while we were about to send it.
            self._remove(item, counter=None)
            return "gone"
        except httpx.HTTPError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.info("evidence upload of %s failed (%s); will retry", item.sha256[:12], self.last_error)
            return "retry"
        if response.status_code in ACKNOWLEDGED:
            self.uploaded += 1
            self.last_error = None
            self._remove(item, counter=None)
            return "sent"
        detail = response.text[:300]
        if response.status_code in PERMANENT_REFUSALS:
            log.error(
                "hub refused evidence %s (%s) with %d: %s; deleting it",
                item.sha256,
                item.kind,
                response.status_code,
                detail,
            )
            self._remove(item, counter="rejected")
            return "rejected"
        self.last_error = f"HTTP {response.status_code}: {detail}"
        log.warning("evidence upload of %s: %s; will retry", item.sha256[:12], self.last_error)
        return "retry"

    # -- storage helpers ---------------------------------------------------------------------------
    def _oldest(self) -> SpooledFile | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, sha256, file_name, kind, content_type, size FROM queue ORDER BY seq LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        seq, sha256, file_name, kind, content_type, size = row
        return SpooledFile(seq, sha256, self.files_dir / file_name, kind, content_type, size)

    def _remove(self, item: SpooledFile, *, counter: str | None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            deleted = self._db.execute("DELETE FROM queue WHERE seq = ?", (item.seq,)).rowcount
            if counter is not None and deleted:
                self._bump(counter)
            self._db.execute("COMMIT")
        item.path.unlink(missing_ok=True)

    def _bump(self, name: str) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )

    def _counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _enforce_cap(self) -> None:
        """Delete the oldest spooled files until the spool fits ``max_spool_bytes``."""
        while True:
            with self._lock:
                total = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM queue").fetchone()[0])
            if total <= self.max_spool_bytes:
                return
            item = self._oldest()
            if item is None:
                return
            log.warning(
                "evidence spool over %d bytes (%d): dropping the oldest file %s (%s, %d bytes) unsent",
                self.max_spool_bytes,
                total,
                item.sha256,
                item.kind,
                item.size,
            )
            self._remove(item, counter="dropped")

    def _reconcile(self) -> None:
        """Make the index and the directory agree after a crash (see the module docstring)."""
        for stale in self.files_dir.glob(".*.part"):
            stale.unlink(missing_ok=True)
        with self._lock:
            listed = {
                name: seq for seq, name in self._db.execute("SELECT seq, file_name FROM queue").fetchall()
            }
            on_disk = {p.name: p for p in self.files_dir.iterdir() if _SPOOLED_NAME.match(p.name)}
            for name, seq in listed.items():
                if name not in on_disk:
                    self._db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
            for name, path in sorted(on_disk.items(), key=lambda kv: kv[1].stat().st_mtime):
                if name in listed:
                    continue
                match = _SPOOLED_NAME.match(name)
                assert match is not None
                suffix = match.group(2)
                kind = "clip" if suffix == ".mp4" else "snapshot"
                log.info("re-listing spooled evidence %s found without an index entry", name)
                self._db.execute(
                    "INSERT OR IGNORE INTO queue (sha256, file_name, kind, content_type, size, enqueued_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (match.group(1), name, kind, CONTENT_TYPES[suffix], path.stat().st_size, time.time()),
                )


def _move_durably(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` atomically; across file systems, copy + fsync + rename."""
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(source, tmp)
        fsync_and_rename(tmp, target)
        source.unlink()
        return
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
