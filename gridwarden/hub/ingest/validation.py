"""Validation of one MQTT message against the wire contract, before anything touches the database.

Malformed messages (oversized, not JSON, wrong schema, wrong topic, edge/site/camera in the
payload different from the topic) become a :class:`Rejection` with its reason; the storage layer
counts them and the consumer acknowledges them, so they are neither redelivered forever nor able
to stop the consumer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from gridwarden.contract import (
    MAX_PAYLOAD_BYTES,
    CameraStatus,
    EdgeStatus,
    IncidentEvent,
    parse_topic,
)
from gridwarden.hub.ingest.results import RejectReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    reason: RejectReason
    detail: str


Parsed = IncidentEvent | EdgeStatus | CameraStatus | None  # None: an empty retained message
_CHANNEL_MODELS: dict[str, type[IncidentEvent | EdgeStatus | CameraStatus]] = {
    "incidents": IncidentEvent,
    "status": EdgeStatus,
    "camera_status": CameraStatus,
}


def validate_message(topic: str, payload: bytes) -> Parsed | Rejection:
    """Check one MQTT message against the wire contract and its topic; no database needed."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    parts = parse_topic(topic)
    if parts is None or parts["channel"] not in _CHANNEL_MODELS:
        return Rejection(RejectReason.WRONG_TOPIC, f"not a topic the hub consumes: {topic[:200]!r}")
    channel = parts["channel"]
    if not payload and channel != "incidents":
        return None
    try:
        text = payload.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Rejection(RejectReason.NOT_JSON, str(exc)[:200])
    if "\\u0000" in text:
        # PostgreSQL can store neither NUL in text nor the \u0000 escape in jsonb: refusing it here
        # keeps one such message from failing (and so blocking) every batch it lands in.
        return Rejection(RejectReason.SCHEMA, "NUL character (\\u0000) in payload")
    model = _CHANNEL_MODELS[channel]
    expected_type = model.model_fields["type"].default
    if isinstance(data, dict) and "type" in data and data["type"] != expected_type:
        return Rejection(RejectReason.WRONG_TOPIC, f"a {data['type']!r} message on a {channel} topic")
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        return Rejection(RejectReason.SCHEMA, short_validation_error(exc))
    if message.edge_id != parts["edge_id"]:
        return Rejection(
            RejectReason.EDGE_MISMATCH,
            f"payload edge_id {message.edge_id!r} on topic of {parts['edge_id']!r}",
        )
    site = getattr(message, "site", parts["site"])
    if site != parts["site"]:
        return Rejection(
            RejectReason.EDGE_MISMATCH, f"payload site {site!r} on topic of site {parts['site']!r}"
        )
    if isinstance(message, CameraStatus) and message.camera != parts["camera"]:
        return Rejection(
            RejectReason.CAMERA_MISMATCH, f"payload camera {message.camera!r} on topic of {parts['camera']!r}"
        )
    return message


def short_validation_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5])
    return f"{len(errors)} error(s): {text}"[:500]
