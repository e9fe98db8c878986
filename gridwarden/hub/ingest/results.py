"""What ingesting one message came to: stored, duplicate, rejected (and why), status, ignored."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectReason(StrEnum):
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    SCHEMA = "schema"
    WRONG_TOPIC = "wrong_topic"
    EDGE_MISMATCH = "edge_mismatch"  # edge_id or site in the payload differs from the topic
    CAMERA_MISMATCH = "camera_mismatch"
    INCIDENT_CONFLICT = "incident_conflict"  # an incident id already used by another camera or edge
    STORAGE_ERROR = "storage_error"  # valid on the wire, but the database kept refusing it


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    STATUS = "status"  # an edge or camera status applied (or older than the stored one)
    IGNORED = "ignored"  # an empty retained message (a cleared topic)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    topic: str
    reason: RejectReason | None = None
    detail: str | None = None
    edge_id: str | None = None
    seq: int | None = None
    incident_id: str | None = None
    case_id: int | None = None
    case_how: str | None = None  # opened | merged, when this message brought a new incident
    gap: tuple[tuple[int, int], ...] = ()  # spans [first, last] this message revealed as missing
    late: bool = False  # this message filled an earlier gap
    edge_online: bool | None = None  # for an edge status: its online flag
    edge_last_seq: int | None = None  # for an edge status: the highest seq the edge has assigned
