"""Dead letters: MQTT messages the hub could not store, kept with the reason and acknowledged.

One message that the hub cannot store must never stop ingestion (it once did: one event with
``media_time: 1e20`` killed the writer thread, and the broker redelivered it after every restart).
Every message is stored in isolation when its batch fails; one that still fails -- or that the
wire contract refuses -- lands here with its reason and (the first
:data:`DEAD_LETTER_PAYLOAD_BYTES` of) its payload, is acknowledged, and ingestion goes on.

Admins read them at ``GET /api/v1/dead-letters``; ``gridwarden_hub_dead_letters_total{reason}``
counts them. The table keeps the newest :data:`KEEP_DEAD_LETTERS` rows, so a flood of hostile
messages cannot fill the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gridwarden.contract import parse_topic
from gridwarden.hub.db.models import DeadLetter

DEAD_LETTER_PAYLOAD_BYTES = 16 * 1024
KEEP_DEAD_LETTERS = 10_000


def record(session: Session, topic: str, payload: bytes, reason: str, detail: str, now: datetime) -> None:
    """Add one dead letter inside the caller's transaction."""
    parts = parse_topic(topic)
    edge_id = parts["edge_id"][:64] if parts else None
    session.add(
        DeadLetter(
            received_at=now,
            topic=topic[:512],
            edge_id=edge_id,
            reason=reason[:64],
            detail=detail[:2000],
            payload=payload[:DEAD_LETTER_PAYLOAD_BYTES],
            payload_size=len(payload),
        )
    )


def prune(session: Session, keep: int = KEEP_DEAD_LETTERS) -> None:
    """Drop all but the newest ``keep`` rows (one indexed statement; cheap when nothing to drop)."""
    newest = session.scalar(select(func.max(DeadLetter.id)))
    if newest is not None and newest > keep:
        session.execute(delete(DeadLetter).where(DeadLetter.id <= newest - keep))
