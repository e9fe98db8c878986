"""Replay a recorded clip through the whole edge pipeline, for tuning zones and rules.

The clip is treated as one camera of the configuration (``--camera``, or the only/first one);
frames are sampled at that camera's analysis rate, and every incident event is yielded in the
wire format. Because rules run on media time, a replay as fast as the machine allows raises
exactly the incidents the live camera would, at the same media times.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gridwarden.contract import IncidentEvent
from gridwarden.edge.analytics.camera_analytics import CameraAnalytics, FrameResult
from gridwarden.edge.analytics.detector import Detector
from gridwarden.edge.analytics.detector.mosaic import detect_frames
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.capture.decode_budget import DecodeBudget, rules_are_slow
from gridwarden.edge.capture.sources import SourceOptions, StreamReader, probe
from gridwarden.edge.config import CameraConfig, EdgeConfig
from gridwarden.edge.transport.wire import to_wire


@dataclass
class ReplayStats:
    frames: int = 0
    detector_calls: int = 0
    gated_frames: int = 0
    events: int = 0
    wall_s: float = 0.0
    media_s: float = 0.0


def pick_camera(config: EdgeConfig, camera_id: str | None) -> CameraConfig:
    if camera_id is not None:
        return config.camera(camera_id)
    return config.cameras[0]


def replay(
    clip: str | Path,
    config: EdgeConfig,
    *,
    camera_id: str | None = None,
    detector: Detector | None = None,
    realtime: bool = False,
    on_frame: Callable[[CameraAnalytics, FrameResult], None] | None = None,
    progress: bool = False,
    stats: ReplayStats | None = None,
) -> Iterator[IncidentEvent]:
    """Run ``clip`` through the pipeline for one camera; yield each incident event in order."""
    camera = pick_camera(config, camera_id)
    if detector is None and config.model is not None:
        detector = build_detector(config)
    class_names = detector.class_names if detector else []
    analytics = CameraAnalytics(camera, config, class_names)
    stats = stats if stats is not None else ReplayStats()
    options = SourceOptions(
        url=str(clip),
        analysis_fps=camera.analysis_fps,
        realtime=realtime,
    )
    # The same decode budget as live (decode_budget.py), so a replay sees the frames the edge would.
    budget = DecodeBudget(
        camera.keyframes_only,
        rules_slow=lambda: rules_are_slow(camera),
        analysis_fps=camera.analysis_fps,
        moving_camera=camera.detect_camera_motion,
    )
    reader = StreamReader(
        camera.id,
        options,
        on_packet=lambda packet, media_time: budget.on_packet(bool(packet.is_keyframe), media_time),
        keyframes_policy=budget.keyframes_only,
    )
    bar = None
    if progress:
        from tqdm import tqdm

        info = probe(str(clip))
        total = float(info.get("duration_s") or 0.0)
        # Media seconds with one decimal: the bar's count is SET from the frame's media time
        # (never summed from float steps, which printed 6.000000000000002/30.2).
        bar = tqdm(
            total=round(total, 1) or None,
            unit="s",
            desc=f"replay {camera.id}",
            file=sys.stderr,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"
            if total
            else "{desc}: {n:.1f} s [{elapsed}]",
        )
    seq = 0
    start_wall = time.time()
    t0 = time.perf_counter()
    last_media = 0.0
    try:
        for frame in reader.frames():
            # Wall time of a replayed frame: the replay's start plus media time, so schedule
            # windows and SLA clocks see the clip's own timeline.
            frame.wall_time = start_wall + frame.media_time
            wants = detector is not None and analytics.wants_detection(frame)
            detections = None
            if wants and detector is not None:
                plan = analytics.region_plan(frame, detector.input_size)
                detections = detect_frames(detector, [frame.image], [plan])[0]
            if detector is None:
                from gridwarden.edge.types import Detections

                detections = Detections.empty()
            result = analytics.process(frame, detections)
            stats.frames += 1
            if on_frame is not None:
                on_frame(analytics, result)
            for update in result.updates:
                seq += 1
                stats.events += 1
                yield to_wire(
                    update, site=config.site, edge_id=config.edge_id, wall_time=frame.wall_time, seq=seq
                )
            if bar is not None:
                bar.n = round(min(frame.media_time, bar.total or frame.media_time), 1)
                bar.refresh()
            last_media = frame.media_time
    finally:
        if bar is not None:
            bar.close()
        stats.detector_calls = analytics.detector_calls
        stats.gated_frames = analytics.gated_frames
        stats.wall_s = time.perf_counter() - t0
        stats.media_s = last_media
