"""MQTT ingestion: edge messages in, rows committed, then (and only then) acknowledged.

Two layers:

* :func:`ingest_batch` / :func:`ingest_payload` — pure storage logic on a SQLAlchemy session, no
  MQTT: validate a message against the wire contract, store it once, fold it into its incident,
  open or join a case, keep the per-edge sequence bookkeeping. Tests drive it directly.
* :class:`HubIngestor` — the consumer. It holds an MQTT 5 persistent session (``clean_start``
  false, a session expiry, a stable client id) so messages published while the hub is down wait
  in the broker. Incidents come through a shared subscription (``$share/<group>/...``) so several
  hub processes split the stream; retained edge and camera status topics are subscribed without
  ``$share`` so every hub process sees them. Messages are acknowledged manually after the
  transaction that stored them committed: a hub killed mid-stream loses nothing, and what it
  committed but had not acknowledged comes back as a duplicate that ``(edge_id, seq)`` catches.

Why batches: one transaction per message is bounded by commit latency; a batch (``batch_max``
messages or ``batch_wait_s`` after the first, whichever comes first) amortises it. The broker is
told (MQTT 5 Receive Maximum) to keep up to two batches in flight unacknowledged, so the next
batch fills while this one commits.

Replay: a broker can acknowledge an edge's event and still lose it before any hub has it
(Mosquitto 2.0.11 does not restore shared subscriptions after a restart). After each commit the
consumer tells a :class:`~gridwarden.hub.replay.ReplayRequester` about gaps and edge statuses; it
compares what the DATABASE holds with ``EdgeStatus.last_seq`` and the per-edge holes and asks the
edge (``.../replay``, QoS 1) to send the missing spans again, rate-limited. See
:mod:`gridwarden.hub.replay`; ``stats()`` counts ``replay_requests`` and ``replay_seqs_requested``.

Malformed messages (oversized, not JSON, wrong schema, wrong topic, edge/site/camera in the
payload different from the topic) are rejected: logged with the reason, counted by reason in
``rejected_messages`` and acknowledged, so they are neither redelivered forever nor able to stop
the consumer. A valid message that the database keeps refusing is found by retrying its batch one
message at a time and is counted as ``storage_error``; a database that is down is waited for,
with nothing acknowledged meanwhile.

Measured with ``bench/bench_ingest.py`` (2-core machine shared with other work): 1,500–2,800
events/s into PostgreSQL per hub process, ~2,400 into SQLite; p95 publish-to-commit 55–125 ms at
200 events/s. One transaction per message instead of per batch: ~100 events/s.

Run one hub consumer process::

    python -m gridwarden.hub.ingest --db sqlite:///var/hub.db --mqtt-port 1883 --client-id hub-1
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError
from sqlalchemy import BigInteger, Text, and_, column, insert, or_, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, joinedload

from gridwarden.contract import (
    MAX_PAYLOAD_BYTES,
    CameraStatus,
    EdgeStatus,
    IncidentEvent,
    ReplayRequest,
    Topics,
    parse_topic,
    utcnow,
)
from gridwarden.hub import dead_letters, security_counters, seq_gaps
from gridwarden.hub.cases import (
    DEFAULT_MERGE_IOU,
    DEFAULT_MERGE_WINDOW_S,
    CaseMatcher,
    note_incident_activity,
)
from gridwarden.hub.db.engine import Database, upgrade_database
from gridwarden.hub.db.models import (
    Camera,
    Case,
    CaseIncident,
    Edge,
    EdgeSequence,
    Incident,
    ReceivedEvent,
    RejectedMessage,
    UTCDateTime,
)
from gridwarden.hub.replay import ReplayRequester, ReplaySettings, StatusNote
from gridwarden.hub.settings import HubSettings

log = logging.getLogger(__name__)

DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600


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


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Rejection:
    reason: RejectReason
    detail: str


Parsed = IncidentEvent | EdgeStatus | CameraStatus | None  # None: an empty retained message
_CHANNEL_MODELS: dict[str, type[IncidentEvent | EdgeStatus | CameraStatus]] = {
    "incidents": IncidentEvent,
    "status": EdgeStatus,
    "camera_status": CameraStatus,
}


def validate_message(topic: str, payload: bytes) -> Parsed | _Rejection:
    """Check one MQTT message against the wire contract and its topic; no database needed."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _Rejection(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    parts = parse_topic(topic)
    if parts is None or parts["channel"] not in _CHANNEL_MODELS:
        return _Rejection(RejectReason.WRONG_TOPIC, f"not a topic the hub consumes: {topic[:200]!r}")
    channel = parts["channel"]
    if not payload and channel != "incidents":
        return None
    try:
        text = payload.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _Rejection(RejectReason.NOT_JSON, str(exc)[:200])
    if "\\u0000" in text:
        # PostgreSQL can store neither NUL in text nor the \u0000 escape in jsonb: refusing it here
        # keeps one such message from failing (and so blocking) every batch it lands in.
        return _Rejection(RejectReason.SCHEMA, "NUL character (\\u0000) in payload")
    model = _CHANNEL_MODELS[channel]
    expected_type = model.model_fields["type"].default
    if isinstance(data, dict) and "type" in data and data["type"] != expected_type:
        return _Rejection(RejectReason.WRONG_TOPIC, f"a {data['type']!r} message on a {channel} topic")
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        return _Rejection(RejectReason.SCHEMA, _short_validation_error(exc))
    if message.edge_id != parts["edge_id"]:
        return _Rejection(
            RejectReason.EDGE_MISMATCH,
            f"payload edge_id {message.edge_id!r} on topic of {parts['edge_id']!r}",
        )
    site = getattr(message, "site", parts["site"])
    if site != parts["site"]:
        return _Rejection(
            RejectReason.EDGE_MISMATCH, f"payload site {site!r} on topic of site {parts['site']!r}"
        )
    if isinstance(message, CameraStatus) and message.camera != parts["camera"]:
        return _Rejection(
            RejectReason.CAMERA_MISMATCH, f"payload camera {message.camera!r} on topic of {parts['camera']!r}"
        )
    return message


def _short_validation_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5])
    return f"{len(errors)} error(s): {text}"[:500]


# --------------------------------------------------------------------------- storage


def _insert(session: Session, model: type[Any]) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_*`` on both SQLite and PostgreSQL."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def _count_rejection(
    session: Session, topic: str, rejection: _Rejection, now: datetime, payload: bytes | None = None
) -> None:
    """Count the rejection by reason and, when the payload is given, keep it as a dead letter."""
    if payload is not None:
        dead_letters.record(session, topic, payload, str(rejection.reason), rejection.detail, now)
    stmt = _insert(session, RejectedMessage).values(
        reason=str(rejection.reason),
        count=1,
        last_at=now,
        last_topic=topic[:1000],
        last_detail=rejection.detail,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[RejectedMessage.reason],
        set_={
            "count": RejectedMessage.count + 1,
            "last_at": stmt.excluded.last_at,
            "last_topic": stmt.excluded.last_topic,
            "last_detail": stmt.excluded.last_detail,
        },
    )
    session.execute(stmt)


def _apply_status(session: Session, message: EdgeStatus | CameraStatus, now: datetime) -> None:
    """Upsert the newest status; an older one (by the edge's wall time) never overwrites a newer."""
    status = message.model_dump(mode="json")
    if isinstance(message, EdgeStatus):
        table: type[Edge] | type[Camera] = Edge
        values: dict[str, Any] = {"edge_id": message.edge_id, "site": message.site, "online": message.online}
        keys = [Edge.edge_id]
    else:
        table = Camera
        values = {"edge_id": message.edge_id, "camera_id": message.camera, "state": message.state}
        keys = [Camera.edge_id, Camera.camera_id]
    values |= {"status": status, "status_wall_time": message.wall_time, "updated_at": now}
    stmt = _insert(session, table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={k: getattr(stmt.excluded, k) for k in values if k not in ("edge_id", "camera_id")},
        where=table.status_wall_time <= stmt.excluded.status_wall_time,
    )
    session.execute(stmt)


def _advance_sequence(row: EdgeSequence, seq: int) -> tuple[tuple[tuple[int, int], ...], bool]:
    """Record ``seq`` (not a duplicate) for an edge; return (newly missing spans, filled a gap).

    Costs O(number of holes), never O(size of a jump) (:mod:`gridwarden.hub.seq_gaps`). The first
    seq ever seen from an edge is the baseline: a hub installed after an edge has been running
    does not report the edge's whole history as missing.
    """
    gap: tuple[tuple[int, int], ...] = ()
    late = False
    if row.highest_seen_seq < 0:
        row.highest_seen_seq = row.highest_contiguous_seq = seq
        return gap, late
    spans = seq_gaps.normalise(row.missing)
    if seq > row.highest_seen_seq:
        if seq > row.highest_seen_seq + 1:
            gap = ((row.highest_seen_seq + 1, seq - 1),)
            row.gaps_seen += 1
            row.missing_total += seq - 1 - row.highest_seen_seq
            spans = seq_gaps.add(spans, row.highest_seen_seq + 1, seq - 1)
        row.highest_seen_seq = seq
    else:
        spans, late = seq_gaps.remove(spans, seq)
        if late:
            row.late_filled += 1
    if spans != row.missing:
        row.missing = spans
    contiguous = spans[0][0] - 1 if spans else row.highest_seen_seq
    if contiguous != row.highest_contiguous_seq:
        row.highest_contiguous_seq = contiguous
    return gap, late


def _started_at(event: IncidentEvent) -> datetime:
    """When the incident started on the edge's wall clock (estimated from media time if this is
    not the ``started`` event, e.g. because that one was lost)."""
    if event.event == "started":
        return event.wall_time
    return event.wall_time - timedelta(seconds=max(0.0, event.media_time - event.started_media_time))


def _new_incident(event: IncidentEvent, now: datetime) -> Incident:
    return Incident(
        incident_id=event.incident_id,
        state="ended" if event.event == "ended" else "open",
        site=event.site,
        edge_id=event.edge_id,
        camera=event.camera,
        zone=event.zone,
        rule=event.rule,
        classes=list(event.classes),
        objects=[o.model_dump(mode="json") for o in event.objects],
        evidence=[e.model_dump(mode="json") for e in event.evidence],
        confidence=event.confidence,
        dwell_s=event.dwell_s,
        coverage=event.coverage,
        started_media_time=event.started_media_time,
        last_media_time=event.media_time,
        started_at=_started_at(event),
        ended_at=event.wall_time if event.event == "ended" else None,
        first_event_seq=event.seq,
        first_event_at=event.wall_time,
        last_event_at=event.wall_time,
        last_seq=event.seq,
        event_count=1,
        config_version=event.config_version,
        created_at=now,
        updated_at=now,
    )


def _fold_event(incident: Incident, event: IncidentEvent, now: datetime) -> None:
    """Fold a later-arriving event into an incident. Newer seqs refresh the details; older ones
    (reordered redeliveries) only fill in what is missing; nothing ever reopens an ended incident."""
    incident.event_count += 1
    incident.updated_at = now
    if event.wall_time > incident.last_event_at:
        incident.last_event_at = event.wall_time
    if event.wall_time < incident.first_event_at:
        incident.first_event_at = event.wall_time
        incident.first_event_seq = event.seq
    if event.event == "started":
        incident.started_at = event.wall_time
        incident.started_media_time = event.started_media_time
    if event.seq > incident.last_seq:
        incident.last_seq = event.seq
        incident.classes = list(event.classes)
        if event.objects:
            incident.objects = [o.model_dump(mode="json") for o in event.objects]
        incident.confidence = event.confidence
        incident.dwell_s = max(incident.dwell_s, event.dwell_s)
        incident.coverage = event.coverage
        incident.last_media_time = event.media_time
        incident.config_version = event.config_version or incident.config_version
    if event.evidence:
        known = {(e["kind"], e["sha256"]) for e in incident.evidence}
        extra = [e.model_dump(mode="json") for e in event.evidence if (e.kind, e.sha256) not in known]
        if extra:
            incident.evidence = [*incident.evidence, *extra]
    if event.event == "ended" and incident.state != "ended":
        incident.state = "ended"
        incident.ended_at = event.wall_time
    note_incident_activity(incident)


@dataclass
class BatchContext:
    """Rows a batch needs, loaded (and on PostgreSQL row-locked) once up front."""

    existing: set[tuple[str, int]] = field(default_factory=set)
    sequences: dict[str, EdgeSequence] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    # New received_events rows, inserted in one multi-row INSERT at the end (no ORM objects needed).
    new_events: list[dict[str, Any]] = field(default_factory=list)


def _preload(session: Session, events: Sequence[IncidentEvent], now: datetime) -> BatchContext:
    ctx = BatchContext()
    if not events:
        return ctx
    edges = sorted({e.edge_id for e in events})
    # Lock the edges' sequence rows (creating those of new edges first): all writers of one edge's
    # incidents and cases queue here, in edge order, so they cannot deadlock or race each other.
    lock_rows = (
        select(EdgeSequence)
        .where(EdgeSequence.edge_id.in_(edges))
        .order_by(EdgeSequence.edge_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    ctx.sequences = {r.edge_id: r for r in session.scalars(lock_rows)}
    if len(ctx.sequences) < len(edges):
        for edge_id in edges:
            if edge_id not in ctx.sequences:
                stmt = _insert(session, EdgeSequence).values(
                    edge_id=edge_id,
                    highest_contiguous_seq=-1,
                    highest_seen_seq=-1,
                    missing=[],
                    gaps_seen=0,
                    missing_total=0,
                    late_filled=0,
                    duplicates=0,
                    updated_at=now,
                )
                session.execute(stmt.on_conflict_do_nothing(index_elements=[EdgeSequence.edge_id]))
        ctx.sequences = {r.edge_id: r for r in session.scalars(lock_rows)}
    by_edge: dict[str, list[int]] = {}
    for e in events:
        by_edge.setdefault(e.edge_id, []).append(e.seq)
    seen = session.execute(
        select(ReceivedEvent.edge_id, ReceivedEvent.seq).where(
            or_(*(and_(ReceivedEvent.edge_id == k, ReceivedEvent.seq.in_(v)) for k, v in by_edge.items()))
        )
    )
    ctx.existing = {(edge_id, seq) for edge_id, seq in seen}
    ids = sorted({e.incident_id for e in events})
    incidents = session.scalars(
        select(Incident)
        .where(Incident.incident_id.in_(ids))
        .order_by(Incident.incident_id)
        .options(joinedload(Incident.case_link).joinedload(CaseIncident.case))
        .with_for_update(of=Incident)
    )
    ctx.incidents = {i.incident_id: i for i in incidents.unique()}
    return ctx


def ingest_batch(
    session: Session,
    messages: Sequence[tuple[str, bytes]],
    *,
    now: datetime | None = None,
    received_by: str | None = None,
    merge_window_s: float = DEFAULT_MERGE_WINDOW_S,
    merge_iou: float = DEFAULT_MERGE_IOU,
) -> list[IngestResult]:
    """Apply ``(topic, payload)`` messages in order inside the caller's transaction.

    The caller commits (and only then acknowledges). Results come back in input order. Database
    errors propagate: the caller rolls back and retries the whole batch.
    """
    now = now or utcnow()
    parsed = [validate_message(topic, payload) for topic, payload in messages]
    events = [p for p in parsed if isinstance(p, IncidentEvent)]
    ctx = _preload(session, events, now)
    matcher = CaseMatcher(session, merge_window_s=merge_window_s, merge_iou=merge_iou)
    earliest_new: dict[tuple[str, str, str], datetime] = {}
    for e in events:
        if e.incident_id not in ctx.incidents:
            key = (e.edge_id, e.camera, e.zone)
            earliest_new[key] = min(earliest_new.get(key, _started_at(e)), _started_at(e))
    matcher.prime(earliest_new)

    results: list[IngestResult] = []
    cases: list[Case | None] = []
    with session.no_autoflush:
        for (topic, payload), item in zip(messages, parsed, strict=True):
            case = None
            if isinstance(item, _Rejection):
                log.warning("rejected message on %r: %s (%s)", topic[:200], item.reason, item.detail)
                _count_rejection(session, topic, item, now, payload)
                result = IngestResult(Outcome.REJECTED, topic, reason=item.reason, detail=item.detail)
            elif item is None:
                result = IngestResult(Outcome.IGNORED, topic)
            elif isinstance(item, EdgeStatus):
                _apply_status(session, item, now)
                result = IngestResult(
                    Outcome.STATUS,
                    topic,
                    edge_id=item.edge_id,
                    edge_online=item.online,
                    edge_last_seq=item.last_seq,
                )
            elif isinstance(item, CameraStatus):
                _apply_status(session, item, now)
                result = IngestResult(Outcome.STATUS, topic, edge_id=item.edge_id)
            else:
                result, case = _apply_event(session, ctx, matcher, topic, item, payload, now, received_by)
            results.append(result)
            cases.append(case)
    if any(r.outcome is Outcome.REJECTED for r in results):
        dead_letters.prune(session)
    # One flush for the whole batch (the ORM groups the INSERTs); it also gives new cases their ids.
    session.flush()
    _insert_events(session, ctx.new_events)
    return [r if c is None else replace(r, case_id=c.id) for r, c in zip(results, cases, strict=True)]


def _apply_event(
    session: Session,
    ctx: BatchContext,
    matcher: CaseMatcher,
    topic: str,
    event: IncidentEvent,
    raw: bytes,
    now: datetime,
    received_by: str | None,
) -> tuple[IngestResult, Case | None]:
    key = (event.edge_id, event.seq)
    seq_row = ctx.sequences[event.edge_id]
    base = IngestResult(
        Outcome.STORED, topic, edge_id=event.edge_id, seq=event.seq, incident_id=event.incident_id
    )
    if key in ctx.existing:
        seq_row.duplicates += 1
        return replace(base, outcome=Outcome.DUPLICATE), None
    incident = ctx.incidents.get(event.incident_id)
    if incident is not None and (incident.edge_id, incident.camera) != (event.edge_id, event.camera):
        rejection = _Rejection(
            RejectReason.INCIDENT_CONFLICT,
            f"incident {event.incident_id} belongs to {incident.edge_id}/{incident.camera}, "
            f"not {event.edge_id}/{event.camera}",
        )
        log.warning("rejected message on %r: %s (%s)", topic[:200], rejection.reason, rejection.detail)
        _count_rejection(session, topic, rejection, now)
        return replace(base, outcome=Outcome.REJECTED, reason=rejection.reason, detail=rejection.detail), None
    ctx.existing.add(key)
    ctx.new_events.append(
        {
            "edge_id": event.edge_id,
            "seq": event.seq,
            "site": event.site,
            "incident_id": event.incident_id,
            "event": event.event,
            "payload": raw.decode("utf-8"),  # exactly what the edge sent (validated above)
            "received_at": now,
            "received_by": received_by,
        }
    )
    gap, late = _advance_sequence(seq_row, event.seq)
    seq_row.updated_at = now
    if gap:
        # INFO, not WARNING: with several hub processes a hole is often filled a moment later.
        first, last = gap[0]
        log.info(
            "edge %s: sequence gap, missing %d message(s) %d..%d",
            event.edge_id,
            last - first + 1,
            first,
            last,
        )
    case_how = None
    case: Case | None = None
    if incident is None:
        incident = _new_incident(event, now)
        session.add(incident)
        ctx.incidents[event.incident_id] = incident
        case, case_how = matcher.assign(incident, now=now)
    else:
        _fold_event(incident, event, now)
        if incident.case_link is not None:
            case = incident.case_link.case
    return replace(base, case_how=case_how, gap=gap, late=late), case


# received_events as plain columns: the payload goes in as the JSON text that arrived, with no
# decode/encode round trip through the ORM's JSON type (the column itself is JSON/JSONB).
_EVENT_COLUMNS = ("edge_id", "seq", "site", "incident_id", "event", "payload", "received_at", "received_by")
_received_events_text = table(
    "received_events",
    *(column(name, Text) for name in _EVENT_COLUMNS if name not in ("seq", "received_at")),
    column("seq", BigInteger),
    column("received_at", UTCDateTime()),
)


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the batch's new events in one go: COPY on PostgreSQL, one executemany on SQLite."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None, "a live transaction always has a driver connection"
        names = ", ".join(_EVENT_COLUMNS)
        with driver.cursor() as cursor, cursor.copy(f"COPY received_events ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[name] for name in _EVENT_COLUMNS))
    else:
        session.execute(insert(_received_events_text), rows)


def ingest_payload(
    session: Session,
    topic: str,
    payload: bytes,
    *,
    now: datetime,
    received_by: str | None = None,
    merge_window_s: float = DEFAULT_MERGE_WINDOW_S,
    merge_iou: float = DEFAULT_MERGE_IOU,
) -> IngestResult:
    """Apply one message inside the caller's transaction (a batch of one)."""
    return ingest_batch(
        session,
        [(topic, payload)],
        now=now,
        received_by=received_by,
        merge_window_s=merge_window_s,
        merge_iou=merge_iou,
    )[0]


# --------------------------------------------------------------------------- the consumer


@dataclass(frozen=True)
class _Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes
    arrived: float = field(default_factory=time.monotonic)


class IngestStats:
    """Thread-safe counters of what this consumer process did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._gaps = 0
        self._missing = 0

    def add(self, results: Sequence[IngestResult], *, commit_s: float) -> None:
        with self._lock:
            self._counts["received"] += len(results)
            self._counts["batches"] += 1
            self._counts["commit_ms_total"] += int(commit_s * 1000)
            for r in results:
                self._counts[str(r.outcome)] += 1
                if r.reason is not None:
                    self._rejected[str(r.reason)] += 1
                if r.gap:
                    self._gaps += 1
                    self._missing += seq_gaps.count(r.gap)

    def note(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            c = self._counts
            return {
                "received": c["received"],
                "stored": c[str(Outcome.STORED)],
                "duplicates": c[str(Outcome.DUPLICATE)],
                "status": c[str(Outcome.STATUS)],
                "ignored": c[str(Outcome.IGNORED)],
                "rejected": c[str(Outcome.REJECTED)],
                "rejected_by_reason": dict(self._rejected),
                "gaps": self._gaps,
                "missing_seqs": self._missing,
                "batches": c["batches"],
                "commit_ms_total": c["commit_ms_total"],
                "db_errors": c["db_errors"],
                "connects": c["connects"],
                "replay_requests": c["replay_requests"],
                "replay_seqs_requested": c["replay_seqs_requested"],
            }


class HubIngestor:
    """The hub's MQTT consumer: batches messages into transactions and acks after commit.

    >>> ing = HubIngestor(db=Database("sqlite:///var/hub.db"), mqtt_host="127.0.0.1", mqtt_port=1883)  # doctest: +SKIP
    >>> ing.start(); ing.wait_ready(10); ...; ing.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        db: Database,
        mqtt_host: str,
        mqtt_port: int,
        group: str = "hub",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        batch_max: int = 200,
        batch_wait_s: float = 0.02,
        merge_window_s: float = DEFAULT_MERGE_WINDOW_S,
        merge_iou: float = DEFAULT_MERGE_IOU,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        keepalive_s: int = 30,
        replay: ReplaySettings | None = None,
        request_replays: bool = True,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        """``on_fatal``: called (in the writer thread) if that thread dies; ``hub serve`` then
        exits non-zero so systemd restarts it, and ``/healthz`` answers 503 meanwhile."""
        if batch_max < 1 or batch_wait_s <= 0:
            raise ValueError("batch_max must be >= 1 and batch_wait_s > 0")
        self.db = db
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.group = group
        # A stable id is what lets the broker keep this process's session while it is down.
        self.client_id = client_id or f"hub-{group}"
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.merge_window_s = merge_window_s
        self.merge_iou = merge_iou
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.receive_maximum = min(65535, 2 * batch_max)
        self._stats = IngestStats()
        self._inbox: queue.Queue[_Inbound] = queue.Queue()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._worker: threading.Thread | None = None
        self._fatal: BaseException | None = None
        self.on_fatal = on_fatal
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._replayer = (
            ReplayRequester(
                db,
                self._publish_replay,
                requested_by=self.client_id,
                settings=replay,
                on_request=self._count_replay,
            )
            if request_replays
            else None
        )

    def _publish_replay(self, topic: str, payload: bytes) -> bool:
        """Hand a replay request to paho (QoS 1, not retained); refused while disconnected so a
        request is not queued behind an outage (the requester asks again later)."""
        if not self._ready.is_set():
            return False
        return self._client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    def _count_replay(self, request: ReplayRequest) -> None:
        self._stats.note("replay_requests")
        self._stats.note("replay_seqs_requested", request.to_seq - request.from_seq + 1)

    # ---- MQTT callbacks (network thread)

    @property
    def subscriptions(self) -> list[tuple[str, SubscribeOptions]]:
        qos1 = SubscribeOptions(qos=1)
        return [
            (f"$share/{self.group}/{Topics.ALL_INCIDENTS}", qos1),
            (Topics.ALL_EDGE_STATUS, qos1),
            (Topics.ALL_CAMERA_STATUS, qos1),
        ]

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("hub %s: broker refused connection: %s", self.client_id, reason_code)
            return
        self._stats.note("connects")
        log.info("hub %s connected to %s:%s", self.client_id, self.mqtt_host, self.mqtt_port)
        client.subscribe(self.subscriptions)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: Any, _props: Any
    ) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("hub %s: subscription refused: %s", self.client_id, failed)
            return
        self._ready.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        self._ready.clear()
        if not self._stopping.is_set():
            log.warning("hub %s disconnected (%s); reconnecting", self.client_id, reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(_Inbound(message.mid, message.qos, message.topic, bytes(message.payload)))

    # ---- life cycle

    def start(self) -> None:
        """Connect (in the background, retrying) and start the writer thread."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self._client.connect_async(
            self.mqtt_host, self.mqtt_port, keepalive=self.keepalive_s, clean_start=False, properties=props
        )
        self._worker = threading.Thread(target=self._run, name=f"{self.client_id}-writer", daemon=True)
        self._worker.start()
        if self._replayer is not None:
            self._replayer.start()
        self._client.loop_start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until connected and subscribed; True if so within ``timeout``."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Store and acknowledge what has arrived, then disconnect (the session stays on the broker)."""
        self._stopping.set()
        if self._replayer is not None:
            self._replayer.stop()
        if self._worker is not None:
            self._worker.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def stats(self) -> dict[str, Any]:
        """received, stored, duplicates, rejected_by_reason, gaps, ... for this process."""
        return {"client_id": self.client_id, **self._stats.snapshot()}

    # ---- the writer thread

    def _collect(self) -> list[_Inbound]:
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        # The wait counts from when the first message arrived, not from when the writer got to it:
        # after a slow commit the next batch goes at once instead of adding another full wait.
        deadline = first.arrived + self.batch_wait_s
        while len(batch) < self.batch_max:
            remaining = deadline - time.monotonic()
            try:
                # Past the deadline, still take whatever is already waiting (up to batch_max).
                batch.append(
                    self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    @property
    def failed(self) -> BaseException | None:
        """Why the writer thread died, or None while it runs (or before start / after stop)."""
        return self._fatal

    def health_problem(self) -> str | None:
        """For ``/healthz``: None when the writer thread is working, else what is wrong."""
        if self._fatal is not None:
            return f"ingest writer died: {self._fatal.__class__.__name__}: {self._fatal}"
        if self._worker is not None and not self._worker.is_alive() and not self._stopping.is_set():
            return "ingest writer is not running"
        return None

    def _run(self) -> None:
        try:
            self._run_loop()
        except BaseException as exc:  # the thread must not die silently: tell the process
            self._fatal = exc
            log.critical("hub %s: the ingest writer died", self.client_id, exc_info=True)
            if self.on_fatal is not None:
                self.on_fatal(exc)

    def _run_loop(self) -> None:
        while not self._stopping.is_set():
            batch = self._collect()
            if batch:
                self._store_and_ack(batch)
        # Stopping: store what already arrived; anything later stays unacknowledged on the broker.
        while True:
            batch = []
            while len(batch) < self.batch_max:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return
            self._store_and_ack(batch)

    def _store_and_ack(self, batch: list[_Inbound]) -> None:
        """Store a batch in one transaction, then acknowledge it. Nothing is acknowledged until
        it is committed (or counted as rejected), so a crash at any point loses nothing."""
        delay = 0.05
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                results = self._store(batch)
            except (OperationalError, InterfaceError) as exc:
                # The database is away, or a lock timed out or deadlocked: wait and retry for as
                # long as it takes; the broker keeps the unacknowledged messages meanwhile.
                self._note_db_error(exc, len(batch), attempt)
                if self._stopping.is_set() and attempt >= 3:
                    log.error(
                        "hub %s: leaving %d unstored messages to the broker", self.client_id, len(batch)
                    )
                    return
            except Exception as exc:
                # The database refused the data (or a race with another hub broke a unique key),
                # or a message made the code itself fail (a number out of range, a bug): never let
                # it stop the stream. A database refusal is retried a little; then the message at
                # fault is found by storing one at a time, and it alone becomes a dead letter.
                self._note_db_error(exc, len(batch), attempt)
                if attempt >= 3 or not isinstance(exc, DBAPIError):
                    if len(batch) > 1:
                        for item in batch:
                            self._store_and_ack([item])
                    else:
                        self._dead_letter(batch[0], exc)
                    return
            else:
                self._stats.add(results, commit_s=time.monotonic() - started)
                self._ack(batch)
                for r in results:
                    if r.outcome is Outcome.REJECTED:
                        security_counters.count("gridwarden_hub_dead_letters_total", reason=str(r.reason))
                self._tell_replayer(results)
                return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _tell_replayer(self, results: Sequence[IngestResult]) -> None:
        if self._replayer is None:
            return
        notes = [
            StatusNote(r.edge_id, r.topic, gap=bool(r.gap), online=r.edge_online, last_seq=r.edge_last_seq)
            for r in results
            if r.edge_id is not None and (r.gap or r.edge_online is not None)
        ]
        if notes:
            self._replayer.observe(notes)

    def _note_db_error(self, exc: Exception, size: int, attempt: int) -> None:
        self._stats.note("db_errors")
        first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
        log.warning(
            "hub %s: storing %d message(s) failed (attempt %d): %s: %s",
            self.client_id, size, attempt, exc.__class__.__name__, first_line,
        )  # fmt: skip

    def _dead_letter(self, item: _Inbound, exc: Exception) -> None:
        """A message that cannot be stored on its own: keep it as a dead letter with the reason,
        then acknowledge it, so one bad message cannot stop the stream. If even the dead letter
        cannot be written (the database is gone), the message is NOT acknowledged: the broker
        keeps it and delivers it again."""
        rejection = _Rejection(RejectReason.STORAGE_ERROR, f"{exc.__class__.__name__}: {str(exc)[:400]}")
        log.error(
            "hub %s: dead letter on %r, it cannot be stored: %s",
            self.client_id,
            item.topic[:200],
            rejection.detail,
        )
        for attempt in range(3):
            try:
                with self.db.write_session() as session, session.begin():
                    _count_rejection(session, item.topic, rejection, utcnow(), item.payload)
                    dead_letters.prune(session)
                break
            except Exception:
                log.exception(
                    "hub %s: could not write the dead letter (attempt %d)", self.client_id, attempt + 1
                )
                time.sleep(0.2 * (attempt + 1))
        else:
            return
        result = IngestResult(Outcome.REJECTED, item.topic, reason=rejection.reason, detail=rejection.detail)
        self._stats.add([result], commit_s=0.0)
        security_counters.count("gridwarden_hub_dead_letters_total", reason=str(rejection.reason))
        self._ack([item])

    def _ack(self, batch: list[_Inbound]) -> None:
        for item in batch:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)

    def _store(self, batch: list[_Inbound]) -> list[IngestResult]:
        with self.db.write_session() as session, session.begin():
            return ingest_batch(
                session,
                [(m.topic, m.payload) for m in batch],
                now=utcnow(),
                received_by=self.client_id,
                merge_window_s=self.merge_window_s,
                merge_iou=self.merge_iou,
            )


# --------------------------------------------------------------------------- command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = HubSettings.from_env()  # GRIDWARDEN_HUB_* variables; flags override them
    p = argparse.ArgumentParser(prog="python -m gridwarden.hub.ingest", description=__doc__.split("\n")[0])
    p.add_argument("--db", default=defaults.database_url, help="database URL, e.g. sqlite:///var/hub.db")
    p.add_argument("--mqtt-host", default=defaults.mqtt_host)
    p.add_argument("--mqtt-port", type=int, default=defaults.mqtt_port)
    p.add_argument("--mqtt-username", default=defaults.mqtt_username)
    p.add_argument("--mqtt-password", default=defaults.mqtt_password)
    p.add_argument(
        "--group", default=defaults.mqtt_group, help="shared-subscription group of the hub processes"
    )
    p.add_argument("--client-id", default=defaults.mqtt_client_id, help="stable MQTT client id, e.g. hub-1")
    p.add_argument("--batch-max", type=int, default=defaults.batch_max)
    p.add_argument("--batch-wait-s", type=float, default=defaults.batch_wait_s)
    p.add_argument("--merge-window-s", type=float, default=defaults.merge_window_s)
    p.add_argument("--merge-iou", type=float, default=defaults.merge_iou)
    p.add_argument(
        "--stats-file", type=Path, default=None, help="write stats JSON here every second and at exit"
    )
    p.add_argument(
        "--replay-settle-s", type=float, default=ReplaySettings.settle_s,
        help="how long a seq must stay missing in the database before the edge is asked to replay it",
    )  # fmt: skip
    p.add_argument("--replay-retry-s", type=float, default=ReplaySettings.retry_s)
    p.add_argument("--no-replay", action="store_true", help="never ask edges to replay missing events")
    p.add_argument("--no-migrate", action="store_true", help="do not run database migrations at start")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def _write_stats(path: Path, stats: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(stats))
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.no_migrate:
        upgrade_database(args.db)
    db = Database(args.db)
    ingestor = HubIngestor(
        db=db,
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        group=args.group,
        client_id=args.client_id,
        username=args.mqtt_username,
        password=args.mqtt_password,
        batch_max=args.batch_max,
        batch_wait_s=args.batch_wait_s,
        merge_window_s=args.merge_window_s,
        merge_iou=args.merge_iou,
        replay=ReplaySettings(settle_s=args.replay_settle_s, retry_s=args.replay_retry_s),
        request_replays=not args.no_replay,
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    ingestor.start()
    announced = False
    while not done.wait(0.2 if not announced else 1.0):
        if ingestor.failed is not None:
            break
        if not announced and ingestor.wait_ready(0):
            print(f"ready {ingestor.client_id}", flush=True)
            announced = True
        if args.stats_file:
            _write_stats(args.stats_file, ingestor.stats())
    ingestor.stop()
    if args.stats_file:
        _write_stats(args.stats_file, ingestor.stats())
    db.dispose()
    return 0 if ingestor.failed is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
