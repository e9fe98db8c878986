"""Resend requests: the hub asks an edge to send again the events the hub never stored.

Naming: one of three things the project once called "replay" (see ``docs/architecture.md``):
this is the *resend request*. It is still ``ReplayRequest`` on the wire, on the edge's
``.../replay`` topic, with ``schemas/ReplayRequest.schema.json``, and is counted by the Prometheus
metrics ``gridwarden_hub_replay_requests_total`` / ``gridwarden_hub_replay_seqs_requested_total``
and configured by ``hub serve --[no-]request-replays`` / ``--replay-settle-s`` / ``--replay-retry-s``:
those names are kept unchanged so deployed edges, dashboards and unit files keep working.

Why: a PUBACK from the broker does not mean a hub has the event. Measured with Mosquitto 2.0.11
(Debian bookworm): after a broker restart, shared subscriptions (``$share/<group>/...``, through
which the hub consumes incidents) are NOT restored from the persistence file, while plain
subscriptions and queued messages are. Events an edge publishes after the broker is back but
before the hub re-subscribes are acknowledged to the edge and delivered to nobody. The edge keeps
acknowledged events for a while (see :mod:`gridwarden.edge.transport.outbox`); this module notices the hole
and publishes a :class:`~gridwarden.contract.ReplayRequest` on that edge's ``.../replay`` topic.

What counts as missing is read from the DATABASE, never from what this process saw: with two hub
processes on one shared subscription each process sees only part of every edge's stream, and a
seq the other process is storing right now is normal. So, per edge:

* the holes below the highest stored seq are ``EdgeSequence.missing`` (kept by every hub process
  under the edge's row lock), confirmed against ``received_events``;
* the tail is ``highest stored + 1 .. last_seq`` when the edge's latest ``EdgeStatus.last_seq`` is
  higher than anything stored (the events at the end of a stream have no later seq to reveal
  them as a gap);
* a seq is requested only after it has been missing for ``settle_s`` (in-flight messages land
  first), the tail only once the edge's highest stored seq has stopped moving for ``settle_s``
  (a hub that is merely behind is not asked to take the same events twice);
* each seq is requested again no sooner than ``retry_s`` later, doubling up to ``max_retry_s``,
  and given up after ``max_attempts`` (the edge's resend window or bound may have dropped it --
  an ``updated`` dropped by a full outbox is a seq that will never come); attempts start afresh
  when the edge comes back online;
* requested seqs are merged into spans (holes closer than ``merge_gap`` are bridged; the stored
  seqs in between come back as duplicates, which ``(edge_id, seq)`` absorbs), at most
  ``max_span`` seqs per request and ``max_requests`` requests per edge per check;
* nothing is requested from an edge whose latest status says it is offline (requests would only
  pile up in its session) nor from an edge the hub has never stored an event from (the first
  stored seq is the baseline: a new hub does not ask for an edge's whole history).

Two hub processes may each request the same real hole (each keeps its own rate limit): at worst
twice the requests and duplicates, which is harmless; they never request each other's normal
traffic because both decide from the same database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gridwarden.backoff import Backoff
from gridwarden.contract import ReplayRequest, Topics, parse_topic, utcnow
from gridwarden.hub import seq_gaps
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Edge, EdgeSequence, ReceivedEvent

log = logging.getLogger(__name__)

# Most seqs tracked per edge (holes plus tail); beyond that the newest are left for later checks.
MAX_TRACKED_SEQS = 10_000
_IN_CHUNK = 500  # bound on the parameters of one "seq IN (...)" query


@dataclass(frozen=True)
class ResendSettings:
    """Tuning of the resend requests; the defaults suit a LAN broker and edges a few km away."""

    settle_s: float = 2.0
    retry_s: float = 5.0
    max_retry_s: float = 60.0
    max_attempts: int = 8
    max_span: int = 1000
    merge_gap: int = 8
    max_requests: int = 10
    check_interval_s: float = 1.0
    sweep_interval_s: float = 30.0

    def __post_init__(self) -> None:
        if self.settle_s < 0 or self.retry_s <= 0 or self.max_retry_s < self.retry_s:
            raise ValueError("need settle_s >= 0, retry_s > 0 and max_retry_s >= retry_s")
        if min(self.max_attempts, self.max_span, self.max_requests) < 1 or self.merge_gap < 0:
            raise ValueError("max_attempts, max_span and max_requests must be >= 1, merge_gap >= 0")
        if self.check_interval_s <= 0 or self.sweep_interval_s <= 0:
            raise ValueError("check_interval_s and sweep_interval_s must be > 0")


def merge_spans(seqs: Sequence[int], *, max_span: int, merge_gap: int = 0) -> list[tuple[int, int]]:
    """Sorted seqs -> inclusive spans; runs closer than ``merge_gap`` are bridged; no span is
    longer than ``max_span``.

    >>> merge_spans([1, 2, 3, 7, 20], max_span=1000, merge_gap=4)
    [(1, 7), (20, 20)]
    """
    spans: list[tuple[int, int]] = []
    for s in seqs:
        if spans:
            lo, hi = spans[-1]
            if s - hi - 1 <= merge_gap and s - lo < max_span:
                spans[-1] = (lo, s)
                continue
        spans.append((s, s))
    return spans


@dataclass(frozen=True)
class MissingView:
    """One edge's holes, as the database says: ``missing`` is sorted and confirmed unstored."""

    edge_id: str
    highest_stored: int
    missing: list[int]


def load_missing(
    session: Session, edge_id: str, last_seq: int | None, cap: int = MAX_TRACKED_SEQS
) -> MissingView | None:
    """What the database lacks for ``edge_id`` (holes, plus the tail up to ``last_seq``), or
    ``None`` when nothing of that edge was ever stored (no baseline)."""
    row = session.get(EdgeSequence, edge_id, populate_existing=True)
    if row is None or row.highest_seen_seq < 0:
        return None
    top = row.highest_seen_seq
    candidates = set(seq_gaps.expand(seq_gaps.normalise(row.missing), cap))
    if last_seq is not None and last_seq > top:
        candidates.update(range(top + 1, min(last_seq, top + cap) + 1))
    ordered = sorted(candidates)[:cap]
    stored: set[int] = set()
    for i in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[i : i + _IN_CHUNK]
        stored.update(
            session.scalars(
                select(ReceivedEvent.seq).where(
                    ReceivedEvent.edge_id == edge_id, ReceivedEvent.seq.in_(chunk)
                )
            )
        )
    return MissingView(edge_id, top, [s for s in ordered if s not in stored])


@dataclass
class _SeqState:
    noticed_at: float
    next_request_at: float = 0.0
    attempts: int = 0


@dataclass
class _EdgeState:
    site: str | None = None
    online: bool | None = None
    last_seq: int | None = None
    highest_stored: int = -1
    progress_at: float = 0.0
    seqs: dict[int, _SeqState] = field(default_factory=dict)


class ResendPlanner:
    """The decision logic, with no database and no MQTT: given what is missing now, which spans
    to request now. Time is passed in, so tests drive it without sleeping."""

    def __init__(self, settings: ResendSettings | None = None) -> None:
        self.settings = settings or ResendSettings()
        self._edges: dict[str, _EdgeState] = {}
        self.given_up = 0  # seqs abandoned after max_attempts

    def edge(self, edge_id: str) -> _EdgeState:
        return self._edges.setdefault(edge_id, _EdgeState())

    def note_status(self, edge_id: str, *, online: bool, last_seq: int | None) -> None:
        """The edge's latest status. Coming back online restarts the attempt counts: the edge
        may now answer what it could not while away. The Last Will carries no ``last_seq``, so
        a ``None`` keeps the one known."""
        state = self.edge(edge_id)
        if online and state.online is False:
            for seq_state in state.seqs.values():
                seq_state.attempts = 0
                seq_state.next_request_at = 0.0
        state.online = online
        if last_seq is not None:
            state.last_seq = last_seq

    def plan(self, view: MissingView, now: float) -> list[tuple[int, int]]:
        """Spans to request for this edge now; records them as requested."""
        s = self.settings
        state = self.edge(view.edge_id)
        if view.highest_stored != state.highest_stored:
            state.highest_stored = view.highest_stored
            state.progress_at = now
        wanted = view.missing
        wanted_set = set(wanted)
        state.seqs = {seq: st for seq, st in state.seqs.items() if seq in wanted_set}  # filled: forget
        for seq in wanted:
            state.seqs.setdefault(seq, _SeqState(noticed_at=now))
        if state.online is False:
            return []
        tail_settled = now - state.progress_at >= s.settle_s
        due = [
            seq
            for seq in wanted
            if (st := state.seqs[seq]).attempts < s.max_attempts
            and now - st.noticed_at >= s.settle_s
            and now >= st.next_request_at
            and (seq <= view.highest_stored or tail_settled)
        ]
        spans = merge_spans(due, max_span=s.max_span, merge_gap=s.merge_gap)[: s.max_requests]
        abandoned = 0
        for lo, hi in spans:
            for seq in range(lo, hi + 1):
                pending = state.seqs.get(seq)
                if pending is None:
                    continue  # a stored seq bridged into the span
                pending.attempts += 1
                pending.next_request_at = now + Backoff(s.retry_s, s.max_retry_s).delay(pending.attempts)
                abandoned += pending.attempts == s.max_attempts
        if abandoned:
            self.given_up += abandoned
            log.warning(
                "edge %s: %d seq(s) requested %d times without arriving; giving up on them until the "
                "edge reconnects",
                view.edge_id, abandoned, s.max_attempts,
            )  # fmt: skip
        return spans

    def done(self, edge_id: str) -> bool:
        """Nothing tracked as missing for this edge (it need not be checked until told)."""
        state = self._edges.get(edge_id)
        return state is None or not state.seqs


@dataclass(frozen=True)
class StatusNote:
    """What the requester needs from an ingested message (kept free of the ingest types)."""

    edge_id: str
    topic: str
    gap: bool = False
    online: bool | None = None  # set for an edge status
    last_seq: int | None = None


class ResendRequester:
    """Runs the planner on a thread: checks suspect edges every ``check_interval_s`` and every
    edge every ``sweep_interval_s``, and publishes the requests.

    ``publish(topic, payload) -> bool`` sends one QoS 1, non-retained message (False if it could
    not be handed to the client, e.g. while disconnected: the seqs are asked for again later).
    """

    def __init__(
        self,
        db: Database,
        publish: Callable[[str, bytes], bool],
        *,
        requested_by: str,
        settings: ResendSettings | None = None,
        on_request: Callable[[ReplayRequest], None] | None = None,
    ) -> None:
        self.db = db
        self.publish = publish
        self.requested_by = requested_by
        self.planner = ResendPlanner(settings)
        self.settings = self.planner.settings
        self.on_request = on_request
        self._lock = threading.Lock()  # guards _suspects and the planner's status notes
        self._suspects: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0

    # -- fed by the writer thread after each commit

    def observe(self, notes: Iterable[StatusNote]) -> None:
        with self._lock:
            for note in notes:
                state = self.planner.edge(note.edge_id)
                if state.site is None:
                    parts = parse_topic(note.topic)
                    state.site = parts["site"] if parts else None
                if note.online is not None:
                    self.planner.note_status(note.edge_id, online=note.online, last_seq=note.last_seq)
                    self._suspects.add(note.edge_id)
                if note.gap:
                    self._suspects.add(note.edge_id)

    # -- the checking thread

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"{self.requested_by}-resend-requests", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.check_interval_s):
            try:
                self.check()
            except SQLAlchemyError as exc:  # the database is away: the next check tries again
                log.warning(
                    "resend-request check failed: %s", str(exc).splitlines()[0][:300] if str(exc) else exc
                )
            except Exception:
                log.exception("resend-request check failed")

    def check(self, now: float | None = None) -> list[ReplayRequest]:
        """One pass over the suspect edges (all edges when a sweep is due); returns the requests
        published."""
        now = time.monotonic() if now is None else now
        sweep = now >= self._next_sweep
        with self._lock:
            edges = set(self._suspects)
        sent: list[ReplayRequest] = []
        with self.db.session() as session:
            if sweep:
                self._next_sweep = now + self.settings.sweep_interval_s
                edges.update(session.scalars(select(EdgeSequence.edge_id)))
            for edge_id in sorted(edges):
                with self._lock:
                    state = self.planner.edge(edge_id)
                    last_seq = state.last_seq
                if last_seq is None or state.site is None:
                    edge_row = session.get(Edge, edge_id)
                    if edge_row is not None:
                        state.site = state.site or edge_row.site
                        if last_seq is None:
                            last_seq = (edge_row.status or {}).get("last_seq")
                view = load_missing(session, edge_id, last_seq)
                session.rollback()  # end the read snapshot: the next edge sees fresh commits
                with self._lock:
                    spans = self.planner.plan(view, now) if view is not None else []
                    if view is None or self.planner.done(edge_id):
                        self._suspects.discard(edge_id)
                    else:
                        self._suspects.add(edge_id)
                if spans and state.site is None:
                    state.site = self._site_from_events(session, edge_id)
                for lo, hi in spans:
                    request = self._send(edge_id, state.site, lo, hi)
                    if request is not None:
                        sent.append(request)
        return sent

    @staticmethod
    def _site_from_events(session: Session, edge_id: str) -> str | None:
        return session.scalar(select(ReceivedEvent.site).where(ReceivedEvent.edge_id == edge_id).limit(1))

    def _send(self, edge_id: str, site: str | None, lo: int, hi: int) -> ReplayRequest | None:
        if site is None:
            log.warning("edge %s: cannot request a resend of %d..%d: its site is unknown", edge_id, lo, hi)
            return None
        request = ReplayRequest(
            edge_id=edge_id, from_seq=lo, to_seq=hi, requested_by=self.requested_by, wall_time=utcnow()
        )
        if not self.publish(Topics(site, edge_id).replay, request.model_dump_json().encode()):
            return None
        log.info("edge %s: requested a resend of %d..%d (%d seqs)", edge_id, lo, hi, hi - lo + 1)
        if self.on_request is not None:
            self.on_request(request)
        return request
