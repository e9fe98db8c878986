"""The wire contract between edges and the hub: topics and JSON payloads.

This is the one module both sides import. Everything that crosses MQTT is defined here as a
pydantic model, so a change to the wire is a change to this file (and to the JSON Schema
exported from it into ``schemas/`` by ``python -m gridwarden.contract``).

Why these shapes:

* ``schema_version`` in every message lets a hub accept old edges during a rolling upgrade.
* ``seq`` is a per-edge, strictly increasing sequence number assigned by the edge's durable
  outbox. With ``incident_id`` it lets a consumer tell a duplicate (same edge, same seq) from a
  gap (a missing seq) without trusting the broker.
* Boxes are normalised to [0, 1] so that the hub never needs to know a camera's resolution.
* ``media_time`` is seconds from the stream's start (from the stream's pts, never the wall
  clock) so a replayed clip and a live stream give the same timeline; ``wall_time`` is when the
  edge saw it, for the district's SLA clock.

Topics live under ``gridwarden/v1/<site>/<edge_id>/``; see :class:`Topics`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
TOPIC_ROOT = "gridwarden/v1"

# Identifiers appear inside MQTT topics and file names: keep them to a safe alphabet.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]

EventKind = Literal["started", "updated", "ended"]
RuleType = Literal["illegal_parking", "occupied_space", "static_object"]
CameraKind = Literal["skynet", "estate", "handheld", "vehicle"]
CameraState = Literal["connecting", "online", "offline"]

# Largest payload a hub accepts; bigger messages are rejected as malformed.
MAX_PAYLOAD_BYTES = 256 * 1024


class _Message(BaseModel):
    """Base for every wire message: unknown fields are refused so typos surface at once."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    schema_version: Literal[1] = 1  # bump together with SCHEMA_VERSION


class NormalisedBox(BaseModel):
    """An axis-aligned box in normalised image coordinates (0..1, origin top-left)."""

    model_config = ConfigDict(extra="forbid")

    x1: float = Field(ge=0.0, le=1.0)
    y1: float = Field(ge=0.0, le=1.0)
    x2: float = Field(ge=0.0, le=1.0)
    y2: float = Field(ge=0.0, le=1.0)


class IncidentObject(BaseModel):
    """One tracked object that takes part in an incident."""

    model_config = ConfigDict(extra="forbid")

    track_id: int
    class_name: str
    confidence: float = Field(ge=0.0, le=1.0)
    box: NormalisedBox


class EvidenceRef(BaseModel):
    """A file cut at the edge for an incident (clip or snapshot), identified by content hash."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["clip", "snapshot", "snapshot_annotated"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content_type: str
    media_start: float | None = None
    media_end: float | None = None


class IncidentEvent(_Message):
    """One step in an incident's life: ``started`` when a rule fires, ``updated`` when it
    changes materially, ``ended`` when the object leaves or the zone clears."""

    type: Literal["incident"] = "incident"
    event: EventKind
    incident_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")
    seq: int = Field(ge=0, description="Per-edge sequence number, assigned by the outbox.")
    site: Identifier
    edge_id: Identifier
    camera: Identifier
    zone: Identifier
    rule: RuleType
    classes: list[str]
    objects: list[IncidentObject] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    media_time: float = Field(description="Seconds from the stream's start when this event happened.")
    started_media_time: float = Field(description="Media time at which the incident started.")
    dwell_s: float = Field(ge=0.0, description="How long the condition has held, in media seconds.")
    coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    wall_time: datetime
    config_version: str | None = None
    evidence: list[EvidenceRef] = Field(default_factory=list)


class CameraLocation(BaseModel):
    """Where a camera stands (WGS-84), so the hub can place its cases on the map and send the
    nearest officer. ``heading_deg``: the direction it looks, clockwise from north."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    heading_deg: float | None = Field(default=None, ge=0.0, lt=360.0)
    description: str | None = Field(default=None, max_length=200)


class StreamStatus(BaseModel):
    """One of a camera's input streams (a camera with a detect sub-stream and a record main
    stream has two; a one-URL camera has one stream with both roles)."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Literal["detect", "record"]] = Field(min_length=1, max_length=2)
    state: CameraState
    input_fps: float = Field(default=0.0, ge=0)
    bitrate_kbps: float = Field(default=0.0, ge=0)
    reconnects: int = Field(default=0, ge=0)
    last_error: str | None = Field(default=None, max_length=1000)


DecodeMode = Literal["all_frames", "keyframes_only"]


class CameraStatus(_Message):
    """Retained per camera on ``.../cameras/<camera_id>/status``.

    ``streams``: each input stream's own health; ``decode``: whether the detect stream is
    decoded in full or keyframes only, and ``decode_reason`` why (the config, or the decode
    budget's automatic choice)."""

    type: Literal["camera_status"] = "camera_status"
    edge_id: Identifier
    camera: Identifier
    kind: CameraKind | None = None
    state: CameraState
    input_fps: float = 0.0
    analysed_fps: float = 0.0
    lag_s: float | None = None
    last_frame_wall_time: datetime | None = None
    reconnects: int = 0
    last_error: str | None = None
    location: CameraLocation | None = None
    streams: list[StreamStatus] = Field(default_factory=list, max_length=2)
    decode: DecodeMode | None = None
    decode_reason: str | None = Field(default=None, max_length=300)
    wall_time: datetime


class EdgeStatus(_Message):
    """Retained per edge on ``.../status``; the MQTT Last Will sets ``online`` to false."""

    type: Literal["edge_status"] = "edge_status"
    edge_id: Identifier
    site: Identifier
    online: bool
    version: str | None = None
    model: str | None = None
    config_version: str | None = None
    outbox_depth: int | None = None
    last_seq: int | None = Field(
        default=None,
        ge=0,
        description="Highest seq this edge has assigned: lets the hub see lost events at the tail of the stream.",
    )
    wall_time: datetime


class ReplayRequest(_Message):
    """Hub → edge on ``.../replay``: publish these sequence numbers again.

    Why it exists: a broker can accept (PUBACK) an event and still lose it before any hub has it
    — measured with Mosquitto 2.0.11, which does not restore shared subscriptions from its
    persistence file after a restart, so events published before the hubs re-subscribe have no
    subscriber. The hub sees the hole (a gap in ``seq``, or ``EdgeStatus.last_seq`` above what it
    stored) and asks the edge, which keeps acknowledged events for a while, to send them again.
    """

    type: Literal["replay_request"] = "replay_request"
    edge_id: Identifier
    from_seq: int = Field(ge=1)
    to_seq: int = Field(ge=1)
    requested_by: str | None = None
    wall_time: datetime


class EdgeConfigMessage(_Message):
    """Hub → edge on ``.../config`` (retained): one version of the edge's configuration YAML.

    Retained so an edge that was offline (or restarts) gets the newest version from the broker
    the moment it subscribes; ``sha256`` lets the edge check the text arrived whole."""

    type: Literal["edge_config"] = "edge_config"
    edge_id: Identifier
    version: int = Field(ge=1)
    yaml: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    author: str
    wall_time: datetime


class SnapshotRequest(_Message):
    """Hub → edge on ``.../snapshot_request``: upload the latest picture of this camera (or of
    every camera when ``camera`` is empty) now, e.g. when an integrator opens the zone editor."""

    type: Literal["snapshot_request"] = "snapshot_request"
    edge_id: Identifier
    camera: Identifier | None = None
    requested_by: str | None = None
    wall_time: datetime


class Topics:
    """Topic names for one edge. All topics are under ``gridwarden/v1/<site>/<edge_id>/``."""

    def __init__(self, site: str, edge_id: str) -> None:
        self.site = site
        self.edge_id = edge_id
        self.base = f"{TOPIC_ROOT}/{site}/{edge_id}"

    @property
    def incidents(self) -> str:
        return f"{self.base}/incidents"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def config(self) -> str:
        return f"{self.base}/config"

    @property
    def replay(self) -> str:
        return f"{self.base}/replay"

    @property
    def snapshot_request(self) -> str:
        return f"{self.base}/snapshot_request"

    def camera_status(self, camera_id: str) -> str:
        return f"{self.base}/cameras/{camera_id}/status"

    # Wildcards the hub subscribes to.
    ALL_INCIDENTS = f"{TOPIC_ROOT}/+/+/incidents"
    ALL_EDGE_STATUS = f"{TOPIC_ROOT}/+/+/status"
    ALL_CAMERA_STATUS = f"{TOPIC_ROOT}/+/+/cameras/+/status"


def parse_topic(topic: str) -> dict[str, str] | None:
    """Split a Gridwarden topic into its parts, or ``None`` if it is not one of ours.

    >>> parse_topic("gridwarden/v1/north/edge-01/incidents")
    {'site': 'north', 'edge_id': 'edge-01', 'channel': 'incidents'}
    """
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    site, edge_id, rest = parts[2], parts[3], parts[4:]
    if rest in (["incidents"], ["status"], ["config"], ["replay"], ["snapshot_request"]):
        return {"site": site, "edge_id": edge_id, "channel": rest[0]}
    if len(rest) == 3 and rest[0] == "cameras" and rest[2] == "status":
        return {"site": site, "edge_id": edge_id, "channel": "camera_status", "camera": rest[1]}
    return None


def utcnow() -> datetime:
    """Aware UTC now; every wall time on the wire is timezone-aware UTC."""
    return datetime.now(UTC)


MESSAGE_MODELS: dict[str, type[_Message]] = {
    "IncidentEvent": IncidentEvent,
    "CameraStatus": CameraStatus,
    "EdgeStatus": EdgeStatus,
    "ReplayRequest": ReplayRequest,
    "SnapshotRequest": SnapshotRequest,
    "EdgeConfigMessage": EdgeConfigMessage,
}


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write one JSON Schema file per wire message into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in MESSAGE_MODELS.items():
        path = out_dir / f"{name}.schema.json"
        schema = model.model_json_schema()
        schema["$id"] = f"https://gridwarden.invalid/schemas/v{SCHEMA_VERSION}/{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - developer helper
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "schemas"
    for p in export_json_schemas(target):
        print(p)
