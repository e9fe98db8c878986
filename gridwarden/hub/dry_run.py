"""Dry runs: what a candidate configuration WOULD raise on a recorded clip, next to the one in force.

An integrator changing a zone or a dwell time wants to know the consequence before the edge
gets it. A dry run replays one or more recorded clips of a camera (an upload, or the camera's
most recent evidence clips) through the edge pipeline itself (:func:`gridwarden.edge.replay.replay`,
the code ``gridwarden edge replay`` runs), once with the candidate configuration and once with
the configuration in force, and reports per clip the incident events of each, a diff of the
incidents (matched by zone + rule + start time within :data:`MATCH_WINDOW_S`) and an annotated
video of each run.

Why one worker thread per hub process: a replay runs the detector flat out and takes one CPU
core or more; two at once would starve the API and each other. Requests queue instead.

The model: the configuration's ``model.path`` is a path on the EDGE. The hub uses that path if
the file is there; otherwise ``<model_dir>/<path>`` for a relative path, or
``<model_dir>/<file name>`` for an absolute one (``model_dir`` is the service's argument; copy the
edge's model files there). If neither exists the dry run is refused up front
(:class:`ModelNotOnHub`), not failed minutes later.

Finished results are written as ``<work_dir>/<id>/result.json`` next to the annotated videos, so
they survive a hub restart; the newest :attr:`DryRunService.keep` dry runs are kept on disk.

Example::

    service = DryRunService(Path("var/hub/dry-runs"), model_dir=Path("/opt/gridwarden/models"))
    cand = service.prepare_config("edge-01", "cam-1", candidate_text, source="candidate.yaml")
    job = service.submit(DryRunRequest(edge_id="edge-01", camera_id="cam-1", clips=[...],
                                       candidate_yaml=candidate_text, current_yaml=current_text))
    service.get(job.id).status   # queued -> running -> done
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ulid

from gridwarden.contract import IncidentEvent
from gridwarden.edge.analytics.camera_analytics import CameraAnalytics, FrameResult
from gridwarden.edge.annotate import AnnotatedVideoWriter, draw_result
from gridwarden.edge.capture.sources import probe
from gridwarden.edge.config import EdgeConfig
from gridwarden.edge.replay import ReplayStats, replay
from gridwarden.hub.config_store import validate_edge_config
from gridwarden.yamlconfig import ConfigError, ConfigProblem

log = logging.getLogger(__name__)

MATCH_WINDOW_S = 2.0
RUN_NAMES = ("candidate", "current")
Which = Literal["candidate", "current"]
Status = Literal["queued", "running", "done", "failed"]


class ModelNotOnHub(LookupError):
    """The configuration's model file cannot be read on the hub, so nothing can be replayed."""


class UnreadableClip(ValueError):
    """An uploaded file is not a video the pipeline can decode."""


@dataclass(frozen=True)
class ClipSource:
    """One clip to replay: where it is and where it came from (upload or an incident's evidence)."""

    path: Path
    origin: str  # "upload" or "evidence"
    sha256: str | None = None
    incident_id: str | None = None
    # What the console labels an evidence clip with (camera, when, which case).
    camera: str | None = None
    started_at: str | None = None
    case_id: int | None = None


@dataclass(frozen=True)
class DryRunRequest:
    edge_id: str
    camera_id: str
    clips: list[ClipSource]
    candidate_yaml: str
    current_yaml: str | None  # None: the edge has no configuration yet
    current_version: int | None = None
    author: str = ""


@dataclass
class DryRun:
    """One dry run's state; ``result`` is set when ``status == "done"``."""

    id: str
    edge_id: str
    camera_id: str
    status: Status = "queued"
    progress: float = 0.0
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "edge_id": self.edge_id,
            "camera_id": self.camera_id,
            "status": self.status,
            "progress": round(self.progress, 3),
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
        }


def check_clip(path: Path) -> dict[str, Any]:
    """Raise :class:`UnreadableClip` unless ``path`` is an MP4 with a video stream PyAV opens."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 8 or head[4:8] != b"ftyp":
        raise UnreadableClip("the file is not an MP4 video (no 'ftyp' box at its start)")
    try:
        info = probe(str(path))
    except Exception as exc:  # PyAV raises many error types for a bad file
        raise UnreadableClip(f"the video cannot be decoded: {exc}") from None
    if not info.get("width"):
        raise UnreadableClip("the file has no video stream")
    return info


def event_row(event: IncidentEvent) -> dict[str, Any]:
    """The fields of an event an integrator compares (what ``gridwarden edge replay`` prints)."""
    return {
        "event": event.event,
        "incident_id": event.incident_id,
        "zone": event.zone,
        "rule": event.rule,
        "media_time": round(event.media_time, 3),
        "started_media_time": round(event.started_media_time, 3),
        "dwell_s": round(event.dwell_s, 3),
        "classes": list(event.classes),
    }


def incidents_of(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per incident (its first event), in start order."""
    seen: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["incident_id"] not in seen:
            seen[e["incident_id"]] = {
                "incident_id": e["incident_id"],
                "zone": e["zone"],
                "rule": e["rule"],
                "start": e["started_media_time"],
                "classes": e["classes"],
            }
    return sorted(seen.values(), key=lambda i: i["start"])


def diff_incidents(
    candidate: list[dict[str, Any]], current: list[dict[str, Any]], window_s: float = MATCH_WINDOW_S
) -> dict[str, list[Any]]:
    """Match incidents by zone + rule + start time within ``window_s`` (nearest first, one-to-one)."""
    pairs = sorted(
        (abs(c["start"] - k["start"]), ci, ki)
        for ci, c in enumerate(candidate)
        for ki, k in enumerate(current)
        if c["zone"] == k["zone"] and c["rule"] == k["rule"] and abs(c["start"] - k["start"]) <= window_s
    )
    used_c: set[int] = set()
    used_k: set[int] = set()
    both = []
    for _, ci, ki in pairs:
        if ci in used_c or ki in used_k:
            continue
        used_c.add(ci)
        used_k.add(ki)
        both.append({"candidate": candidate[ci], "current": current[ki]})
    return {
        "only_candidate": [c for i, c in enumerate(candidate) if i not in used_c],
        "only_current": [k for i, k in enumerate(current) if i not in used_k],
        "both": sorted(both, key=lambda p: p["candidate"]["start"]),
    }


class DryRunService:
    """Queues dry runs and runs them one at a time on a background thread (see the module doc)."""

    def __init__(
        self,
        work_dir: Path,
        *,
        model_dir: Path | None = None,
        max_upload_bytes: int = 512 * 1024 * 1024,
        max_evidence_clips: int = 10,
        keep: int = 50,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.model_dir = Path(model_dir).resolve() if model_dir is not None else None
        self.max_upload_bytes = max_upload_bytes
        self.max_evidence_clips = max_evidence_clips
        self.keep = keep
        self._jobs: dict[str, DryRun] = {}
        self._requests: dict[str, DryRunRequest] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    # -- preparing --------------------------------------------------------------------------
    def new_id(self) -> str:
        return str(ulid.ULID()).lower()

    def job_dir(self, job_id: str) -> Path:
        if not job_id.isalnum():
            raise ValueError("bad dry-run id")
        return self.work_dir / job_id

    def _model_file(self, configured: str) -> Path | None:
        p = Path(configured).expanduser()
        candidates = [p] if p.is_absolute() else []
        if self.model_dir is not None:
            candidates.append(self.model_dir / (p.name if p.is_absolute() else p))
        return next((c for c in candidates if c.is_file()), None)

    def prepare_config(self, edge_id: str, camera_id: str, text: str, *, source: str) -> EdgeConfig:
        """Validate ``text`` as the hub does for a change, check it has ``camera_id``, and point its
        model at a file readable here. Raises :class:`ConfigError` or :class:`ModelNotOnHub`."""
        config = validate_edge_config(edge_id, text, source=source)
        if camera_id not in {c.id for c in config.cameras}:
            raise ConfigError(
                [ConfigProblem(source, None, "cameras", f"the configuration has no camera {camera_id!r}")]
            )
        if config.model is not None:
            found = self._model_file(config.model.path)
            if found is None:
                where = f"{self.model_dir}" if self.model_dir else "(model_dir is not set)"
                raise ModelNotOnHub(
                    f"model file {config.model.path} is not on the hub; copy it there or into the hub's "
                    f"dry-run model folder {where} (set GRIDWARDEN_HUB_MODEL_DIR / DryRunService(model_dir=...))"
                )
            config.model.path = str(found)
            if config.model.labels:
                labels = self._model_file(config.model.labels)
                if labels is None:
                    raise ModelNotOnHub(f"labels file {config.model.labels} is not on the hub; copy it there")
                config.model.labels = str(labels)
        return config

    # -- the queue --------------------------------------------------------------------------
    def submit(self, job_id: str, request: DryRunRequest) -> DryRun:
        """Queue ``request`` (clips already on disk) under ``job_id`` (from :meth:`new_id`)."""
        job = DryRun(id=job_id, edge_id=request.edge_id, camera_id=request.camera_id)
        with self._lock:
            self._jobs[job.id] = job
            self._requests[job.id] = request
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="dry-run-worker", daemon=True)
                self._worker.start()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> DryRun | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        try:
            stored = self.job_dir(job_id) / "result.json"
        except ValueError:
            return None
        if stored.is_file():  # finished before a restart
            return DryRun(**json.loads(stored.read_text()))
        return None

    def video_path(self, job_id: str, which: str, clip_index: int) -> Path | None:
        if which not in RUN_NAMES or clip_index < 0:
            return None
        try:
            path = self.job_dir(job_id) / f"{which}-{clip_index}.mp4"
        except ValueError:
            return None
        return path if path.is_file() else None

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the worker after the running dry run (queued ones are dropped)."""
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout_s)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            job = self._jobs[job_id]
            request = self._requests.pop(job_id)
            job.status, job.started_at = "running", time.time()
            try:
                job.result = self._run(job, request)
                job.status = "done"
                job.progress = 1.0
            except Exception as exc:
                log.exception("dry run %s failed", job_id)
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                for clip in request.clips:  # uploads are ours; evidence clips belong to the store
                    if clip.origin == "upload":
                        clip.path.unlink(missing_ok=True)
            job.finished_at = time.time()
            try:
                out = self.job_dir(job_id)
                out.mkdir(parents=True, exist_ok=True)
                (out / "result.json").write_text(json.dumps(job.public()))
                self._prune()
            except OSError:
                log.exception("could not store dry run %s", job_id)

    def _prune(self) -> None:
        done = sorted(
            (p for p in self.work_dir.iterdir() if (p / "result.json").is_file()), key=lambda p: p.name
        )
        for old in done[: max(0, len(done) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)
            with self._lock:
                self._jobs.pop(old.name, None)

    # -- one dry run ------------------------------------------------------------------------
    def _run(self, job: DryRun, request: DryRunRequest) -> dict[str, Any]:
        out = self.job_dir(job.id)
        out.mkdir(parents=True, exist_ok=True)
        configs: dict[str, EdgeConfig | None] = {
            "candidate": self.prepare_config(
                request.edge_id, request.camera_id, request.candidate_yaml, source="candidate.yaml"
            ),
            "current": None,
        }
        same = request.current_yaml == request.candidate_yaml
        if request.current_yaml is not None and not same:
            configs["current"] = self.prepare_config(
                request.edge_id, request.camera_id, request.current_yaml, source="current.yaml"
            )
        runs = [name for name, cfg in configs.items() if cfg is not None]
        durations = [float(probe(str(c.path)).get("duration_s") or 0.0) for c in request.clips]
        total = max(1e-6, sum(durations) * len(runs))
        done_s = 0.0
        clips_out = []
        for index, (clip, duration) in enumerate(zip(request.clips, durations, strict=True)):
            per_run: dict[str, Any] = {}
            for name in runs:
                config = configs[name]
                assert config is not None
                video = out / f"{name}-{index}.mp4"

                def step(media_s: float, base: float = done_s) -> None:
                    job.progress = min(0.99, (base + media_s) / total)

                events, stats = self._replay_one(clip.path, config, request.camera_id, video, step)
                done_s += duration
                per_run[name] = {
                    "events": events,
                    "incidents": incidents_of(events),
                    "frames": stats.frames,
                    "detector_calls": stats.detector_calls,
                    "media_s": round(stats.media_s, 2),
                    "wall_s": round(stats.wall_s, 2),
                    "video": f"{name}/{index}",
                }
            if same and request.current_yaml is not None:
                # Same text: same incidents and video; not worth a second replay.
                shutil.copyfile(out / f"candidate-{index}.mp4", out / f"current-{index}.mp4")
                per_run["current"] = {**per_run["candidate"], "video": f"current/{index}"}
            current = per_run.get("current")
            clips_out.append(
                {
                    "index": index,
                    "origin": clip.origin,
                    "sha256": clip.sha256,
                    "incident_id": clip.incident_id,
                    "camera": clip.camera,
                    "started_at": clip.started_at,
                    "case_id": clip.case_id,
                    "duration_s": round(duration, 2),
                    "candidate": per_run["candidate"],
                    "current": current,
                    "diff": diff_incidents(
                        per_run["candidate"]["incidents"], current["incidents"] if current else []
                    ),
                }
            )
        return {
            "current_version": request.current_version,
            "same_configuration": same,
            "match_window_s": MATCH_WINDOW_S,
            # Without a detector (no model section) only the class-agnostic static-object rule
            # can fire: the console says so when a lane has no incidents.
            "detector": {name: cfg.model is not None for name, cfg in configs.items() if cfg is not None},
            "clips": clips_out,
        }

    @staticmethod
    def _replay_one(
        clip: Path, config: EdgeConfig, camera_id: str, video: Path, step: Any
    ) -> tuple[list[dict[str, Any]], ReplayStats]:
        camera = config.camera(camera_id)
        writer: AnnotatedVideoWriter | None = None

        def on_frame(analytics: CameraAnalytics, result: FrameResult) -> None:
            nonlocal writer
            if writer is None:
                size = (result.frame.width, result.frame.height)
                writer = AnnotatedVideoWriter(video, camera.analysis_fps, size)
            writer.write(draw_result(analytics, result))
            step(result.frame.media_time)

        stats = ReplayStats()
        try:
            events = [
                event_row(e)
                for e in replay(clip, config, camera_id=camera_id, on_frame=on_frame, stats=stats)
            ]
        finally:
            if writer is not None:
                writer.close()
        return events, stats
