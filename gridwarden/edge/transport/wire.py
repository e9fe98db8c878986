"""Turn a rule's :class:`IncidentUpdate` into the wire's :class:`IncidentEvent`.

Rules know nothing about sites, edges or sequence numbers; this is the one place where an
update gains them. ``seq`` is a placeholder (0) here: the durable outbox assigns the real one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gridwarden.contract import MAX_OBJECTS_PER_EVENT, IncidentEvent, IncidentObject, NormalisedBox
from gridwarden.edge.analytics.rules.base import IncidentUpdate


def _clip01(v: float) -> float:
    return min(1.0, max(0.0, float(v)))


def to_wire(
    update: IncidentUpdate,
    *,
    site: str,
    edge_id: str,
    wall_time: float,
    seq: int = 0,
    config_version: str | None = None,
) -> IncidentEvent:
    """Build the wire message for one incident update (at most ``MAX_OBJECTS_PER_EVENT`` objects,
    the most confident, so a crowded zone never produces an event the hub must refuse)."""
    kept = sorted(update.objects, key=lambda o: -float(o.confidence))[:MAX_OBJECTS_PER_EVENT]
    objects = [
        IncidentObject(
            track_id=int(o.track_id),
            class_name=o.class_name,
            confidence=_clip01(o.confidence),
            box=NormalisedBox(
                x1=_clip01(o.box[0]), y1=_clip01(o.box[1]), x2=_clip01(o.box[2]), y2=_clip01(o.box[3])
            ),
        )
        for o in kept
    ]
    return IncidentEvent(
        event=update.event,
        incident_id=update.incident_id,
        seq=seq,
        site=site,
        edge_id=edge_id,
        camera=update.camera,
        zone=update.zone,
        rule=update.rule,  # type: ignore[arg-type]
        classes=list(update.classes),
        objects=objects,
        confidence=_clip01(update.confidence),
        media_time=round(max(0.0, float(update.media_time)), 3),
        started_media_time=round(max(0.0, float(update.started_media_time)), 3),
        dwell_s=round(max(0.0, float(update.dwell_s)), 3),
        coverage=None if update.coverage is None else _clip01(update.coverage),
        wall_time=datetime.fromtimestamp(wall_time, UTC),
        config_version=config_version,
    )
