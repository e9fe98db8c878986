"""A minimal PMTiles v3 writer for tests (raster PNG tiles; optionally one leaf directory), written
from the specification's byte layout so the hub's reader is checked against it."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from gridwarden.hub.reports.pmtiles import zxy_to_tileid


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _directory(entries: list[tuple[int, int, int, int]]) -> bytes:
    """entries: (tile_id, run_length, length, offset), sorted by tile_id."""
    out = bytearray(_varint(len(entries)))
    last = 0
    for tid, *_ in entries:
        out += _varint(tid - last)
        last = tid
    for _, run, _, _ in entries:
        out += _varint(run)
    for _, _, length, _ in entries:
        out += _varint(length)
    for _, _, _, offset in entries:
        out += _varint(offset + 1)
    return gzip.compress(bytes(out))


def write_pmtiles(path: Path, tiles: dict[tuple[int, int, int], bytes], *, leaf: bool = False) -> None:
    ordered = sorted((zxy_to_tileid(*zxy), data) for zxy, data in tiles.items())
    data = bytearray()
    entries = []
    for tid, blob in ordered:
        entries.append((tid, 1, len(blob), len(data)))
        data += blob
    leaves = b""
    if leaf:
        leaves = _directory(entries)
        root = _directory([(entries[0][0], 0, len(leaves), 0)])
    else:
        root = _directory(entries)
    root_off = 127
    leaf_off = root_off + len(root)
    data_off = leaf_off + len(leaves)
    zooms = [z for z, _, _ in tiles]
    header = bytearray(b"PMTiles\x03")
    header += struct.pack(
        "<8Q", root_off, len(root), data_off + len(data), 0, leaf_off, len(leaves), data_off, len(data)
    )
    header += struct.pack("<3Q", len(tiles), len(tiles), len(tiles))
    header += bytes([1, 2, 1, 2, min(zooms), max(zooms)])  # clustered, gzip dirs, raw tiles, PNG
    header += struct.pack("<4i", -1800000000, -850000000, 1800000000, 850000000)
    header += bytes([max(zooms)]) + struct.pack("<2i", 0, 0)
    assert len(header) == 127
    path.write_bytes(bytes(header) + root + leaves + bytes(data))
