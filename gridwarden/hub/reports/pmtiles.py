"""Read raster tiles from a PMTiles v3 archive (https://github.com/protomaps/PMTiles, spec v3),
so a district can hand the hub one ``.pmtiles`` file as its offline basemap, like an MBTiles one.

Only what serving tiles needs: the 127-byte header, directories (varint-encoded, compressed
with gzip or not at all) with leaf directories, and the Hilbert tile ids.

>>> [zxy_to_tileid(*t) for t in ((0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 1), (1, 1, 0), (2, 0, 0))]
[0, 1, 2, 3, 4, 5]
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

HEADER_BYTES = 127
MAGIC = b"PMTiles"
COMPRESSION_NONE, COMPRESSION_GZIP = 1, 2
TILE_TYPES = {1: "application/x-protobuf", 2: "image/png", 3: "image/jpeg", 4: "image/webp", 5: "image/avif"}
MAX_DEPTH = 4


class PMTilesError(ValueError):
    """The file is not a PMTiles v3 archive this reader can serve."""


def zxy_to_tileid(z: int, x: int, y: int) -> int:
    """The archive's tile id: tiles of lower zooms first, then a Hilbert curve within the zoom."""
    if z > 31 or x >= (1 << z) or y >= (1 << z):
        raise ValueError(f"no tile {z}/{x}/{y}")
    acc = ((1 << (2 * z)) - 1) // 3  # tiles at zooms below z
    n = 1 << z
    d = 0
    s = n >> 1
    while s > 0:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:  # rotate the quadrant
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        s >>= 1
    return acc + d


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise PMTilesError("directory ends inside a number")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise PMTilesError("directory number too long")


@dataclass(frozen=True)
class Entry:
    tile_id: int
    offset: int
    length: int
    run_length: int  # 0: a leaf directory


def parse_directory(buf: bytes) -> list[Entry]:
    n, pos = _varint(buf, 0)
    if n > 10_000_000:
        raise PMTilesError("directory too large")
    ids: list[int] = []
    runs: list[int] = []
    lengths: list[int] = []
    offsets: list[int] = []
    last = 0
    for _ in range(n):
        delta, pos = _varint(buf, pos)
        last += delta
        ids.append(last)
    for _ in range(n):
        v, pos = _varint(buf, pos)
        runs.append(v)
    for _ in range(n):
        v, pos = _varint(buf, pos)
        lengths.append(v)
    for i in range(n):
        v, pos = _varint(buf, pos)
        offsets.append(offsets[i - 1] + lengths[i - 1] if v == 0 and i > 0 else v - 1)
    return [Entry(ids[i], offsets[i], lengths[i], runs[i]) for i in range(n)]


class PMTilesReader:
    """Tiles of one archive by z/x/y; the file is read per request (no state but the header)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:7] != MAGIC or head[7] != 3:
            raise PMTilesError(f"{self.path} is not a PMTiles version 3 file")
        (self.root_offset, self.root_length, _meta_off, _meta_len, self.leaf_offset, _leaf_len,
         self.data_offset, _data_len) = struct.unpack_from("<8Q", head, 8)  # fmt: skip
        self.internal_compression = head[97]
        self.tile_compression = head[98]
        self.content_type = TILE_TYPES.get(head[99], "application/octet-stream")
        if self.internal_compression not in (COMPRESSION_NONE, COMPRESSION_GZIP):
            raise PMTilesError(
                f"{self.path}: directory compression {self.internal_compression} is not supported"
            )
        if self.tile_compression not in (0, COMPRESSION_NONE):
            raise PMTilesError(f"{self.path}: compressed raster tiles are not supported")

    def _read(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def _directory(self, offset: int, length: int) -> list[Entry]:
        raw = self._read(offset, length)
        return parse_directory(gzip.decompress(raw) if self.internal_compression == COMPRESSION_GZIP else raw)

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = self.root_offset, self.root_length
        for _ in range(MAX_DEPTH):
            entries = self._directory(offset, length)
            found = None
            for e in entries:  # the last entry whose id is <= tile_id
                if e.tile_id > tile_id:
                    break
                found = e
            if found is None:
                return None
            if found.run_length == 0:  # a leaf directory
                offset, length = self.leaf_offset + found.offset, found.length
                continue
            if tile_id < found.tile_id + found.run_length:
                return self._read(self.data_offset + found.offset, found.length)
            return None
        raise PMTilesError("leaf directories nested too deep")
