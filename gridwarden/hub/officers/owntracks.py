"""The hub's OwnTracks consumer: officers' positions over MQTT, stored in batches.

Subscribes to ``$share/<group>/owntracks/+/+`` (QoS 1) with its own client id beside the
incident consumer, so hub processes split the position stream as they split incidents.
Messages are batched (up to ``batch_max`` or ``batch_wait_s``) into one transaction and
acknowledged only after it commits: a crash loses nothing and a redelivered fix is stored once
(unique officer/source/time). A malformed message is counted and dropped alone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.officers.positions import (
    OWNTRACKS_SUBSCRIPTION,
    Fix,
    PositionError,
    parse_owntracks,
    record_fixes,
)

log = logging.getLogger(__name__)


@dataclass
class _Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes
    arrived: float = field(default_factory=time.monotonic)


class OwnTracksConsumer:
    """Store officers' OwnTracks positions from the broker until :meth:`stop`."""

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
        batch_max: int = 500,
        batch_wait_s: float = 0.05,
    ) -> None:
        self.db = db
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.group = group
        self.client_id = client_id or f"hub-{group}-owntracks"
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.counts: Counter[str] = Counter()
        self._inbox: queue.Queue[_Inbound] = queue.Queue()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._worker: threading.Thread | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = lambda *_a: self._ready.clear()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            log.error("owntracks consumer: broker refused connection: %s", reason_code)
            return
        client.subscribe([(f"$share/{self.group}/{OWNTRACKS_SUBSCRIPTION}", SubscribeOptions(qos=1))])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reason_codes: Any, _p: Any) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("owntracks consumer: subscription refused: %s", reason_codes)
            return
        self._ready.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(_Inbound(message.mid, message.qos, message.topic, bytes(message.payload)))

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect_async(
            self.mqtt_host, self.mqtt_port, keepalive=30, clean_start=False, properties=props
        )
        self._worker = threading.Thread(target=self._run, name=f"{self.client_id}-writer", daemon=True)
        self._worker.start()
        self._client.loop_start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def stats(self) -> dict[str, int]:
        return dict(self.counts)

    def _collect(self) -> list[_Inbound]:
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = first.arrived + self.batch_wait_s
        while len(batch) < self.batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not self._stopping.is_set() or not self._inbox.empty():
            batch = self._collect()
            if batch:
                self._store(batch)

    def store_messages(self, messages: list[tuple[str, bytes]]) -> None:
        """Parse and store (topic, payload) pairs in one transaction (also used by the bench)."""
        now = utcnow()
        fixes: list[Fix] = []
        for topic, payload in messages:
            self.counts["received"] += 1
            try:
                fix = parse_owntracks(topic, payload, now)
            except PositionError as exc:
                self.counts["rejected"] += 1
                log.warning("owntracks %s refused: %s", topic[:200], exc)
                continue
            if fix is None:
                self.counts["ignored"] += 1
            else:
                fixes.append(fix)
        if fixes:
            with self.db.write_session() as session, session.begin():
                owners = record_fixes(session, fixes, now)
            self.counts["stored"] += sum(1 for o in owners if o is not None)
            self.counts["unknown_officer"] += sum(1 for o in owners if o is None)

    def _store(self, batch: list[_Inbound]) -> None:
        delay = 0.05
        while True:
            try:
                self.store_messages([(m.topic, m.payload) for m in batch])
                break
            except Exception:  # database down or locked: keep the batch unacknowledged, retry
                log.exception("owntracks: storing %d positions failed; retrying", len(batch))
                if self._stopping.is_set():
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        for m in batch:
            if m.qos > 0:
                self._client.ack(m.mid, m.qos)
