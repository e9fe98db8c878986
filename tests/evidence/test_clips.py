"""Clips are cut by remuxing real footage: right length, playable, and bit-identical packets."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import av
import pytest

from gridwarden.edge.capture.evidence import ClipRecorder, FinishedClip, PacketRingBuffer, write_clip
from tests.evidence.conftest import DemuxedClip, demux
from tests.support.paths import PERSON_CLIP


def record(
    clip: DemuxedClip, out_dir: Path, trigger: float, incident_id: str = "inc-1"
) -> list[FinishedClip]:
    """Feed the footage like a live camera and start the clip when media time reaches ``trigger``."""
    recorder = ClipRecorder(PacketRingBuffer(10.0), clip.info, out_dir, pre_roll_s=10.0, post_roll_s=10.0)
    finished: list[FinishedClip] = []
    started = False
    for packet in clip.packets:
        finished += recorder.on_packet(packet)
        if not started and packet.media_time >= trigger:
            recorder.start_clip(incident_id, trigger)
            started = True
    assert recorder.pending() == [], "post-roll should have completed inside the footage"
    return finished


def probe(path: Path) -> tuple[dict[str, object], list[bytes], int, float]:
    """(codec parameters, packet payloads, decoded frame count, first pts in seconds)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        params = {
            "codec": ctx.name,
            "profile": ctx.profile,
            "width": ctx.width,
            "height": ctx.height,
            "extradata": bytes(ctx.extradata or b""),
        }
        payloads: list[bytes] = []
        first_pts: float | None = None
        frames = 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            payloads.append(bytes(packet))
            if first_pts is None and packet.pts is not None:
                first_pts = float(packet.pts * packet.time_base)
            frames += len(ctx.decode(packet))
        frames += len(ctx.decode(None))  # flush the decoder's delayed frames
    return params, payloads, frames, first_pts or 0.0


def test_clip_covers_pre_and_post_roll_within_a_gop(car: DemuxedClip, tmp_path: Path) -> None:
    (finished,) = record(car, tmp_path, trigger=15.0)
    evidence = finished.file
    assert not finished.truncated
    assert evidence.path == tmp_path / "inc-1_clip.mp4" and evidence.kind == "clip"
    assert evidence.content_type == "video/mp4"
    assert evidence.size == evidence.path.stat().st_size
    assert evidence.sha256 == hashlib.sha256(evidence.path.read_bytes()).hexdigest()
    assert evidence.media_start is not None and evidence.media_end is not None
    # Starts at a keyframe at or before trigger - pre_roll, at most one GOP earlier.
    assert 15.0 - 10.0 - car.gop_s < evidence.media_start <= 5.0
    assert evidence.media_end >= 25.0
    with av.open(str(evidence.path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
    assert 20.0 - 0.2 <= duration <= 20.0 + car.gop_s
    assert abs(duration - (evidence.media_end - evidence.media_start)) < 0.2
    ref = evidence.ref()
    assert (ref.kind, ref.sha256, ref.size) == ("clip", evidence.sha256, evidence.size)


def test_clip_is_a_remux_not_a_re_encode(car: DemuxedClip, tmp_path: Path) -> None:
    (finished,) = record(car, tmp_path, trigger=15.0)
    source_params, source_payloads, _, _ = probe(car.path)
    clip_params, clip_payloads, frames, first_pts = probe(finished.file.path)
    assert clip_params == source_params  # same codec, profile, size and extradata
    assert first_pts == 0.0  # rebased
    # The clip's packets are a contiguous run of the source's, byte for byte.
    start = source_payloads.index(clip_payloads[0])
    assert source_payloads[start : start + len(clip_payloads)] == clip_payloads
    assert car.packets[start].is_keyframe
    # And it plays: every packet decodes to a frame.
    assert frames == len(clip_payloads)


def test_clip_of_other_footage_plays(tmp_path: Path) -> None:
    person = demux(PERSON_CLIP)
    (finished,) = record(person, tmp_path, trigger=40.0, incident_id="person-1")
    params, payloads, frames, _ = probe(finished.file.path)
    assert params["width"] == 768 and frames == len(payloads) > 0
    assert 20.0 <= finished.file.media_end - finished.file.media_start <= 20.0 + person.gop_s + 0.2


def test_trigger_near_the_start_has_a_short_pre_roll(car: DemuxedClip, tmp_path: Path) -> None:
    (finished,) = record(car, tmp_path, trigger=3.0)
    assert finished.file.media_start == 0.0
    assert 12.9 <= finished.file.media_end <= 13.2


def test_two_incidents_overlap_and_a_repeat_start_is_ignored(car: DemuxedClip, tmp_path: Path) -> None:
    recorder = ClipRecorder(PacketRingBuffer(10.0), car.info, tmp_path)
    finished: list[FinishedClip] = []
    for packet in car.packets:
        finished += recorder.on_packet(packet)
        if packet.media_time == 12.0:
            recorder.start_clip("a", 12.0)
        if packet.media_time == 14.0:
            recorder.start_clip("b", 14.0)
            recorder.start_clip("a", 14.0)  # ignored: "a" already has a clip
    assert [f.incident_id for f in finished] == ["a", "b"]
    assert finished[0].file.media_end < finished[1].file.media_end


def test_flush_writes_a_truncated_clip(car: DemuxedClip, tmp_path: Path) -> None:
    recorder = ClipRecorder(PacketRingBuffer(10.0), car.info, tmp_path)
    for packet in car.packets[:200]:  # the stream ends 16 s in
        assert recorder.on_packet(packet) == []
        if packet.media_time == 12.0:
            recorder.start_clip("cut-short", 12.0)
    (finished,) = recorder.flush()
    assert finished.truncated and finished.file.media_end < 22.0
    _, payloads, frames, _ = probe(finished.file.path)
    assert frames == len(payloads) > 0


def test_clip_across_a_file_loop_keeps_time_running(car: DemuxedClip, tmp_path: Path) -> None:
    """Raw pts restart at a loop (or reconnect); media time does not, and neither does the clip."""
    span = car.packets[-1].media_time + 0.08
    looped = car.packets + [replace(p, media_time=p.media_time + span) for p in car.packets]
    clip = replace(car, packets=looped)
    (finished,) = record(clip, tmp_path, trigger=span + 1.0)
    with av.open(str(finished.file.path)) as container:
        pts = [p.pts for p in container.demux(video=0) if p.size]
    assert pts[0] == 0 and pts == sorted(pts) and len(set(pts)) == len(pts)
    assert 20.0 <= finished.file.media_end - finished.file.media_start <= 20.0 + car.gop_s + 0.2
    _, payloads, decoded, _ = probe(finished.file.path)
    assert decoded == len(payloads)


def test_incident_ids_cannot_escape_the_output_folder(car: DemuxedClip, tmp_path: Path) -> None:
    recorder = ClipRecorder(PacketRingBuffer(10.0), car.info, tmp_path)
    for bad in ("../evil", "a/b", "", "x" * 65):
        with pytest.raises(ValueError):
            recorder.start_clip(bad, 1.0)


def test_write_clip_refuses_to_start_mid_gop(car: DemuxedClip, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keyframe"):
        write_clip(car.packets[1:10], car.info, tmp_path / "x.mp4")


def test_new_codec_parameters_finish_pending_clips_and_empty_the_ring(
    car: DemuxedClip, tmp_path: Path
) -> None:
    person = demux(PERSON_CLIP)
    assert not car.info.same_codec_as(person.info)
    ring = PacketRingBuffer(10.0)
    recorder = ClipRecorder(ring, car.info, tmp_path)
    for packet in car.packets[:150]:
        recorder.on_packet(packet)
    recorder.start_clip("before-reconnect", 11.0)
    assert recorder.set_stream(car.info) == []  # same camera, same parameters: nothing to do
    (finished,) = recorder.set_stream(person.info)
    assert finished.truncated and len(ring) == 0
    params, _, _, _ = probe(finished.file.path)
    assert params["extradata"] == car.info.extradata


def _encode_with_b_frames(path: Path, seconds: float = 25.0, fps: int = 10) -> None:
    """A short synthetic H.264 Main-profile clip WITH B-frames (pts != dts), like many cameras."""
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.options = {"preset": "veryfast", "bf": "2", "g": str(2 * fps), "profile": "main"}
        for i in range(int(seconds * fps)):
            img = np.zeros((96, 160, 3), np.uint8)
            img[:, (i * 3) % 160 :] = (i * 7) % 255
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_b_frame_streams_keep_their_reordering(tmp_path: Path) -> None:
    source = tmp_path / "bframes.mp4"
    _encode_with_b_frames(source)
    clip = demux(source)
    assert any(p.pts != p.dts for p in clip.packets), "the encoder should have produced B-frames"
    (finished,) = record(clip, tmp_path / "out", trigger=12.0)
    params, payloads, frames, _ = probe(finished.file.path)
    assert params["profile"] == "Main" and params["extradata"] == clip.info.extradata
    assert frames == len(payloads)
    assert 1.0 < finished.file.media_start <= 2.0  # cut mid-stream, at the keyframe before 12 - 10
    source_payloads = [p.data for p in clip.packets]
    start = source_payloads.index(payloads[0])
    assert source_payloads[start : start + len(payloads)] == payloads
