"""One way to open an MQTT connection, for the edge and the hub alike.

Every Gridwarden connection is MQTT 5 with a stable client id, optional user name and password,
optional TLS (a CA to verify the broker, a client certificate for brokers that require one) and a
bounded reconnect delay. Four paho clients used to be built by hand (the edge's incident
publisher and config listener, the hub's ingest consumer and config publisher) and only the edge
could use TLS; :func:`make_client` is now the one place that knows how.

>>> settings = MqttSettings(host="hub.example", port=8883, tls_ca="ca.pem")
>>> settings.uses_tls
True
>>> client = make_client(MqttSettings(), client_id="edge-01-config")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode


@dataclass
class MqttSettings:
    """How to reach the broker. ``client_id`` defaults to the caller's stable id (the edge id, or
    ``hub-<group>``): a stable id is what makes the broker keep the session across reconnects."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    keepalive: int = 30
    client_id: str | None = None
    reconnect_min_delay: int = 1
    reconnect_max_delay: int = 30
    # MQTT 5 drops a session at disconnect unless this is set; a week rides out long outages.
    session_expiry_s: int = 7 * 24 * 3600

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)


class MqttClient(mqtt.Client):
    """paho client that remembers why the last connection attempt failed at the socket/TLS
    level (paho's loop swallows the exception and only retries)."""

    last_connect_exception: BaseException | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_connect_exception = exc
            raise


def make_client(settings: MqttSettings, *, client_id: str, manual_ack: bool = False) -> MqttClient:
    """An MQTT 5 client for ``settings`` (credentials, TLS, reconnect delays), not connected yet.

    ``client_id`` is explicit because one process may hold several connections (a broker drops
    the older of two clients with the same id). ``manual_ack``: the caller acknowledges each
    message after storing it (the hub's ingest)."""
    client = MqttClient(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.uses_tls:
        client.tls_set(ca_certs=settings.tls_ca, certfile=settings.tls_cert, keyfile=settings.tls_key)
        client.tls_insecure_set(settings.tls_insecure)
    client.reconnect_delay_set(min_delay=settings.reconnect_min_delay, max_delay=settings.reconnect_max_delay)
    return client
