"""Illegal parking: an object of the rule's classes rests in the zone for at least ``dwell_s``.

One parked car is one incident: ``started`` when its dwell reaches ``dwell_s``, ``updated`` when
its class changes or every ``update_interval_s``, ``ended`` after its place has been seen empty
(it drove off, or a different car stands there) for ``end_grace_s``, or it has been hidden for
longer than ``occlusion_memory_s``, or at once when the schedule window closes. The lifecycle and the
position-based memory that survives tracker id switches are described in :mod:`.base`.

Dwell keeps counting outside the schedule; only *starting* is gated by it. A car parked at 06:50
in a 07:00-20:00 zone is reported at 07:00 (if it has rested ``dwell_s`` by then): it is not a
short stop, and from 07:00 it is illegally parked.

Membership is by the zone's anchor point (bottom centre by default): a car whose wheels are in
the no-parking stretch counts, one in the next lane whose roof overlaps it does not.

Example::

    >>> from gridwarden.edge.types import Detections
    >>> from gridwarden.edge.analytics.zones import Zone
    >>> zone = Zone("kerb", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)])
    >>> rule = IllegalParkingRule(zone=zone, camera_id="cam1", class_ids={2}, dwell_s=1.0)
    >>> car = Detections(xyxy=[[10, 60, 30, 80]], confidence=[0.8], class_id=[2], track_id=[7])
    >>> events = []
    >>> for i in range(15):  # 1.4 s at 10 fps
    ...     ctx = RuleContext("cam1", media_time=i / 10, wall_time=0.0, frame_size=(100, 100),
    ...                       class_names=["person", "bicycle", "car"])
    ...     events += rule.update(car, ctx)
    >>> [(e.event, e.media_time, e.classes) for e in events]
    [('started', 1.0, ['car'])]
"""

from __future__ import annotations

import numpy as np

from gridwarden.edge.analytics.rules import defaults
from gridwarden.edge.analytics.rules.base import (
    DEFAULT_OCCLUSION_MEMORY_S,
    DwellRule,
    IncidentUpdate,
    RestingObject,
    RuleContext,
    class_name,
)
from gridwarden.edge.analytics.rules.schedule import Schedule
from gridwarden.edge.analytics.tracking import box_iou
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.types import Detections


class IllegalParkingRule(DwellRule):
    """Per-object dwell in a zone. See the module docstring; parameters:

    * ``class_ids``: ids of the class group that counts (None: any class). Resolve names such as
      ``vehicle = car, bus, truck, cell_phone`` to ids in the caller: a COCO model sees a car from
      above as a bus or a phone.
    * ``stationary_tolerance``: how far (fraction of its box diagonal) an object may shift and
      still be "the same object at the same place".
    * ``min_size``: minimum box height as a fraction of the frame height (ignore far-off specks).
    * ``cooldown_s``: after an incident ends, the same place cannot fire again for this long.
    * ``end_grace_s``: its place must be seen empty this long before ``ended`` (hysteresis).
    * ``occlusion_memory_s``: how long a resting object whose place is covered (hidden) keeps its
      clock and incident without being seen.
    * ``match_iou``: overlap needed to recognise an object at its resting place.
    """

    rule_type = "illegal_parking"

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
        super().__init__(
            zone=zone,
            camera_id=camera_id,
            class_ids=class_ids,
            dwell_s=dwell_s,
            stationary_tolerance=stationary_tolerance,
            min_size=min_size,
            schedule=schedule,
            cooldown_s=cooldown_s,
            end_grace_s=end_grace_s,
            update_interval_s=update_interval_s,
            match_iou=match_iou,
            occlusion_memory_s=occlusion_memory_s,
        )
        # Places that recently had an incident: (resting box in px, cooling until media time).
        self._cooldowns: list[tuple[np.ndarray, float]] = []

    def update(self, tracks: Detections, ctx: RuleContext) -> list[IncidentUpdate]:
        """Feed one frame's tracks (usually ``Tracker.update``'s output); return lifecycle events."""
        dt = self._clock(ctx)
        self.places.rescale(ctx.frame_size)
        if ctx.camera_moving:
            self.places.forget(lambda o: o.incident is None)
            return []
        inside = self.zone.contains(tracks, ctx.frame_size)
        eligible = tracks[self._class_and_size(tracks, ctx) & inside]
        assert tracks.track_id is not None
        departed = frozenset(tracks.track_id[~inside].tolist())
        self.places.step(eligible, dt, occluders=tracks, scene=ctx.scene, departed=departed)
        now = ctx.media_time
        self._cooldowns = [(box, until) for box, until in self._cooldowns if until > now]
        active = self._schedule_active(ctx)

        events: list[IncidentUpdate] = []
        gone: set[int] = set()
        for obj in self.places.objects:
            if obj.incident is not None:
                event = self._follow(obj, ctx, active)
                if event is not None:
                    events.append(event)
                    if event.event == "ended" and not obj.present:
                        gone.add(obj.key)
            elif not obj.present:
                if self.places.gone(obj):
                    gone.add(obj.key)
            elif active and obj.dwell_s >= self.dwell_s and not self._cooling(obj):
                obj.incident = self._open(ctx)
                events.append(self._event("started", obj.incident, [obj], ctx, dwell_s=obj.dwell_s))
        if gone:
            self.places.forget(lambda o: o.key in gone)
        return events

    def _follow(self, obj: RestingObject, ctx: RuleContext, active: bool) -> IncidentUpdate | None:
        """Next step for an object with an open incident, or None when nothing material changed."""
        incident = obj.incident
        assert incident is not None
        if not active or self.places.gone(obj):
            obj.incident = None
            if self.cooldown_s > 0:
                self._cooldowns.append((obj.ref.copy(), ctx.media_time + self.cooldown_s))
            return self._event("ended", incident, [obj], ctx, dwell_s=obj.held_s)
        if not obj.present:
            return None
        if [class_name(ctx.class_names, obj.class_id)] != incident.last_classes or self._report_due(
            incident, ctx
        ):
            return self._event("updated", incident, [obj], ctx, dwell_s=obj.dwell_s)
        return None

    def _cooling(self, obj: RestingObject) -> bool:
        if not self._cooldowns:
            return False
        boxes = np.stack([box for box, _ in self._cooldowns])
        return bool(np.any(box_iou(obj.ref[None, :], boxes) >= self.places.match_iou))

    def timers(self) -> list[tuple[tuple[float, float, float, float], float, bool]]:
        """(latest box in px, dwell so far in s, incident open?) for each object seen this frame
        or holding an open incident: for drawing countdowns on the live view."""
        return [
            (tuple(float(v) for v in o.box), float(o.dwell_s), o.incident is not None)  # type: ignore[misc]
            for o in self.places.objects
            if o.present or o.incident is not None
        ]
