"""Replay every scenario of a folder through the edge pipeline and score it.

The pipeline is :func:`gridwarden.edge.replay.replay`, the one ``gridwarden edge replay`` runs, so
a score measures exactly what the edge would raise on that footage. Detectors are loaded once per
distinct model section and shared by the scenarios that use it; the CPU time spent inside the
detector is measured per scenario (``time.process_time`` around each call: every thread of this
process, which is what the model costs on the box).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridwarden.edge.analytics.detector import Detector
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.config import EdgeConfig, load_edge_config
from gridwarden.edge.replay import ReplayStats, pick_camera, replay
from gridwarden.edge.types import Detections
from gridwarden.evaluation.scoring import ZoneScore, observed_incidents, score_zone
from gridwarden.evaluation.truth import Scenario, load_scenario
from gridwarden.yamlconfig import ConfigError


@dataclass
class ScenarioResult:
    name: str
    path: Path
    zones: list[ZoneScore] = field(default_factory=list)
    error: str | None = None  # the scenario could not be run (bad file, missing clip)
    frames: int = 0
    detector_calls: int = 0
    media_s: float = 0.0
    wall_s: float = 0.0
    detector_cpu_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(z.passed for z in self.zones)


class _TimedDetector:
    """Stands in for a detector (every attribute passes through) and adds up the CPU seconds
    its detection calls take."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self.cpu_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._detector, name)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        t0 = time.process_time()
        try:
            return self._detector.detect(images)
        finally:
            self.cpu_s += time.process_time() - t0

    def detect_one(self, image: np.ndarray) -> Detections:
        return self.detect([image])[0]


class ScenarioRunner:
    """Runs scenarios one after the other, sharing detectors between them."""

    def __init__(self, *, on_progress: Callable[[str], None] | None = None) -> None:
        self._detectors: dict[str, Detector | None] = {}
        self._on_progress = on_progress

    def _detector(self, config: EdgeConfig) -> Detector | None:
        key = config.model.model_dump_json() if config.model is not None else ""
        if key not in self._detectors:
            self._detectors[key] = build_detector(config)
        return self._detectors[key]

    def run(self, path: Path) -> ScenarioResult:
        result = ScenarioResult(name=path.name, path=path)
        try:
            scenario = load_scenario(path)
            result.name = scenario.name
            config = load_edge_config(scenario.config_path())
            camera = pick_camera(config, scenario.camera)
        except ConfigError as exc:
            result.error = "; ".join(str(p) for p in exc.problems)
            return result
        except KeyError as exc:
            result.error = f"{path}: camera: {exc.args[0]}"
            return result
        clip = scenario.clip_path()
        if not clip.is_file():
            result.error = f"{path}: clip: {clip} does not exist"
            return result
        problems = [f"{path}: zones.{z}: no zone {z!r} in camera {camera.id!r}" for z in scenario.zones]
        known = {z.id for z in camera.zones}
        problems = [p for p, z in zip(problems, scenario.zones, strict=True) if z not in known]
        if problems:
            result.error = "; ".join(problems)
            return result
        if self._on_progress is not None:
            self._on_progress(scenario.name)
        return self._replay(scenario, config, camera.id, clip, result)

    def _replay(
        self, scenario: Scenario, config: EdgeConfig, camera_id: str, clip: Path, result: ScenarioResult
    ) -> ScenarioResult:
        detector = self._detector(config)
        timed = _TimedDetector(detector) if detector is not None else None
        stats = ReplayStats()
        try:
            events = list(replay(clip, config, camera_id=camera_id, detector=timed, stats=stats))  # type: ignore[arg-type]
        except Exception as exc:  # a clip FFmpeg cannot read is this scenario's failure, not the run's
            result.error = f"{scenario.path}: replay failed: {exc}"
            return result
        observed = observed_incidents(events)
        camera = config.camera(camera_id)
        result.zones = [
            score_zone(zone.id, scenario.zones.get(zone.id, []), observed, scenario.tolerance_s)
            for zone in camera.zones
        ]
        result.frames = stats.frames
        result.detector_calls = stats.detector_calls
        result.media_s = stats.media_s
        result.wall_s = stats.wall_s
        result.detector_cpu_s = timed.cpu_s if timed is not None else 0.0
        return result
