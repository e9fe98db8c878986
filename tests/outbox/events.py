"""Deterministic incident events for the outbox/publisher tests and their child processes.

Event ``i`` (0-based) belongs to incident ``i // EVENTS_PER_INCIDENT``; each incident is one
``started``, some ``updated`` and one ``ended``, so per-incident order is checkable at the hub end.
"""

from __future__ import annotations

from gridwarden.contract import IncidentEvent, IncidentObject, NormalisedBox, utcnow

SITE = "north"
EDGE_ID = "edge-01"
EVENTS_PER_INCIDENT = 10


def kind_of(index: int) -> str:
    position = index % EVENTS_PER_INCIDENT
    if position == 0:
        return "started"
    if position == EVENTS_PER_INCIDENT - 1:
        return "ended"
    return "updated"


def make_event(
    index: int, *, kind: str | None = None, site: str = SITE, edge_id: str = EDGE_ID
) -> IncidentEvent:
    """The ``index``-th event of the scripted stream (``seq`` is left for the outbox)."""
    incident = index // EVENTS_PER_INCIDENT
    position = index % EVENTS_PER_INCIDENT
    return IncidentEvent(
        event=kind or kind_of(index),  # type: ignore[arg-type]
        incident_id=f"inc-{incident:05d}",
        seq=0,
        site=site,
        edge_id=edge_id,
        camera="cam-1",
        zone="no-parking-1",
        rule="illegal_parking",
        classes=["car"],
        objects=[
            IncidentObject(
                track_id=incident,
                class_name="car",
                confidence=0.8,
                box=NormalisedBox(x1=0.1, y1=0.2, x2=0.3, y2=0.4),
            )
        ],
        confidence=0.8,
        media_time=60.0 + position,
        started_media_time=60.0,
        dwell_s=float(position),
        wall_time=utcnow(),
    )
