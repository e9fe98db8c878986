"""An evidence file on the edge's disk: its path plus what the wire says about it.

The hash is the file's identity end to end: the incident message names files by SHA-256
(:class:`gridwarden.contract.EvidenceRef`), the uploader spools them under that name, and the
hub stores them content-addressed and refuses a body whose hash does not match. So the hash is
computed once, from the bytes on disk after they were written and fsynced, never from memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from gridwarden.contract import EvidenceRef

EvidenceKind = Literal["clip", "snapshot", "snapshot_annotated"]

CONTENT_TYPES: dict[str, str] = {".mp4": "video/mp4", ".jpg": "image/jpeg"}
EXTENSIONS: dict[str, str] = {v: k for k, v in CONTENT_TYPES.items()}

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (clips can be tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_and_rename(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable, then atomically give it its final name (and make the name durable).

    A crash leaves either no file or the whole file under ``final``, never half of one.
    """
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class EvidenceFile:
    """A finished evidence file; :meth:`ref` is what goes into ``IncidentEvent.evidence``."""

    path: Path
    kind: EvidenceKind
    sha256: str
    size: int
    content_type: str
    media_start: float | None = None
    media_end: float | None = None
    incident_id: str | None = None

    @classmethod
    def from_path(
        cls,
        path: Path,
        kind: EvidenceKind,
        *,
        media_start: float | None = None,
        media_end: float | None = None,
        incident_id: str | None = None,
    ) -> EvidenceFile:
        """Describe a file already on disk (hash and size are read from it)."""
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise ValueError(f"{path}: evidence must be one of {sorted(CONTENT_TYPES)}, not {path.suffix!r}")
        return cls(
            path=path,
            kind=kind,
            sha256=sha256_file(path),
            size=path.stat().st_size,
            content_type=content_type,
            media_start=media_start,
            media_end=media_end,
            incident_id=incident_id,
        )

    def moved_to(self, path: Path) -> EvidenceFile:
        return replace(self, path=path)

    def ref(self) -> EvidenceRef:
        return EvidenceRef(
            kind=self.kind,
            sha256=self.sha256,
            size=self.size,
            content_type=self.content_type,
            media_start=self.media_start,
            media_end=self.media_end,
        )
