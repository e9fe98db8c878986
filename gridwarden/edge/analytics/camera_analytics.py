"""Per-camera analytics: everything that happens to one camera's frames after decoding.

One :class:`CameraAnalytics` per camera holds that camera's motion gate, camera-motion
estimator, tracker, static-foreground model and zone rules. It is split in two steps around the
detector so that the edge can batch frames from several cameras into one detector call:

1. :meth:`CameraAnalytics.wants_detection` — should the (shared) detector look at this frame?
2. :meth:`CameraAnalytics.process` — given the detections (or ``None`` when the gate skipped the
   detector), track, apply the rules and return incident updates.

Replay and live use this same class, and both measure time by the frame's media time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridwarden.edge.analytics.camera_motion import CameraMotionEstimator
from gridwarden.edge.analytics.detector.classes import DEFAULT_CLASS_GROUPS, resolve_classes
from gridwarden.edge.analytics.detector.regions import CameraRegions, RegionPlan, WatchedZone
from gridwarden.edge.analytics.gate import DownscaleCache, MotionGate
from gridwarden.edge.analytics.rules.base import IncidentUpdate, RuleContext
from gridwarden.edge.analytics.rules.occupancy import OccupiedSpaceRule
from gridwarden.edge.analytics.rules.parking import IllegalParkingRule
from gridwarden.edge.analytics.rules.registry import RULE_TYPES, RuleBuild
from gridwarden.edge.analytics.rules.scene import SceneModel
from gridwarden.edge.analytics.rules.schedule import Schedule
from gridwarden.edge.analytics.rules.static_objects import STATIC_OBJECT_CLASS, StaticForegroundDetector
from gridwarden.edge.analytics.tracking import Tracker
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.config import (
    CameraConfig,
    EdgeConfig,
    StaticObjectRuleConfig,
)
from gridwarden.edge.types import Detections, Frame

Rule = IllegalParkingRule | OccupiedSpaceRule


@dataclass
class FrameResult:
    """What one analysed frame produced, for the annotator and for counters."""

    frame: Frame
    tracks: Detections
    static_objects: Detections
    detected: bool
    camera_moving: bool
    updates: list[IncidentUpdate] = field(default_factory=list)
    regions: RegionPlan | None = None  # the crops the detector ran on; None: whole frame or gated


@dataclass
class _ZoneRules:
    zone: Zone
    rules: list[Rule]
    static_rules: list[OccupiedSpaceRule]


class CameraAnalytics:
    """Gate → (shared detector) → tracker → rules for one camera."""

    def __init__(self, camera: CameraConfig, edge: EdgeConfig, class_names: list[str]) -> None:
        self.camera = camera
        self.class_names = list(class_names)
        # The static-object path reports pseudo-detections under a class id past the model's own.
        self.static_class_id = len(self.class_names)
        self.all_class_names = [*self.class_names, STATIC_OBJECT_CLASS]
        self.timezone = edge.timezone
        groups = {**DEFAULT_CLASS_GROUPS, **edge.class_groups}
        # Kept to tell, on a reconfiguration, whether rules of an unchanged zone would resolve alike.
        self._class_groups = groups
        self._tracker_config = edge.tracker
        polygons = [z.polygon for z in camera.zones]
        self.gate: MotionGate | None = None
        if camera.motion_gate.enabled:
            self.gate = MotionGate(
                regions=polygons or None,
                min_changed_fraction=camera.motion_gate.min_changed_fraction,
                max_skip_s=camera.motion_gate.reconfirm_s,
            )
        self.camera_motion = CameraMotionEstimator() if camera.detect_camera_motion else None
        t = edge.tracker
        self.tracker = Tracker(
            high_threshold=t.high_threshold,
            low_threshold=t.low_threshold,
            new_track_threshold=t.new_track_threshold,
            min_hits=t.min_hits,
            match_iou=t.match_iou,
            lost_timeout_s=t.lost_timeout_s,
            persist_threshold=t.persist_threshold,
            persist_hits=t.persist_hits,
        )
        self.zones: list[_ZoneRules] = []
        static_regions: list[list[tuple[float, float]]] = []
        min_static_s: float | None = None
        watched: list[WatchedZone] = []  # zones with detector rules, for region inference
        for zc in camera.zones:
            zone = Zone(zc.id, zc.polygon, masks=zc.masks, anchor=zc.anchor)
            rules: list[Rule] = []
            static_rules: list[OccupiedSpaceRule] = []
            for rc in zc.rules:
                schedule_cfg = rc.schedule_windows()
                schedule = (
                    Schedule(schedule_cfg.windows, weekdays=schedule_cfg.weekdays, tz=self.timezone)
                    if schedule_cfg and schedule_cfg.windows
                    else None
                )
                common: dict[str, Any] = {
                    "zone": zone,
                    "camera_id": camera.id,
                    "dwell_s": rc.dwell_s,
                    "stationary_tolerance": rc.stationary_tolerance,
                    "min_size": rc.min_size,
                    "schedule": schedule,
                    "cooldown_s": rc.cooldown_s,
                    "end_grace_s": rc.end_grace_s,
                    "update_interval_s": rc.update_interval_s,
                    "occlusion_memory_s": rc.occlusion_memory_s,
                }
                kind = RULE_TYPES[rc.type]
                rule = kind.build(
                    rc,
                    RuleBuild(
                        common=common,
                        class_ids=lambda names: resolve_classes(names, self.class_names, groups),
                        static_class_id=self.static_class_id,
                    ),
                )
                if kind.needs_detector:
                    rules.append(rule)
                    ids = set(rule.class_ids) if rule.class_ids is not None else None
                    watched.append(self._watched(zc.polygon, zc.anchor, ids))
                else:
                    assert isinstance(rule, OccupiedSpaceRule) and isinstance(rc, StaticObjectRuleConfig)
                    static_rules.append(rule)
                    static_regions.append(zc.polygon)
                    min_static_s = (
                        rc.min_static_s if min_static_s is None else min(min_static_s, rc.min_static_s)
                    )
            self.zones.append(_ZoneRules(zone, rules, static_rules))
        self.static_detector: StaticForegroundDetector | None = None
        if static_regions:
            self.static_detector = StaticForegroundDetector(
                regions=static_regions, min_static_s=min_static_s or 10.0, class_id=self.static_class_id
            )
        self.regions = CameraRegions(watched, mode=camera.inference, max_inputs=camera.max_region_inputs)
        self._region_plan: RegionPlan | None = None
        # The frame against the view's background: lets rules tell a hidden car from an empty place.
        self.scene_model: SceneModel | None = SceneModel() if camera.zones else None
        # The gate, the static-object path and the scene model share one resize per frame.
        self._smalls = DownscaleCache()
        self.detector_calls = 0
        self.gated_frames = 0
        # A new object needs min_hits detections in a row to become a track; while one is
        # tentative, the gate must not skip the next frame or confirmation waits a whole
        # re-confirm period (10 s by default) on a still scene.
        self._confirming = False

    def wants_detection(self, frame: Frame) -> bool:
        """Whether the shared detector should look at this frame (motion gate + re-confirm cadence)."""
        if self.gate is None or self._confirming:
            return True
        small = self._smalls.get(frame.image, self.gate.width)
        return self.gate.should_detect(frame.image, frame.media_time, small)

    def _watched(self, polygon: list[tuple[float, float]], anchor: str, ids: set[int] | None) -> WatchedZone:
        names = None if ids is None else tuple(self.class_names[i] for i in sorted(ids))
        return WatchedZone(polygon, anchor, names)

    def region_plan(self, frame: Frame, input_size: tuple[int, int]) -> RegionPlan | None:
        """The crops the detector should run on for this frame (``None``: the whole frame);
        call it only for frames the detector will see (it advances the motion regions)."""
        self._region_plan = self.regions.plan(frame.image, input_size)
        return self._region_plan

    def process(self, frame: Frame, detections: Detections | None) -> FrameResult:
        """Track and apply rules. ``detections`` is ``None`` when the gate skipped the detector."""
        moving = False
        if self.camera_motion is not None:
            moving = self.camera_motion.update(frame.image, frame.media_time)
        if detections is None:
            self.gated_frames += 1
            tracks = self.tracker.coast(frame.media_time)
        else:
            self.detector_calls += 1
            tracks = self.tracker.update(detections, frame.media_time)
            self._confirming = self.tracker.pending
        static = Detections.empty()
        static_ages = None
        image = frame.image
        if self.static_detector is not None and not moving:
            small = self._smalls.get(image, self.static_detector.width)
            static = self.static_detector.update(image, frame.media_time, small)
            static_ages = self.static_detector.last_ages
        scene = None
        if self.scene_model is not None and not moving:
            width = self.scene_model.width
            # Lazily: the scene model resizes only on frames where it learns or a rule asks.
            scene = self.scene_model.update(image, frame.media_time, lambda: self._smalls.get(image, width))
        ctx = RuleContext(
            camera_id=self.camera.id,
            media_time=frame.media_time,
            wall_time=frame.wall_time,
            frame_size=(frame.width, frame.height),
            class_names=self.all_class_names,
            camera_moving=moving,
            scene=scene,
        )
        updates: list[IncidentUpdate] = []
        for zr in self.zones:
            for rule in zr.rules:
                updates.extend(rule.update(tracks, ctx))
            if zr.static_rules:
                static_tracks = Detections(
                    xyxy=static.xyxy,
                    confidence=static.confidence,
                    class_id=static.class_id,
                    track_id=np.arange(len(static), dtype=np.int64),
                )
                for rule in zr.static_rules:
                    updates.extend(rule.update(static_tracks, ctx, ages=static_ages))
        self._smalls.clear()  # rules are done with the frame: do not keep it alive
        plan, self._region_plan = self._region_plan, None
        detected = detections is not None
        return FrameResult(frame, tracks, static, detected, moving, updates, plan if detected else None)

    def reconfigured(self, camera: CameraConfig, edge: EdgeConfig) -> CameraAnalytics:
        """A new instance for a changed configuration that keeps what has not changed.

        Why: rebuilding a camera from scratch forgets every dwell timer and open incident, so a
        car parked for 50 of its 60 seconds would start again at 0 and an open incident would be
        reported a second time. So the new instance keeps

        * the rule objects (timers, open incidents) of every zone whose id and configuration are
          identical — and whose rules resolve identically (same timezone, same class groups);
        * the tracker (track ids, hence the rules' memory of objects), unless the tracker
          settings changed;
        * the motion gate and camera-motion estimator when their settings and the gate's regions
          (the zone polygons) are unchanged; a gate watching old regions would miss motion in a
          new zone, and a fresh one only costs one detector call;
        * the static-foreground model when its regions and settling time are unchanged.

        Zones that are new or changed get fresh rules; removed zones' open incidents are dropped
        (they end with this zone's configuration).
        """
        new = CameraAnalytics(camera, edge, self.class_names)
        same_rule_context = self.timezone == new.timezone and self._class_groups == new._class_groups
        old_zones = {zc.id: (zc, zr) for zc, zr in zip(self.camera.zones, self.zones, strict=True)}
        for index, zc in enumerate(camera.zones):
            kept = old_zones.get(zc.id)
            if same_rule_context and kept is not None and kept[0] == zc:
                new.zones[index] = kept[1]
        if self._tracker_config == new._tracker_config:
            new.tracker = self.tracker
            new._confirming = self._confirming
        same_regions = [z.polygon for z in self.camera.zones] == [z.polygon for z in camera.zones]
        if same_regions and self.camera.motion_gate == camera.motion_gate:
            new.gate = self.gate
        if self.camera.detect_camera_motion == camera.detect_camera_motion:
            new.camera_motion = self.camera_motion
        if new.scene_model is not None and self.scene_model is not None:
            new.scene_model = self.scene_model
        if self._static_settings == new._static_settings:
            new.static_detector = self.static_detector
        new.detector_calls = self.detector_calls
        new.gated_frames = self.gated_frames
        return new

    @property
    def _static_settings(self) -> list[tuple[list[tuple[float, float]], float]]:
        """What the static-foreground model is built from: its regions and settling times."""
        return [
            (zc.polygon, rc.min_static_s)
            for zc in self.camera.zones
            for rc in zc.rules
            if isinstance(rc, StaticObjectRuleConfig)
        ]

    def all_rules(self) -> list[Rule]:
        return [r for zr in self.zones for r in (*zr.rules, *zr.static_rules)]
