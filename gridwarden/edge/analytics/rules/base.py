"""What every dwell rule shares: the values it emits, a memory of objects at rest, and timing.

An incident has an explicit lifecycle, ``started`` -> ``updated``* -> ``ended``, and one parked
car is ONE incident however long it stays. Four things make that hold on real detections:

* **Objects are remembered by place, not by track id.** :class:`PlaceMemory` keeps one
  :class:`RestingObject` per object at rest and matches each frame's tracks to them by position
  (IoU with the box where it came to rest, plus a centre-shift tolerance relative to its size);
  the track id only breaks ties. When a passing bus hides a parked car and the tracker hands the
  car a new id, the car's clock keeps running.
* **Absence has a grace period** (``end_grace_s``): a missed detection does not end an incident
  (and does not forget a waiting object); the dwell clock keeps running through it, because the
  object was most likely there all along. ``end_grace_s`` counts only time in which the place is
  *seen empty*.
* **Hidden is not gone** (``occlusion_memory_s``, default 60 s, separate from ``end_grace_s``):
  while something covers a resting object's place - a bus the detector sees, or anything the
  scene model (:mod:`.scene`) shows that is not the background - the object keeps its place, its
  clock and its incident. When it is seen there again it continues; when a different-looking
  object stands there, or the road shows through, it is gone.
* **All timers run on media time** (``RuleContext.media_time``), so replay at any speed gives the
  same incidents; only schedules look at the wall clock.

While ``RuleContext.camera_moving`` is true (handheld or vehicle cameras) positions in pixels say
nothing about the street: no incident starts, no clock runs, objects that have not fired are
forgotten (their dwell **resets**), and open incidents are frozen as they are - neither ended nor
extended - until the camera is still again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ulid import ULID

from gridwarden.edge.analytics.rules import defaults
from gridwarden.edge.analytics.rules.scene import SceneView, signature_distance
from gridwarden.edge.analytics.rules.schedule import Schedule
from gridwarden.edge.analytics.tracking import box_iou, greedy_match
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.types import Detections

log = logging.getLogger(__name__)

EventKind = Literal["started", "updated", "ended"]

# Only an object that has demonstrably rested this long is worth remembering through an
# occlusion; a car driving through leaves a trail of one-frame places that are forgotten at once.
MIN_REST_FOR_MEMORY_S = 2.0
# How long a resting object that nobody sees is remembered at its place while something covers
# it: a bus or lorry stopping in front of a parked car takes tens of seconds.
DEFAULT_OCCLUSION_MEMORY_S = defaults.OCCLUSION_MEMORY_S
# Another track covering this share of a remembered place hides it.
HIDDEN_COVERAGE = 0.4
# A place whose pixels differ from the background by at most this share is seen empty.
_EMPTY_FOREGROUND_MAX = 0.3
# An object seen again after at least this absence is compared by appearance before it is matched.
_REAPPEAR_CHECK_S = 1.0
_SIGNATURE_PERIOD_S = 1.0
_SIGNATURE_GAIN = 0.2
# A place whose signature is this close (as a fraction of the "different object" distance) to the
# remembered object's shows that object.
_SAME_LOOK_FRACTION = 0.5


@dataclass
class RuleContext:
    """What a rule needs to know about the frame besides the tracks."""

    camera_id: str
    media_time: float  # seconds from the stream's start (pts): every rule timer uses this
    wall_time: float  # epoch seconds: only for schedules and the event's wall time
    frame_size: tuple[int, int]  # (width, height) of the frame the boxes are in
    class_names: list[str]
    camera_moving: bool = False
    # The frame against the camera's background (None in track-only callers and tests): lets a
    # rule tell a hidden object from an empty place and one car from another.
    scene: SceneView | None = None


@dataclass
class TrackedObject:
    """One object taking part in an incident; ``box`` is NORMALISED xyxy (0..1)."""

    track_id: int
    class_name: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass
class IncidentUpdate:
    """One lifecycle step of an incident, before the outbox gives it a sequence number."""

    event: EventKind
    incident_id: str
    camera: str
    zone: str
    rule: str
    classes: list[str]
    objects: list[TrackedObject]
    confidence: float
    media_time: float
    started_media_time: float
    dwell_s: float
    coverage: float | None = None


def new_incident_id() -> str:
    """A ULID: unique without coordination, and sorts by creation time."""
    return str(ULID())


def class_name(class_names: Sequence[str], class_id: int) -> str:
    if 0 <= class_id < len(class_names):
        return class_names[class_id]
    return f"class_{class_id}"


@dataclass
class OpenIncident:
    """Book-keeping for an incident that has started and not yet ended."""

    incident_id: str
    started_media_time: float
    last_report_time: float
    last_classes: list[str]
    last_coverage: float | None = None
    last_object_keys: frozenset[int] = frozenset()


@dataclass(eq=False)
class RestingObject:
    """An object that has held one place. Boxes in pixels, times in media seconds.

    ``dwell_s`` counts from when it came to rest here (absences the memory bridges included,
    time with the camera moving excluded); ``held_s`` is ``dwell_s`` at the last frame it was
    actually seen here, i.e. how long it has demonstrably stayed. While it is not seen,
    ``absent_s`` counts the whole absence and ``empty_s`` the part of it in which its place was
    seen empty (see :meth:`PlaceMemory.step`).
    """

    key: int
    ref: np.ndarray  # the box where it came to rest: the place
    box: np.ndarray  # the latest matched box
    track_id: int
    confidence: float
    dwell_s: float = 0.0
    held_s: float = 0.0
    absent_s: float = 0.0
    empty_s: float = 0.0
    undetected_s: float = 0.0  # since a track last matched it (seen_in_place does not reset this)
    present: bool = True
    hidden: bool = False  # not seen this frame, and something covers its place
    incident: OpenIncident | None = None
    signature: np.ndarray | None = field(default=None, repr=False)
    _signature_time: float = field(default=-math.inf, repr=False)
    _votes: dict[int, float] = field(default_factory=dict, repr=False)
    _conf_sum: float = 0.0
    _conf_n: int = 0

    def observe(self, box: np.ndarray, track_id: int, class_id: int, confidence: float) -> None:
        self.box = box
        if track_id >= 0:
            self.track_id = track_id
        self.confidence = confidence
        self.present = True
        self.hidden = False
        self.absent_s = 0.0
        self.empty_s = 0.0
        self.undetected_s = 0.0
        self.held_s = self.dwell_s
        self._votes[class_id] = self._votes.get(class_id, 0.0) + max(confidence, 1e-3)
        self._conf_sum += confidence
        self._conf_n += 1

    def seen_in_place(self) -> None:
        """Not detected, but its place shows it (the scene's pixels match its signature): it
        has stayed. Box, class and confidence stay as last detected."""
        self.present = True
        self.hidden = False
        self.absent_s = 0.0
        self.empty_s = 0.0
        self.held_s = self.dwell_s

    def wants_signature(self, now: float) -> bool:
        """Whether :meth:`learn_signature` would take a new sample now (at most once a second)."""
        return self.signature is None or now - self._signature_time >= _SIGNATURE_PERIOD_S

    def learn_signature(self, signature: np.ndarray, now: float) -> None:
        """Blend in how the object looks now, at most once a second (a slow average follows dusk
        falling, while a few frames of a bus sliding over it change little)."""
        if self.signature is None:
            self.signature = signature
        elif self.wants_signature(now):
            self.signature = (1.0 - _SIGNATURE_GAIN) * self.signature + _SIGNATURE_GAIN * signature
        else:
            return
        self._signature_time = now

    @property
    def class_id(self) -> int:
        """Confidence-weighted majority class over every frame this object was seen."""
        return max(self._votes.items(), key=lambda kv: kv[1])[0]

    @property
    def mean_confidence(self) -> float:
        return self._conf_sum / self._conf_n if self._conf_n else self.confidence


class PlaceMemory:
    """Objects at rest, matched to each frame's tracks by position (see the module docstring).

    A track matches a remembered object when its box overlaps the resting box by at least
    ``match_iou`` AND its centre is within ``stationary_tolerance`` x the resting box's diagonal of
    the resting centre. A track that matches nothing (a new arrival, or an object that moved
    beyond the tolerance) starts a new resting object at its current place with a zero clock; a
    moving car thus never accumulates dwell, and the place it left is forgotten once absent.

    **Occlusion memory.** An object that has rested at least ``MIN_REST_FOR_MEMORY_S`` and is not
    seen is classified each frame: its place is *hidden* when other tracks cover
    ``HIDDEN_COVERAGE`` of it, or when the scene (:class:`~.scene.SceneView`, when the caller has
    one) shows something there that is not the background; it is *seen empty* when the background
    shows through, when a different-looking object of the rule's classes now stands there, or,
    without a scene, when no other track covers it. :meth:`gone` is true once the place has been
    seen empty for ``end_grace_s`` or the object has been absent for ``occlusion_memory_s``; until
    then its clock runs on, so a car behind a bus that stopped for tens of seconds keeps its dwell
    and its incident, and one that is seen again at its place (box overlap, same class group,
    similar colour signature) simply continues.
    """

    def __init__(
        self,
        *,
        match_iou: float,
        stationary_tolerance: float,
        end_grace_s: float = 3.0,
        occlusion_memory_s: float = 0.0,
        max_signature_distance: float = 0.5,
    ) -> None:
        self.match_iou = match_iou
        self.stationary_tolerance = stationary_tolerance
        self.end_grace_s = end_grace_s
        self.occlusion_memory_s = occlusion_memory_s
        self.max_signature_distance = max_signature_distance
        self.objects: list[RestingObject] = []
        self._next_key = 1
        self._frame_size: tuple[int, int] | None = None
        self._now = 0.0

    def __len__(self) -> int:
        return len(self.objects)

    def rescale(self, frame_size: tuple[int, int]) -> None:
        """Keep places valid when the stream's resolution changes (e.g. a substream switch)."""
        if self._frame_size is not None and frame_size != self._frame_size:
            s = np.array([frame_size[0] / self._frame_size[0], frame_size[1] / self._frame_size[1]] * 2)
            for obj in self.objects:
                obj.ref = obj.ref * s
                obj.box = obj.box * s
        self._frame_size = frame_size

    def gone(self, obj: RestingObject) -> bool:
        """Whether an object that is not seen should be forgotten (and its incident ended)."""
        if obj.present:
            return False
        if obj.empty_s >= self.end_grace_s:
            return True
        return obj.absent_s >= max(self.end_grace_s, self._memory_for(obj))

    def _memory_for(self, obj: RestingObject) -> float:
        return self.occlusion_memory_s if obj.held_s >= MIN_REST_FOR_MEMORY_S else 0.0

    def step(
        self,
        tracks: Detections,
        dt: float,
        *,
        occluders: Detections | None = None,
        scene: SceneView | None = None,
        ages: np.ndarray | None = None,
        departed: frozenset[int] = frozenset(),
    ) -> None:
        """Advance every clock by ``dt`` media seconds and match this frame's tracks.

        ``occluders`` are every track of the frame (any class): they can hide a remembered place.
        ``scene`` lets the memory look at the pixels (see the class docstring). ``ages`` (one per
        track) backdate a new object's clock: seconds it had already been there when first
        reported (the static-object path reports a region only after it has settled).
        ``departed`` are ids of tracks seen outside the zone: an unseen object whose own track is
        among them drove off, whatever its old place still shows while it pulls away.
        """
        self._now += dt
        for obj in self.objects:
            obj.dwell_s += dt
            obj.undetected_s += dt
            obj.present = False
        n = len(tracks)
        assert tracks.track_id is not None
        boxes = tracks.xyxy.astype(np.float64)
        matched_tracks: set[int] = set()
        replaced: set[int] = set()
        if n and self.objects:
            refs = np.stack([o.ref for o in self.objects])
            iou = box_iou(boxes, refs)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            ref_centres = (refs[:, :2] + refs[:, 2:]) / 2
            ref_diag = np.maximum(np.hypot(refs[:, 2] - refs[:, 0], refs[:, 3] - refs[:, 1]), 1e-6)
            shift = np.hypot(*(centres[:, None, :] - ref_centres[None, :, :]).transpose(2, 0, 1))
            valid = (iou >= self.match_iou) & (shift <= self.stationary_tolerance * ref_diag[None, :])
            if scene is not None:
                valid = self._refuse_strangers(valid, boxes, scene, replaced)
            ref_tids = np.array([o.track_id for o in self.objects])
            same_id = (tracks.track_id[:, None] == ref_tids[None, :]) & (tracks.track_id[:, None] >= 0)
            for ti, oi in greedy_match(iou + same_id, valid):
                self.objects[oi].observe(
                    boxes[ti],
                    int(tracks.track_id[ti]),
                    int(tracks.class_id[ti]),
                    float(tracks.confidence[ti]),
                )
                matched_tracks.add(ti)
        absent = [o for o in self.objects if not o.present]
        if absent:
            self._classify_absent(absent, dt, occluders, scene, replaced | self._departed(absent, departed))
        for ti in range(n):
            if ti not in matched_tracks:
                obj = RestingObject(
                    key=self._next_key,
                    ref=boxes[ti].copy(),
                    box=boxes[ti].copy(),
                    track_id=int(tracks.track_id[ti]),
                    confidence=float(tracks.confidence[ti]),
                )
                if ages is not None:
                    obj.dwell_s = max(0.0, float(ages[ti]))
                obj.observe(boxes[ti], obj.track_id, int(tracks.class_id[ti]), obj.confidence)
                self._next_key += 1
                self.objects.append(obj)
        if scene is not None:
            for obj in self.objects:
                if obj.present and obj.wants_signature(self._now):
                    obj.learn_signature(scene.signature(obj.box), self._now)

    def _refuse_strangers(
        self, valid: np.ndarray, boxes: np.ndarray, scene: SceneView, replaced: set[int]
    ) -> np.ndarray:
        """Refuse position matches of objects seen again after an absence that look different now.

        Only on reappearance: while an object stays in view its look drifts with the light and is
        followed by :meth:`RestingObject.learn_signature`.
        """
        for oi, obj in enumerate(self.objects):
            if obj.undetected_s < _REAPPEAR_CHECK_S or obj.signature is None:
                continue
            for ti in np.nonzero(valid[:, oi])[0].tolist():
                if (
                    signature_distance(obj.signature, scene.signature(boxes[ti]))
                    > self.max_signature_distance
                ):
                    valid[ti, oi] = False
                    replaced.add(obj.key)
        return valid

    def _classify_absent(
        self,
        absent: list[RestingObject],
        dt: float,
        occluders: Detections | None,
        scene: SceneView | None,
        replaced: set[int],
    ) -> None:
        for obj in absent:
            obj.absent_s += dt
            if obj.key in replaced:
                obj.hidden = False  # a different object stands at its place, or it drove off
            elif self._memory_for(obj) <= 0.0:
                obj.hidden = False
            elif _covered_by_others(obj, occluders) >= HIDDEN_COVERAGE:
                obj.hidden = True
            elif scene is not None:
                obj.hidden = scene.foreground_fraction(obj.ref) > _EMPTY_FOREGROUND_MAX
                if obj.hidden and self._looks_like(obj, scene):
                    obj.seen_in_place()  # missed by the detector (dusk), yet plainly still there
                    continue
            else:
                obj.hidden = False
            if not obj.hidden:
                obj.empty_s += dt

    @staticmethod
    def _departed(absent: list[RestingObject], departed: frozenset[int]) -> set[int]:
        return {o.key for o in absent if o.track_id >= 0 and o.track_id in departed}

    def _looks_like(self, obj: RestingObject, scene: SceneView) -> bool:
        """Whether the pixels at the object's place show the object itself (its signature, well
        within the distance that tells a different object apart)."""
        if obj.signature is None:
            return False
        distance = signature_distance(obj.signature, scene.signature(obj.ref))
        return distance <= _SAME_LOOK_FRACTION * self.max_signature_distance

    def forget(self, predicate: Callable[[RestingObject], bool]) -> None:
        self.objects = [o for o in self.objects if not predicate(o)]


def _covered_by_others(obj: RestingObject, occluders: Detections | None) -> float:
    """Largest share of the object's place covered by one other track (its own id excluded: a
    car driving off still overlaps the place it leaves, but does not hide it)."""
    if occluders is None or len(occluders) == 0:
        return 0.0
    assert occluders.track_id is not None
    others = occluders.xyxy[(occluders.track_id != obj.track_id) | (occluders.track_id < 0)].astype(
        np.float64
    )
    if len(others) == 0:
        return 0.0
    r = obj.ref
    iw = np.clip(np.minimum(others[:, 2], r[2]) - np.maximum(others[:, 0], r[0]), 0, None)
    ih = np.clip(np.minimum(others[:, 3], r[3]) - np.maximum(others[:, 1], r[1]), 0, None)
    area = max(float((r[2] - r[0]) * (r[3] - r[1])), 1e-6)
    return float((iw * ih).max()) / area


class DwellRule:
    """Shared configuration, filtering and timing for the dwell rules.

    Subclasses implement :meth:`update` and :meth:`timers`, and set ``rule_type``.
    """

    rule_type: str = ""

    def __init__(
        self,
        *,
        zone: Zone,
        camera_id: str,
        class_ids: set[int] | None,
        dwell_s: float,
        stationary_tolerance: float = defaults.STATIONARY_TOLERANCE,
        min_size: float = 0.0,
        schedule: Schedule | None = None,
        cooldown_s: float = 0.0,
        end_grace_s: float = defaults.END_GRACE_S,
        update_interval_s: float = defaults.UPDATE_INTERVAL_S,
        match_iou: float = 0.5,
        occlusion_memory_s: float = DEFAULT_OCCLUSION_MEMORY_S,
    ) -> None:
        name = f"{type(self).__name__} for zone {zone.zone_id!r}"
        if dwell_s < 0:
            raise ValueError(f"{name}: dwell_s must be >= 0, got {dwell_s}")
        if stationary_tolerance <= 0:
            raise ValueError(f"{name}: stationary_tolerance must be > 0, got {stationary_tolerance}")
        if not 0.0 <= min_size < 1.0:
            raise ValueError(f"{name}: min_size is a fraction of the frame height in [0, 1), got {min_size}")
        if cooldown_s < 0 or end_grace_s < 0 or occlusion_memory_s < 0:
            raise ValueError(f"{name}: cooldown_s, end_grace_s and occlusion_memory_s must be >= 0")
        if update_interval_s <= 0:
            raise ValueError(f"{name}: update_interval_s must be > 0, got {update_interval_s}")
        if not 0.0 < match_iou <= 1.0:
            raise ValueError(f"{name}: match_iou must be in (0, 1], got {match_iou}")
        self.zone = zone
        self.camera_id = camera_id
        self.class_ids = frozenset(class_ids) if class_ids is not None else None
        # A lookup table (one bool per class id) beats np.isin several times over on a few rows.
        self._class_table: np.ndarray | None = None
        if class_ids is not None:
            if any(c < 0 for c in class_ids):
                raise ValueError(f"{name}: class ids must be >= 0, got {sorted(class_ids)}")
            self._class_table = np.zeros(max(class_ids, default=-1) + 2, dtype=bool)  # last: "other"
            self._class_table[list(class_ids)] = True
        self.dwell_s = dwell_s
        self.stationary_tolerance = stationary_tolerance
        self.min_size = min_size
        self.schedule = schedule
        self.cooldown_s = cooldown_s
        self.end_grace_s = end_grace_s
        self.update_interval_s = update_interval_s
        self.occlusion_memory_s = occlusion_memory_s
        self.places = PlaceMemory(
            match_iou=match_iou,
            stationary_tolerance=stationary_tolerance,
            end_grace_s=end_grace_s,
            occlusion_memory_s=occlusion_memory_s,
        )
        self._last_media_time: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(camera={self.camera_id!r}, zone={self.zone.zone_id!r})"

    def _clock(self, ctx: RuleContext) -> float:
        """Media seconds since the previous call (0 on the first call or if time went back)."""
        if ctx.camera_id != self.camera_id:
            raise ValueError(f"{self!r} got a frame from camera {ctx.camera_id!r}")
        last, self._last_media_time = self._last_media_time, ctx.media_time
        if last is None:
            return 0.0
        if ctx.media_time < last:
            log.warning("%r: media time went back from %.3f to %.3f", self, last, ctx.media_time)
            return 0.0
        return ctx.media_time - last

    def _schedule_active(self, ctx: RuleContext) -> bool:
        return self.schedule is None or self.schedule.is_active(ctx.wall_time)

    def _class_and_size(self, tracks: Detections, ctx: RuleContext) -> np.ndarray:
        keep = np.ones(len(tracks), dtype=bool)
        if self._class_table is not None:
            other = len(self._class_table) - 1
            ids = tracks.class_id
            keep &= self._class_table[np.where((ids >= 0) & (ids < other), ids, other)]
        if self.min_size > 0:
            keep &= tracks.heights >= self.min_size * ctx.frame_size[1]
        return keep

    def _object(self, obj: RestingObject, ctx: RuleContext) -> TrackedObject:
        w, h = ctx.frame_size
        box = np.clip(obj.box / np.array([w, h, w, h], dtype=np.float64), 0.0, 1.0)
        return TrackedObject(
            track_id=obj.track_id,
            class_name=class_name(ctx.class_names, obj.class_id),
            confidence=float(obj.confidence),
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )

    def _event(
        self,
        kind: EventKind,
        incident: OpenIncident,
        objects: list[RestingObject],
        ctx: RuleContext,
        *,
        dwell_s: float,
        coverage: float | None = None,
    ) -> IncidentUpdate:
        tracked = [self._object(o, ctx) for o in objects]
        classes = sorted({o.class_name for o in tracked})
        if kind == "ended" and not classes:
            # An incident that ends because its objects left still says what it was about.
            classes = list(incident.last_classes)
        confidence = float(np.mean([o.mean_confidence for o in objects])) if objects else 0.0
        incident.last_report_time = ctx.media_time
        incident.last_classes = classes
        incident.last_coverage = coverage
        incident.last_object_keys = frozenset(o.key for o in objects)
        return IncidentUpdate(
            event=kind,
            incident_id=incident.incident_id,
            camera=self.camera_id,
            zone=self.zone.zone_id,
            rule=self.rule_type,
            classes=classes,
            objects=tracked,
            confidence=confidence,
            media_time=ctx.media_time,
            started_media_time=incident.started_media_time,
            dwell_s=float(dwell_s),
            coverage=coverage,
        )

    def _open(self, ctx: RuleContext) -> OpenIncident:
        return OpenIncident(
            incident_id=new_incident_id(),
            started_media_time=ctx.media_time,
            last_report_time=ctx.media_time,
            last_classes=[],
        )

    def _report_due(self, incident: OpenIncident, ctx: RuleContext) -> bool:
        return ctx.media_time - incident.last_report_time >= self.update_interval_s

    def update(self, tracks: Detections, ctx: RuleContext) -> list[IncidentUpdate]:  # pragma: no cover
        raise NotImplementedError

    def timers(self) -> list[tuple[tuple[float, float, float, float], float, bool]]:  # pragma: no cover
        raise NotImplementedError
