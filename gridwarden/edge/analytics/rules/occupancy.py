"""Occupied public space: stationary objects cover at least ``coverage`` of a zone for ``dwell_s``.

The incident belongs to the zone, not to an object: a pavement blocked by a market stall, bins
and a van is one incident whose object list changes. The lifecycle:

* **started** when the covered fraction of the zone (area minus masks, union of boxes) has been
  at or above ``coverage`` for ``dwell_s`` media seconds;
* **updated** when the set of objects changes, the coverage moves by ``coverage_step`` or more
  since the last report, or every ``update_interval_s``;
* **ended** when the coverage falls below ``coverage x release_ratio`` (hysteresis in value), or
  at once when the schedule window closes.

Hysteresis in time comes from the object memory: an object that is no longer detected keeps
covering its place for ``end_grace_s`` (see :mod:`.base`), so a missed detection neither drops
the coverage nor ends the incident, and the end comes ``end_grace_s`` after the zone clears.

An object counts as stationary once it has held its place (within ``stationary_tolerance`` of its
size) for ``stationary_s``; people walking through never do. Objects count by the area of the
zone they cover, whatever their anchor point; the coverage uses each object's resting box.

Example::

    >>> from gridwarden.edge.types import Detections
    >>> from gridwarden.edge.analytics.zones import Zone
    >>> zone = Zone("pavement", [(0, 0), (1, 0), (1, 1), (0, 1)])
    >>> rule = OccupiedSpaceRule(zone=zone, camera_id="cam1", class_ids=None, coverage=0.4,
    ...                          dwell_s=1.0, stationary_s=0.5)
    >>> stall = Detections(xyxy=[[0, 0, 50, 100]], confidence=[0.7], class_id=[0], track_id=[3])
    >>> events = []
    >>> for i in range(20):
    ...     ctx = RuleContext("cam1", media_time=i / 10, wall_time=0.0, frame_size=(100, 100),
    ...                       class_names=["stall"])
    ...     events += rule.update(stall, ctx)
    >>> [(e.event, e.media_time, e.coverage) for e in events]
    [('started', 1.5, 0.5)]
"""

from __future__ import annotations

import numpy as np

from gridwarden.edge.analytics.rules import defaults
from gridwarden.edge.analytics.rules.base import (
    DEFAULT_OCCLUSION_MEMORY_S,
    DwellRule,
    IncidentUpdate,
    OpenIncident,
    RestingObject,
    RuleContext,
)
from gridwarden.edge.analytics.rules.schedule import Schedule
from gridwarden.edge.analytics.zones import Zone
from gridwarden.edge.types import Detections


class OccupiedSpaceRule(DwellRule):
    """Zone-level coverage dwell; see the module docstring. Extra parameters beyond
    :class:`~gridwarden.edge.analytics.rules.parking.IllegalParkingRule`'s:

    * ``coverage``: fraction of the zone (0..1] that must be covered to start.
    * ``release_ratio``: the incident ends below ``coverage * release_ratio``.
    * ``stationary_s``: how long an object must hold its place before it counts.
    * ``coverage_step``: a coverage change this large (absolute) since the last report is material.
    * ``occlusion_memory_s``: how long a covering object that is hidden keeps counting.
    * ``backdate``: the zone's clock starts at the objects' arrival (``ages`` in :meth:`update`).
    """

    rule_type = "occupied_space"

    def __init__(
        self,
        *,
        zone: Zone,
        camera_id: str,
        class_ids: set[int] | None,
        coverage: float,
        dwell_s: float,
        stationary_tolerance: float = defaults.STATIONARY_TOLERANCE,
        end_grace_s: float = defaults.END_GRACE_S,
        update_interval_s: float = defaults.UPDATE_INTERVAL_S,
        min_size: float = 0.0,
        schedule: Schedule | None = None,
        cooldown_s: float = 0.0,
        release_ratio: float = 0.8,
        stationary_s: float = 2.0,
        coverage_step: float = 0.1,
        match_iou: float = 0.5,
        occlusion_memory_s: float = DEFAULT_OCCLUSION_MEMORY_S,
        backdate: bool = False,
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
        name = f"OccupiedSpaceRule for zone {zone.zone_id!r}"
        if not 0.0 < coverage <= 1.0:
            raise ValueError(f"{name}: coverage must be in (0, 1], got {coverage}")
        if not 0.0 < release_ratio <= 1.0:
            raise ValueError(f"{name}: release_ratio must be in (0, 1], got {release_ratio}")
        if stationary_s < 0 or coverage_step <= 0:
            raise ValueError(f"{name}: stationary_s must be >= 0 and coverage_step > 0")
        self.coverage_threshold = coverage
        self.release_ratio = release_ratio
        self.stationary_s = stationary_s
        self.coverage_step = coverage_step
        self.backdate = backdate
        self.incident: OpenIncident | None = None
        self.zone_dwell_s = 0.0  # how long the zone has been covered enough, media seconds
        self.current_coverage = 0.0
        self._was_covered = False
        self._cool_until = -np.inf
        self._counted: list[RestingObject] = []
        self._coverage_key: tuple[frozenset[int], tuple[int, ...]] | None = None
        self._coverage_value = 0.0

    def update(
        self, tracks: Detections, ctx: RuleContext, ages: np.ndarray | None = None
    ) -> list[IncidentUpdate]:
        """Feed one frame's tracks; return lifecycle events (at most one).

        ``ages`` (one per track) says how long each object had already been there when first
        reported; with ``backdate`` the zone's clock then starts from the arrival of the object
        that completed the coverage rather than from the frame the coverage was first reached.
        """
        dt = self._clock(ctx)
        self.places.rescale(ctx.frame_size)
        if ctx.camera_moving:
            if self.incident is None:  # positions are void; an open incident is frozen as is
                self.places.forget(lambda o: True)
                self._counted = []
                self.zone_dwell_s = 0.0
                self._was_covered = False
            return []

        keep = self._class_and_size(tracks, ctx) & self._overlaps_zone(tracks, ctx)
        self.places.step(
            tracks[keep],
            dt,
            occluders=tracks,
            scene=ctx.scene,
            ages=None if ages is None else np.asarray(ages, dtype=np.float64)[keep],
        )
        self.places.forget(self.places.gone)
        self._counted = [o for o in self.places.objects if o.held_s >= self.stationary_s]
        cov = self._coverage(ctx.frame_size)
        self.current_coverage = cov
        active = self._schedule_active(ctx)

        if self.incident is None:
            covered = cov >= self.coverage_threshold
            if covered and self._was_covered:
                self.zone_dwell_s += dt
            elif covered and self.backdate:
                self.zone_dwell_s = min(o.dwell_s for o in self._counted)
            else:
                self.zone_dwell_s = 0.0
            self._was_covered = covered
            if (
                covered
                and active
                and self.zone_dwell_s >= self.dwell_s
                and ctx.media_time >= self._cool_until
            ):
                self.incident = self._open(ctx)
                return [self._zone_event("started", ctx, cov)]
            return []

        self.zone_dwell_s += dt
        if not active or cov < self.coverage_threshold * self.release_ratio:
            event = self._zone_event("ended", ctx, cov)
            self.incident = None
            self.zone_dwell_s = 0.0
            self._was_covered = False
            self._cool_until = ctx.media_time + self.cooldown_s
            return [event]
        keys = frozenset(o.key for o in self._counted)
        last_cov = self.incident.last_coverage or 0.0
        if (
            keys != self.incident.last_object_keys
            or abs(cov - last_cov) >= self.coverage_step
            or self._report_due(self.incident, ctx)
        ):
            return [self._zone_event("updated", ctx, cov)]
        return []

    def _coverage(self, frame_size: tuple[int, int]) -> float:
        """Coverage of the counted objects' resting boxes. Resting boxes never move, so the value
        only changes when the set of counted objects does: cache it on that set."""
        key = (frozenset(o.key for o in self._counted), tuple(frame_size))
        if key != self._coverage_key:
            refs = np.stack([o.ref for o in self._counted]) if self._counted else np.zeros((0, 4))
            self._coverage_value = self.zone.coverage(refs, frame_size)
            self._coverage_key = key
        return self._coverage_value

    def _overlaps_zone(self, tracks: Detections, ctx: RuleContext) -> np.ndarray:
        """Cheap pre-filter: boxes that touch the zone's bounding rectangle."""
        w, h = ctx.frame_size
        x0, y0 = self.zone.polygon.min(axis=0) * (w, h)
        x1, y1 = self.zone.polygon.max(axis=0) * (w, h)
        b = tracks.xyxy
        return (b[:, 2] > x0) & (b[:, 0] < x1) & (b[:, 3] > y0) & (b[:, 1] < y1)

    def _zone_event(self, kind: str, ctx: RuleContext, cov: float) -> IncidentUpdate:
        assert self.incident is not None
        return self._event(
            kind,  # type: ignore[arg-type]
            self.incident,
            self._counted,
            ctx,
            dwell_s=self.zone_dwell_s,
            coverage=float(min(max(cov, 0.0), 1.0)),
        )

    def timers(self) -> list[tuple[tuple[float, float, float, float], float, bool]]:
        """(resting box in px, the zone's covered time in s, incident open?) per counted object."""
        return [
            (tuple(float(v) for v in o.ref), float(self.zone_dwell_s), self.incident is not None)  # type: ignore[misc]
            for o in self._counted
        ]
