"""The hub's tables, as typed SQLAlchemy 2 ORM classes.

Why the shapes:

* ``received_events`` keeps every incident message exactly once: ``(edge_id, seq)`` is unique, so
  a redelivered QoS 1 message is recognised and changes nothing.
* ``incidents`` is the folded state of an incident's events (``open`` until an ``ended`` arrives;
  an ``updated`` arriving after ``ended`` never reopens it).
* ``cases`` is what an operator works on; ``case_incidents`` links one or more incidents (the same
  parked car seen twice within the merge window is one case). ``case_history`` is an append-only
  audit of every state change: nothing in it is updated or deleted.
* ``edge_sequence`` lets the hub tell a duplicate from a gap without trusting the broker.
* Every time is stored timezone-aware UTC (:class:`UTCDateTime`), also on SQLite, which has no
  time zone type of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite's INTEGER PRIMARY KEY is its rowid only when spelled INTEGER, not BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out timezone-aware UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the hub stores only timezone-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ReceivedEvent(Base):
    """Every incident message the hub accepted, once per ``(edge_id, seq)``."""

    __tablename__ = "received_events"
    __table_args__ = (UniqueConstraint("edge_id", "seq", name="uq_received_events_edge_seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    edge_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    site: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Which hub process stored it (its MQTT client id): shows how a shared subscription spread work.
    received_by: Mapped[str | None] = mapped_column(String(128))


class Incident(Base):
    """The folded state of one incident's events."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_camera_zone", "edge_id", "camera", "zone"),)

    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # open | ended
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(32))
    classes: Mapped[list[str]] = mapped_column(JSONType)
    objects: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    confidence: Mapped[float] = mapped_column(Float)
    dwell_s: Mapped[float] = mapped_column(Float)
    coverage: Mapped[float | None] = mapped_column(Float)
    started_media_time: Mapped[float] = mapped_column(Float)
    last_media_time: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())  # edge wall time the rule fired
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_event_seq: Mapped[int] = mapped_column(BigInteger)
    first_event_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seq: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(Integer, default=1)
    config_version: Mapped[str | None] = mapped_column(Text)  # at most 1000 characters on the wire
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case_link: Mapped[CaseIncident | None] = relationship(back_populates="incident", uselist=False)


class Case(Base):
    """What an operator reviews and acts on; one or more incidents of the same object."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state", "state"),
        Index("ix_cases_camera_zone_state", "edge_id", "camera", "zone", "state"),
        Index("ix_cases_created_at", "created_at"),
        # The console's search and "mark all reviewed" (migration 0006_console_review).
        Index("ix_cases_state_detected_at", "state", "detected_at"),
        Index("ix_cases_camera_detected_at", "camera", "detected_at"),
        Index("ix_cases_zone_detected_at", "zone", "detected_at"),
        Index("ix_cases_rule_detected_at", "rule", "detected_at"),
        Index("ix_cases_detected_at", "detected_at"),
        Index("ix_cases_camera_reviewed_at", "camera", "reviewed_at"),
        # Where the case is (migration 0008_places): its camera's location, and the area it falls in.
        Index("ix_cases_area_id", "area_id"),
        Index("ix_cases_category_detected_at", "category", "detected_at"),
        Index("ix_cases_source_detected_at", "source", "detected_at"),
        Index("ix_cases_point_category_state", "report_point_id", "category", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(32))
    classes: Mapped[list[str]] = mapped_column(JSONType)
    incident_count: Mapped[int] = mapped_column(Integer, default=0)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Milestones for the SLA clock: the first time the case reached each state.
    in_review_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An operator looked at it ("mark all reviewed"); separate from the decision (the state).
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    # WGS-84 position (the camera's, or a resident report's point) and the area containing it.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    area_id: Mapped[str | None] = mapped_column(String(64))
    # Where the case came from (camera | resident | open311) and the city's event code
    # (gridwarden.hub.reports.categories); a resident case names its QR point (migration 0009).
    source: Mapped[str] = mapped_column(String(16), default="camera", server_default="camera")
    category: Mapped[str] = mapped_column(String(8), default="other", server_default="other")
    report_point_id: Mapped[str | None] = mapped_column(String(64))

    links: Mapped[list[CaseIncident]] = relationship(back_populates="case", order_by="CaseIncident.id")
    history: Mapped[list[CaseHistory]] = relationship(back_populates="case", order_by="CaseHistory.id")


class CaseIncident(Base):
    """An incident belongs to exactly one case."""

    __tablename__ = "case_incidents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.incident_id"), unique=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    how: Mapped[str] = mapped_column(String(16))  # opened | merged

    case: Mapped[Case] = relationship(back_populates="links")
    incident: Mapped[Incident] = relationship(back_populates="case_link")


class CaseHistory(Base):
    """Append-only audit of case state changes: who, when, from, to and why."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    # What happened when the state did not change (dispatch: offered, accepted, declined, expired,
    # escalated, arrived, rework, ...); None for a plain state change.
    event: Mapped[str | None] = mapped_column(String(32))

    case: Mapped[Case] = relationship(back_populates="history")


class Edge(Base):
    """The newest retained status of each edge."""

    __tablename__ = "edges"

    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    online: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status_wall_time: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Camera(Base):
    """The newest retained status of each camera."""

    __tablename__ = "cameras"

    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    status: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status_wall_time: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EdgeSequence(Base):
    """Per-edge sequence bookkeeping: everything up to ``highest_contiguous_seq`` has arrived;
    ``missing`` lists the holes above it (bounded), ``gaps_seen`` counts holes ever opened."""

    __tablename__ = "edge_sequence"

    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    highest_contiguous_seq: Mapped[int] = mapped_column(BigInteger)
    highest_seen_seq: Mapped[int] = mapped_column(BigInteger)
    missing: Mapped[list[Any]] = mapped_column(JSONType)  # spans [[first, last], ...] (seq_gaps)
    gaps_seen: Mapped[int] = mapped_column(Integer, default=0)
    missing_total: Mapped[int] = mapped_column(BigInteger, default=0)
    late_filled: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RejectedMessage(Base):
    """Counters of rejected MQTT messages, by reason, with the last example for diagnosis."""

    __tablename__ = "rejected_messages"

    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_topic: Mapped[str] = mapped_column(Text)
    last_detail: Mapped[str] = mapped_column(Text)


class User(Base):
    """An operator or service account; the auth layer owns how tokens are issued and checked."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str | None] = mapped_column(String(256), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Console log-in: a salted scrypt hash (None: this user cannot log in with a password).
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # The key that signs the user's console sessions and short-lived URLs; replacing it ends them all.
    session_key: Mapped[str | None] = mapped_column(String(128))
    # Interface language of the review console (zh-CN or en).
    language: Mapped[str] = mapped_column(String(16), default="zh-CN", server_default="zh-CN")


class WebhookOutbox(Base):
    """Webhook deliveries written in the same transaction as the case change they announce."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_pending", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EdgeConfigVersion(Base):
    """One version of one edge's configuration YAML. Append-only: a rollback is a new row with
    an old row's text (``rollback_of``), so the history always says who ran what and when."""

    __tablename__ = "edge_config_versions"
    __table_args__ = (UniqueConstraint("edge_id", "version", name="uq_edge_config_versions_edge_version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    edge_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    site: Mapped[str] = mapped_column(String(64))
    yaml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text)
    rollback_of: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the broker acknowledged the retained message (None: stored but not yet delivered).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RevokedSession(Base):
    """A console session ended by sign-out before its expiry (the session token's ``sid``); kept
    until the token would have expired anyway, then deleted."""

    __tablename__ = "revoked_sessions"

    sid: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuthEvent(Base):
    """Append-only audit of console sign-ins: failures, throttled attempts, successes, sign-outs."""

    __tablename__ = "auth_events"
    # The throttle counts recent failures per account and per client address.
    __table_args__ = (
        Index("ix_auth_events_username_at", "username", "at"),
        Index("ix_auth_events_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(128))
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")


class DeadLetter(Base):
    """An MQTT message the hub could not store: kept with the reason, acknowledged, and shown to
    admins, so one poisonous message never stops ingestion and is never silently lost."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    topic: Mapped[str] = mapped_column(String(512))
    edge_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    # The payload as received, cut at DEAD_LETTER_PAYLOAD_BYTES.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(Integer)


class QrPoint(Base):
    """A patrol point with a posted QR code: residents scan it to report what they see there.

    ``area_id`` is a plain reference to the district's areas (no foreign key, so points can be
    imported before the areas are)."""

    __tablename__ = "qr_points"
    __table_args__ = (Index("ix_qr_points_area_id", "area_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text, default="")
    area_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CaseReport(Base):
    """A report by a person (a resident at a QR point, or another system over Open311) that
    opened or joined a case. ``token`` is the reporter's unguessable handle on the case's status;
    ``client`` is a keyed hash of the reporter's address (for abuse review, not the address)."""

    __tablename__ = "case_reports"
    __table_args__ = (Index("ix_case_reports_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # resident | open311
    point_id: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(128))
    photo_sha256: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    area_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(Text)
    # A picture the reporting system holds (Open311 media_url); never fetched by the hub.
    media_url: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    client: Mapped[str | None] = mapped_column(String(64))
    submitted_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Open311Forward(Base):
    """A confirmed case to send to another GeoReport v2 endpoint, written in the same transaction
    as the confirmation (so a crash between the two cannot lose it) and retried until the
    endpoint answers with its service request id or token."""

    __tablename__ = "open311_forwards"
    __table_args__ = (Index("ix_open311_forwards_pending", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_request_id: Mapped[str | None] = mapped_column(String(128))
    remote_token: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Area(Base):
    """A patrol beat or an estate grid: a lat/lon polygon loaded from GeoJSON (``areas import``).

    The bounding box columns let "which area holds this point" ask the database for the few
    candidates before the exact point-in-polygon test in Python."""

    __tablename__ = "areas"
    __table_args__ = (Index("ix_areas_bbox", "min_lat", "max_lat", "min_lon", "max_lon"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # beat | grid | any label the GeoJSON gives
    # GeoJSON geometry (Polygon or MultiPolygon, [lon, lat] order as GeoJSON has it).
    geometry: Mapped[dict[str, Any]] = mapped_column(JSONType)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    min_lon: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Officer(Base):
    """A field officer on the roster: who, which team and areas, how they move, where they are.

    ``state`` is derived from duty and tasks (available, offered, en_route, on_scene, off_duty)
    and stored so the dispatcher and the console read it without a join; the last position is
    kept here too (the history is in ``officer_positions``)."""

    __tablename__ = "officers"
    __table_args__ = (Index("ix_officers_duty_state", "on_duty", "state"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(16))  # patrol | grid
    areas: Mapped[list[str]] = mapped_column(JSONType)
    transport: Mapped[str] = mapped_column(String(16))  # foot | ebike | car
    on_duty: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    # Shift windows ("08:00-16:00", local time of the dispatch settings): duty follows them at
    # their start and end; in between the officer's own toggle counts. ``in_shift`` remembers
    # which side of a boundary the last dispatcher tick saw.
    shifts: Mapped[list[str]] = mapped_column(JSONType, default=list)
    in_shift: Mapped[bool | None] = mapped_column(Boolean)
    # The device id an OsmAnd/Traccar tracker app sends (a secret: it is the tracker's credential).
    tracker_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    fix_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OfficerPosition(Base):
    """Position history (OwnTracks over MQTT, OsmAnd over HTTP, the app); pruned by retention.
    A redelivered fix (same officer, source and time) is stored once."""

    __tablename__ = "officer_positions"
    __table_args__ = (
        UniqueConstraint("officer_id", "source", "fix_at", name="uq_officer_positions_fix"),
        Index("ix_officer_positions_officer_fix", "officer_id", "fix_at"),
        Index("ix_officer_positions_fix_at", "fix_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"))
    fix_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    battery: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # owntracks | osmand | app
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DispatchTask(Base):
    """One offer of one case to one officer, and (once accepted) the officer's task.

    offered -> accepted | declined | expired | withdrawn; accepted -> arrived -> resolved ->
    verified, or back to accepted on rework; a reassignment withdraws it."""

    __tablename__ = "dispatch_tasks"
    __table_args__ = (
        Index("ix_dispatch_tasks_case", "case_id"),
        Index("ix_dispatch_tasks_officer_state", "officer_id", "state"),
        Index("ix_dispatch_tasks_state_expires", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"))
    state: Mapped[str] = mapped_column(String(16))
    manual: Mapped[bool] = mapped_column(Boolean)  # offered by a dispatcher, not chosen by the hub
    offered_by: Mapped[str] = mapped_column(String(128))
    eta_s: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)  # decline / withdrawal reason
    note: Mapped[str | None] = mapped_column(Text)  # the officer's note on "resolved"
    photo: Mapped[str | None] = mapped_column(String(256))  # stored photo name


class CaseDispatch(Base):
    """A case's place in the dispatch queue: waiting, offered, assigned, resolved, escalated, done.

    ``due_at`` is when the case's SLA limit runs out: the queue is served most urgent first.
    ``tried`` lists the officers that already let this case go (declined or timed out)."""

    __tablename__ = "case_dispatch"
    __table_args__ = (Index("ix_case_dispatch_status_due", "status", "due_at"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    tried: Mapped[list[int]] = mapped_column(JSONType)
    offers: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    verify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(16))  # camera | reviewer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FieldAction(Base):
    """Officer app actions by idempotency key: a queued action sent twice is applied once, and
    the second send gets the first one's answer."""

    __tablename__ = "field_actions"
    __table_args__ = (UniqueConstraint("officer_id", "key", name="uq_field_actions_officer_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"))
    key: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
