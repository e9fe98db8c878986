"""Publishes the outbox to the MQTT broker (paho-mqtt 2.x, MQTT 5, QoS 1).

Delivery model: *at least once, in seq order, from disk*.

* :meth:`IncidentPublisher.publish_incident` only writes the event into the :class:`Outbox`
  (durable) and wakes the sender thread; it never touches the network, so the pipeline cannot be
  stalled by a slow or absent broker.
* One sender thread owns all publishing. While connected it keeps up to ``inflight`` incident
  publishes unacked, reading the outbox in seq order after the last seq it sent.
* paho's network thread only records PUBACKs (a deque of mids) and connection changes (flags);
  the sender maps mid -> seq and deletes acked rows in batches. Callbacks therefore take no lock
  that a publishing thread holds: paho calls ``on_publish`` while holding its own message mutex,
  and a lock taken in both places would deadlock.
* After every (re)connect the sender forgets its mid map and republishes from the *oldest* row
  in the outbox. paho's in-memory queue is not trusted to survive (a restart empties it);
  whatever the broker already had arrives twice and the hub drops it by ``(edge_id, seq)``.
* A PUBACK with a failure reason code (e.g. not authorised) does not delete the row: it is
  logged and retried on the next connection rather than lost.

Resend on request: the broker's PUBACK does not prove a hub has the event (Mosquitto 2.0.11 drops
shared subscriptions on restart, so events acknowledged before the hubs re-subscribe reach
nobody). The outbox therefore keeps acknowledged rows for a while, and the publisher subscribes
(QoS 1) to its own ``.../replay`` topic. A valid :class:`~gridwarden.contract.ReplayRequest` for
this edge (a *resend request*; the wire and topic keep the older word) re-marks that span
pending (:meth:`Outbox.resend`); the sender rewinds its cursor and
sends those rows again, in seq order, skipping any still in flight. Anything else on that topic
(bad JSON, wrong schema, another edge's id, an inverted span) is logged and ignored. The request
is handled on the sender thread, never in paho's callback (see the locking note above).

Status: on every connect, and then every ``status_interval_s`` (default 10 s), the retained
``EdgeStatus(online=True)`` is published with ``last_seq`` (the highest seq assigned) and the
outbox depth, so a hub learns the tail of the stream even when the last events were lost; the
MQTT Last Will (retained ``EdgeStatus(online=False)``) covers crashes and network loss; a clean
:meth:`stop` publishes the offline status itself, with ``last_seq``. Camera statuses are latest-value: only the
newest per camera is kept in memory and (re)published retained on each connect; they do not go
through the outbox because a stale camera state is worth nothing after the fact.

Example::

    outbox = Outbox("/var/lib/gridwarden/outbox.sqlite3")
    pub = IncidentPublisher(site="north", edge_id="edge-01", outbox=outbox,
                            mqtt=MqttSettings(host="hub.example", port=8883, tls_ca="ca.pem"))
    pub.start()
    pub.publish_incident(event)      # returns the event with its seq
    ...
    pub.stop(timeout=5.0)            # drains what it can, then marks the edge offline
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gridwarden.contract import CameraStatus, EdgeStatus, IncidentEvent, ReplayRequest, Topics, utcnow
from gridwarden.edge.transport.hub_commands import HubCommands
from gridwarden.edge.transport.outbox import Outbox
from gridwarden.mqtt import MqttClient, MqttSettings, make_client

log = logging.getLogger(__name__)

# How long the sender sleeps when nothing wakes it: bounds the latency of anything missed.
_IDLE_WAIT_S = 0.5
# Default period of the retained online status (with last_seq) while connected.
DEFAULT_STATUS_INTERVAL_S = 10.0
# Resend requests waiting for the sender; more than this in one idle period are refused (logged).
_MAX_QUEUED_RESEND_REQUESTS = 1000


class _DropNotConnectedNoise(logging.Filter):
    """paho 2.2 logs "Client is not connected" at ERROR on every loop pass without a socket
    (each retry during an outage, and every clean stop). Connection state is reported by this
    module's own warnings and :attr:`IncidentPublisher.last_error`, so that line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOG = logging.getLogger(f"{__name__}.paho")
_PAHO_LOG.addFilter(_DropNotConnectedNoise())


class IncidentPublisher:
    """Sends an edge's incident events from its :class:`Outbox` to MQTT; see the module doc."""

    def __init__(
        self,
        *,
        site: str,
        edge_id: str,
        outbox: Outbox,
        mqtt: MqttSettings,
        inflight: int = 100,
        version: str | None = None,
        model: str | None = None,
        config_version: str | None = None,
        status_interval_s: float = DEFAULT_STATUS_INTERVAL_S,
    ) -> None:
        if inflight < 1:
            raise ValueError(f"inflight must be >= 1, got {inflight}")
        if not status_interval_s > 0:
            raise ValueError(f"status_interval_s must be > 0, got {status_interval_s}")
        # Building a status validates site and edge_id against the contract's identifier rules.
        EdgeStatus(edge_id=edge_id, site=site, online=False, wall_time=utcnow())
        self.site = site
        self.edge_id = edge_id
        self.outbox = outbox
        self.settings = mqtt
        self.inflight = inflight
        self.status_interval_s = status_interval_s
        self.topics = Topics(site, edge_id)
        # Resend requests arrive on this connection (its persistent session keeps them while away).
        self._commands = HubCommands(site, edge_id)
        self._commands.on("replay", ReplayRequest, self._queue_resend_request)
        self._status_fields: dict[str, Any] = {
            "version": version,
            "model": model,
            "config_version": config_version,
        }

        # Shared between paho's network thread and the sender: plain flags, a deque, an event.
        self._wake = threading.Event()
        self._acked_mids: collections.deque[int] = collections.deque()
        self._resend_requests: collections.deque[ReplayRequest] = collections.deque()
        self._connected = threading.Event()
        self._session_started = False  # set by on_connect, consumed by the sender
        self._stopping = False
        self._last_error: str | None = None

        # Owned by the sender thread only.
        self._mid_to_seq: dict[int, int] = {}
        self._inflight_seqs: set[int] = set()
        self._cursor: int | None = None
        self._next_status_at = 0.0
        self.resends_served = 0  # resend requests applied (a metric)

        self._camera_lock = threading.Lock()
        self._camera_latest: dict[str, str] = {}
        self._camera_dirty: set[str] = set()

        self._client = self._make_client()
        self._sender: threading.Thread | None = None

    # -- setup -------------------------------------------------------------------------------

    def _status_payload(self, online: bool, *, with_outbox: bool = True) -> str:
        """The retained edge status. The Last Will is built before any connection, so it
        carries neither depth nor ``last_seq`` (both would be stale when it fires)."""
        return EdgeStatus(
            edge_id=self.edge_id,
            site=self.site,
            online=online,
            outbox_depth=self.outbox.depth() if online and with_outbox else None,
            last_seq=self.outbox.last_seq() if with_outbox else None,
            wall_time=utcnow(),
            **self._status_fields,
        ).model_dump_json()

    def _make_client(self) -> MqttClient:
        s = self.settings
        client = make_client(s, client_id=s.client_id or self.edge_id)
        client.will_set(
            self.topics.status, self._status_payload(online=False, with_outbox=False), qos=1, retain=True
        )
        client.max_inflight_messages_set(self.inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.enable_logger(_PAHO_LOG)
        return client

    # -- paho callbacks (network thread): record and wake, nothing else ----------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            hint = (
                " (check the MQTT username/password and the broker's ACL)"
                if reason.value in (0x86, 0x87)
                else ""
            )
            where = f"{self.settings.host}:{self.settings.port}"
            self._last_error = f"broker {where} refused the connection: {reason}{hint}"
            log.error("%s", self._last_error)
            return
        self._last_error = None
        self._client.last_connect_exception = None
        # Every connect: the broker may have lost the session (or a persisted one may lack it).
        client.subscribe(self._commands.subscriptions())
        self._session_started = True
        self._connected.set()
        log.info("connected to %s:%s as %s", self.settings.host, self.settings.port, self.edge_id)
        self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._stopping:
            log.warning("disconnected from broker: %s; will reconnect and resend the outbox", reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused publish mid=%d: %s; the event stays in the outbox", mid, reason)
            return
        self._acked_mids.append(mid)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Only the ``.../replay`` (resend request) topic is subscribed. Validate (cheap, no locks) and queue."""
        self._commands.dispatch(message.topic, bytes(message.payload))

    def _queue_resend_request(self, request: ReplayRequest) -> None:
        """A valid request for this edge (checked by the dispatcher), for the sender thread."""
        if request.from_seq > request.to_seq:
            log.warning(
                "ignoring a resend request with an inverted span %d..%d", request.from_seq, request.to_seq
            )
            return
        if len(self._resend_requests) >= _MAX_QUEUED_RESEND_REQUESTS:
            log.warning("resend request %d..%d ignored: too many queued", request.from_seq, request.to_seq)
            return
        self._resend_requests.append(request)
        self._wake.set()

    # -- public API --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (the broker may be down; paho keeps retrying with backoff)
        and start the sender thread. Returns at once."""
        if self._sender is not None:
            raise RuntimeError("publisher already started")
        self._stopping = False
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive, clean_start=False, properties=props)
        self._client.loop_start()
        self._sender = threading.Thread(
            target=self._run_sender, name=f"mqtt-sender-{self.edge_id}", daemon=True
        )
        self._sender.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Drain what can be drained within ``timeout``, publish the offline status, disconnect.
        Undelivered events stay in the outbox for the next start."""
        if self._sender is None:
            return
        deadline = time.monotonic() + timeout
        if self._connected.is_set():
            self.wait_drained(max(0.0, deadline - time.monotonic()))
        self._stopping = True
        self._wake.set()
        self._sender.join(max(0.1, deadline - time.monotonic()))
        if not self._sender.is_alive():
            self._flush_acks()
        if self._connected.is_set():
            info = self._client.publish(
                self.topics.status, self._status_payload(online=False), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except (RuntimeError, ValueError) as exc:
                log.warning("could not publish offline status on stop: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._sender = None

    def publish_incident(self, event: IncidentEvent) -> IncidentEvent:
        """Store ``event`` durably in the outbox (assigning its seq), then wake the sender.
        Returns the stored event. Raises ``ValueError`` if it belongs to another edge."""
        if event.edge_id != self.edge_id or event.site != self.site:
            raise ValueError(
                f"event for {event.site}/{event.edge_id} given to the publisher of {self.site}/{self.edge_id}"
            )
        stored = self.outbox.enqueue(event)
        self._wake.set()
        return stored

    def set_config_version(self, version: str | None) -> None:
        """Report the configuration version the edge now runs: the retained EdgeStatus is
        republished at once, so the hub's fleet view shows it without waiting for the interval."""
        self._status_fields["config_version"] = version
        self._next_status_at = 0.0
        self._wake.set()

    def publish_camera_status(self, status: CameraStatus) -> None:
        """Publish ``status`` retained on the camera's status topic, now if connected, else on
        the next connect. Only the latest status per camera is kept."""
        if status.edge_id != self.edge_id:
            raise ValueError(
                f"camera status for edge {status.edge_id} given to the publisher of {self.edge_id}"
            )
        with self._camera_lock:
            self._camera_latest[status.camera] = status.model_dump_json()
            self._camera_dirty.add(status.camera)
        self._wake.set()

    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed (refused CONNACK, TLS or socket error), or
        ``None`` once connected."""
        if self._last_error is not None:
            return self._last_error
        exc = self._client.last_connect_exception
        if exc is not None and not self._connected.is_set():
            return f"cannot connect to {self.settings.host}:{self.settings.port}: {exc}"
        return None

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Block until the outbox is empty (every event acked) or ``timeout``; return which."""
        deadline = time.monotonic() + timeout
        while True:
            if self.outbox.depth() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    # -- sender thread -----------------------------------------------------------------------

    def _run_sender(self) -> None:
        while not self._stopping:
            self._wake.wait(_IDLE_WAIT_S)
            self._wake.clear()
            if self._stopping:
                break
            try:
                self._send_once()
            except Exception:  # the sender must outlive a bad moment; the outbox keeps the data
                log.exception("mqtt sender step failed; retrying")
                time.sleep(_IDLE_WAIT_S)

    def _flush_acks(self) -> None:
        seqs = []
        while self._acked_mids:
            seq = self._mid_to_seq.pop(self._acked_mids.popleft(), None)
            if seq is not None:
                seqs.append(seq)
                self._inflight_seqs.discard(seq)
        if seqs:
            self.outbox.ack_many(seqs)

    def _apply_resend_requests(self) -> None:
        """Re-mark requested spans pending and rewind the cursor so they are sent again."""
        while self._resend_requests:
            request = self._resend_requests.popleft()
            outcome = self.outbox.resend(request.from_seq, request.to_seq)
            self.resends_served += 1
            log.info(
                "resend %d..%d requested by %s: %d to resend, %d already pending, %d no longer stored",
                request.from_seq, request.to_seq, request.requested_by or "?",
                outcome.remarked, outcome.already_pending, outcome.unavailable,
            )  # fmt: skip
            if outcome.unavailable:
                log.warning(
                    "resend %d..%d: %d event(s) are no longer in the outbox (resend window or bound)",
                    request.from_seq, request.to_seq, outcome.unavailable,
                )  # fmt: skip
            if self._cursor is not None and self._cursor >= request.from_seq:
                self._cursor = request.from_seq - 1

    def _send_once(self) -> None:
        self._flush_acks()
        self._apply_resend_requests()
        if not self._connected.is_set():
            return
        if self._session_started:
            self._session_started = False
            self._begin_session()
        elif time.monotonic() >= self._next_status_at:
            self._publish_online_status()
        self._send_camera_statuses()
        room = self.inflight - len(self._mid_to_seq)
        if room <= 0:
            return
        # Every PUBACK and every enqueue sets _wake, so a full window or a new row brings us back.
        # After a resend request rewound the cursor, rows still in flight are skipped, not sent twice.
        while room > 0:
            rows = self.outbox.pending_raw(room + len(self._inflight_seqs), after_seq=self._cursor)
            if not rows:
                return
            for seq, payload in rows:
                self._cursor = seq
                if seq in self._inflight_seqs:
                    continue
                info = self._client.publish(self.topics.incidents, payload, qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    # Lost the connection mid-batch: the next connect resends from the outbox.
                    return
                self._mid_to_seq[info.mid] = seq
                self._inflight_seqs.add(seq)
                room -= 1
                if room == 0:
                    return

    def _begin_session(self) -> None:
        """A fresh connection: forget old mids, resend the outbox from its oldest row,
        announce the edge online and re-send every camera's latest status."""
        self._mid_to_seq.clear()
        self._inflight_seqs.clear()
        self._cursor = None
        self._publish_online_status()
        with self._camera_lock:
            self._camera_dirty.update(self._camera_latest)

    def _publish_online_status(self) -> None:
        """Retained online status with the current ``last_seq``: on connect and periodically,
        so a hub that lost the tail of the stream learns how far it goes."""
        self._next_status_at = time.monotonic() + self.status_interval_s
        self._client.publish(self.topics.status, self._status_payload(online=True), qos=1, retain=True)

    def _send_camera_statuses(self) -> None:
        with self._camera_lock:
            if not self._camera_dirty:
                return
            todo = {camera: self._camera_latest[camera] for camera in self._camera_dirty}
            self._camera_dirty.clear()
        for camera, payload in todo.items():
            info = self._client.publish(self.topics.camera_status(camera), payload, qos=1, retain=True)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                with self._camera_lock:
                    self._camera_dirty.add(camera)


__all__ = ["IncidentPublisher", "MqttSettings"]  # MqttSettings lives in gridwarden.mqtt
