"""The hub's MQTT consumer (MQTT ingestion): edge messages in, rows committed, then (and only then) acknowledged.

:class:`HubIngestor` holds an MQTT 5 persistent session (``clean_start`` false, a session expiry,
a stable client id) so messages published while the hub is down wait in the broker. Incidents
come through a shared subscription (``$share/<group>/...``) so several hub processes split the
stream; retained edge and camera status topics are subscribed without ``$share`` so every hub
process sees them. Messages are acknowledged manually after the transaction that stored them
(:func:`~gridwarden.hub.ingest.storage.ingest_batch`) committed: a hub killed mid-stream loses
nothing, and what it committed but had not acknowledged comes back as a duplicate that
``(edge_id, seq)`` catches.

Why batches: one transaction per message is bounded by commit latency; a batch (``batch_max``
messages or ``batch_wait_s`` after the first, whichever comes first) amortises it. The broker is
told (MQTT 5 Receive Maximum) to keep up to two batches in flight unacknowledged, so the next
batch fills while this one commits.

Resend requests: a broker can acknowledge an edge's event and still lose it before any hub has it
(Mosquitto 2.0.11 does not restore shared subscriptions after a restart). After each commit the
consumer tells a :class:`~gridwarden.hub.resend_requests.ResendRequester` about gaps and edge statuses; it
compares what the DATABASE holds with ``EdgeStatus.last_seq`` and the per-edge holes and asks the
edge (``.../replay``, QoS 1) to send the missing spans again, rate-limited. See
:mod:`gridwarden.hub.resend_requests`; ``stats()`` counts ``resend_requests`` and ``resend_seqs_requested`` (exported under the
older Prometheus names ``gridwarden_hub_replay_*``, kept for dashboards).

Malformed messages (oversized, not JSON, wrong schema, wrong topic, edge/site/camera in the
payload different from the topic) are rejected: logged with the reason, counted by reason in
``rejected_messages`` and acknowledged, so they are neither redelivered forever nor able to stop
the consumer. A valid message that the database keeps refusing is found by retrying its batch one
message at a time and is counted as ``storage_error``; a database that is down is waited for,
with nothing acknowledged meanwhile.

Measured with ``bench/bench_ingest.py`` (2-core machine shared with other work): 1,500–2,800
events/s into PostgreSQL per hub process, ~2,400 into SQLite; p95 publish-to-commit 55–125 ms at
200 events/s. One transaction per message instead of per batch: ~100 events/s.

The consumer runs inside ``gridwarden hub serve`` (built by :func:`gridwarden.hub.app.build_hub`);
several ``hub serve`` processes with one ``--group`` split the stream.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from gridwarden.backoff import Backoff
from gridwarden.contract import (
    ReplayRequest,
    Topics,
    utcnow,
)
from gridwarden.hub import dead_letters, security_counters, seq_gaps
from gridwarden.hub.cases import (
    DEFAULT_MERGE_IOU,
    DEFAULT_MERGE_WINDOW_S,
)
from gridwarden.hub.db.engine import Database
from gridwarden.hub.ingest.results import IngestResult, Outcome, RejectReason
from gridwarden.hub.ingest.storage import count_rejection, ingest_batch
from gridwarden.hub.ingest.validation import Rejection
from gridwarden.hub.resend_requests import ResendRequester, ResendSettings, StatusNote
from gridwarden.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)

DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600


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
                "resend_requests": c["resend_requests"],
                "resend_seqs_requested": c["resend_seqs_requested"],
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
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        batch_max: int = 200,
        batch_wait_s: float = 0.02,
        merge_window_s: float = DEFAULT_MERGE_WINDOW_S,
        merge_iou: float = DEFAULT_MERGE_IOU,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        keepalive_s: int = 30,
        resend: ResendSettings | None = None,
        request_resends: bool = True,
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
        broker = MqttSettings(
            host=mqtt_host,
            port=mqtt_port,
            username=username,
            password=password,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            reconnect_max_delay=10,
        )
        self._client = make_client(broker, client_id=self.client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._resend_requester = (
            ResendRequester(
                db,
                self._publish_resend_request,
                requested_by=self.client_id,
                settings=resend,
                on_request=self._count_resend_request,
            )
            if request_resends
            else None
        )

    def _publish_resend_request(self, topic: str, payload: bytes) -> bool:
        """Hand a resend request (``ReplayRequest`` on the wire) to paho (QoS 1, not retained); refused while disconnected so a
        request is not queued behind an outage (the requester asks again later)."""
        if not self._ready.is_set():
            return False
        return self._client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    def _count_resend_request(self, request: ReplayRequest) -> None:
        self._stats.note("resend_requests")
        self._stats.note("resend_seqs_requested", request.to_seq - request.from_seq + 1)

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
        if self._resend_requester is not None:
            self._resend_requester.start()
        self._client.loop_start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until connected and subscribed; True if so within ``timeout``."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Store and acknowledge what has arrived, then disconnect (the session stays on the broker)."""
        self._stopping.set()
        if self._resend_requester is not None:
            self._resend_requester.stop()
        if self._worker is not None:
            self._worker.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def counters(self) -> IngestStats:
        """The counters behind :meth:`stats` (what ``/metrics`` exports)."""
        return self._stats

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
        retry = Backoff(0.05, 2.0)  # while the database is away
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
                self._tell_resend_requester(results)
                return
            time.sleep(retry.delay(attempt))

    def _tell_resend_requester(self, results: Sequence[IngestResult]) -> None:
        if self._resend_requester is None:
            return
        notes = [
            StatusNote(r.edge_id, r.topic, gap=bool(r.gap), online=r.edge_online, last_seq=r.edge_last_seq)
            for r in results
            if r.edge_id is not None and (r.gap or r.edge_online is not None)
        ]
        if notes:
            self._resend_requester.observe(notes)

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
        rejection = Rejection(RejectReason.STORAGE_ERROR, f"{exc.__class__.__name__}: {str(exc)[:400]}")
        log.error(
            "hub %s: dead letter on %r, it cannot be stored: %s",
            self.client_id,
            item.topic[:200],
            rejection.detail,
        )
        for attempt in range(3):
            try:
                with self.db.write_session() as session, session.begin():
                    count_rejection(session, item.topic, rejection, utcnow(), item.payload)
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
