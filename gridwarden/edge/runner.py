"""The live edge: camera workers feed one analysis loop that batches the shared detector.

Why this shape (after Frigate): each camera decodes in its own worker thread, so one bad
stream cannot stall the others; the detector is one onnxruntime session for the whole box, and
frames waiting from several cameras go through it in one batched call. Each camera keeps only
its newest frame waiting (a :class:`DroppingQueue` with one slot per camera), so a box that falls behind drops frames —
counted and visible as lag — instead of building a queue that grows without bound.

Evidence (when the configuration enables it): each camera's :class:`CameraEvidence` is fed from
its worker's packet hooks on the READER thread (it only copies and queues packets there; its
own writer thread writes clips). When a rule's update is ``started``, the analysis thread writes
the two snapshots of that very frame and their refs go out in the ``started`` event. The clip is
finished ``post_roll_s`` later on the writer thread, which only queues it; the analysis thread
then sends an ``updated`` event for the incident carrying all its evidence refs (the hub merges
evidence by hash). So every event still leaves from one thread, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from gridwarden.contract import CameraStatus, EvidenceRef, IncidentEvent, StreamStatus, utcnow
from gridwarden.edge.analytics.camera_analytics import CameraAnalytics, FrameResult
from gridwarden.edge.analytics.detector import Detector
from gridwarden.edge.analytics.detector.mosaic import detect_frames
from gridwarden.edge.analytics.rules.base import IncidentUpdate
from gridwarden.edge.capture.camera_worker import CameraStatusSnapshot, CameraWorker, RateMeter
from gridwarden.edge.capture.decode_budget import DecodeBudget, rules_are_slow
from gridwarden.edge.capture.dropping_queue import DroppingQueue
from gridwarden.edge.capture.evidence import CameraEvidence, EvidenceFile, EvidenceUploader
from gridwarden.edge.capture.record_stream import RecordStream, StreamClockAligner
from gridwarden.edge.capture.sources import SourceOptions
from gridwarden.edge.config import CameraConfig, EdgeConfig
from gridwarden.edge.transport.wire import to_wire
from gridwarden.edge.types import Detections, Frame

log = logging.getLogger(__name__)

EventSink = Callable[[IncidentEvent], object]


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


# An incident whose clip has not arrived after this long (camera gone for good, write failure)
# is forgotten, so the bookkeeping cannot grow without bound.
_CLIP_WAIT_LIMIT_S = 6 * 3600.0


@dataclass
class _AwaitingClip:
    """An incident whose clip is being recorded: its newest event and the refs sent so far."""

    latest: IncidentEvent
    refs: list[EvidenceRef]
    since: float = field(default_factory=time.monotonic)


class EdgeRunner:
    """Runs every enabled camera of an edge configuration until :meth:`stop`.

    ``evidence_uploader``: where the evidence files go when ``config.evidence`` is enabled (see
    :func:`gridwarden.edge.service.build_evidence_uploader`); without it they stay on disk in
    ``config.evidence_dir()``.
    """

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
        evidence_uploader: EvidenceUploader | None = None,
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
        # The newest undelivered frame of each camera; older ones are dropped (counted per camera).
        self.frames: DroppingQueue[str, Frame] = DroppingQueue(maxsize=1)
        self.evidence: dict[str, CameraEvidence] = {
            c.id: self._camera_evidence(c, evidence_uploader) for c in cameras if self._records_evidence(c)
        }
        self._zone_polygons = {(c.id, z.id): z.polygon for c in cameras for z in c.zones}
        # Finished clips, queued by the evidence writer threads for the analysis thread to announce.
        self._finished_clips: queue.SimpleQueue[tuple[str, EvidenceFile]] = queue.SimpleQueue()
        self._awaiting_clips: dict[str, _AwaitingClip] = {}
        # A camera with a separate record stream: its evidence is fed from that stream's packets
        # (never decoded), put on the detect stream's clock (see record_stream.py).
        self.record_streams: dict[str, RecordStream] = {
            c.id: RecordStream(
                c.id,
                _source_options(c, c.record_url, decode=False),
                StreamClockAligner(),
                self.evidence[c.id],
                stall_timeout_s=c.stall_timeout_s,
            )
            for c in cameras
            if c.separate_record_stream and c.id in self.evidence
        }
        self.decode_budgets: dict[str, DecodeBudget] = {}
        self.workers = {c.id: self._detect_worker(c) for c in cameras}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status = 0.0
        self.max_batch = detector.max_batch if detector is not None and hasattr(detector, "max_batch") else 8

    def _detect_worker(self, camera: CameraConfig) -> CameraWorker:
        on_stream: Callable[[Any], None] | None = None
        evidence_packet: Callable[[Any, float], None] | None = None
        if camera.id in self.record_streams:
            clock = self.record_streams[camera.id].clock
            on_stream = clock.detect_reconnected
            evidence_packet = lambda _packet, media_time: clock.note_detect(media_time)  # noqa: E731
        elif camera.id in self.evidence:
            on_stream = self.evidence[camera.id].on_stream
            evidence_packet = self.evidence[camera.id].on_packet
        budget = self.decode_budgets[camera.id] = DecodeBudget(
            camera.keyframes_only,
            # Read live: a configuration pushed from the hub may change the rules.
            rules_slow=lambda: rules_are_slow(self.analytics[camera.id].camera),
            analysis_fps=camera.analysis_fps,
            moving_camera=camera.detect_camera_motion,
        )

        def on_packet(packet: Any, media_time: float) -> None:
            budget.on_packet(bool(packet.is_keyframe), media_time)
            if evidence_packet is not None:
                evidence_packet(packet, media_time)

        return CameraWorker(
            camera.id,
            _source_options(camera, camera.detect_url),
            stall_timeout_s=camera.stall_timeout_s,
            on_frame=self._queue_frame,
            on_stream=on_stream,
            on_packet=on_packet,
            keyframes_policy=budget.keyframes_only,
        )

    def _queue_frame(self, frame: Frame) -> None:
        """A camera worker's new frame (on its reader thread): it replaces that camera's waiting one."""
        self.frames.put(frame.camera_id, frame)

    def _records_evidence(self, camera: CameraConfig) -> bool:
        return self.config.evidence_enabled and camera.evidence

    def _camera_evidence(self, camera: CameraConfig, uploader: EvidenceUploader | None) -> CameraEvidence:
        settings = self.config.evidence
        assert settings is not None
        return CameraEvidence(
            camera.id,
            self.config.evidence_dir() / camera.id,
            uploader=uploader,
            on_clip=lambda incident_id, file: self._finished_clips.put((incident_id, file)),
            pre_roll_s=settings.pre_roll_s,
            post_roll_s=settings.post_roll_s,
            background=True,
        )

    def start(self) -> None:
        provider = (
            f"{self.detector.backend_reason} on {self.detector.provider}"
            if self.detector is not None and hasattr(self.detector, "backend_reason")
            else getattr(self.detector, "provider", "none (class-agnostic rules only)")
        )
        log.info(
            "edge %s starting %d cameras; detector backend: %s",
            self.config.edge_id,
            len(self.workers),
            provider,
        )
        for worker in self.workers.values():
            worker.start()
        for record in self.record_streams.values():
            record.start()
        self._thread = threading.Thread(target=self._loop, name="edge-analysis", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the cameras and the analysis; clips still in post-roll are written with what
        they have and announced (so call it before stopping the event sink)."""
        self._stop.set()
        for worker in self.workers.values():
            worker.stop()
        for record in self.record_streams.values():
            record.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        for evidence in self.evidence.values():
            evidence.close()
        if self._thread is None or not self._thread.is_alive():
            self.announce_finished_clips()  # the analysis thread is gone: events still leave in order

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
            try:
                self.announce_finished_clips()
            except Exception:
                log.exception("announcing finished clips failed")
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
                # Region inference: each camera's zone crops (or whole frame), all in one call.
                plans = [self.analytics[f.camera_id].region_plan(f, self.detector.input_size) for f in chunk]
                found_all = detect_frames(self.detector, [f.image for f in chunk], plans)
                for frame, found in zip(chunk, found_all, strict=True):
                    detections[id(frame)] = found
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
                event = to_wire(
                    update, site=self.config.site, edge_id=self.config.edge_id, wall_time=frame.wall_time
                )
                if update.event == "started" and frame.camera_id in self.evidence:
                    # Registered first: the clip is announced on this thread, so it cannot be
                    # missed even if it finishes before incident_started() returns.
                    awaiting = self._awaiting_clips[update.incident_id] = _AwaitingClip(event, [])
                    event.evidence = awaiting.refs = self._record_evidence(frame, update)
                    if self.evidence[frame.camera_id].recorder is None:  # no video yet: no clip
                        del self._awaiting_clips[update.incident_id]
                elif update.incident_id in self._awaiting_clips:
                    self._awaiting_clips[update.incident_id].latest = event
                self.sink(event)
            if self.on_result is not None:
                self.on_result(analytics, result)
            results.append(result)
        return results

    def _record_evidence(self, frame: Frame, update: IncidentUpdate) -> list[EvidenceRef]:
        """Snapshots of the frame the rule fired on, and the start of its clip; [] on failure
        (an incident must be published even when its evidence cannot be written)."""
        polygon = np.asarray(self._zone_polygons[(frame.camera_id, update.zone)], dtype=np.float64)
        if update.objects:
            target = max(update.objects, key=lambda o: o.confidence)
            box = np.clip(np.asarray(target.box, dtype=np.float64), 0.0, 1.0)
            class_name = target.class_name
        else:  # a class-agnostic rule without a tracked object: frame the zone itself
            box = np.concatenate([polygon.min(axis=0), polygon.max(axis=0)]).clip(0.0, 1.0)
            class_name = ", ".join(update.classes) or update.rule
        try:
            return self.evidence[frame.camera_id].incident_started(
                update.incident_id,
                frame.media_time,
                frame.image,
                zone_polygon=polygon.clip(0.0, 1.0),
                box=box,
                class_name=class_name,
                dwell_s=update.dwell_s,
            )
        except Exception:
            log.exception("%s: evidence for incident %s failed", frame.camera_id, update.incident_id)
            return []

    def announce_finished_clips(self) -> int:
        """Send an ``updated`` event with all evidence refs for each clip finished since the
        last call; returns how many. Runs on the analysis thread (or after it has stopped)."""
        sent = 0
        while True:
            try:
                incident_id, clip = self._finished_clips.get_nowait()
            except queue.Empty:
                break
            awaiting = self._awaiting_clips.pop(incident_id, None)
            if awaiting is None:
                log.warning("clip %s of incident %s has no event to attach to", clip.sha256[:12], incident_id)
                continue
            refs = [*awaiting.refs, clip.ref()]
            self.sink(
                awaiting.latest.model_copy(
                    update={"event": "updated", "evidence": refs, "wall_time": utcnow(), "seq": 0}
                )
            )
            sent += 1
        now = time.monotonic()
        for incident_id, awaiting in list(self._awaiting_clips.items()):
            if now - awaiting.since > _CLIP_WAIT_LIMIT_S:
                log.warning(
                    "incident %s: no clip after %.0fs; giving up on it", incident_id, now - awaiting.since
                )
                del self._awaiting_clips[incident_id]
        return sent

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
                    location=self.analytics[cam_id].camera.location,
                    streams=self._stream_statuses(cam_id, snap),
                    decode=self.decode_budgets[cam_id].mode,
                    decode_reason=self.decode_budgets[cam_id].reason[:300],
                    wall_time=utcnow(),
                )
            )
        return out

    def _stream_statuses(self, camera_id: str, detect: CameraStatusSnapshot) -> list[StreamStatus]:
        """Each input stream's own health: detect (and record, when it is a separate stream)."""
        record = self.record_streams.get(camera_id)
        # A separate record stream that is not read (evidence off for this camera) is not shown.
        separate = self.analytics[camera_id].camera.separate_record_stream
        detect_roles: list[Literal["detect", "record"]] = ["detect"] if separate else ["detect", "record"]
        streams = [_stream_status(detect_roles, detect)]
        if record is not None:
            streams.append(_stream_status(["record"], record.status()))
        return streams


def _source_options(camera: CameraConfig, url: str, *, decode: bool = True) -> SourceOptions:
    return SourceOptions(
        url=url,
        transport=camera.transport,
        analysis_fps=camera.analysis_fps,
        keyframes_only=False,  # decided per keyframe by the camera's DecodeBudget
        realtime="://" not in url,  # a file stands in for a camera: play it at camera pace
        loop="://" not in url,
        decode=decode,
    )


def _stream_status(roles: list[Literal["detect", "record"]], snap: CameraStatusSnapshot) -> StreamStatus:
    return StreamStatus(
        roles=roles,
        state=snap.state,
        input_fps=round(snap.input_fps, 2),
        bitrate_kbps=round(snap.bitrate_bps / 1000.0, 1),
        reconnects=snap.reconnects,
        last_error=None if snap.last_error is None else snap.last_error[:1000],
    )


def _to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
