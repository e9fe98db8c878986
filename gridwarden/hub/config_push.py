"""Sends a stored configuration version to its edge: retained, QoS 1, on ``.../<edge_id>/config``.

Why retained: an edge that is offline when the configuration changes (or that restarts) gets
the newest version from the broker the moment it subscribes, without asking the hub. Why wait
for the PUBACK: the API answers "published" only once the broker holds the message; until then
the version is stored on the hub but not yet delivered (``published_at`` stays empty), and the
API says so instead of pretending.

One :class:`ConfigPublisher` per hub process, shared by the API's threads (paho's ``publish``
is thread-safe; its network loop runs in paho's own thread). The broker's rights
(:mod:`gridwarden.hub.broker_security`) let only the ``hub`` user write config topics.

Example::

    publisher = ConfigPublisher(host="127.0.0.1", port=1883, username="hub", password=secret)
    publisher.connect()
    publisher.publish(store.current("edge-01"))
    publisher.close()
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from gridwarden.contract import EdgeConfigMessage, SnapshotRequest, Topics, utcnow
from gridwarden.hub.config_store import ConfigVersion
from gridwarden.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)


class ConfigPublishError(RuntimeError):
    """The broker did not take the configuration message (down, refused, or timed out)."""


def config_message(version: ConfigVersion) -> EdgeConfigMessage:
    """The wire message for one stored version."""
    return EdgeConfigMessage(
        edge_id=version.edge_id,
        version=version.version,
        yaml=version.yaml,
        sha256=version.sha256,
        author=version.author,
        wall_time=utcnow(),
    )


class ConfigPublisher:
    """A small MQTT 5 client that publishes configuration messages and waits for their PUBACK."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        keepalive: int = 30,
        timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.keepalive = keepalive
        self._connected = threading.Event()
        self._last_error: str | None = None
        self._results: dict[int, ReasonCode] = {}
        self._results_cond = threading.Condition()
        # A client id of its own: the ingest consumer's stable id must not be kicked off the broker.
        broker = MqttSettings(
            host=host,
            port=port,
            username=username,
            password=password,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            keepalive=keepalive,
            reconnect_max_delay=10,
        )
        self._client = make_client(broker, client_id=client_id or f"hub-config-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._started = False

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._last_error = f"broker {self.host}:{self.port} refused the connection: {reason}"
            log.error("%s", self._last_error)
            return
        self._last_error = None
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._results_cond:
            self._results[mid] = reason
            self._results_cond.notify_all()

    # -- public API --------------------------------------------------------------------------

    def connect(self, timeout_s: float | None = None) -> bool:
        """Start connecting (paho keeps retrying in the background); wait up to ``timeout_s``
        for the connection and return whether it is up. A hub may start before its broker."""
        if not self._started:
            self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
            self._client.loop_start()
            self._started = True
        return self._connected.wait(self.timeout_s if timeout_s is None else timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, version: ConfigVersion) -> EdgeConfigMessage:
        """Publish ``version`` retained with QoS 1 and wait for the broker's PUBACK; raise
        :class:`ConfigPublishError` when it does not come with success in ``timeout_s``."""
        message = config_message(version)
        topic = Topics(version.site, version.edge_id).config
        self._publish_and_wait(topic, message.model_dump_json(), retain=True)
        log.info("published configuration v%d of %s on %s", version.version, version.edge_id, topic)
        return message

    def request_snapshot(self, site: str, edge_id: str, camera: str | None, requested_by: str | None) -> None:
        """Ask an edge to upload a camera's latest picture now (QoS 1, not retained: a request
        that finds the edge offline is moot — it uploads one when its camera starts anyway)."""
        message = SnapshotRequest(
            edge_id=edge_id, camera=camera, requested_by=requested_by, wall_time=utcnow()
        )
        self._publish_and_wait(
            Topics(site, edge_id).snapshot_request, message.model_dump_json(), retain=False
        )

    def _publish_and_wait(self, topic: str, payload: str, *, retain: bool) -> None:
        if not self._started:  # never connected (a hub built but not started): no point waiting
            raise ConfigPublishError(f"no connection to the broker {self.host}:{self.port} was started")
        if not self._connected.wait(self.timeout_s):
            raise ConfigPublishError(
                self._last_error or f"not connected to the broker {self.host}:{self.port}"
            )
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConfigPublishError(f"publish on {topic} failed: {mqtt.error_string(info.rc)}")
        with self._results_cond:
            if not self._results_cond.wait_for(lambda: info.mid in self._results, self.timeout_s):
                raise ConfigPublishError(f"no PUBACK for {topic} within {self.timeout_s:.0f}s")
            reason = self._results.pop(info.mid)
        if reason.is_failure:
            raise ConfigPublishError(f"broker refused the publish on {topic}: {reason}")

    def close(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False
        self._connected.clear()
