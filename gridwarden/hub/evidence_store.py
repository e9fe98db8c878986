"""The hub's evidence files (clips and snapshots uploaded by edges), content-addressed on disk.

A file lives at ``root/ab/cd/<sha256>``: its name is its hash, so an upload is idempotent (the
same bytes land on the same name), nothing an edge sends is ever used as a path, and a fan-out
of two directory levels keeps directories small at millions of files.

Every upload is checked before it is kept:

* the id must be 64 lowercase hex characters (nothing else reaches the file system);
* the declared content type must be on the allow-list (``video/mp4``, ``image/jpeg``) AND the
  first bytes must look like that type (an MP4 ``ftyp`` box, a JPEG SOI marker), so the hub never
  serves an HTML page it was told was a JPEG;
* the body may not exceed ``max_upload_bytes``, nor ``max_jpeg_bytes`` for a JPEG (checked on
  ``Content-Length`` and while reading): 413;
* an edge's files together may not exceed ``quota_bytes_per_edge`` (507 Insufficient Storage,
  ``quota_exceeded``): one edge filling the disk cannot stop the others' evidence;
* the SHA-256 computed while streaming to a temporary file must equal the id;
* the file must be what it claims (:mod:`gridwarden.hub.media_check`: a JPEG that decodes to a
  sane size, an MP4 that parses and holds video); only then is the file fsynced and atomically
  renamed into place, so a reader never sees half a file.

Which edge uploaded what is kept in ``root/owners/<edge_id>/<sha256>`` (a small file holding the
size), from which the quota is counted; the first uploader of a file owns it.

Retention (:meth:`EvidenceStore.prune`): files older than ``max_age_days`` go first, then the
oldest until the store fits ``max_total_bytes``. The case database keeps its references; a
pruned file answers 404.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridwarden.hub.media_check import InvalidMedia, check_media_file

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
ALLOWED_CONTENT_TYPES = frozenset({"video/mp4", "image/jpeg"})
DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_JPEG_BYTES = 8 * 1024 * 1024
_USAGE_CACHE_S = 30.0
_STALE_TMP_S = 3600.0
_SNIFF_BYTES = 12


class EvidenceError(ValueError):
    """An upload or lookup the store refuses; ``status`` and ``code`` map it to HTTP."""

    status = 400
    code = "bad_evidence"


class InvalidEvidenceId(EvidenceError):
    status, code = 422, "invalid_id"


class UnsupportedContentType(EvidenceError):
    status, code = 415, "unsupported_content_type"


class EvidenceTooLarge(EvidenceError):
    status, code = 413, "too_large"


class HashMismatch(EvidenceError):
    status, code = 400, "hash_mismatch"


class NotValidMedia(EvidenceError):
    status, code = 422, "invalid_media"


class QuotaExceeded(EvidenceError):
    status, code = 507, "quota_exceeded"


def check_id(sha256: str) -> str:
    if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
        raise InvalidEvidenceId("evidence id must be a SHA-256 as 64 lowercase hex characters")
    return sha256


def media_type(content_type: str | None) -> str:
    """``"image/JPEG; q=1"`` -> ``"image/jpeg"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def sniff_content_type(head: bytes) -> str | None:
    """The allow-listed type these first bytes belong to, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "video/mp4"
    return None


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep evidence at most ``max_age_days`` and the store within ``max_total_bytes`` (None: no limit)."""

    max_age_days: float | None = 90.0
    max_total_bytes: int | None = None


@dataclass(frozen=True)
class StoredEvidence:
    sha256: str
    path: Path
    size: int
    content_type: str
    mtime: float


@dataclass(frozen=True)
class PruneReport:
    removed_files: int
    removed_bytes: int
    kept_files: int
    kept_bytes: int


class PendingUpload:
    """One upload being streamed to a temporary file: :meth:`write` chunks, then :meth:`finish`.

    Always end with :meth:`finish` or :meth:`abort` (``with`` does the abort on error).
    """

    def __init__(
        self, store: EvidenceStore, sha256: str, content_type: str, owner: str | None = None
    ) -> None:
        self.store = store
        self.sha256 = sha256
        self.content_type = content_type
        self.owner = owner
        self.limit = store.limit_for(content_type)
        self.room = store.room_left(owner)
        self.size = 0
        self._digest = hashlib.sha256()
        self._head = b""
        self._tmp = store.tmp_dir / f"{sha256}.{uuid.uuid4().hex}.part"
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in finish/abort
        self._done = False

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.abort()
            raise EvidenceTooLarge(f"{self.content_type} evidence larger than {self.limit} bytes")
        if self.room is not None and self.size > self.room:
            self.abort()
            raise QuotaExceeded(f"edge {self.owner!r} has used its evidence quota")
        if len(self._head) < _SNIFF_BYTES:
            self._head += chunk[: _SNIFF_BYTES - len(self._head)]
        self._digest.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> bool:
        """Verify and keep the file; True if it was created, False if the store had it already."""
        try:
            if sniff_content_type(self._head) != self.content_type:
                raise UnsupportedContentType(f"the body is not a {self.content_type} file")
            actual = self._digest.hexdigest()
            if actual != self.sha256:
                raise HashMismatch(f"body hashes to {actual}, not to the id {self.sha256}")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            try:
                check_media_file(self._tmp, self.content_type)
            except InvalidMedia as exc:
                raise NotValidMedia(str(exc)) from exc
            final = self.store.path_for(self.sha256)
            if final.exists():
                return False
            for attempt in range(2):
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(self._tmp, final)
                    break
                except FileNotFoundError:  # a concurrent prune removed the emptied directory
                    if attempt:
                        raise
            _fsync_dir(final.parent)
            if self.owner is not None:
                self.store.record_owner(self.owner, self.sha256, self.size)
            log.info("stored evidence %s (%s, %d bytes)", self.sha256, self.content_type, self.size)
            return True
        finally:
            self.abort()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PendingUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class EvidenceStore:
    """Content-addressed evidence files under ``root`` (see the module docstring).

    >>> store = EvidenceStore(Path("/var/lib/gridwarden/evidence"))          # doctest: +SKIP
    >>> with store.begin_upload(sha, "image/jpeg", declared_size=n) as up:   # doctest: +SKIP
    ...     up.write(body); created = up.finish()
    """

    def __init__(
        self,
        root: Path,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        allowed_content_types: frozenset[str] = ALLOWED_CONTENT_TYPES,
        retention: RetentionPolicy | None = None,
        max_jpeg_bytes: int = DEFAULT_MAX_JPEG_BYTES,
        quota_bytes_per_edge: int | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.owners_dir = self.root / "owners"
        self.max_upload_bytes = max_upload_bytes
        self.max_jpeg_bytes = max_jpeg_bytes
        self.quota_bytes_per_edge = quota_bytes_per_edge
        self._usage: dict[str, tuple[float, int]] = {}  # owner -> (counted at, bytes)
        self._usage_lock = threading.Lock()
        unknown = set(allowed_content_types) - ALLOWED_CONTENT_TYPES
        if unknown:
            raise ValueError(f"content types {sorted(unknown)} cannot be recognised by the store")
        self.allowed_content_types = frozenset(allowed_content_types)
        self.retention = retention or RetentionPolicy()

    def path_for(self, sha256: str) -> Path:
        check_id(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def begin_upload(
        self,
        sha256: str,
        content_type: str | None,
        declared_size: int | None = None,
        *,
        owner: str | None = None,
    ) -> PendingUpload:
        """Check what can be checked before reading the body, and open the temporary file.

        ``owner``: the edge uploading, whose quota the file counts against (None: no quota)."""
        check_id(sha256)
        kind = media_type(content_type)
        if kind not in self.allowed_content_types:
            raise UnsupportedContentType(
                f"content type {kind or '(none)'!r} is not accepted; use one of {sorted(self.allowed_content_types)}"
            )
        limit = self.limit_for(kind)
        if declared_size is not None and declared_size > limit:
            raise EvidenceTooLarge(f"{declared_size} bytes is over the {kind} limit of {limit}")
        room = self.room_left(owner)
        if room is not None and (room <= 0 or (declared_size is not None and declared_size > room)):
            raise QuotaExceeded(
                f"edge {owner!r} has {max(room, 0)} bytes of its {self.quota_bytes_per_edge}-byte quota left"
            )
        return PendingUpload(self, sha256, kind, owner)

    def limit_for(self, content_type: str) -> int:
        if content_type == "image/jpeg":
            return min(self.max_jpeg_bytes, self.max_upload_bytes)
        return self.max_upload_bytes

    # ---- per-edge quota

    def usage(self, owner: str) -> int:
        """Bytes of stored evidence ``owner`` uploaded (recounted from disk every 30 s, so several
        hub processes sharing the folder agree closely enough)."""
        now = time.monotonic()
        with self._usage_lock:
            cached = self._usage.get(owner)
            if cached is not None and now - cached[0] < _USAGE_CACHE_S:
                return cached[1]
        total = 0
        folder = self.owners_dir / owner
        if folder.is_dir():
            for entry in folder.iterdir():
                try:
                    total += int(entry.read_text() or 0)
                except (OSError, ValueError):
                    continue
        with self._usage_lock:
            self._usage[owner] = (now, total)
        return total

    def room_left(self, owner: str | None) -> int | None:
        if owner is None or self.quota_bytes_per_edge is None:
            return None
        return self.quota_bytes_per_edge - self.usage(owner)

    def record_owner(self, owner: str, sha256: str, size: int) -> None:
        folder = self.owners_dir / owner
        folder.mkdir(parents=True, exist_ok=True)
        (folder / sha256).write_text(str(size))
        with self._usage_lock:
            cached = self._usage.get(owner)
            if cached is not None:
                self._usage[owner] = (cached[0], cached[1] + size)

    def _forget_owners(self, sha256s: set[str]) -> None:
        if not sha256s or not self.owners_dir.is_dir():
            return
        for folder in self.owners_dir.iterdir():
            for sha256 in sha256s:
                (folder / sha256).unlink(missing_ok=True)
        with self._usage_lock:
            self._usage.clear()

    def stat(self, sha256: str) -> StoredEvidence | None:
        """The stored file with its (sniffed) content type, or None if not stored."""
        path = self.path_for(sha256)
        try:
            with open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
                st = os.fstat(fh.fileno())
        except FileNotFoundError:
            return None
        return StoredEvidence(
            sha256=sha256,
            path=path,
            size=st.st_size,
            content_type=sniff_content_type(head) or "application/octet-stream",
            mtime=st.st_mtime,
        )

    def _stored_files(self) -> Iterator[tuple[Path, os.stat_result]]:
        for first in self.root.iterdir():
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in first.iterdir():
                if not second.is_dir():
                    continue
                for path in second.iterdir():
                    if SHA256_RE.fullmatch(path.name):
                        yield path, path.stat()

    def total_bytes(self) -> int:
        return sum(st.st_size for _, st in self._stored_files())

    def prune(self, now: float | None = None) -> PruneReport:
        """Apply the retention policy; also clears temporary files left by interrupted uploads."""
        now = time.time() if now is None else now
        for tmp in self.tmp_dir.glob("*.part"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    tmp.unlink(missing_ok=True)
            except FileNotFoundError:
                continue
        files = sorted(self._stored_files(), key=lambda item: item[1].st_mtime)
        policy = self.retention
        removed: list[tuple[Path, int]] = []
        kept: list[tuple[Path, int]] = []
        cutoff = now - policy.max_age_days * 86400.0 if policy.max_age_days is not None else None
        for path, st in files:
            (removed if cutoff is not None and st.st_mtime < cutoff else kept).append((path, st.st_size))
        total = sum(size for _, size in kept)
        if policy.max_total_bytes is not None:
            while kept and total > policy.max_total_bytes:
                path, size = kept.pop(0)  # oldest first
                removed.append((path, size))
                total -= size
        self._forget_owners({path.name for path, _ in removed})
        for path, _ in removed:
            path.unlink(missing_ok=True)
            for parent in (path.parent, path.parent.parent):
                try:
                    parent.rmdir()  # only succeeds when empty
                except OSError:
                    break
        if removed:
            log.info("pruned %d evidence files (%d bytes)", len(removed), sum(s for _, s in removed))
        return PruneReport(
            removed_files=len(removed),
            removed_bytes=sum(s for _, s in removed),
            kept_files=len(kept),
            kept_bytes=total,
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
