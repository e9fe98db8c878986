"""Photos officers take on "resolved": stored by content hash, so a photo the app's offline
queue sends twice is one file, and the name says nothing about who took it."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

MAX_PHOTO_BYTES = 8 * 1024 * 1024
PHOTO_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class PhotoError(ValueError):
    pass


def sniff(head: bytes) -> str | None:
    """The photo's file type by its first bytes (never by what the client claims)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        if not data:
            raise PhotoError("empty photo")
        if len(data) > MAX_PHOTO_BYTES:
            raise PhotoError(f"photo of {len(data)} bytes; at most {MAX_PHOTO_BYTES}")
        ext = sniff(data[:16])
        if ext is None:
            raise PhotoError("not a JPEG, PNG or WebP image")
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.root / name
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        return name

    def path(self, name: str) -> Path | None:
        if not PHOTO_NAME.match(name):
            return None
        path = self.root / name
        return path if path.is_file() else None
