"""Plain paho clients standing in for the hub in the publisher tests.

Nothing here uses gridwarden's publisher: the point is to observe the wire as a real consumer would.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class HubSubscriber:
    """A persistent-session (clean_session=False), QoS 1 subscriber that records every message.

    It reconnects by itself when the broker comes back, and the broker keeps its queue meanwhile.
    """

    port: int
    topics: list[str]
    client_id: str = "hub-probe"
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain)))

    def start(self, timeout: float = 10.0) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("hub probe did not get its SUBACK")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def wait_for(self, predicate, timeout: float, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_retained(port: int, topic: str, timeout: float = 3.0) -> bytes | None:
    """Connect a fresh clean client, return the retained payload on ``topic`` (None if none)."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"retained-{uuid.uuid4().hex[:8]}")

    def on_connect(c: mqtt.Client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        c.subscribe(topic, 1)

    def on_message(c: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        if msg.retain:
            got.append(msg.payload)
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None
