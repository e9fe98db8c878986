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

Bounds (what a hub refuses, as a ``schema`` rejection, before anything reaches the database --
one out-of-range number once stopped ingestion for good):

* every number is finite (no NaN or Infinity); integers that reach the database (``seq``,
  ``last_seq``, replay spans, ``track_id``, sizes, counters) fit in 63 bits (:data:`MAX_INT`);
* ``media_time`` and ``started_media_time`` lie in ``[0, MAX_MEDIA_TIME_S]`` (about 31 years of
  stream), ``dwell_s`` likewise;
* wall times carry a time zone and lie between :data:`MIN_WALL_TIME` and :data:`MAX_WALL_TIME`;
* an event lists at most :data:`MAX_OBJECTS_PER_EVENT` (64) objects (the edge keeps the most
  confident ones), :data:`MAX_CLASSES` class names and :data:`MAX_EVIDENCE` evidence files; a box
  has ``x1 <= x2`` and ``y1 <= y2``; free-text fields have a maximum length;
* a whole payload is at most :data:`MAX_PAYLOAD_BYTES`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

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
MAX_INT = 2**63 - 1  # the largest BIGINT: every integer that reaches the database
MAX_MEDIA_TIME_S = 1e9  # about 31 years of one stream
MAX_OBJECTS_PER_EVENT = 64
MAX_CLASSES = 64
MAX_EVIDENCE = 16
MIN_WALL_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_WALL_TIME = datetime(2200, 1, 1, tzinfo=UTC)
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


def _sane_wall_time(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a wall time needs a time zone (UTC: ...Z)")
    if not MIN_WALL_TIME <= value <= MAX_WALL_TIME:
        raise ValueError(
            f"wall time {value.isoformat()} is outside {MIN_WALL_TIME.year}..{MAX_WALL_TIME.year}"
        )
    return value


WallTime = Annotated[datetime, AfterValidator(_sane_wall_time)]
BigInt = Annotated[int, Field(ge=0, le=MAX_INT)]
MediaTime = Annotated[float, Field(ge=0.0, le=MAX_MEDIA_TIME_S)]
ShortText = Annotated[str, Field(max_length=128)]
VersionText = Annotated[str, Field(max_length=1000)]  # config versions: hashes, tags, paths


class _Message(BaseModel):
    """Base for every wire message: unknown fields are refused so typos surface at once."""

    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)

    schema_version: Literal[1] = 1  # bump together with SCHEMA_VERSION


class NormalisedBox(BaseModel):
    """An axis-aligned box in normalised image coordinates (0..1, origin top-left)."""

    model_config = _STRICT

    x1: float = Field(ge=0.0, le=1.0)
    y1: float = Field(ge=0.0, le=1.0)
    x2: float = Field(ge=0.0, le=1.0)
    y2: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> NormalisedBox:
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError("a box needs x1 <= x2 and y1 <= y2")
        return self


class IncidentObject(BaseModel):
    """One tracked object that takes part in an incident."""

    model_config = _STRICT

    track_id: int = Field(ge=-MAX_INT, le=MAX_INT)
    class_name: str = Field(max_length=64)
    confidence: float = Field(ge=0.0, le=1.0)
    box: NormalisedBox


class EvidenceRef(BaseModel):
    """A file cut at the edge for an incident (clip or snapshot), identified by content hash."""

    model_config = _STRICT

    kind: Literal["clip", "snapshot", "snapshot_annotated"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: BigInt
    content_type: str = Field(max_length=64)
    media_start: MediaTime | None = None
    media_end: MediaTime | None = None


class IncidentEvent(_Message):
    """One step in an incident's life: ``started`` when a rule fires, ``updated`` when it
    changes materially, ``ended`` when the object leaves or the zone clears."""

    type: Literal["incident"] = "incident"
    event: EventKind
    incident_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")
    seq: int = Field(ge=0, le=MAX_INT, description="Per-edge sequence number, assigned by the outbox.")
    site: Identifier
    edge_id: Identifier
    camera: Identifier
    zone: Identifier
    rule: RuleType
    classes: list[Annotated[str, Field(max_length=64)]] = Field(max_length=MAX_CLASSES)
    objects: list[IncidentObject] = Field(default_factory=list, max_length=MAX_OBJECTS_PER_EVENT)
    confidence: float = Field(ge=0.0, le=1.0)
    media_time: float = Field(
        ge=0.0, le=MAX_MEDIA_TIME_S, description="Seconds from the stream's start when this event happened."
    )
    started_media_time: float = Field(
        ge=0.0, le=MAX_MEDIA_TIME_S, description="Media time at which the incident started."
    )
    dwell_s: float = Field(
        ge=0.0, le=MAX_MEDIA_TIME_S, description="How long the condition has held, in media seconds."
    )
    coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    wall_time: WallTime
    config_version: VersionText | None = None
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=MAX_EVIDENCE)


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

    model_config = _STRICT

    roles: list[Literal["detect", "record"]] = Field(min_length=1, max_length=2)
    state: CameraState
    input_fps: float = Field(default=0.0, ge=0)
    bitrate_kbps: float = Field(default=0.0, ge=0)
    reconnects: int = Field(default=0, ge=0, le=MAX_INT)
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
    input_fps: float = Field(default=0.0, ge=0.0, le=10_000.0)
    analysed_fps: float = Field(default=0.0, ge=0.0, le=10_000.0)
    lag_s: float | None = Field(default=None, ge=-MAX_MEDIA_TIME_S, le=MAX_MEDIA_TIME_S)
    last_frame_wall_time: WallTime | None = None
    reconnects: BigInt = 0
    last_error: str | None = Field(default=None, max_length=2000)
    location: CameraLocation | None = None
    streams: list[StreamStatus] = Field(default_factory=list, max_length=2)
    decode: DecodeMode | None = None
    decode_reason: str | None = Field(default=None, max_length=300)
    wall_time: WallTime


class EdgeStatus(_Message):
    """Retained per edge on ``.../status``; the MQTT Last Will sets ``online`` to false."""

    type: Literal["edge_status"] = "edge_status"
    edge_id: Identifier
    site: Identifier
    online: bool
    version: ShortText | None = None
    model: ShortText | None = None
    config_version: VersionText | None = None
    outbox_depth: BigInt | None = None
    last_seq: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INT,
        description="Highest seq this edge has assigned: lets the hub see lost events at the tail of the stream.",
    )
    wall_time: WallTime


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
    from_seq: int = Field(ge=1, le=MAX_INT)
    to_seq: int = Field(ge=1, le=MAX_INT)
    requested_by: ShortText | None = None
    wall_time: WallTime


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
