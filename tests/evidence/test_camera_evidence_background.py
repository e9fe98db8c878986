"""CameraEvidence with its writer thread (``background=True``), as the edge runner uses it: the
reader thread only copies and queues packets; the results must be those of the synchronous path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import av

from gridwarden.edge.capture.evidence import CameraEvidence, EvidenceFile, PacketClock
from tests.support.paths import CAR_CLIP
from tests.support.scenarios import PARKING_ZONE

FPS = 12.5


def feed(
    evidence: CameraEvidence,
    trigger_at: float,
    incident_id: str = "inc-1",
    after_packet: Callable[[float], None] | None = None,
) -> None:
    """Demux the car clip into the hooks; fire an incident at the first packet >= ``trigger_at``."""
    fired = False
    with av.open(str(CAR_CLIP)) as container:
        stream = container.streams.video[0]
        evidence.on_stream(stream)
        clock = PacketClock()
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            media_time = clock.media_time(packet)
            evidence.on_packet(packet, media_time)
            if after_packet is not None:
                after_packet(media_time)
            if not fired and media_time >= trigger_at:
                evidence.incident_started(
                    incident_id,
                    media_time,
                    av.VideoFrame(64, 48, "rgb24").to_ndarray(format="bgr24"),
                    zone_polygon=PARKING_ZONE,
                    box=(0.34, 0.28, 0.56, 0.88),
                    class_name="car",
                    dwell_s=10.0,
                )
                fired = True


def test_background_writer_makes_the_same_clip_as_the_synchronous_path(tmp_path: Path) -> None:
    clips: dict[str, list[EvidenceFile]] = {"sync": [], "background": []}
    threads: list[str] = []
    for mode in clips:
        evidence = CameraEvidence(
            "cam-1",
            tmp_path / mode,
            on_clip=lambda _i, f, m=mode: (
                clips[m].append(f),
                threads.append(threading.current_thread().name),
            ),
            pre_roll_s=5.0,
            post_roll_s=5.0,
            background=mode == "background",
        )
        feed(evidence, trigger_at=12.0)
        evidence.close()
    (sync,), (background,) = clips["sync"], clips["background"]
    assert sync.sha256 == background.sha256 and sync.size > 10_000
    # Keyframes every 4.8 s: the pre-roll starts at the one at 4.8 s; the post-roll ends at 17 s.
    assert (background.media_start, round(background.media_end, 2)) == (4.8, 17.04)
    assert threads == ["MainThread", "gw-evidence-cam-1"]  # the clip was written off the reader


def test_a_writer_that_falls_behind_drops_video_up_to_the_next_keyframe(tmp_path: Path) -> None:
    release = threading.Event()
    finished: list[EvidenceFile] = []

    def slow_consumer(_incident: str, file: EvidenceFile) -> None:
        release.wait(30)  # the first clip's hand-over blocks the writer
        finished.append(file)

    evidence = CameraEvidence(
        "cam-1",
        tmp_path,
        on_clip=slow_consumer,
        pre_roll_s=40.0,
        post_roll_s=0.5,
        background=True,
        queue_packets=20,
    )

    def unblock_at_15s(media_time: float) -> None:
        if release.is_set():
            time.sleep(0.003)  # from now on a camera's pace (roughly): the writer keeps up
        elif media_time >= 15.0:
            release.set()
            time.sleep(0.5)  # the writer catches up with its queue

    # The clip is done at 1.5 s, then the writer blocks until 15 s while the camera goes on.
    feed(evidence, trigger_at=1.0, after_packet=unblock_at_15s)
    dropped = evidence.dropped_packets
    evidence.close()
    assert len(finished) == 1
    assert dropped > 150  # far more than the queue holds: 3 s to 19.2 s of video
    # What did reach the ring resumes at a keyframe after each gap: nothing undecodable is kept.
    packets = evidence.ring.snapshot_from_keyframe(0.0)
    gaps_end = [
        b for a, b in zip(packets, packets[1:], strict=False) if b.media_time - a.media_time > 1.5 / FPS
    ]
    assert [round(p.media_time, 2) for p in gaps_end] == [19.2] and gaps_end[0].is_keyframe
