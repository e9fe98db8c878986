"""Pydantic views of hub data, returned by the service layer and served as-is by the REST API.

They are read models: built from ORM rows with ``model_validate(row)`` (``from_attributes``), never
written back. Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from gridwarden.contract import CameraLocation, EvidenceRef, IncidentObject
from gridwarden.hub.sla import SlaReport


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class IncidentView(_View):
    incident_id: str
    state: str  # open | ended
    site: str
    edge_id: str
    camera: str
    zone: str
    rule: str
    classes: list[str]
    objects: list[IncidentObject]
    evidence: list[EvidenceRef]
    confidence: float
    dwell_s: float
    coverage: float | None
    started_at: datetime
    ended_at: datetime | None
    first_event_at: datetime
    last_event_at: datetime
    last_seq: int
    event_count: int


class CaseHistoryEntry(_View):
    at: datetime
    actor: str
    from_state: str | None
    to_state: str
    reason: str | None
    # Dispatch steps that leave the state as it is (offered, accepted, declined, ...); None otherwise.
    event: str | None = None


class CaseView(_View):
    id: int
    state: str
    site: str
    edge_id: str
    camera: str
    zone: str
    rule: str
    classes: list[str]
    incident_count: int
    detected_at: datetime
    last_activity_at: datetime
    created_at: datetime
    updated_at: datetime
    sla: SlaReport
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    # Where: WGS-84 (the camera's location, or a report's point) and the area holding it.
    lat: float | None = None
    lon: float | None = None
    area_id: str | None = None
    source: str = "camera"
    category: str = "other"
    report_point_id: str | None = None


class CaseDetail(CaseView):
    incidents: list[IncidentView]
    history: list[CaseHistoryEntry]
    allowed_transitions: list[str]


class EdgeView(_View):
    edge_id: str
    site: str
    online: bool
    version: str | None = None
    model: str | None = None
    config_version: str | None = None
    outbox_depth: int | None = None
    status_wall_time: datetime
    updated_at: datetime
    # From the hub's sequence bookkeeping; None until an incident from the edge arrived.
    highest_seen_seq: int | None = None
    highest_contiguous_seq: int | None = None
    missing_seqs: list[int] = []
    gaps_seen: int = 0


class CameraView(_View):
    edge_id: str
    camera_id: str
    state: str
    kind: str | None = None
    input_fps: float = 0.0
    analysed_fps: float = 0.0
    lag_s: float | None = None
    reconnects: int = 0
    last_error: str | None = None
    last_frame_wall_time: datetime | None = None
    location: CameraLocation | None = None
    status_wall_time: datetime
    updated_at: datetime


class RejectedCount(_View):
    reason: str
    count: int
    last_at: datetime
    last_topic: str
    last_detail: str


def status_fields(status: dict[str, Any], *names: str) -> dict[str, Any]:
    """Pick the named fields of a stored status payload (missing ones are left to defaults)."""
    return {n: status[n] for n in names if n in status}
