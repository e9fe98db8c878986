"""The per-camera glue driven by real footage, as the capture hooks would drive it."""

from __future__ import annotations

from pathlib import Path

import av

from gridwarden.edge.capture.evidence import CameraEvidence, EvidenceFile, EvidenceUploader, PacketClock
from tests.support.paths import CAR_CLIP
from tests.support.scenarios import HOLD_FRAME, PARKING_ZONE


def test_snapshots_at_once_clip_after_post_roll_all_spooled(tmp_path: Path) -> None:
    uploader = EvidenceUploader(spool_dir=tmp_path / "spool", hub_url="http://127.0.0.1:9", token="gw_x")
    clips: list[tuple[str, EvidenceFile]] = []
    evidence = CameraEvidence(
        "cam-1",
        tmp_path / "out",
        uploader=uploader,
        on_clip=lambda i, f: clips.append((i, f)),
        post_roll_s=5.0,
    )
    refs = []
    with av.open(str(CAR_CLIP)) as container:
        stream = container.streams.video[0]
        evidence.on_stream(stream)
        clock = PacketClock()
        for packet in container.demux(stream):
            media_time = clock.media_time(packet)
            evidence.on_packet(packet, media_time)
            for frame in packet.decode():
                if not refs and round(float(frame.pts * frame.time_base) * 12.5) == HOLD_FRAME:
                    refs = evidence.incident_started(
                        "inc-9",
                        media_time,
                        frame.to_ndarray(format="bgr24"),
                        zone_polygon=PARKING_ZONE,
                        box=(0.34, 0.28, 0.56, 0.88),
                        class_name="car",
                        dwell_s=30.0,
                    )
                    assert clips == []  # the clip needs post-roll first
    evidence.close()
    assert [r.kind for r in refs] == ["snapshot", "snapshot_annotated"]
    ((incident, clip),) = clips
    assert incident == "inc-9" and clip.kind == "clip"
    assert clip.path.parent == tmp_path / "spool" / "files"
    assert clip.media_start == 0.0 and 11.0 <= clip.media_end <= 11.2  # 6.08 s + 5 s post-roll
    assert uploader.pending() == 3
    assert not any((tmp_path / "out").glob("*.mp4")) and not any((tmp_path / "out").glob("*.jpg"))
    uploader.close()


def test_packets_before_a_stream_are_ignored(tmp_path: Path) -> None:
    evidence = CameraEvidence("cam-1", tmp_path)
    with av.open(str(CAR_CLIP)) as container:
        packet = next(container.demux(video=0))
        evidence.on_packet(packet, 0.0)
    assert len(evidence.ring) == 0
    evidence.close()
