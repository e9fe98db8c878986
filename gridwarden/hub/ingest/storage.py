"""Storage of validated messages on a SQLAlchemy session, no MQTT: store each event once, fold it
into its incident, open or join a case, keep the per-edge sequence bookkeeping.

:func:`ingest_batch` / :func:`ingest_payload` are what the consumer calls per batch; tests drive
them directly. Duplicates (QoS 1 redelivery after a reconnect) are caught by ``(edge_id, seq)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Text, and_, column, insert, or_, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from gridwarden.contract import (
    CameraStatus,
    EdgeStatus,
    IncidentEvent,
    utcnow,
)
from gridwarden.hub import dead_letters, seq_gaps
from gridwarden.hub.cases import (
    DEFAULT_MERGE_IOU,
    DEFAULT_MERGE_WINDOW_S,
    CaseMatcher,
    note_incident_activity,
)
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
from gridwarden.hub.ingest.results import IngestResult, Outcome, RejectReason
from gridwarden.hub.ingest.validation import Rejection, validate_message

log = logging.getLogger(__name__)


def _insert(session: Session, model: type[Any]) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_*`` on both SQLite and PostgreSQL."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def count_rejection(
    session: Session, topic: str, rejection: Rejection, now: datetime, payload: bytes | None = None
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
            if isinstance(item, Rejection):
                log.warning("rejected message on %r: %s (%s)", topic[:200], item.reason, item.detail)
                count_rejection(session, topic, item, now, payload)
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
        rejection = Rejection(
            RejectReason.INCIDENT_CONFLICT,
            f"incident {event.incident_id} belongs to {incident.edge_id}/{incident.camera}, "
            f"not {event.edge_id}/{event.camera}",
        )
        log.warning("rejected message on %r: %s (%s)", topic[:200], rejection.reason, rejection.detail)
        count_rejection(session, topic, rejection, now, raw)
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
