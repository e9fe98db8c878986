"""The packet ring keeps ``seconds`` of encoded video, trimmed by whole GOPs, on real footage."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gridwarden.edge.capture.evidence import PacketRingBuffer
from tests.evidence.conftest import DemuxedClip


def test_keeps_at_least_the_window_starting_at_a_keyframe(car: DemuxedClip) -> None:
    ring = PacketRingBuffer(seconds=10.0)
    for packet in car.packets:
        ring.push(packet)
        held = ring.snapshot_from_keyframe(float("-inf"))
        assert held[0].is_keyframe
        newest = packet.media_time
        # Never less than the window (once that much video has been seen), never a whole GOP more.
        assert held[0].media_time <= max(newest - 10.0, 0.0)
        assert newest - held[0].media_time < 10.0 + car.gop_s
    assert len(ring) < len(car.packets)


def test_memory_is_the_bitstream_not_frames(car: DemuxedClip) -> None:
    ring = PacketRingBuffer(seconds=10.0)
    for packet in car.packets:
        ring.push(packet)
    held = ring.snapshot_from_keyframe(float("-inf"))
    payload = sum(len(p.data) for p in held)
    assert payload <= ring.memory_bytes() <= payload + 300 * len(held)
    # One decoded 768x432 BGR frame is ~1 MB; 10+ s of packets must be far less than 10 frames.
    assert ring.memory_bytes() < 768 * 432 * 3 * 10


def test_snapshot_starts_at_the_newest_keyframe_not_after_the_requested_time(car: DemuxedClip) -> None:
    ring = PacketRingBuffer(seconds=30.0)
    for packet in car.packets:
        ring.push(packet)
    keys = car.keyframe_times
    since = keys[2] + 0.5
    held = ring.snapshot_from_keyframe(since)
    assert held[0].media_time == keys[2] and held[0].is_keyframe
    assert held[-1] is car.packets[-1]
    # Before everything held: from the oldest keyframe.
    assert ring.snapshot_from_keyframe(-100.0)[0].media_time == keys[0]


def test_drops_packets_until_the_first_keyframe(car: DemuxedClip) -> None:
    ring = PacketRingBuffer(seconds=10.0)
    first_key = next(i for i, p in enumerate(car.packets) if i > 0 and p.is_keyframe)
    for packet in car.packets[1:first_key]:  # joined mid-GOP, like a camera connection
        ring.push(packet)
    assert len(ring) == 0 and ring.memory_bytes() == 0 and ring.snapshot_from_keyframe(1e9) == []
    ring.push(car.packets[first_key])
    assert len(ring) == 1


def test_byte_cap_drops_whole_gops(car: DemuxedClip) -> None:
    ring = PacketRingBuffer(seconds=1000.0, max_bytes=200_000)
    for packet in car.packets:
        ring.push(packet)
    held = ring.snapshot_from_keyframe(float("-inf"))
    assert held[0].is_keyframe
    # Over the cap only while a single GOP remains (a GOP is never split).
    assert ring.memory_bytes() <= 200_000 or sum(p.is_keyframe for p in held) == 1


def test_rejects_a_non_positive_window() -> None:
    with pytest.raises(ValueError):
        PacketRingBuffer(seconds=0)


def test_clear_empties(car: DemuxedClip) -> None:
    ring = PacketRingBuffer(seconds=10.0)
    for packet in car.packets[:50]:
        ring.push(packet)
    ring.clear()
    assert len(ring) == 0 and ring.memory_bytes() == 0 and ring.span_s() == 0.0
    ring.push(replace(car.packets[0], media_time=100.0))
    assert ring.span_s() == 0.0 and len(ring) == 1
