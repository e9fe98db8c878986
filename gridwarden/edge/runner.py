"""The live edge: camera workers feed one analysis loop that batches the shared detector.

Why this shape (after Frigate): each camera decodes in its own worker thread, so one bad
stream cannot stall the others; the detector is one onnxruntime session for the whole box, and
frames waiting from several cameras go through it in one batched call. Each camera keeps only
its newest frame waiting (:class:`NewestFramePerCamera`), so a box that falls behind drops frames —
counted and visible as lag — instead of building a queue that grows without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gridwarden.contract import CameraStatus, IncidentEvent, utcnow
from gridwarden.edge.camera_analytics import CameraAnalytics, FrameResult
from gridwarden.edge.camera_worker import CameraWorker, RateMeter
from gridwarden.edge.config import EdgeConfig
from gridwarden.edge.detector import Detector
from gridwarden.edge.sources import SourceOptions
from gridwarden.edge.types import Detections, Frame
from gridwarden.edge.wire import to_wire

log = logging.getLogger(__name__)

EventSink = Callable[[IncidentEvent], object]


class NewestFramePerCamera:
    """One slot per camera holding its newest undelivered frame; older ones are dropped."""

    def __init__(self) -> None:
        self._slots: dict[str, Frame] = {}
        self._cond = threading.Condition()
        self.dropped: dict[str, int] = {}

    def put(self, frame: Frame) -> None:
        with self._cond:
            if frame.camera_id in self._slots:
                self.dropped[frame.camera_id] = self.dropped.get(frame.camera_id, 0) + 1
            self._slots[frame.camera_id] = frame
            self._cond.notify()

    def take_all(self, timeout: float) -> list[Frame]:
        with self._cond:
            if not self._slots:
                self._cond.wait(timeout)
            frames = list(self._slots.values())
            self._slots.clear()
            return frames


@dataclass
class CameraCounters:
    analysed: int = 0
    detector_frames: int = 0
    gated: int = 0
    incidents: dict[str, int] = field(default_factory=dict)
    # Seconds from a frame's decode to the end of its analysis (wait for the loop + analysis).
    last_wait_s: float | None = None
    analysed_rate: RateMeter = field(default_factory=lambda: RateMeter(window_s=10.0))

    def analysed_fps(self, now: float) -> float:
        return self.analysed_rate.rate(now)


class EdgeRunner:
    """Runs every enabled camera of an edge configuration until :meth:`stop`."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        detector: Detector | None,
        sink: EventSink,
        status_sink: Callable[[CameraStatus], object] | None = None,
        status_interval_s: float = 10.0,
        on_result: Callable[[CameraAnalytics, FrameResult], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.sink = sink
        self.status_sink = status_sink
        self.status_interval_s = status_interval_s
        self.on_result = on_result
        self.heartbeat = heartbeat
        class_names = detector.class_names if detector else []
        cameras = [c for c in config.cameras if c.enabled]
        self.analytics = {c.id: CameraAnalytics(c, config, class_names) for c in cameras}
        self.counters = {c.id: CameraCounters() for c in cameras}
        self.frames = NewestFramePerCamera()
        self.workers = {
            c.id: CameraWorker(
                c.id,
                SourceOptions(
                    url=c.url,
                    transport=c.transport,
                    analysis_fps=c.analysis_fps,
                    keyframes_only=c.keyframes_only,
                    realtime="://" not in c.url,  # a file stands in for a camera: play it at camera pace
                    loop="://" not in c.url,
                ),
                stall_timeout_s=c.stall_timeout_s,
                on_frame=self.frames.put,
            )
            for c in cameras
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status = 0.0
        self.max_batch = detector.max_batch if detector is not None and hasattr(detector, "max_batch") else 8

    def start(self) -> None:
        provider = self.detector.provider if self.detector else "none (class-agnostic rules only)"
        log.info(
            "edge %s starting %d cameras; detector provider: %s",
            self.config.edge_id,
            len(self.workers),
            provider,
        )
        for worker in self.workers.values():
            worker.start()
        self._thread = threading.Thread(target=self._loop, name="edge-analysis", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for worker in self.workers.values():
            worker.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat()
            frames = self.frames.take_all(timeout=0.5)
            if frames:
                try:
                    self.analyse(frames)
                except Exception:  # one bad frame must not stop the box
                    log.exception("analysis failed for a batch of %d frames", len(frames))
            now = time.time()
            if self.status_sink is not None and now - self._last_status >= self.status_interval_s:
                self._last_status = now
                for status in self.camera_statuses():
                    self.status_sink(status)

    def analyse(self, frames: list[Frame]) -> list[FrameResult]:
        """Gate each frame, run the detector once on all frames that need it, then track and rule."""
        wanted = [
            f for f in frames if self.detector is not None and self.analytics[f.camera_id].wants_detection(f)
        ]
        detections: dict[int, Detections] = {}
        if self.detector is not None:
            for start in range(0, len(wanted), self.max_batch):
                chunk = wanted[start : start + self.max_batch]
                for frame, dets in zip(chunk, self.detector.detect([f.image for f in chunk]), strict=True):
                    detections[id(frame)] = dets
        results = []
        now = time.time()
        for frame in frames:
            analytics = self.analytics[frame.camera_id]
            counters = self.counters[frame.camera_id]
            if self.detector is None:
                dets: Detections | None = Detections.empty()
            else:
                dets = detections.get(id(frame))
            result = analytics.process(frame, dets)
            counters.analysed += 1
            counters.analysed_rate.tick(now)
            counters.last_wait_s = max(0.0, now - frame.wall_time)
            if dets is None:
                counters.gated += 1
            else:
                counters.detector_frames += 1
            for update in result.updates:
                counters.incidents[update.rule] = counters.incidents.get(update.rule, 0) + 1
                self.sink(
                    to_wire(
                        update, site=self.config.site, edge_id=self.config.edge_id, wall_time=frame.wall_time
                    )
                )
            if self.on_result is not None:
                self.on_result(analytics, result)
            results.append(result)
        return results

    def camera_statuses(self) -> list[CameraStatus]:
        out = []
        now = time.time()
        for cam_id, worker in self.workers.items():
            snap = worker.status()
            counters = self.counters[cam_id]
            # Lag = how late the source delivered the frame (worker) + how long it then waited
            # and took to analyse (here). It grows when either side falls behind.
            lag = None
            if snap.lag_s is not None or counters.last_wait_s is not None:
                lag = (snap.lag_s or 0.0) + (counters.last_wait_s or 0.0)
            out.append(
                CameraStatus(
                    edge_id=self.config.edge_id,
                    camera=cam_id,
                    kind=self.analytics[cam_id].camera.kind,
                    state=snap.state,
                    input_fps=round(snap.input_fps, 2),
                    analysed_fps=round(counters.analysed_fps(now), 2),
                    lag_s=None if lag is None else round(lag, 3),
                    last_frame_wall_time=None
                    if snap.last_frame_wall_time is None
                    else _to_dt(snap.last_frame_wall_time),
                    reconnects=snap.reconnects,
                    last_error=snap.last_error,
                    wall_time=utcnow(),
                )
            )
        return out


def _to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
