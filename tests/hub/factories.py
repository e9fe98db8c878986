"""Builders of wire messages for hub tests, valid against the real contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridwarden.contract import CameraStatus, EdgeStatus, IncidentEvent, IncidentObject, NormalisedBox, Topics

T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
SITE = "north"
EDGE = "edge-01"


def incident_event(
    *,
    seq: int,
    incident_id: str = "inc-1",
    event: str = "started",
    edge_id: str = EDGE,
    site: str = SITE,
    camera: str = "cam-1",
    zone: str = "kerb-a",
    rule: str = "illegal_parking",
    box: tuple[float, float, float, float] = (0.1, 0.1, 0.3, 0.3),
    track_id: int = 7,
    started: datetime = T0,
    at_s: float = 0.0,
    classes: tuple[str, ...] = ("car",),
) -> IncidentEvent:
    """An incident event ``at_s`` seconds after the incident ``started`` (edge wall clock)."""
    x1, y1, x2, y2 = box
    return IncidentEvent(
        event=event,  # type: ignore[arg-type]
        incident_id=incident_id,
        seq=seq,
        site=site,
        edge_id=edge_id,
        camera=camera,
        zone=zone,
        rule=rule,  # type: ignore[arg-type]
        classes=list(classes),
        objects=[
            IncidentObject(
                track_id=track_id,
                class_name=classes[0],
                confidence=0.8,
                box=NormalisedBox(x1=x1, y1=y1, x2=x2, y2=y2),
            )
        ],
        confidence=0.8,
        media_time=100.0 + at_s,
        started_media_time=100.0,
        dwell_s=60.0 + at_s,
        wall_time=started + timedelta(seconds=at_s),
    )


def topic_of(event: IncidentEvent) -> str:
    return Topics(event.site, event.edge_id).incidents


def wire(event: IncidentEvent | EdgeStatus | CameraStatus) -> bytes:
    return event.model_dump_json().encode()


def edge_status(
    *, online: bool = True, wall_time: datetime = T0, edge_id: str = EDGE, version: str = "1.0"
) -> EdgeStatus:
    return EdgeStatus(
        edge_id=edge_id, site=SITE, online=online, version=version, outbox_depth=3, wall_time=wall_time
    )


def camera_status(*, camera: str = "cam-1", state: str = "online", wall_time: datetime = T0) -> CameraStatus:
    return CameraStatus(
        edge_id=EDGE, camera=camera, state=state, input_fps=12.5, analysed_fps=5.0, wall_time=wall_time
    )  # type: ignore[arg-type]


def incident_stream(
    n_events: int, *, edge_id: str = EDGE, cameras: int = 3, first_seq: int = 1
) -> list[IncidentEvent]:
    """``n_events`` events (started, updated, ended per incident) with consecutive seqs."""
    events: list[IncidentEvent] = []
    seq = first_seq
    i = 0
    while len(events) < n_events:
        camera = f"cam-{i % cameras}"
        box = (0.05 * (i % 10), 0.5, 0.05 * (i % 10) + 0.04, 0.6)
        started = T0 + timedelta(seconds=30 * i)
        for step, kind in enumerate(("started", "updated", "ended")):
            if len(events) == n_events:
                break
            events.append(
                incident_event(
                    seq=seq,
                    incident_id=f"{edge_id}-inc-{i}",
                    event=kind,
                    edge_id=edge_id,
                    camera=camera,
                    box=box,
                    track_id=i,
                    started=started,
                    at_s=10.0 * step,
                )  # fmt: skip
            )
            seq += 1
        i += 1
    return events
