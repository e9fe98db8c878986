"""The edge configuration file: one YAML file per edge, validated on load.

Every problem is reported with file, line and field (see :mod:`gridwarden.yamlconfig`), and a
bad file never starts half an edge. A full, commented example lives in ``configs/edge.example.yaml``.

Minimum shape::

    edge_id: edge-01
    model: {path: models/yolox_nano_coco.onnx, input_size: 416}
    cameras:
      - id: cam-01
        kind: skynet
        url: rtsp://...            # or a file path
        analysis_fps: 2
        zones:
          - id: gate-north
            polygon: [[0.10, 0.30], [0.40, 0.30], [0.40, 0.95], [0.10, 0.95]]
            rules:
              - {type: illegal_parking, classes: [vehicle], dwell_s: 60}

Evidence (optional): with ``evidence: {enabled: true}`` each camera keeps its last
``pre_roll_s`` of encoded video, and every incident gets two snapshots and a clip of
``pre_roll_s + post_roll_s``; with a ``hub`` section they are uploaded to the hub with the edge's
token (read from ``token_file``; a token is never written in this file)::

    evidence: {enabled: true, pre_roll_s: 10, post_roll_s: 10}
    hub: {url: https://hub.example, token_file: /etc/gridwarden/edge-token}

Camera kinds (``skynet``, ``estate``, ``handheld``, ``vehicle``) fill in defaults a field left
out; see :data:`CAMERA_KIND_DEFAULTS`. Handheld and vehicle cameras move, so camera-motion
detection is on for them and dwell rules pause while the view moves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridwarden.contract import CameraKind, CameraLocation, Identifier
from gridwarden.edge.analytics.rules import defaults as rule_defaults
from gridwarden.yamlconfig import load_yaml_model

Point = tuple[float, float]
Polygon = list[Point]
AnchorName = Literal["bottom_center", "center", "top_center"]

_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")

# Defaults per camera kind, applied where the camera's own entry leaves a field out.
# Why these numbers: parking rules need seconds-scale resolution, so 2 fps is enough for fixed
# cameras; moving cameras see objects for a short time, so they analyse faster.
CAMERA_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "skynet": {"analysis_fps": 2.0, "detect_camera_motion": False, "stall_timeout_s": 10.0},
    "estate": {"analysis_fps": 2.0, "detect_camera_motion": False, "stall_timeout_s": 10.0},
    "handheld": {"analysis_fps": 4.0, "detect_camera_motion": True, "stall_timeout_s": 20.0},
    "vehicle": {"analysis_fps": 4.0, "detect_camera_motion": True, "stall_timeout_s": 20.0},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_polygon(points: Polygon) -> Polygon:
    # Imported lazily: zones.py pulls numpy/cv2 and config must stay cheap to import.
    from gridwarden.edge.analytics.zones import validate_polygon

    problems = validate_polygon(points)
    if problems:
        raise ValueError("; ".join(problems))
    return points


class ScheduleWindows(_Strict):
    """Times of day (local to ``timezone``) when a rule is active, e.g. ``["07:00-20:00"]``."""

    windows: list[str] = Field(default_factory=list)
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None

    @field_validator("windows")
    @classmethod
    def _windows_are_hh_mm(cls, value: list[str]) -> list[str]:
        for w in value:
            if not _WINDOW_RE.match(w):
                raise ValueError(f"schedule window {w!r} must look like 07:00-20:00")
        return value


class _RuleBase(_Strict):
    classes: list[str] = Field(default_factory=lambda: ["any"], min_length=1)
    dwell_s: float = Field(gt=0, le=7 * 24 * 3600)
    schedule: ScheduleWindows | None = Field(
        default=None, description='Active windows, e.g. ["07:00-20:00"] or {windows: [...], weekdays: [mon]}.'
    )
    min_size: float = Field(default=0.0, ge=0.0, le=1.0, description="Minimum box height / frame height.")
    cooldown_s: float = Field(default=0.0, ge=0.0)
    end_grace_s: float = Field(
        default=rule_defaults.END_GRACE_S,
        ge=0.0,
        description="Seconds the place must be seen empty before an incident ends.",
    )
    occlusion_memory_s: float = Field(
        default=rule_defaults.OCCLUSION_MEMORY_S,
        ge=0.0,
        le=3600.0,
        description="Seconds a resting object that something covers (a bus in front) keeps its place and clock.",
    )
    update_interval_s: float = Field(default=rule_defaults.UPDATE_INTERVAL_S, gt=0)
    stationary_tolerance: float = Field(default=rule_defaults.STATIONARY_TOLERANCE, gt=0, le=2.0)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_list_shorthand(cls, value: Any) -> Any:
        return {"windows": value} if isinstance(value, list) else value

    def schedule_windows(self) -> ScheduleWindows | None:
        return self.schedule


class IllegalParkingRuleConfig(_RuleBase):
    type: Literal["illegal_parking"]
    classes: list[str] = Field(default_factory=lambda: ["vehicle"], min_length=1)


class OccupiedSpaceRuleConfig(_RuleBase):
    type: Literal["occupied_space"]
    coverage: float = Field(default=0.3, gt=0, le=1.0)


class StaticObjectRuleConfig(_RuleBase):
    """Class-agnostic: flags regions that became static foreground (stalls, piles of goods)."""

    type: Literal["static_object"]
    classes: list[str] = Field(default_factory=lambda: ["any"], min_length=1)
    coverage: float = Field(default=0.05, gt=0, le=1.0)
    min_static_s: float = Field(default=10.0, gt=0)


RuleConfig = Annotated[
    IllegalParkingRuleConfig | OccupiedSpaceRuleConfig | StaticObjectRuleConfig, Field(discriminator="type")
]


class ZoneConfig(_Strict):
    id: Identifier
    polygon: Polygon
    masks: list[Polygon] = Field(default_factory=list)
    anchor: AnchorName = "bottom_center"
    rules: list[RuleConfig] = Field(min_length=1)

    @field_validator("polygon")
    @classmethod
    def _polygon_ok(cls, value: Polygon) -> Polygon:
        return _check_polygon(value)

    @field_validator("masks")
    @classmethod
    def _masks_ok(cls, value: list[Polygon]) -> list[Polygon]:
        for mask in value:
            _check_polygon(mask)
        return value


class MotionGateConfig(_Strict):
    enabled: bool = True
    reconfirm_s: float = Field(default=10.0, gt=0, description="Run the detector at least this often.")
    min_changed_fraction: float = Field(default=0.002, gt=0, lt=1)


StreamRole = Literal["detect", "record"]


class StreamInput(_Strict):
    """One of a camera's streams and what it is used for (as Frigate configures them).

    Street cameras offer a 1920x1080 main stream and a 640x360 sub-stream: analysis needs only
    the small one (decoding 1080p for 2 analysed frames a second is most of a box's CPU), while
    evidence should be cut from the sharp one, which is never decoded (its packets are kept).
    """

    url: str = Field(min_length=1)
    roles: list[StreamRole] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _roles_once(cls, value: list[StreamRole]) -> list[StreamRole]:
        if len(set(value)) != len(value):
            raise ValueError(f"a role is named twice: {value}")
        return value


class CameraConfig(_Strict):
    id: Identifier
    kind: CameraKind = "skynet"
    url: str = Field(
        min_length=1, description="The camera's stream; with ``inputs``, the detect stream (filled in)."
    )
    inputs: list[StreamInput] = Field(
        default_factory=list,
        description="Streams by role: one 'detect' (analysed), at most one 'record' (evidence clips; "
        "default: the detect stream). Instead of ``url``.",
    )
    enabled: bool = True
    transport: Literal["tcp", "udp"] = "tcp"
    analysis_fps: float = Field(default=2.0, gt=0, le=30)
    keyframes_only: bool | Literal["auto"] = Field(
        default="auto",
        description="Decode keyframes only. auto: when every rule's dwell is >= 30 s and the "
        "measured GOP still gives >= 0.5 fps (see gridwarden/edge/capture/decode_budget.py).",
    )
    stall_timeout_s: float = Field(default=10.0, gt=0)
    detect_camera_motion: bool = False
    motion_gate: MotionGateConfig = Field(default_factory=MotionGateConfig)
    zones: list[ZoneConfig] = Field(default_factory=list)
    # Where the camera stands: the hub places its cases there and sends the nearest officer.
    location: CameraLocation | None = None
    evidence: bool = Field(
        default=True, description="Record clips and snapshots for this camera (when evidence is enabled)."
    )
    # Region inference (gridwarden/edge/analytics/detector/regions.py): "zones" shows the model crops of
    # the zones instead of the letterboxed whole frame, so small objects stay big enough to find;
    # "auto" does so when a zone's smallest expected object would be under 32 px whole-frame.
    inference: Literal["whole", "zones", "auto"] = Field(
        default="auto", description="Where the detector looks: the whole frame, crops of the zones, or auto."
    )
    max_region_inputs: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Most model inputs per analysed frame for zone crops (each costs about one whole-frame inference).",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_kind_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            defaults = CAMERA_KIND_DEFAULTS.get(str(data.get("kind", "skynet")), {})
            data = {**defaults, **data}
            data = _url_from_inputs(data)
        return data

    @model_validator(mode="after")
    def _one_detect_at_most_one_record(self) -> CameraConfig:
        if not self.inputs:
            return self
        for role, most in (("detect", 1), ("record", 1)):
            count = sum(role in i.roles for i in self.inputs)
            if count > most:
                raise ValueError(f"inputs: {count} streams have the role {role!r}; at most {most} may")
        detect = [i for i in self.inputs if "detect" in i.roles]
        if not detect:
            raise ValueError("inputs: no stream has the role 'detect' (the one that is analysed)")
        if self.url != detect[0].url:
            raise ValueError("url and the 'detect' input differ; give only inputs")
        return self

    @property
    def detect_url(self) -> str:
        return self.url

    @property
    def record_url(self) -> str:
        """The stream evidence clips are cut from: the 'record' input, else the detect stream."""
        for stream in self.inputs:
            if "record" in stream.roles:
                return stream.url
        return self.url

    @property
    def separate_record_stream(self) -> bool:
        return self.record_url != self.detect_url

    @model_validator(mode="after")
    def _zone_ids_unique(self) -> CameraConfig:
        seen: set[str] = set()
        for zone in self.zones:
            if zone.id in seen:
                raise ValueError(f"zone id {zone.id!r} appears twice in camera {self.id!r}")
            seen.add(zone.id)
        return self


def _url_from_inputs(data: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` given and no ``url``: the detect input's url becomes ``url``, so code that
    only knows one stream per camera keeps working (a malformed list is left to validation)."""
    inputs = data.get("inputs")
    if data.get("url") is not None or not isinstance(inputs, list):
        return data
    for item in inputs:
        if isinstance(item, dict) and isinstance(item.get("roles"), list) and "detect" in item["roles"]:
            return {**data, "url": item.get("url")}
    known = {"detect", "record"}
    if inputs and all(isinstance(i, dict) and set(i.get("roles") or ["?"]) <= known for i in inputs):
        raise ValueError("inputs: no stream has the role 'detect' (the one that is analysed)")
    return data


class ModelConfig(_Strict):
    path: str
    input_size: int | None = Field(default=None, ge=32, le=2048)
    layout: Literal["auto", "ultralytics", "yolox", "yolov5"] = "auto"
    labels: str | None = None
    conf_threshold: float = Field(default=0.25, gt=0, lt=1)
    iou_threshold: float = Field(default=0.45, gt=0, lt=1)
    class_thresholds: dict[str, float] = Field(default_factory=dict)
    providers: list[str] | None = None
    backend: Literal["auto", "onnxruntime", "openvino"] = Field(
        default="auto",
        description="Inference runtime. auto: OpenVINO when installed and measured faster at start, "
        "else onnxruntime (see gridwarden/edge/analytics/detector/backends.py).",
    )


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    keepalive: int = Field(default=30, ge=5)


class EvidenceConfig(_Strict):
    """Clips and snapshots cut at the edge for each incident (see :mod:`gridwarden.edge.capture.evidence`).

    Why the clip has a pre-roll: the rule fires only after the dwell time, so the moment the
    vehicle arrived is in the past; the camera's last ``pre_roll_s`` of ENCODED video (a few
    hundred kB per camera) is kept in memory for that.
    """

    enabled: bool = False
    pre_roll_s: float = Field(default=10.0, ge=0.0, le=120.0)
    post_roll_s: float = Field(default=10.0, ge=0.0, le=120.0)
    dir: str | None = Field(
        default=None, description="Where files are written before upload (default: <data_dir>/evidence)."
    )


class HubConfig(_Strict):
    """The hub the evidence files are uploaded to (incidents themselves go over MQTT)."""

    url: str = Field(pattern=r"^https?://", description="Base URL of the hub API, e.g. https://hub:8080")
    token_file: str = Field(
        min_length=1, description="File holding the edge's bearer token (an 'edge' role user's token)."
    )
    spool_max_bytes: int = Field(default=2_000_000_000, gt=0, description="Oldest files dropped beyond this.")
    tls_ca: str | None = Field(default=None, description="CA bundle to verify the hub's certificate.")

    def read_token(self) -> str:
        """The token, read when the edge starts; a missing or empty file is a clear error."""
        path = Path(self.token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"hub.token_file {path}: cannot read it ({exc.strerror or exc})") from None
        if not token:
            raise ValueError(f"hub.token_file {path} is empty")
        return token


class TrackerConfig(_Strict):
    """ByteTrack-class association. Cars seen from above score 0.4-0.7 with yolox_nano, hence
    a new track may start at 0.4."""

    high_threshold: float = Field(default=0.5, gt=0, lt=1)
    low_threshold: float = Field(default=0.1, gt=0, lt=1)
    new_track_threshold: float = Field(default=0.4, gt=0, lt=1)
    min_hits: int = Field(default=2, ge=1)
    match_iou: float = Field(default=0.2, gt=0, lt=1)
    lost_timeout_s: float = Field(default=10.0, gt=0)
    # A detection below new_track_threshold still starts a track when it is seen at one place in
    # persist_hits consecutive detector frames (a parked car at dusk scores 0.3 frame after frame).
    persist_threshold: float = Field(default=0.25, gt=0, le=1)
    persist_hits: int = Field(default=3, ge=1)


class EdgeConfig(_Strict):
    edge_id: Identifier
    site: Identifier = "default"
    timezone: str = "UTC"
    data_dir: str = "var/edge"
    model: ModelConfig | None = None
    class_groups: dict[str, list[str]] = Field(default_factory=dict)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    mqtt: MqttConfig | None = None
    outbox_max_rows: int = Field(default=100_000, ge=100)
    # Events the broker acknowledged are kept this long so the hub can ask for them again
    # (a broker restart can lose acknowledged events; see gridwarden/hub/resend_requests.py).
    outbox_retain_acked_s: float = Field(default=86_400.0, ge=0)
    # How often the retained edge status (with last_seq, for the hub's tail check) is republished.
    status_interval_s: float = Field(default=10.0, gt=0, le=3600)
    evidence: EvidenceConfig | None = None
    hub: HubConfig | None = None
    cameras: list[CameraConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _camera_ids_unique(self) -> EdgeConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"camera id {cam.id!r} appears twice")
            seen.add(cam.id)
        return self

    @property
    def evidence_enabled(self) -> bool:
        return self.evidence is not None and self.evidence.enabled

    def evidence_dir(self) -> Path:
        """Where evidence files are written before upload (relative paths: like ``data_dir``)."""
        if self.evidence is not None and self.evidence.dir:
            return Path(self.evidence.dir)
        return Path(self.data_dir) / "evidence"

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(
            f"no camera {camera_id!r} in this configuration (have: {[c.id for c in self.cameras]})"
        )


def load_edge_config(path: str | Path) -> EdgeConfig:
    """Load and validate an edge configuration file; relative paths inside it are resolved
    against the file's folder so a config works from any working directory."""
    cfg = load_yaml_model(EdgeConfig, path=path)
    base = Path(path).resolve().parent
    if cfg.model is not None:
        cfg.model.path = str(_resolve(base, cfg.model.path))
        if cfg.model.labels:
            cfg.model.labels = str(_resolve(base, cfg.model.labels))
    for cam in cfg.cameras:
        if "://" not in cam.url:
            cam.url = str(_resolve(base, cam.url))
        for stream in cam.inputs:
            if "://" not in stream.url:
                stream.url = str(_resolve(base, stream.url))
    if cfg.hub is not None:
        cfg.hub.token_file = str(_resolve(base, cfg.hub.token_file))
        if cfg.hub.tls_ca:
            cfg.hub.tls_ca = str(_resolve(base, cfg.hub.tls_ca))
    return cfg


def load_edge_config_text(text: str, source: str = "<config>") -> EdgeConfig:
    """Validate configuration text (from the hub's config topic or a test)."""
    return load_yaml_model(EdgeConfig, text=text, source=source)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)
