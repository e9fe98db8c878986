"""``GET /api/v1/dead-letters``: the MQTT messages the hub could not store (admins only).

See :mod:`gridwarden.hub.dead_letters`. The payload is shown as text (invalid UTF-8 replaced),
cut at what the hub kept; ``payload_size`` is the size that arrived.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from gridwarden.hub.api.deps import MAX_DB_INT, Services, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.db.models import DeadLetter

router = APIRouter(prefix="/api/v1/dead-letters", tags=["ingest"])
Admin = Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]


class DeadLetterView(BaseModel):
    id: int
    received_at: datetime
    topic: str
    edge_id: str | None
    reason: str
    detail: str
    payload: str
    payload_size: int


class DeadLetterPage(BaseModel):
    total: int
    items: list[DeadLetterView]


@router.get("", response_model=DeadLetterPage, summary="Messages the hub could not store, newest first")
def list_dead_letters(
    services: Services,
    _: Admin,
    edge_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    where = [DeadLetter.edge_id == edge_id] if edge_id else []
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(DeadLetter).where(*where)) or 0
        rows = session.scalars(
            select(DeadLetter).where(*where).order_by(DeadLetter.id.desc()).offset(offset).limit(limit)
        )
        items = [
            DeadLetterView(
                id=r.id,
                received_at=r.received_at,
                topic=r.topic,
                edge_id=r.edge_id,
                reason=r.reason,
                detail=r.detail,
                payload=bytes(r.payload).decode("utf-8", errors="replace"),
                payload_size=r.payload_size,
            )
            for r in rows
        ]
    return DeadLetterPage(total=total, items=items)
