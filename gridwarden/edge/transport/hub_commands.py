"""Hub → edge messages: one dispatcher that checks them once and hands each to its handler.

The hub talks to an edge on three topics of its own (see :class:`~gridwarden.contract.Topics`):
``config`` (:class:`~gridwarden.contract.EdgeConfigMessage`, retained), ``replay``
(:class:`~gridwarden.contract.ReplayRequest`) and ``snapshot_request``
(:class:`~gridwarden.contract.SnapshotRequest`). Whatever connection receives them, the same
steps apply, here and nowhere else: the topic must be this edge's, the payload at most
``max_bytes``, JSON, the contract's model, and addressed to this edge's id. A message failing
any step is refused with a reason (counted in :attr:`HubCommands.refused`, and passed to the
channel's ``on_refused`` when it has one) and never reaches a handler, so one bad message cannot
stop a paho network thread.

>>> from gridwarden.contract import SnapshotRequest, utcnow
>>> commands = HubCommands("north", "edge-01")
>>> asked = []
>>> commands.on("snapshot_request", SnapshotRequest, lambda m: asked.append(m.camera))
>>> request = SnapshotRequest(edge_id="edge-01", camera="cam-1", wall_time=utcnow())
>>> commands.dispatch(commands.topics.snapshot_request, request.model_dump_json().encode())
>>> asked
['cam-1']
>>> commands.dispatch(commands.topics.snapshot_request, b"not json")
Refusal(channel='snapshot_request', reason='not JSON', version=None)
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from gridwarden.contract import MAX_PAYLOAD_BYTES, Topics

log = logging.getLogger(__name__)

Channel = Literal["config", "replay", "snapshot_request"]
# A configuration message carries a whole YAML file: allow more than an incident.
CONFIG_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Refusal:
    """A hub → edge message that was not handed to its handler, and why."""

    channel: str | None
    reason: str
    version: int | None = None  # of a configuration message whose version could be read


@dataclass
class _Route:
    model: type[BaseModel]
    handler: Callable[[Any], Any]
    on_refused: Callable[[Refusal], Any] | None
    max_bytes: int


class HubCommands:
    """The edge's table of hub → edge channels: model and handler per channel (see the module doc)."""

    def __init__(self, site: str, edge_id: str) -> None:
        self.edge_id = edge_id
        self.topics = Topics(site, edge_id)
        self._routes: dict[str, _Route] = {}
        self.refused: Counter[str] = Counter()

    def on(
        self,
        channel: Channel,
        model: type[BaseModel],
        handler: Callable[[Any], Any],
        *,
        on_refused: Callable[[Refusal], Any] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        """Send valid ``channel`` messages (parsed as ``model``) to ``handler``."""
        limit = max_bytes or (CONFIG_MAX_BYTES if channel == "config" else MAX_PAYLOAD_BYTES)
        self._routes[getattr(self.topics, channel)] = _Route(model, handler, on_refused, limit)

    def subscriptions(self, qos: int = 1) -> list[tuple[str, int]]:
        """The topics to subscribe to, one per registered channel."""
        return [(topic, qos) for topic in self._routes]

    def parse(self, topic: str, payload: bytes) -> BaseModel | Refusal:
        """The message, checked (see the module doc), or why it was refused."""
        route = self._routes.get(topic)
        if route is None:
            return Refusal(None, f"not a topic of this edge: {topic[:200]!r}")
        channel = topic.rsplit("/", 1)[-1]
        if len(payload) > route.max_bytes:
            return Refusal(channel, f"larger than {route.max_bytes} bytes")
        try:
            data = json.loads(payload)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            return Refusal(channel, "not JSON")
        version = data.get("version") if isinstance(data, dict) else None
        version = version if isinstance(version, int) and not isinstance(version, bool) else None
        try:
            message = route.model.model_validate(data)
        except ValidationError as exc:
            return Refusal(channel, f"not a {route.model.__name__}: {str(exc)[:500]}", version)
        target = getattr(message, "edge_id", None)
        if target != self.edge_id:
            return Refusal(channel, f"message is for edge {target!r}, not {self.edge_id!r}", version)
        return message

    def dispatch(self, topic: str, payload: bytes) -> Any:
        """Hand one message to its handler and return what the handler returns, or the
        :class:`Refusal` (logged and counted) when it does not get that far."""
        parsed = self.parse(topic, payload)
        if isinstance(parsed, Refusal):
            self.refused[parsed.channel or "unknown"] += 1
            log.warning("refused a hub message on %s: %s", topic[:200], parsed.reason)
            route = self._routes.get(topic)
            if route is not None and route.on_refused is not None:
                route.on_refused(parsed)
            return parsed
        return self._routes[topic].handler(parsed)
